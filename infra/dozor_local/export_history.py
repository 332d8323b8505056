"""`dozor export-history`: what production recorded, as files the next model trains on.

    dozor export-history --out history/ [--since 2026-11-01] [--until 2026-12-01]

Scans the Decisions table (each decision with its order, personal data already keyed hashes) and
the Labels table, and writes JSON Lines, one `json.dumps` per line:

- ``orders.jsonl``     one Order contract payload per decided order
- ``decisions.jsonl``  order_id, decision, score, model_version, decided_at
- ``labels.jsonl``     order_id, label (fraud | legit), reported_at; one line per fraud verdict

`--since` / `--until` select decisions by `decided_at` (half-open, UTC when no zone is given); a
window also keeps only the labels of the exported orders, whenever they were reported. Tables from
`--decisions-table` / `--labels-table` (defaults: DECISIONS_TABLE_NAME, LABELS_TABLE_NAME),
`--endpoint-url` for an emulator.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dozor.adapters.dynamodb.history import DynamoHistory


@dataclass(frozen=True)
class Exported:
    orders: int
    decisions: int
    labels: int
    without_order: int  # decisions stored before orders were kept with them


def export_history(
    history: DynamoHistory, out: Path, since: datetime | None = None, until: datetime | None = None
) -> Exported:
    """Write orders.jsonl, decisions.jsonl and labels.jsonl from a `DynamoHistory` into `out`."""
    from dozor.domain.feedback import label_of  # noqa: PLC0415 - keeps `dozor --help` instant

    recorded = [
        r
        for r in history.decisions()
        if (since is None or r.decision.decided_at >= since)
        and (until is None or r.decision.decided_at < until)
    ]
    recorded.sort(key=lambda r: (r.decision.decided_at, r.decision.order_id))
    exported_ids = {r.decision.order_id for r in recorded}
    labels = {
        (label.order_id, label.is_fraud, label.reported_at)
        for label in map(label_of, history.feedback())
        if label is not None and ((since is None and until is None) or label.order_id in exported_ids)
    }
    out.mkdir(parents=True, exist_ok=True)
    orders = [r.order for r in recorded if r.order is not None]
    _write(out / "orders.jsonl", (o.model_dump(mode="json", exclude_none=True) for o in orders))
    _write(
        out / "decisions.jsonl",
        (
            {
                "order_id": r.decision.order_id,
                "decision": r.decision.decision.value,
                "score": r.decision.score,
                "model_version": r.decision.model_version,
                "decided_at": r.decision.decided_at.isoformat(),
            }
            for r in recorded
        ),
    )
    _write(
        out / "labels.jsonl",
        (
            {"order_id": order_id, "label": "fraud" if is_fraud else "legit", "reported_at": at.isoformat()}
            for order_id, is_fraud, at in sorted(labels, key=lambda x: (x[2], x[0], x[1]))
        ),
    )
    return Exported(len(orders), len(recorded), len(labels), len(recorded) - len(orders))


def _write(path: Path, rows: Any) -> None:
    with path.open("w") as out:
        for row in rows:
            out.write(json.dumps(row) + "\n")


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def configure(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument("--out", type=Path, required=True, help="directory for the three .jsonl files")
    parser.add_argument("--since", type=_instant, help="first decided_at to export (ISO date or time)")
    parser.add_argument("--until", type=_instant, help="decided_at to stop before (ISO date or time)")
    parser.add_argument("--decisions-table", default=env("DECISIONS_TABLE_NAME"))
    parser.add_argument("--labels-table", default=env("LABELS_TABLE_NAME"))
    parser.add_argument("--segments", type=int, default=4, help="parallel Scan segments per table")
    parser.add_argument("--endpoint-url", default=env("AWS_ENDPOINT_URL"), help="an emulator's endpoint")
    parser.add_argument("--region", default=env("AWS_DEFAULT_REGION") or env("AWS_REGION"))
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    import boto3  # noqa: PLC0415

    from dozor.adapters.dynamodb.history import DynamoHistory  # noqa: PLC0415

    if not args.decisions_table or not args.labels_table:
        raise SystemExit("dozor export-history: give --decisions-table and --labels-table (or the variables)")
    client = boto3.Session(region_name=args.region).client("dynamodb", endpoint_url=args.endpoint_url)
    history = DynamoHistory(client, args.decisions_table, args.labels_table, segments=args.segments)
    exported = export_history(history, args.out, args.since, args.until)
    print(json.dumps({"out": str(args.out), **exported.__dict__}))
    return 0
