"""Replay simulated shipments through the serving path and measure its alerts.

    python -m dozor_training.parcels.serving_replay --days 60 --orders-per-day 300 --sample 1500

The offline evaluation (`parcels.evaluation`) judges the alert rules on the simulated timeline directly.
This replays the same kind of history through what is deployed: the template's tables, topic and
queues on in-process moto, the real adapters, and `ParcelTracking` with a simulated clock. Each
scan copy is applied when it reached Dozor, every carrier's feed is noted as its scans (of all
parcels, not only the sampled ones) arrive, and the sweeper runs every `--sweep-hours`. The first
STALLED or LIKELY_LOST alert each parcel got on the alerts queue is then scored like the offline
rules, and the offline numbers for the same parcels are printed beside it. Order fraud scores and
seller loss rates are not fed (no decisions or labels in the replay), so the model sees them missing.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import numpy as np

from dozor.adapters.dynamodb.decisions import DynamoDecisionStore
from dozor.adapters.dynamodb.parcels import (
    DecisionFraudScores,
    DynamoAlertStore,
    DynamoCarrierFeeds,
    DynamoParcelStore,
)
from dozor.adapters.sns import SnsAlertTopic
from dozor.adapters.sqs import SqsFeedbackQueue
from dozor.domain.clock import HOUR
from dozor.domain.parcels.model import ParcelLossModel
from dozor.domain.parcels.shipments import ShipmentEvent
from dozor.domain.parcels.tracking import ParcelTracking
from dozor_training.fraud.simulator import SimulationConfig, simulate
from dozor_training.parcels.evaluation import CarrierFeeds, SellerLossRates, alert_metrics, evaluate_alerts
from dozor_training.parcels.simulator import SimulatedParcel, simulate_shipments

ROOT = Path(__file__).resolve().parents[3]  # the repository: template.yaml
BATCH = 10  # the queue's BatchSize
ALERTING = {"STALLED", "LIKELY_LOST"}


def _arrival_hours(parcels: Sequence[SimulatedParcel]) -> list[tuple[float, str]]:
    """(hour, carrier) for every hour in which some scan of the carrier reached Dozor."""
    hours = {(r // HOUR * HOUR, p.carrier) for p in parcels for s in p.scans for r in s.received_at}
    return sorted(hours)


def replay(
    parcels: Sequence[SimulatedParcel], everyone: Sequence[SimulatedParcel], sweep_hours: float
) -> tuple[list[float | None], dict[str, Any]]:
    """First STALLED / LIKELY_LOST alert time (epoch) per parcel on the serving path, and call counts."""
    from moto import mock_aws  # noqa: PLC0415 - a measurement tool, not serving code

    from dozor_local.stack import LocalStack  # noqa: PLC0415

    for name, value in {
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
        "AWS_DEFAULT_REGION": "eu-central-1",
    }.items():
        os.environ.setdefault(name, value)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    with mock_aws():
        stack = LocalStack.deploy(ROOT / "template.yaml")
        served = _ServingPath(stack)
        arrivals = sorted((t, n, e) for n, p in enumerate(parcels) for t, e in p.events())
        notes = _arrival_hours(everyone)
        start = min(t for t, _, _ in arrivals)
        end = max(p.finished_at for p in parcels)
        sweep = sweep_hours * HOUR
        sweep_at = (start // sweep + 1) * sweep
        i = j = 0
        counts = {"batches": 0, "sweeps": 0, "sweep_looks": 0}
        while sweep_at <= end + sweep:
            # everything that reached Dozor before this sweep, in arrival order
            while j < len(notes) and notes[j][0] < sweep_at:
                served.heard_from(notes[j][1], notes[j][0])
                j += 1
            while i < len(arrivals) and arrivals[i][0] < sweep_at:
                batch = [a for a in arrivals[i : i + BATCH] if a[0] < sweep_at]
                i += len(batch)
                served.record(batch)
                counts["batches"] += 1
            counts["sweep_looks"] += served.sweep(sweep_at)
            counts["sweeps"] += 1
            sweep_at += sweep
    return [served.first.get(p.parcel_id) for p in parcels], counts


class _ServingPath:
    """`ParcelTracking` on the deployed tables, topic and queues, with a clock the replay sets."""

    def __init__(self, stack: Any) -> None:
        ddb, self.sqs = boto3.client("dynamodb"), boto3.client("sqs")
        shipments = stack.physical_id("ShipmentsTable")
        self.now = datetime.fromtimestamp(0, UTC)
        self.model = ParcelLossModel.load()
        self.feeds = DynamoCarrierFeeds(ddb, shipments)
        decisions = DynamoDecisionStore(
            ddb, stack.physical_id("FeaturesTable"), stack.physical_id("DecisionsTable")
        )
        self.tracking = ParcelTracking(
            DynamoParcelStore(ddb, shipments),
            DynamoAlertStore(ddb, stack.physical_id("AlertsTable"), shipments),
            SnsAlertTopic(boto3.client("sns"), stack.physical_id("AlertsTopic")),
            SqsFeedbackQueue(self.sqs, stack.physical_id("FeedbackQueue")),
            DecisionFraudScores(decisions),
            self.feeds,
            self.model.deadlines,
            clock=lambda: self.now,
        )
        self.alerts_url, self.feedback_url = stack.queue_url("AlertsQueue"), stack.queue_url("FeedbackQueue")
        self.first: dict[str, float] = {}  # parcel id -> when its first open alert was raised

    def heard_from(self, carrier: str, at: float) -> None:
        self.now = datetime.fromtimestamp(at, UTC)
        self.feeds.heard_from({carrier}, self.now)

    def record(self, batch: Sequence[tuple[float, int, Any]]) -> None:
        """One queue batch of scan copies, applied when its last copy arrived."""
        self.now = datetime.fromtimestamp(batch[-1][0], UTC)
        by_parcel: dict[str, list[ShipmentEvent]] = {}
        for _, _, payload in batch:
            event = ShipmentEvent.model_validate(payload)
            by_parcel.setdefault(event.parcel_id, []).append(event)
        self.tracking.record_scans(by_parcel)

    def sweep(self, at: float) -> int:
        """Run the sweeper at `at`, note the alerts it raised; how many parcels it looked at."""
        self.now = datetime.fromtimestamp(at, UTC)
        report = self.tracking.sweep(self.now, self.model, lambda: timedelta(minutes=10), page_size=100)
        self._drain()
        return int(report.looked_at)

    def _drain(self) -> None:
        for url in (self.alerts_url, self.feedback_url):
            while messages := self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
                "Messages", []
            ):
                for m in messages:
                    alert = json.loads(m["Body"])
                    if (
                        url == self.alerts_url
                        and alert["type"] in ALERTING
                        and alert.get("resolved_at") is None
                    ):
                        raised = datetime.fromisoformat(alert["raised_at"]).timestamp()
                        self.first.setdefault(alert["parcel_id"], raised)
                entries = [
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
                ]
                self.sqs.delete_message_batch(QueueUrl=url, Entries=entries)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--orders-per-day", type=int, default=300)
    parser.add_argument("--sample", type=int, default=1500, help="parcels replayed through the serving path")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--sweep-hours", type=float, default=6.0)
    args = parser.parse_args(argv)

    orders = simulate(SimulationConfig(days=args.days, seed=args.seed, orders_per_day=args.orders_per_day))
    everyone = simulate_shipments(orders, args.seed)
    rng = np.random.default_rng(args.seed)
    chosen_ids = set(rng.choice(len(everyone), size=min(args.sample, len(everyone)), replace=False).tolist())
    parcels = [p for n, p in enumerate(everyone) if n in chosen_ids]
    started = time.perf_counter()
    first_alert, counts = replay(parcels, everyone, args.sweep_hours)
    elapsed = time.perf_counter() - started
    serving = alert_metrics(parcels, first_alert)
    offline = evaluate_alerts(
        parcels,
        ParcelLossModel.load(),
        SellerLossRates(everyone),
        None,
        args.sweep_hours,
        CarrierFeeds(everyone),
    )
    print(
        json.dumps(
            {"serving_path": serving, "offline": offline, "replay": counts, "seconds": round(elapsed, 1)},
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
