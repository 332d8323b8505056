"""`make demo`: a simulated marketplace period through the whole local stack, as production would see it.

The local stack (`dozor_local.server`) is moto's HTTP server with template.yaml deployed on it,
every function in its own worker process behind a local API gateway, SQS pollers and schedules
on a simulated clock. The demo replays the simulator's orders through it (`dozor_local.timeline`):
a share of them as checkout calls over HTTP, the rest as order events on the order queue (with a
few malformed ones, which end in the DLQ), chargebacks onto the feedback queue when a function
consumes it, and schedules firing on simulated time. At the end it compares the decisions with
the simulator's ground truth and the rules-only baseline, and writes `summary.json` and
`report.html` (inline SVG charts).

Carrier scans and buyers' "item not received" claims come from the parcel simulator
(`parcels.simulator`) and are judged with the offline evaluation's metrics (`parcels.evaluation`).
To add a traffic source, write a `Feed` and add it in `feeds_for`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from dozor.domain.contracts import RUB_PER_UNIT, DecisionKind
from dozor.domain.fraud.rules import RULES
from dozor_local.pollers import SimClock
from dozor_local.server import LocalServer
from dozor_local.timeline import Action, Feed, HttpCall, Progress, QueueMessage, replay
from dozor_training.demo_report import write_report
from dozor_training.fraud.simulator import SimulatedOrder, SimulationConfig, simulate
from dozor_training.lanes_demo import write_simulated_lane_report
from dozor_training.parcels.evaluation import BASELINE_SILENCE, alert_metrics, stalled_times
from dozor_training.parcels.simulator import EPOCH, SimulatedParcel, simulate_shipments

START = datetime(2026, 11, 1, tzinfo=UTC)
HTTP_SHARE = 0.25  # of orders that arrive as checkout calls; the rest come from the order bus
CHECKOUT_CLIENTS = 2  # concurrent checkout calls
POISON_EVERY = 500  # now and then a producer bug puts garbage on the order queue
SCAN_POISON_EVERY = 2_000  # and a carrier integration sends a scan nobody can read
# After the last order the clock runs on until the parcels are done, but not past this: a lost
# parcel nobody reports is written off after 60 silent days, longer than a demo should take.
PARCEL_TAIL = timedelta(days=30)
# The default run is big enough for its figures to mean something: 2 days of 1,050 orders (seed 7:
# 2,301 orders, 46 of them fraud; 2,223 parcels, 24 lost by the time the clock stops, 30 days on;
# tests/unit/local/test_demo_size.py holds it to that). It costs per queue message (~23,300
# carrier scans: a parcel save each, and per batch a read and the carrier's heartbeat), per order
# (~9 writes) and per sweep (16 due-index queries and a write per overdue parcel; 128 on the
# 32-day clock at any volume, so few days of many orders). All of it is moto's CPU: 320-395 s of
# emulator CPU for the default run, the floor under its wall time (6 min 52 s at load ~1).
DAYS = 2
ORDERS_PER_DAY = 1050
# ParcelSweeperFunction sweeps hourly in template.yaml; the demo sweeps every 6 simulated hours.
# Stalled-parcel deadlines are days, so alerts come at most 6 hours later, and the run is spared
# ~640 sweeps of 16 index queries each (more emulator time than all the orders). The baseline
# below sweeps on the same schedule.
SWEEP_HOURS = 6.0
SWEPT = "ParcelSweeperFunction"
ALERTING = ("STALLED", "LIKELY_LOST")  # the alerts that say "this parcel may be lost"
# The cost model behind "money saved": an approved fraud is charged back in full, a manual review
# costs an analyst's few minutes, a declined legitimate order loses the platform its margin.
REVIEW_COST_RUB = 150.0
LEGIT_DECLINE_MARGIN = 0.15


# --- feeds ---------------------------------------------------------------------------------------


@dataclass
class OrderFeed:
    """Orders at their `created_at`: a share as checkout calls, the rest onto the order queue."""

    history: list[SimulatedOrder]
    seed: int
    http_share: float = HTTP_SHARE
    name: str = "orders"

    def events(self) -> Iterator[tuple[datetime, Action]]:
        rng = np.random.default_rng(self.seed)
        for n, sim in enumerate(self.history):
            moment = datetime.fromisoformat(sim.order["created_at"])
            if rng.random() < self.http_share:
                yield moment, HttpCall("POST", "/v1/orders/score", sim.order, tag=sim.order["order_id"])
            else:
                yield moment, QueueMessage("OrderEventsQueue", sim.order)
            if n % POISON_EVERY == POISON_EVERY // 2:
                yield moment, QueueMessage("OrderEventsQueue", {"order_id": f"broken-{n}", "amount": -1})


@dataclass
class ChargebackFeed:
    """Chargebacks and fraud confirmations onto the feedback queue when the simulator reports them."""

    history: list[SimulatedOrder]
    end: datetime
    name: str = "feedback"

    def events(self) -> Iterator[tuple[datetime, Action]]:
        labelled = sorted(
            (
                s
                for s in self.history
                if s.is_fraud and s.label_reported_at and s.label_reported_at <= self.end
            ),
            key=lambda s: s.label_reported_at or self.end,
        )
        for sim in labelled:
            assert sim.label_reported_at is not None
            body = {
                "order_id": sim.order["order_id"],
                "kind": "chargeback",
                "reported_at": sim.label_reported_at.isoformat(),
            }
            yield sim.label_reported_at, QueueMessage("FeedbackQueue", body)


def at(epoch: float) -> datetime:
    return EPOCH + timedelta(seconds=epoch)


@dataclass
class ScanFeed:
    """Carrier scans onto the shipment events queue as each copy reached Dozor: late, twice, out of order."""

    parcels: list[SimulatedParcel]
    end: datetime
    name: str = "scans"

    def arrivals(self) -> list[tuple[float, dict[str, Any]]]:
        cutoff = self.end.timestamp()
        return sorted(
            ((t, payload) for p in self.parcels for t, payload in p.events() if t <= cutoff),
            key=lambda pair: (pair[0], pair[1]["event_id"]),
        )

    def events(self) -> Iterator[tuple[datetime, Action]]:
        for n, (received, payload) in enumerate(self.arrivals()):
            carrier = payload["carrier"]  # each carrier's integration sends its own batches
            yield at(received), QueueMessage("ShipmentEventsQueue", payload, carrier)
            if n % SCAN_POISON_EVERY == SCAN_POISON_EVERY // 2:
                broken = {**payload, "event_id": f"broken-{n}", "status": "TELEPORTED", "occurred_at": "soon"}
                yield at(received), QueueMessage("ShipmentEventsQueue", broken, carrier)


@dataclass
class ClaimFeed:
    """Buyers' "item not received" claims onto the feedback queue (deliveries are the scans' to report)."""

    parcels: list[SimulatedParcel]
    end: datetime
    name: str = "claims"

    def claims(self) -> list[SimulatedParcel]:
        cutoff = self.end.timestamp()
        return sorted(
            (p for p in self.parcels if p.claim_at is not None and p.claim_at <= cutoff),
            key=lambda p: (p.claim_at or 0.0, p.parcel_id),
        )

    def events(self) -> Iterator[tuple[datetime, Action]]:
        for p in self.claims():
            assert p.claim_at is not None
            body = {
                "order_id": p.order_id,
                "parcel_id": p.parcel_id,
                "kind": "item_not_received",
                "reported_at": at(p.claim_at).isoformat(),
            }
            yield at(p.claim_at), QueueMessage("FeedbackQueue", body)


def feeds_for(
    local: LocalServer,
    history: list[SimulatedOrder],
    seed: int,
    end: datetime,
    parcels: list[SimulatedParcel] | None = None,
    parcels_end: datetime | None = None,
) -> list[Feed]:
    """The traffic the deployed template can take: a feed only where a function consumes it."""
    feeds: list[Feed] = [OrderFeed(history, seed)]
    consumers = {e.queue for spec in local.stack.functions.values() for e in spec.events if e.queue}
    if "FeedbackQueue" in consumers:
        feeds.append(ChargebackFeed(history, end))
    if parcels and "ShipmentEventsQueue" in consumers:
        feeds.append(ScanFeed(parcels, parcels_end or end))
        if "FeedbackQueue" in consumers:
            feeds.append(ClaimFeed(parcels, parcels_end or end))
    return feeds


def _poisoned(messages: int, every: int) -> int:
    """How many malformed messages a feed adds among `messages` (one at the middle of every `every`)."""
    return (messages + every // 2) // every


def parcels_end(parcels: list[SimulatedParcel], end: datetime) -> datetime:
    """How long the clock runs for the parcels: until the last scan or claim, at most PARCEL_TAIL on."""
    last = max(
        (t for p in parcels for t in (*(r for s in p.scans for r in s.received_at), p.claim_at or 0.0)),
        default=end.timestamp(),
    )
    return min(max(at(last), end), end + PARCEL_TAIL)


# --- the run -------------------------------------------------------------------------------------


def run(
    days: int, seed: int, out: Path, orders_per_day: int = ORDERS_PER_DAY, log_dir: Path | None = None
) -> dict[str, Any]:
    history = simulate(SimulationConfig(days=days, seed=seed, orders_per_day=orders_per_day, start=START))
    end = START + timedelta(days=days)
    parcels = simulate_shipments(history, seed)
    clock_end = parcels_end(parcels, end)
    started = time.perf_counter()
    env = {"POWERTOOLS_LOG_LEVEL": "WARNING", "LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}
    print(f"simulated {len(history):,} orders over {days} days; starting the local stack", file=sys.stderr)
    # Two checkout clients and, as Lambda would scale out, two ScoreOrder containers: a call
    # never queues behind another one in a single worker.
    local = LocalServer(
        api_port=0,
        clock=SimClock(START),
        retry_after=0,
        env_overrides=env,
        concurrency={"ScoreOrderFunction": CHECKOUT_CLIENTS},
        # An idle poller asks again when its long poll ends: each ask is a request the emulator
        # serves between the functions' own (Lambda's pollers wait 20 s; stopping waits one out).
        poll_wait_seconds=5,
        log_dir=log_dir,
    )
    with local:
        ready = time.perf_counter() - started
        print(
            f"local stack up in {ready:.1f} s: API {local.api_url}, emulator {local.endpoint_url}",
            file=sys.stderr,
        )
        for scheduler in local.schedulers:
            if scheduler.function == SWEPT:
                scheduler.every(timedelta(hours=SWEEP_HOURS))
        feeds = feeds_for(local, history, seed, end, parcels, clock_end)
        expected = len(history) + _poisoned(len(history), POISON_EVERY)
        if any(isinstance(f, ChargebackFeed) for f in feeds):
            expected += sum(
                1 for s in history if s.is_fraud and s.label_reported_at and s.label_reported_at <= end
            )
        for feed in feeds:
            if isinstance(feed, ScanFeed):
                scans = len(feed.arrivals())
                expected += scans + _poisoned(scans, SCAN_POISON_EVERY)
            elif isinstance(feed, ClaimFeed):
                expected += len(feed.claims())
        tracking = any(isinstance(f, ScanFeed) for f in feeds)
        if not tracking:
            clock_end = end
        progress = Progress(expected, "replaying")
        stats = replay(local, feeds, total=expected, progress=progress, clients=CHECKOUT_CLIENTS)
        stats.schedule_ticks += local.advance_clock(clock_end)
        progress.close(stats.actions, f"sim {clock_end:%Y-%m-%d}")
        decisions = _collect_decisions(local, history, stats.http)
        ops_alerts = _drain_ops_alerts(local) if local.topics() else []
        observed = {
            "dlq_depths": local.dlq_depths(),
            "review_queue_depth": local.queue_depth("ReviewQueue"),
            "ops_alerts": _alerts_by_type(ops_alerts) if local.topics() else None,
            "schedule_ticks": stats.schedule_ticks,
            "queued": stats.sent,
            "function_invocations": {i: p.invocations for i, p in local.pools.items()},
            "function_errors": {i: p.errors for i, p in local.pools.items()},
            "cpu_seconds": local.cpu_seconds(),
            "aws_requests": local.aws_requests(by_caller=True),
        }
    elapsed = time.perf_counter() - started
    latencies = [r.latency_ms for r in stats.http]
    summary = summarise(history, decisions, latencies, observed, elapsed, stats.wall_seconds)
    if tracking:
        summary["parcel_alerts"] = parcel_alert_summary(parcels, ops_alerts, clock_end)
    summary["simulated_until"] = clock_end.isoformat()
    out.mkdir(parents=True, exist_ok=True)
    # lanes.html, .csv, .json; the true-alert shares from the alerts the local sweeper raised
    sweeper_alerts = raised_alerts(ops_alerts) if tracking and observed["ops_alerts"] is not None else None
    summary["lane_report"] = write_simulated_lane_report(history, seed, out, sweeper_alerts)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    write_report(out / "report.html", summary, history, decisions, latencies)
    _print_summary(summary, decisions, out)
    return summary


def _collect_decisions(
    local: LocalServer, history: list[SimulatedOrder], http: list[Any]
) -> dict[str, dict[str, Any]]:
    """The checkout calls' answers, and for queued orders the stored decision (one scan of the table)."""
    decisions = {r.tag: r.body for r in http if r.tag and r.status == 200 and isinstance(r.body, dict)}
    wanted = {sim.order["order_id"] for sim in history} - set(decisions)
    pages = (
        local.client("dynamodb")
        .get_paginator("scan")
        .paginate(
            TableName=local.stack.physical_id("DecisionsTable"),
            ProjectionExpression="order_id, decision",
        )
    )
    for page in pages:
        for item in page["Items"]:
            if item["order_id"]["S"] in wanted:
                decisions[item["order_id"]["S"]] = json.loads(item["decision"]["S"])
    return decisions


def _alerts_by_type(notifications: list[dict[str, Any]]) -> dict[str, int]:
    """SNS notifications the ops queue received, counted by the alert's `type`."""
    kinds: Counter[str] = Counter()
    for notification in notifications:
        try:
            kinds[str(json.loads(notification["Message"]).get("type", "unknown"))] += 1
        except (KeyError, ValueError, AttributeError):
            kinds["unreadable"] += 1
    return dict(kinds)


def _drain_ops_alerts(local: LocalServer) -> list[dict[str, Any]]:
    """Every notification on the ops queue, ten per receive and ten per delete (the stack's
    read_ops_alerts deletes them one by one: hundreds of requests at the end of a run)."""
    sqs, alerts = local.client("sqs"), []
    while messages := sqs.receive_message(QueueUrl=local.ops_queue_url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        alerts += [json.loads(m["Body"]) for m in messages]
        entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)]
        sqs.delete_message_batch(QueueUrl=local.ops_queue_url, Entries=entries)
    return alerts


# --- the numbers ---------------------------------------------------------------------------------


def raised_alerts(notifications: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The alerts the topic announced as raised (a resolution is the same alert with `resolved_at`)."""
    alerts = []
    for notification in notifications:
        try:
            alert = json.loads(notification["Message"])
        except (KeyError, ValueError):
            continue
        if isinstance(alert, dict) and alert.get("resolved_at") is None and "parcel_id" in alert:
            alerts.append(alert)
    return alerts


def first_alerts(
    parcels: list[SimulatedParcel], alerts: list[dict[str, Any]], types: tuple[str, ...]
) -> list[float | None]:
    """Per parcel, when the first alert of these types was raised (epoch), or None."""
    first: dict[str, float] = {}
    for alert in alerts:
        if alert["type"] in types:
            raised = datetime.fromisoformat(alert["raised_at"]).timestamp()
            first[alert["parcel_id"]] = min(raised, first.get(alert["parcel_id"], raised))
    return [first.get(p.parcel_id) for p in parcels]


def parcel_alert_summary(
    parcels: list[SimulatedParcel], notifications: list[dict[str, Any]], clock_end: datetime
) -> dict[str, Any]:
    """The ops alerts against the simulator's truth, beside the "no scan for 30 days" baseline.

    Judged on the parcels whose outcome was known when the clock stopped (a loss still unreported
    then could not have been caught in time, nor an alert on it counted), with `parcels.evaluation`'s
    metrics: precision, recall before the loss became certain, median lead time in days, false
    alerts per 1,000 delivered. The baseline sweeps hourly on the same scan arrivals.
    """
    alerts = raised_alerts(notifications)
    done = [p for p in parcels if p.finished_at <= clock_end.timestamp()]
    by_type = Counter(str(a["type"]) for a in alerts)
    return {
        "raised_by_type": dict(sorted(by_type.items())),
        "parcels": len(parcels),
        "parcels_judged": len(done),
        "outcomes": dict(Counter(p.outcome for p in done)),
        "dozor_stalled_or_likely_lost": alert_metrics(done, first_alerts(done, alerts, ALERTING)),
        **{kind.lower(): alert_metrics(done, first_alerts(done, alerts, (kind,))) for kind in ALERTING},
        "baseline_no_scan_30_days": alert_metrics(
            done, stalled_times(done, None, silence=BASELINE_SILENCE, sweep=SWEEP_HOURS * 3600)
        ),
    }


_RULE_ACTIONS = {rule.id: rule.action for rule in RULES}
# Ops list hits are named LIST_<STATUS>_<KIND> (dozor.domain.fraud.rules.evaluate).
_LIST_STATUS_ACTIONS = {
    "block": DecisionKind.DECLINE,
    "review": DecisionKind.REVIEW,
    "allow": DecisionKind.APPROVE,
}


def rules_only_decision(rule_ids: list[str]) -> DecisionKind:
    """What the rules alone would have decided: the most severe action among the matched rules."""
    actions = set()
    for rule_id in rule_ids:
        if rule_id in _RULE_ACTIONS:
            actions.add(_RULE_ACTIONS[rule_id])
        elif rule_id.startswith("LIST_"):
            actions.add(_LIST_STATUS_ACTIONS.get(rule_id.split("_")[1].lower(), DecisionKind.APPROVE))
    for kind in (DecisionKind.DECLINE, DecisionKind.REVIEW):
        if kind in actions:
            return kind
    return DecisionKind.APPROVE


def amount_rub(sim: SimulatedOrder) -> float:
    return float(sim.order["amount"]) * RUB_PER_UNIT[sim.order["currency"]]


def loss_rub(history: list[SimulatedOrder], decided: dict[str, str]) -> float:
    """What a policy costs under the demo's cost model (see the constants at the top)."""
    total = 0.0
    for sim in history:
        kind = decided.get(sim.order["order_id"], "APPROVE")
        if kind == "REVIEW":
            total += REVIEW_COST_RUB  # a reviewer stops fraud; the legitimate order goes through
        elif kind == "DECLINE" and not sim.is_fraud:
            total += LEGIT_DECLINE_MARGIN * amount_rub(sim)
        elif kind == "APPROVE" and sim.is_fraud:
            total += amount_rub(sim)
    return total


def _precision_recall(
    history: list[SimulatedOrder], decided: dict[str, str]
) -> tuple[float | None, float | None]:
    fraud = {s.order["order_id"] for s in history if s.is_fraud}
    flagged = {oid for oid, kind in decided.items() if kind != "APPROVE"}
    caught = fraud & flagged
    precision = round(len(caught) / len(flagged), 3) if flagged else None
    recall = round(len(caught) / len(fraud), 3) if fraud else None
    return precision, recall


def summarise(
    history: list[SimulatedOrder],
    decisions: dict[str, dict[str, Any]],
    latencies: list[float],
    observed: dict[str, Any],
    elapsed: float,
    replay_seconds: float,
) -> dict[str, Any]:
    """The headline figures, as written to summary.json."""
    dozor = {oid: str(d["decision"]) for oid, d in decisions.items()}
    rules = {oid: rules_only_decision(list(d.get("rules") or [])).value for oid, d in decisions.items()}
    approve_all = loss_rub(history, {})
    dozor_loss, rules_loss = loss_rub(history, dozor), loss_rub(history, rules)
    precision, recall = _precision_recall(history, dozor)
    rules_precision, rules_recall = _precision_recall(history, rules)
    fraud = [s for s in history if s.is_fraud]
    caught = Counter(s.pattern for s in fraud if dozor.get(s.order["order_id"], "APPROVE") != "APPROVE")
    patterns = Counter(s.pattern for s in fraud)
    return {
        "orders": len(history),
        "orders_scored": len(decisions),
        "decisions": dict(Counter(dozor.values())),
        "fraud": {
            "orders": len(fraud),
            "caught": sum(caught.values()),
            "precision": precision,
            "recall": recall,
            "by_pattern": {p: f"{caught[p]}/{n}" for p, n in sorted(patterns.items())},
            "rules_only": {"precision": rules_precision, "recall": rules_recall},
        },
        "money_rub": {
            "loss_if_approving_everything": round(approve_all),
            "loss_with_rules_only": round(rules_loss),
            "loss_with_dozor": round(dozor_loss),
            "saved_vs_approve_all": round(approve_all - dozor_loss),
            "saved_vs_rules_only": round(rules_loss - dozor_loss),
            "cost_model": {
                "approved_fraud": "amount charged back",
                "review_rub": REVIEW_COST_RUB,
                "declined_legit": f"{LEGIT_DECLINE_MARGIN:.0%} margin",
            },
        },
        # Filled in by `run` when the template tracks parcels (`parcel_alert_summary`).
        "parcel_alerts": None,
        "http_api": {
            "requests": len(latencies),
            "p50_ms": round(float(np.percentile(latencies, 50)), 1) if latencies else None,
            "p99_ms": round(float(np.percentile(latencies, 99)), 1) if latencies else None,
        },
        **observed,
        "replay_seconds": round(replay_seconds, 1),
        "wall_seconds": round(elapsed, 1),
    }


def _parcel_lines(parcels: dict[str, Any] | None) -> list[str]:
    if not parcels:
        return []
    lines = [
        f"parcel alerts      {parcels['raised_by_type']} on {parcels['parcels_judged']:,} parcels "
        f"with known outcome {parcels['outcomes']}"
    ]
    for label, key in (
        ("  Dozor", "dozor_stalled_or_likely_lost"),
        ("  STALLED", "stalled"),
        ("  LIKELY_LOST", "likely_lost"),
        ("  no scan 30 d", "baseline_no_scan_30_days"),
    ):
        m = parcels[key]
        lines.append(
            f"{label:<19}precision {m['precision']}  recall {m['recall']}  "
            f"lead {m['median_lead_days']} d  "
            f"false alerts {m['false_alerts_per_1000_delivered']}/1,000 delivered"
        )
    return lines


def _print_summary(summary: dict[str, Any], decisions: dict[str, dict[str, Any]], out: Path) -> None:
    fraud, money, api = summary["fraud"], summary["money_rub"], summary["http_api"]
    lines = [
        f"orders scored      {summary['orders_scored']:,} of {summary['orders']:,}   {summary['decisions']}",
        f"fraud caught       {fraud['caught']}/{fraud['orders']}   precision {fraud['precision']}   "
        f"recall {fraud['recall']}   "
        f"(rules only: {fraud['rules_only']['precision']} / {fraud['rules_only']['recall']})",
        f"money saved        {money['saved_vs_approve_all']:,} RUB vs approving everything, "
        f"{money['saved_vs_rules_only']:,} RUB vs rules only",
        f"HTTP API           {api['requests']} checkout calls, "
        f"p50 {api['p50_ms']} ms, p99 {api['p99_ms']} ms",
        *_parcel_lines(summary.get("parcel_alerts")),
        f"DLQs               {summary['dlq_depths']}   review queue {summary['review_queue_depth']}",
        f"wall time          {summary['wall_seconds']} s (replay {summary['replay_seconds']} s)",
    ]
    print("\n".join(lines))
    examples = sorted(
        (d for d in decisions.values() if d["decision"] != "APPROVE"), key=lambda d: -d["score"]
    )[:2]
    for d in examples:
        print(f"\n{d['order_id']}: {d['decision']} (score {d['score']:.3f}, rules {d['rules'] or '-'})")
        for reason in d["reasons"][:3]:
            print(f"  - {reason['text']}")
    print(f"\nwritten: {out / 'summary.json'}, {out / 'report.html'}")


def configure(parser: argparse.ArgumentParser) -> None:
    """`dozor demo`'s arguments, on the parser the `dozor` CLI made for it."""
    parser.add_argument("--days", type=int, default=DAYS, help="days of simulated marketplace history")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("demo-output"), help="where the report goes")
    parser.add_argument("--orders-per-day", type=int, default=ORDERS_PER_DAY, help="an ordinary day's orders")
    parser.add_argument(
        "--log-dir", type=Path, default=None, help="keep each function's log (warnings and errors) here"
    )
    parser.set_defaults(run=main)


def main(args: argparse.Namespace | None = None) -> int:
    if args is None:
        parser = argparse.ArgumentParser(description=__doc__)
        configure(parser)
        args = parser.parse_args()
    run(args.days, args.seed, Path(args.out), orders_per_day=args.orders_per_day, log_dir=args.log_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
