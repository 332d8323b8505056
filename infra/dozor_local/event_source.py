"""A local SQS event source mapping: what Lambda's poller does, against any SQS endpoint.

It receives up to BatchSize messages, hands them to the handler in the exact SQS event shape
Lambda delivers, deletes only the records the handler did not report in ``batchItemFailures``,
and leaves the failed ones to come back after their visibility timeout; the queue's own redrive
policy moves a record that keeps failing to its DLQ.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass(frozen=True)
class Delivery:
    received: int
    failed: list[str]  # message ids the handler reported
    error: str | None = None  # the handler raised: the whole batch is retried


def queue_arn(sqs: Any, queue_url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def to_event(messages: list[dict[str, Any]], arn: str, region: str) -> dict[str, Any]:
    """SQS messages as the ``Records`` of a Lambda SQS event."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {
                    name: {
                        "stringValue": value.get("StringValue"),
                        "binaryValue": value.get("BinaryValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": value["DataType"],
                    }
                    for name, value in m.get("MessageAttributes", {}).items()
                },
                "md5OfBody": m.get("MD5OfBody") or hashlib.md5(m["Body"].encode()).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


def deliver_once(
    sqs: Any,
    queue_url: str,
    handler: Handler,
    context: Any,
    batch_size: int = 10,
    wait_seconds: int = 0,
    visibility_timeout: int | None = None,
) -> Delivery:
    """One poll: receive a batch, invoke, delete what succeeded. Returns what happened."""
    request: dict[str, Any] = {
        "QueueUrl": queue_url,
        "MaxNumberOfMessages": batch_size,
        "WaitTimeSeconds": wait_seconds,
        "AttributeNames": ["All"],
        "MessageAttributeNames": ["All"],
    }
    if visibility_timeout is not None:
        request["VisibilityTimeout"] = visibility_timeout
    messages = sqs.receive_message(**request).get("Messages", [])
    if not messages:
        return Delivery(0, [])
    event = to_event(messages, queue_arn(sqs, queue_url), sqs.meta.region_name)
    try:
        result = handler(event, context) or {}
    except Exception as error:  # a crashed invocation retries the whole batch, as on AWS
        return Delivery(len(messages), [m["MessageId"] for m in messages], repr(error))
    failed = [f["itemIdentifier"] for f in result.get("batchItemFailures", [])]
    done = [m for m in messages if m["MessageId"] not in failed]
    for start in range(0, len(done), 10):
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(done[start : start + 10])
            ],
        )
    return Delivery(len(messages), failed)
