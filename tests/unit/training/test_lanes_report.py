"""`dozor lanes report` against the simulator's truth: the files it writes, read back, must say what
the simulated parcels and orders really did, lane by lane, and a seller's view nothing of others."""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dozor.domain.clock import DAY, from_epoch
from dozor.domain.contracts import RUB_PER_UNIT
from dozor.domain.parcels.alerts import Alert, AlertType, Severity
from dozor.domain.parcels.lanes import learn_deadlines
from dozor.domain.parcels.shipments import TERMINAL, ParcelStatus
from dozor_training.cli import main
from dozor_training.fraud.simulator import SimulatedOrder, SimulationConfig, simulate
from dozor_training.history_commands import write_simulated_history
from dozor_training.lanes_demo import write_simulated_lane_report
from dozor_training.parcels.evaluation import alert_metrics, lane_of
from dozor_training.parcels.lanes_report import (
    ALERT_RULES,
    AREA_NAMES,
    AREAS,
    MIN_OTHER_SELLERS,
    SMALL_SAMPLE,
    area_of,
    week_of,
)
from dozor_training.parcels.simulator import DELIVERED, LOST, RETURNED, SimulatedParcel, simulate_shipments

SEED = 5


class Sim:
    def __init__(self, out: Path) -> None:
        self.history = simulate(SimulationConfig(days=14, seed=SEED, orders_per_day=250))
        self.parcels = simulate_shipments(self.history, SEED)
        self.orders = {o.order["order_id"]: o for o in self.history}
        self.files = write_simulated_history(self.history, out / "history", "jsonl", SEED)
        self.alerts = truth_alerts(self.parcels)


def truth_alerts(parcels: Sequence[SimulatedParcel]) -> list[float | None]:
    """When each parcel first stayed silent past its lane's STALLED deadline, from the simulator's own
    scans (deadlines learned from the final parcels, as the report learns them from the history)."""
    deadlines = learn_deadlines(p.final_parcel() for p in parcels)
    first: list[float | None] = []
    for p in parcels:
        scans = sorted(p.scans, key=lambda s: s.occurred_at)
        end = p.loss_certain_at if p.outcome == LOST else None
        found = None
        for i, s in enumerate(scans):
            if s.status in TERMINAL:
                continue
            nxt = [
                t for t in (scans[i + 1].occurred_at if i + 1 < len(scans) else None, end) if t is not None
            ]
            limit = deadlines.stalled_after(lane_of(p), s.status).total_seconds()
            if nxt and min(nxt) - s.occurred_at > limit:
                found = s.occurred_at + limit
                break
        first.append(found)
    return first


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Sim:
    return Sim(tmp_path_factory.mktemp("lanes"))


@pytest.fixture(scope="module")
def report(sim: Sim, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    seller = busiest_seller(sim)
    status = main(
        [
            "lanes",
            "report",
            "--orders",
            str(sim.files["orders"]),
            "--labels",
            str(sim.files["labels"]),
            "--shipments",
            str(sim.files["shipments"]),
            "--out",
            str(out),
            "--seller",
            seller,
        ]
    )
    assert status == 0
    return out


def busiest_seller(sim: Sim) -> str:
    counts: dict[str, int] = defaultdict(int)
    for p in sim.parcels:
        counts[p.seller_id] += 1
    return max(sorted(counts), key=lambda s: counts[s])


def amount_rub(o: SimulatedOrder) -> float:
    return float(o.order["amount"]) * RUB_PER_UNIT[o.order["currency"]]


def truth(sim: Sim, members: Sequence[int]) -> dict[str, Any]:
    """The figures of some parcels (indices into sim.parcels), straight from the simulator."""
    parcels = [sim.parcels[n] for n in members]
    orders = [sim.orders[p.order_id] for p in parcels]
    outcomes = [p.outcome for p in parcels]
    labelled_fraud = [o.is_fraud and o.label_reported_at is not None for o in orders]
    value = sum(map(amount_rub, orders))
    days = [
        (p.scans[-1].occurred_at - _epoch(o.order["created_at"])) / DAY
        for p, o in zip(parcels, orders, strict=True)
        if p.outcome == DELIVERED
    ]
    alerts = alert_metrics(parcels, [sim.alerts[n] for n in members])
    return {
        "parcels": len(parcels),
        "lost": outcomes.count(LOST),
        "returned": outcomes.count(RETURNED),
        "lost_share": outcomes.count(LOST) / len(parcels),
        "returned_share": outcomes.count(RETURNED) / len(parcels),
        "fraud_rate": sum(labelled_fraud) / len(parcels),
        "true_fraud_rate": sum(o.is_fraud for o in orders) / len(parcels),
        "chargeback_rate_by_value": sum(
            amount_rub(o) for o, f in zip(orders, labelled_fraud, strict=True) if f
        )
        / value,
        "delivery_days": np.quantile(days, [0.5, 0.9, 0.99]).tolist() if days else None,
        "alerts": alerts["alerted"],
        "true_alert_share": alerts["precision"] if alerts["alerted"] else None,
    }


def _epoch(value: Any) -> float:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def groups(sim: Sim, key: Callable[[SimulatedParcel], tuple[str, ...]]) -> dict[tuple[str, ...], list[int]]:
    found: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for n, p in enumerate(sim.parcels):
        found[key(p)].append(n)
    return found


def assert_figures(entry: dict[str, Any], expected: dict[str, Any]) -> None:
    assert entry["parcels"] == expected["parcels"]
    assert entry["lost"] == expected["lost"]
    assert entry["returned"] == expected["returned"]
    assert entry["open"] == 0  # every simulated parcel's outcome is in the files
    assert entry["lost_share"] == pytest.approx(expected["lost_share"], abs=1e-6)
    assert entry["returned_share"] == pytest.approx(expected["returned_share"], abs=1e-6)
    assert entry["fraud_rate"] == pytest.approx(expected["fraud_rate"], abs=1e-6)
    assert entry["chargeback_rate_by_value"] == pytest.approx(expected["chargeback_rate_by_value"], abs=1e-6)
    if expected["delivery_days"] is None:
        assert entry["delivery_days_p50"] is None
    else:
        got = [entry[f"delivery_days_p{q}"] for q in (50, 90, 99)]
        assert got == pytest.approx(expected["delivery_days"], abs=0.006)
    assert entry["alerts"] == expected["alerts"]
    if expected["true_alert_share"] is None:
        assert entry["true_alert_share"] is None
    else:
        assert entry["true_alert_share"] == pytest.approx(expected["true_alert_share"], abs=1e-4)
    assert entry["small_sample"] == (expected["parcels"] < SMALL_SAMPLE)


def strings(value: Any) -> Iterator[str]:
    """Every string value in a JSON document (keys excluded)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def read_json(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def test_every_lane_matches_the_simulators_truth(sim: Sim, report: Path) -> None:
    written = read_json(report / "lanes.json")
    assert_figures(written["overall"], truth(sim, range(len(sim.parcels))))
    by_lane = groups(sim, lambda p: (p.carrier, str(p.destination_region)))
    assert {(e["carrier"], e["region"]) for e in written["by_lane"]} == set(by_lane)
    for entry in written["by_lane"]:
        assert_figures(entry, truth(sim, by_lane[(entry["carrier"], entry["region"])]))
    by_carrier_area = groups(sim, lambda p: (p.carrier, area_of(p.destination_region)))
    assert len(written["by_carrier_area"]) == len(by_carrier_area) == 4 * 5
    for entry in written["by_carrier_area"]:
        assert_figures(entry, truth(sim, by_carrier_area[(entry["carrier"], entry["area"])]))


def test_moscow_st_petersburg_and_the_tiers_match_the_truth(sim: Sim, report: Path) -> None:
    written = {e["area"]: e for e in read_json(report / "lanes.json")["by_area"]}
    by_area = groups(sim, lambda p: (area_of(p.destination_region),))
    assert list(written) == ["moscow", "st_petersburg", "tier1", "tier2", "tier3"]
    for area, entry in written.items():
        assert_figures(entry, truth(sim, by_area[(area,)]))
    # The simulator loses more far from the capitals (TIER_LOSS 1.0 .. 3.6): so must the report.
    capitals = (written["moscow"]["lost"] + written["st_petersburg"]["lost"]) / (
        written["moscow"]["parcels"] + written["st_petersburg"]["parcels"]
    )
    assert written["tier3"]["lost_share"] > 2 * capitals and written["tier2"]["lost_share"] > 2 * capitals


def test_the_weekly_trend_matches_the_truth(sim: Sim, report: Path) -> None:
    written = read_json(report / "lanes.json")["weekly"]
    by_week = groups(
        sim,
        lambda p: (
            week_of(
                datetime.fromisoformat(sim.orders[p.order_id].order["created_at"].replace("Z", "+00:00"))
            ),
            area_of(p.destination_region),
        ),
    )
    assert {(e["week"], e["area"]) for e in written} == set(by_week)
    for entry in written:
        assert_figures(entry, truth(sim, by_week[(entry["week"], entry["area"])]))


def test_the_csv_carries_the_same_figures(report: Path) -> None:
    written = read_json(report / "lanes.json")
    with (report / "lanes.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    lanes = {(r["carrier"], r["region"]): r for r in rows if r["grouping"] == "by_lane"}
    assert len(lanes) == len(written["by_lane"])
    for entry in written["by_lane"]:
        row = lanes[(entry["carrier"], entry["region"])]
        assert int(row["parcels"]) == entry["parcels"]
        assert float(row["lost_share"]) == entry["lost_share"]
        assert row["small_sample"] == str(entry["small_sample"])
    # Small samples are marked, not hidden: thin lanes are there, flagged.
    assert any(r["small_sample"] == "True" for r in lanes.values())


def test_the_html_shows_the_charts_and_marks_small_samples(report: Path) -> None:
    page = (report / "lanes.html").read_text()
    assert page.count("<svg") == 4
    assert "Moscow" in page and "St Petersburg" in page and "tier 3" in page
    assert "†" in page


def test_a_sellers_view_holds_only_their_own_parcels(sim: Sim, report: Path) -> None:
    seller = busiest_seller(sim)
    path = report / f"seller-{seller}.json"
    view = read_json(path)
    text = path.read_text() + (report / f"seller-{seller}.csv").read_text()
    text += (report / f"seller-{seller}.html").read_text()
    # Nobody else's id, and nothing personal (orders, parcels, buyers, cards, addresses).
    others = {o.order["seller"]["id"] for o in sim.history} - {seller}
    tokens = set(re.findall(r"[\w-]+", text))
    personal = {o.order["buyer"]["id"] for o in sim.history} | set(sim.orders)
    assert not tokens & (others | personal)
    assert "pcl_" not in text and "ord_" not in text
    # The only words in the view: its own keys, the seller's id, carriers, regions, areas, weeks.
    allowed = {seller, *view["weeks"], *(p.carrier for p in sim.parcels)}
    allowed |= {str(p.destination_region) for p in sim.parcels}
    words = {w for w in strings(view) if w not in allowed and not w.startswith(("fewer than", "rest of"))}
    rules = {*ALERT_RULES, *ALERT_RULES.values()}  # which alerts the view judges, in words
    assert words <= {"seller", view["generated_at"], *AREAS, *AREA_NAMES.values(), *rules}

    own = [n for n, p in enumerate(sim.parcels) if p.seller_id == seller]
    assert_figures(view["overall"]["seller"], truth(sim, own))
    assert_figures(view["overall"]["marketplace"], truth(sim, range(len(sim.parcels))))
    lanes = groups(sim, lambda p: (p.carrier, str(p.destination_region)))
    sellers_on = {k: {sim.parcels[n].seller_id for n in ns} for k, ns in lanes.items()}
    mine = {(sim.parcels[n].carrier, str(sim.parcels[n].destination_region)) for n in own}
    assert {(e["carrier"], e["region"]) for e in view["by_lane"]} == mine  # only lanes they ship on
    withheld = 0
    for entry in view["by_lane"]:
        key = (entry["carrier"], entry["region"])
        assert_figures(
            entry["seller"], truth(sim, [n for n in lanes[key] if sim.parcels[n].seller_id == seller])
        )
        if len(sellers_on[key] - {seller}) < MIN_OTHER_SELLERS:
            withheld += 1
            assert entry["marketplace"] is None and "marketplace_withheld" in entry
        else:
            assert_figures(entry["marketplace"], truth(sim, lanes[key]))
    assert withheld  # a thin lane is there, with the marketplace's figures withheld


def test_a_history_without_shipments_reports_orders_by_region(sim: Sim, tmp_path: Path) -> None:
    """What `export-history` gives (orders and labels): fraud by region, the carrier unknown."""
    files = sim.files
    argv = ["lanes", "report", "--orders", str(files["orders"]), "--labels", str(files["labels"])]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    written = read_json(tmp_path / "lanes.json")
    assert {e["carrier"] for e in written["by_carrier_area"]} == {"unknown"}
    by_area = groups(sim, lambda p: (area_of(p.destination_region),))
    for entry in written["by_area"]:
        expected = truth(sim, by_area[(entry["area"],)])
        assert entry["fraud_rate"] == pytest.approx(expected["fraud_rate"], abs=1e-6)
        # Lost labels still arrive with the labels; returns and delivery times need the scans.
        assert entry["lost"] == expected["lost"] and entry["delivery_days_p50"] is None


def stalled_alerts(parcels: Sequence[SimulatedParcel], kind: AlertType = AlertType.STALLED) -> list[Alert]:
    """An alert of `kind` on each parcel, raised at its second scan."""
    return [alert_on(p, kind) for p in parcels]


def write_alerts(sim: Sim, path: Path, picked: dict[int, AlertType]) -> Path:
    """Alerts as `export-history` writes them (the Alert contract, one per line) on some parcels."""
    lines = [alert_on(sim.parcels[n], kind).model_dump_json() + "\n" for n, kind in picked.items()]
    path.write_text("".join(lines))
    return path


def alert_on(p: SimulatedParcel, kind: AlertType) -> Alert:
    """An alert as the sweeper raises one (the Alert contract), at the parcel's second scan."""
    at = from_epoch(p.scans[1].occurred_at)
    return Alert(
        alert_id=f"{p.parcel_id}#{kind}",
        parcel_id=p.parcel_id,
        order_id=p.order_id,
        type=kind,
        severity=Severity.MEDIUM,
        risk=None,
        reasons=[],
        lane=f"{p.carrier}|CN|{p.destination_region}",
        carrier=p.carrier,
        destination_region=p.destination_region,
        status=p.scans[1].status,
        message="silent past the lane's deadline",
        last_scan_at=at,
        expected_by=None,
        raised_at=at,
    )


def test_the_sweepers_alerts_judge_the_true_alert_shares_when_there_are_any(sim: Sim, tmp_path: Path) -> None:
    # Loss alerts on half the lost parcels and on every ninth delivered one; the carrier's own
    # exceptions on others are not a loss warning and do not count.
    picked: dict[int, AlertType] = {}
    for n, p in enumerate(sim.parcels):
        if p.outcome == LOST and n % 2 == 0:
            picked[n] = AlertType.LIKELY_LOST
        elif p.outcome != LOST and n % 9 == 0:
            picked[n] = AlertType.STALLED
        elif n % 7 == 0:
            picked[n] = AlertType.CARRIER_EXCEPTION
    alerts = write_alerts(sim, tmp_path / "alerts.jsonl", picked)
    files = sim.files
    argv = ["lanes", "report", "--orders", str(files["orders"]), "--labels", str(files["labels"])]
    argv += ["--shipments", str(files["shipments"]), "--alerts", str(alerts), "--out", str(tmp_path)]
    assert main(argv) == 0
    written = read_json(tmp_path / "lanes.json")
    assert written["alerts_from"] == "sweeper" and "sweeper" in written["alerts_rule"]
    alerted = {n for n, kind in picked.items() if kind in (AlertType.STALLED, AlertType.LIKELY_LOST)}
    by_area = groups(sim, lambda p: (area_of(p.destination_region),))
    for entry in written["by_area"]:
        members = by_area[(entry["area"],)]
        assert entry["alerts"] == len(alerted.intersection(members))
        assert entry["true_alerts"] == sum(
            sim.parcels[n].outcome == LOST for n in alerted.intersection(members)
        )
    assert written["overall"]["true_alert_share"] == pytest.approx(
        sum(sim.parcels[n].outcome == LOST for n in alerted) / len(alerted), abs=1e-6
    )
    with (tmp_path / "lanes.csv").open(newline="") as f:
        assert {row["alerts_from"] for row in csv.DictReader(f)} == {"sweeper"}
    assert "sweeper" in (tmp_path / "lanes.html").read_text()


def test_without_alerts_the_report_says_it_used_the_silence_rule(report: Path) -> None:
    written = read_json(report / "lanes.json")
    assert written["alerts_from"] == "silence_rule" and "silent past" in written["alerts_rule"]
    assert read_json(next(report.glob("seller-*.json")))["alerts_from"] == "silence_rule"


def test_a_bad_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "orders.jsonl").write_text("not json\n")
    assert main(["lanes", "report", "--orders", str(tmp_path / "orders.jsonl"), "--out", str(tmp_path)]) == 2
    assert "line 1" in capsys.readouterr().err


def test_marked_statuses_are_the_simulators() -> None:
    assert {ParcelStatus.DELIVERED, ParcelStatus.RETURNED, ParcelStatus.LOST} <= TERMINAL


def test_the_demo_writes_the_lane_report_beside_its_summary(tmp_path: Path) -> None:
    history = simulate(SimulationConfig(days=2, seed=3, orders_per_day=60))
    files = write_simulated_lane_report(history, 3, tmp_path)
    assert {Path(p).name for p in files.values()} == {"lanes.json", "lanes.csv", "lanes.html"}
    written = read_json(tmp_path / "lanes.json")
    parcels = simulate_shipments(history, 3)
    assert written["overall"]["parcels"] == len(parcels)
    assert written["alerts_from"] == "silence_rule"
    # With the alerts the demo's sweeper raised (as its topic announced them): judged by those.
    alerted = {p.parcel_id: p for p in parcels[:3] + [p for p in parcels if p.outcome == LOST]}
    raised = [json.loads(alert.model_dump_json()) for alert in stalled_alerts(list(alerted.values()))]
    write_simulated_lane_report(history, 3, tmp_path / "swept", raised)
    swept = read_json(tmp_path / "swept" / "lanes.json")
    assert swept["alerts_from"] == "sweeper"
    true = sum(p.outcome == LOST for p in alerted.values())
    assert (swept["overall"]["alerts"], swept["overall"]["true_alerts"]) == (len(alerted), true)
