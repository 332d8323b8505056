"""Tiny handlers for the worker tests (imported by the worker processes, not by pytest's collection)."""

from __future__ import annotations

import os
import time
from typing import Any


def whoami(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"greeting": os.environ["GREETING"], "function": context.function_name, "event": event}


def misbehave(event: dict[str, Any], context: Any) -> Any:
    if event.get("raise"):
        raise LookupError("no such parcel")
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("unmarshallable"):
        return {"when": object()}
    return {"pid": os.getpid()}


def record_tick(event: dict[str, Any], context: Any) -> None:
    """A scheduled function that notes the time its event carries on a queue (via the emulator)."""
    import boto3  # noqa: PLC0415 - only this handler needs it

    boto3.client("sqs").send_message(QueueUrl=os.environ["TICKS_QUEUE_URL"], MessageBody=event["time"])
