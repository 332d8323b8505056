"""`dozor export-history`: what production recorded, as files the next model trains on.

    dozor export-history --out history/ [--since 2026-11-01] [--until 2026-12-01]

Scans the Decisions table (each decision with its order, personal data already keyed hashes) and
the Labels table, and writes JSON Lines, one `json.dumps` per line:

- ``orders.jsonl``     one Order contract payload per decided order
- ``decisions.jsonl``  order_id, decision, score, model_version, decided_at
- ``labels.jsonl``     order_id, label (fraud | legit | lost), reported_at; one line per fraud
                       verdict, and one per loss report (the carrier's LOST, the buyer's claim)

With `--shipments-table` and `--alerts-table` (defaults: SHIPMENTS_TABLE_NAME, ALERTS_TABLE_NAME)
the parcels come too, as `dozor lanes report` reads them:

- ``shipments.jsonl``  every scan each parcel kept, as a shipment event (the contract's shape), in
                       the order they happened (when each copy arrived is not kept)
- ``alerts.jsonl``     every alert the sweeper raised, open or resolved (then with resolved_at)

`--since` / `--until` select decisions by `decided_at` (half-open, UTC when no zone is given); a
window also keeps only the labels, parcels and alerts of the exported orders, whenever they were
reported. Tables from `--decisions-table` / `--labels-table` (defaults: DECISIONS_TABLE_NAME,
LABELS_TABLE_NAME), `--endpoint-url` for an emulator.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dozor.adapters.dynamodb.history import DynamoHistory
    from dozor.adapters.dynamodb.parcels import DynamoParcelHistory
    from dozor.domain.feedback import Feedback
    from dozor.domain.parcels.shipments import Parcel


@dataclass(frozen=True)
class Exported:
    orders: int
    decisions: int
    labels: int
    without_order: int  # decisions stored before orders were kept with them
    losses: int = 0  # of the labels: parcels reported lost
    parcels: int | None = None  # None: the parcel tables were not exported
    scans: int | None = None
    alerts: int | None = None


def export_history(
    history: DynamoHistory,
    out: Path,
    since: datetime | None = None,
    until: datetime | None = None,
    parcel_history: DynamoParcelHistory | None = None,
) -> Exported:
    """Write orders.jsonl, decisions.jsonl and labels.jsonl from a `DynamoHistory` into `out`, and
    shipments.jsonl and alerts.jsonl from a `DynamoParcelHistory` if one is given."""
    from dozor.domain.feedback import label_of  # noqa: PLC0415 - keeps `dozor --help` instant

    recorded = [
        r
        for r in history.decisions()
        if (since is None or r.decision.decided_at >= since)
        and (until is None or r.decision.decided_at < until)
    ]
    recorded.sort(key=lambda r: (r.decision.decided_at, r.decision.order_id))
    exported_ids = {r.decision.order_id for r in recorded}
    windowed = since is not None or until is not None
    feedback = list(history.feedback())
    labels = {
        (label.order_id, "fraud" if label.is_fraud else "legit", label.reported_at)
        for label in map(label_of, feedback)
        if label is not None and (not windowed or label.order_id in exported_ids)
    }
    parcels = [] if parcel_history is None else list(parcel_history.parcels())
    if windowed:
        parcels = [p for p in parcels if p.order_id in exported_ids]
    losses = {
        (order_id, "lost", at)
        for order_id, at in _losses(feedback, parcels)
        if not windowed or order_id in exported_ids
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
            {"order_id": order_id, "label": label, "reported_at": at.isoformat()}
            for order_id, label, at in sorted(labels | losses, key=lambda x: (x[2], x[0], x[1]))
        ),
    )
    exported = Exported(
        len(orders), len(recorded), len(labels) + len(losses), len(recorded) - len(orders), len(losses)
    )
    if parcel_history is None:
        return exported
    scans = sorted(
        (event for p in parcels for event in _scan_events(p)),
        key=lambda e: (e["occurred_at"], e["parcel_id"], e["event_id"]),
    )
    _write(out / "shipments.jsonl", scans)
    exported_parcels = {p.parcel_id for p in parcels}
    alerts = sorted(
        (a for a in parcel_history.alerts() if not windowed or a.parcel_id in exported_parcels),
        key=lambda a: (a.raised_at, a.parcel_id, a.type.value),
    )
    _write(out / "alerts.jsonl", (a.model_dump(mode="json") for a in alerts))
    return replace(exported, parcels=len(parcels), scans=len(scans), alerts=len(alerts))


def _losses(feedback: list[Feedback], parcels: list[Parcel]) -> set[tuple[str, datetime]]:
    """(order id, reported at) of every loss report; a report naming only the parcel finds its order
    among the exported parcels (without them it cannot be placed and is left out). A parcel the
    carrier declared LOST is a loss from its LOST scan, as the feedback it sends is dated (so the
    two are one label), even if that feedback has not reached the Labels table yet."""
    from dozor.domain.feedback import LOSS_KINDS  # noqa: PLC0415
    from dozor.domain.parcels.shipments import ParcelStatus  # noqa: PLC0415

    order_of = {p.parcel_id: p.order_id for p in parcels}
    found = {(p.order_id, p.status_since) for p in parcels if p.status == ParcelStatus.LOST}
    for report in feedback:
        order_id = report.order_id or order_of.get(report.parcel_id or "")
        if report.kind in LOSS_KINDS and order_id:
            found.add((order_id, report.reported_at))
    return found


def _scan_events(parcel: Parcel) -> list[dict[str, Any]]:
    """The parcel's scans as the shipment events they came from (contract shape, no empty fields)."""
    from dozor.domain.parcels.shipments import ShipmentEvent  # noqa: PLC0415

    events = []
    for scan in parcel.scans:
        location = {"country": scan.country, "region": scan.region, "facility": scan.facility}
        event = ShipmentEvent.model_validate(
            {
                **scan.to_record(),
                "parcel_id": parcel.parcel_id,
                "order_id": parcel.order_id,
                "location": {k: v for k, v in location.items() if v is not None},
            }
        )
        events.append(event.model_dump(mode="json", exclude_none=True))
    return events


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
    parser.add_argument(
        "--shipments-table", default=env("SHIPMENTS_TABLE_NAME"), help="with --alerts-table: the parcels too"
    )
    parser.add_argument("--alerts-table", default=env("ALERTS_TABLE_NAME"))
    parser.add_argument("--segments", type=int, default=4, help="parallel Scan segments per table")
    parser.add_argument("--endpoint-url", default=env("AWS_ENDPOINT_URL"), help="an emulator's endpoint")
    parser.add_argument("--region", default=env("AWS_DEFAULT_REGION") or env("AWS_REGION"))
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    import boto3  # noqa: PLC0415

    from dozor.adapters.dynamodb.history import DynamoHistory  # noqa: PLC0415
    from dozor.adapters.dynamodb.parcels import DynamoParcelHistory  # noqa: PLC0415

    if not args.decisions_table or not args.labels_table:
        raise SystemExit("dozor export-history: give --decisions-table and --labels-table (or the variables)")
    if bool(args.shipments_table) != bool(args.alerts_table):
        raise SystemExit("dozor export-history: the parcels need both --shipments-table and --alerts-table")
    client = boto3.Session(region_name=args.region).client("dynamodb", endpoint_url=args.endpoint_url)
    history = DynamoHistory(client, args.decisions_table, args.labels_table, segments=args.segments)
    parcels = (
        DynamoParcelHistory(client, args.shipments_table, args.alerts_table, segments=args.segments)
        if args.shipments_table
        else None
    )
    exported = export_history(history, args.out, args.since, args.until, parcels)
    print(json.dumps({"out": str(args.out), **exported.__dict__}))
    return 0
