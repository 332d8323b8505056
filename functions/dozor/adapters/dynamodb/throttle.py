"""DynamoDB: the CallerThrottle table, one counter item per caller and throttle window.

Implements `dozor.domain.throttle.SharedCounts`. Each sync is one UpdateItem (``ADD hits``) on an
item of a few dozen bytes: 1 write unit, however many requests it carries. The item expires with
TTL a minute after its window ends; nothing reads it back later.
"""

from __future__ import annotations

import hashlib
from typing import Any

from dozor.adapters.aws_errors import DYNAMODB, translated

# DynamoDB keys may be 2,048 bytes; a caller named longer than this (an odd JWT client id) is
# counted under a hash of its name, which is as good a key and keeps every item small.
_LONGEST_NAME = 256
KEEP_AFTER_WINDOW = 60  # seconds


def counter_key(caller: str, window: int) -> str:
    name = caller if len(caller) <= _LONGEST_NAME else "sha256:" + hashlib.sha256(caller.encode()).hexdigest()
    return f"{name}#{window}"


class DynamoCallerCounts:
    """The shared request count of each caller per window (``window_seconds`` long)."""

    def __init__(self, client: Any, table: str, window_seconds: float) -> None:
        self._client = client
        self._table = table
        self._window = window_seconds

    def add(self, caller: str, window: int, hits: int) -> int:
        expires = int((window + 1) * self._window) + KEEP_AFTER_WINDOW
        with translated(DYNAMODB, "caller throttle count not added"):
            response = self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": counter_key(caller, window)}},
                UpdateExpression="ADD hits :hits SET expires_at = if_not_exists(expires_at, :expires)",
                ExpressionAttributeValues={":hits": {"N": str(hits)}, ":expires": {"N": str(expires)}},
                ReturnValues="ALL_NEW",
            )
        return int(response.get("Attributes", {}).get("hits", {}).get("N", hits))
