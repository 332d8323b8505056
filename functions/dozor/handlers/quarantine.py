"""Quarantine: where a queue function puts a record that can never be processed, masked.

A record that is permanently invalid (`InvalidInputError`: not JSON, not the contract, dates out
of range, not a pending commit) is not failed into its queue's DLQ, where its raw body (emails,
phones, addresses, IPs) would sit for days. The function sends a masked copy with the reason to
the QuarantineQueue and acknowledges the record. Masking keeps the shape and the identifiers a
person needs to chase the sender (order, parcel, event ids, kinds, dates, amounts) and replaces
every other string under a personal-data key with ``"***"``; a body that is not JSON is kept only
as its length and a hash. Transient failures are not quarantined: they fail the record, SQS
redelivers it, and after maxReceiveCount it moves to the DLQ (raw, encrypted, kept as long as the
source queue keeps messages) to be redriven.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from dozor.adapters.aws_errors import SQS, translated
from dozor.domain.errors import DozorError, InvalidInputError
from dozor.handlers.wiring import aws_client, logger, metrics
from dozor.settings import QuarantineSettings

PERSONAL = frozenset(
    {
        "email",
        "phone",
        "ip",
        "address",
        "postal_code",
        "city",
        "card_fingerprint",
        "card_bin",
        "device_id",
        "name",
        "first_name",
        "last_name",
        "street",
        "facility",
    }
)
MAX_MASKED_CHARS = 16_000


def mask(value: Any, key: str | None = None) -> Any:
    """``value`` with every scalar under a personal-data key replaced by ``"***"``."""
    if isinstance(value, dict):
        return {k: mask(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v, key) for v in value]
    if key is not None and key.lower() in PERSONAL and value is not None:
        return "***"
    return value


def masked_body(body: str) -> Any:
    try:
        masked = mask(json.loads(body))
    except (ValueError, RecursionError):
        return {"not_json": True, "length": len(body), "sha256": hashlib.sha256(body.encode()).hexdigest()}
    text = json.dumps(masked, default=str)
    if len(text) > MAX_MASKED_CHARS:
        return {"truncated": True, "length": len(body), "head": text[:MAX_MASKED_CHARS]}
    return masked


class QuarantineQueue:
    def __init__(self, client: Any, queue_url: str, source: str) -> None:
        self._client = client
        self._url = queue_url
        self._source = source

    def put(self, record: SQSRecord, reason: str) -> None:
        body = {
            "source": self._source,
            "message_id": record.message_id,
            "reason": reason[:2000],
            "quarantined_at": datetime.now(UTC).isoformat(),
            "masked": masked_body(record.body),
        }
        with translated(SQS, f"record {record.message_id} not quarantined"):
            self._client.send_message(QueueUrl=self._url, MessageBody=json.dumps(body, default=str))


def quarantining(
    handler: Callable[[SQSRecord], None], quarantine: Callable[[], QuarantineQueue | None]
) -> Callable[[SQSRecord], None]:
    """``handler``, with permanently invalid records quarantined and acknowledged.

    Without a quarantine queue (or when it cannot be written) the record fails as before.
    """

    def handle(record: SQSRecord) -> None:
        try:
            handler(record)
        except InvalidInputError as error:
            queue = quarantine()
            if queue is None:
                raise
            try:
                queue.put(record, str(error))
            except DozorError:
                logger.exception(
                    "record not quarantined; failing it", extra={"message_id": record.message_id}
                )
                raise error from None
            logger.warning(
                "record quarantined", extra={"message_id": record.message_id, "reason": str(error)}
            )
            metrics.add_metric(name="RecordsQuarantined", unit=MetricUnit.Count, value=1)

    return handle


def quarantine_for(source: str) -> QuarantineQueue | None:
    """The quarantine of the function ``source`` (QUARANTINE_QUEUE_URL), built on first use."""
    url = QuarantineSettings().quarantine_queue_url
    return _queue(url, source) if url else None


@lru_cache(maxsize=8)
def _queue(url: str, source: str) -> QuarantineQueue:
    return QuarantineQueue(aws_client("sqs"), url, source)
