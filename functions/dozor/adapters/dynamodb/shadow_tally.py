"""DynamoDB: the ShadowTally table, how often the shadow model would have decided otherwise.

Keyed by the models compared (``<active>|<shadow>``) and the hour, with two counters: orders both
models scored, and orders where the shadow's decision differs. Scoring must not pay a write per
order for this, so each container counts in memory and adds its counts with one UpdateItem per
pair and hour at most once a minute (`flush_every`), on the next order after that (and on a
container's first order, so a new shadow shows at once). Counts a
container holds when it is shut down are lost: the rate is an estimate over what was flushed,
which is what the console says it is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dozor.adapters.aws_errors import DYNAMODB, translated
from dozor.adapters.dynamodb.codec import number

TALLY_RETENTION = timedelta(days=90)


def pair_key(active: str, shadow: str) -> str:
    return f"{active}|{shadow}"


def hour_key(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H")


@dataclass(frozen=True)
class Disagreement:
    compared: int
    differing: int
    since: datetime

    @property
    def rate(self) -> float | None:
        return self.differing / self.compared if self.compared else None


class ShadowTally:
    def __init__(
        self,
        client: Any,
        table: str,
        flush_every: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._table = table
        self._flush_every = flush_every
        self._clock = clock
        self._pending: dict[tuple[str, str], list[int]] = {}  # (pair, hour) -> [compared, differing]
        self._flushed_at: float | None = None  # the first order flushes: a new shadow shows at once

    def count(self, active: str, shadow: str, differs: bool, at: datetime) -> None:
        """Count one order both models scored; adds the counts to the table when a flush is due."""
        counts = self._pending.setdefault((pair_key(active, shadow), hour_key(at)), [0, 0])
        counts[0] += 1
        counts[1] += int(differs)
        if self._flushed_at is None or self._clock() - self._flushed_at >= self._flush_every:
            self.flush(at)

    def flush(self, now: datetime) -> None:
        """Add every pending count to the table; what fails stays pending for the next flush."""
        self._flushed_at = self._clock()
        expires = number(int((now + TALLY_RETENTION).timestamp()))
        for key in list(self._pending):
            compared, differing = self._pending[key]
            with translated(DYNAMODB, "shadow tally not stored"):
                self._client.update_item(
                    TableName=self._table,
                    Key={"models": {"S": key[0]}, "hour": {"S": key[1]}},
                    UpdateExpression="ADD #c :c, #d :d SET expires_at = :ttl",
                    ExpressionAttributeNames={"#c": "compared", "#d": "differing"},
                    ExpressionAttributeValues={
                        ":c": number(compared),
                        ":d": number(differing),
                        ":ttl": expires,
                    },
                )
            del self._pending[key]

    def disagreement(self, active: str, shadow: str, since: datetime) -> Disagreement:
        """The counts flushed for this pair of models from `since`'s hour on."""
        compared = differing = 0
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#m = :p AND #h >= :h",
            "ExpressionAttributeNames": {"#m": "models", "#h": "hour"},
            "ExpressionAttributeValues": {
                ":p": {"S": pair_key(active, shadow)},
                ":h": {"S": hour_key(since)},
            },
        }
        with translated(DYNAMODB, "shadow tally not read"):
            while True:
                response = self._client.query(**request)
                for item in response.get("Items", []):
                    compared += int(float(item.get("compared", {}).get("N", "0")))
                    differing += int(float(item.get("differing", {}).get("N", "0")))
                if "LastEvaluatedKey" not in response:
                    break
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return Disagreement(compared, differing, since)
