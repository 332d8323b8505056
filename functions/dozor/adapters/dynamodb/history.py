"""DynamoDB, offline: what production recorded, read back for export and training.

Whole-table parallel Scans (one thread per segment), never on a request path.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from dozor.adapters.aws_errors import DYNAMODB, translated
from dozor.adapters.dynamodb.codec import item
from dozor.adapters.dynamodb.labels import COUNTED_MARKER
from dozor.domain.contracts import Decision, Order
from dozor.domain.feedback import Feedback


@dataclass(frozen=True)
class RecordedDecision:
    """A decision as the Decisions table holds it, with its order (personal data hashed) if stored."""

    decision: Decision
    order: Order | None


class DynamoHistory:
    """Reads decisions with their orders, and labels, from the Decisions and Labels tables."""

    def __init__(self, client: Any, decisions_table: str, labels_table: str, segments: int = 4) -> None:
        self._client = client
        self._decisions = decisions_table
        self._labels = labels_table
        self._segments = segments

    def decisions(self) -> Iterator[RecordedDecision]:
        for raw in self._scan(self._decisions):
            order = Order.model_validate_json(raw["order"]["S"]) if "order" in raw else None
            yield RecordedDecision(Decision.model_validate_json(raw["decision"]["S"]), order)

    def feedback(self) -> Iterator[Feedback]:
        """Every label item, as the Feedback it was recorded from."""
        for raw in self._scan(self._labels):
            if raw["label_id"]["S"].startswith(COUNTED_MARKER):
                continue  # bookkeeping of DynamoLabelStore, not a label
            stored = item(raw)
            yield Feedback.model_validate(
                {k: stored[k] for k in ("order_id", "parcel_id", "kind", "reported_at") if k in stored}
            )

    def _scan(self, table: str) -> Iterator[dict[str, Any]]:
        return scan_table(self._client, table, self._segments)


def scan_table(client: Any, table: str, segments: int = 4) -> Iterator[dict[str, Any]]:
    """Every item of `table` in its wire form, read by `segments` parallel Scan segments."""
    with ThreadPoolExecutor(max_workers=segments) as pool:
        parts = pool.map(lambda s: list(_scan_segment(client, table, s, segments)), range(segments))
        for items in parts:
            yield from items


def _scan_segment(client: Any, table: str, segment: int, segments: int) -> Iterator[dict[str, Any]]:
    paginator = client.get_paginator("scan")
    with translated(DYNAMODB, f"scan of {table} failed"):
        pages = paginator.paginate(TableName=table, Segment=segment, TotalSegments=segments)
        for page in pages:
            yield from page.get("Items", [])
