"""SNS: the alerts topic. Email, chat and paging subscribe to it, and so does the alerts queue."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from dozor.domain.alerts import Alert
from dozor.domain.parcel_tracking import AlertEvent, TrackingUnavailableError

SUBJECT_LIMIT = 100  # SNS rejects longer email subjects


class SnsAlertTopic:
    """Implements `dozor.domain.parcel_tracking.AlertTopic`: one message per raised or resolved alert."""

    def __init__(self, client: Any, topic_arn: str) -> None:
        self._client = client
        self._topic_arn = topic_arn

    def publish(self, alert: Alert, event: AlertEvent) -> None:
        # The body is the Alert contract; subscribers filter on the attributes without parsing it.
        attributes = {
            "event": event.value,
            "type": alert.type.value,
            "severity": alert.severity.value,
            "carrier": alert.carrier,
            "region": alert.destination_region or "unknown",
        }
        subject = f"Dozor {alert.type.value} {event.value.lower()}: parcel {alert.parcel_id}"
        try:
            self._client.publish(
                TopicArn=self._topic_arn,
                Message=alert.model_dump_json(),
                Subject=subject[:SUBJECT_LIMIT],
                MessageAttributes={
                    name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()
                },
            )
        except (ClientError, BotoCoreError) as error:
            code = error.response["Error"]["Code"] if isinstance(error, ClientError) else type(error).__name__
            raise TrackingUnavailableError(f"alert {alert.alert_id} not published: {code}") from error
