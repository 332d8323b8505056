"""SNS: the alerts topic. Email, chat and paging subscribe to it, and so does the alerts queue."""

from __future__ import annotations

from typing import Any

from dozor.adapters.aws_errors import SNS, translated
from dozor.domain.parcels.alerts import Alert
from dozor.domain.parcels.tracking import AlertEvent

SUBJECT_LIMIT = 100  # SNS rejects longer email subjects


class SnsAlertTopic:
    """Implements `dozor.domain.parcels.tracking.AlertTopic`: one message per raised or resolved alert."""

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
        with translated(SNS, f"alert {alert.alert_id} not published"):
            self._client.publish(
                TopicArn=self._topic_arn,
                Message=alert.model_dump_json(),
                Subject=subject[:SUBJECT_LIMIT],
                MessageAttributes={
                    name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()
                },
            )
