"""`dozor simulate` and `dozor score-batch`, run as the command line runs them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from sklearn.metrics import average_precision_score

from dozor.domain.contracts import DecisionKind
from dozor.domain.fraud.decisions import model_decision
from dozor.domain.fraud.model import FraudModel
from dozor.domain.fraud.rules import RULES, RuleHit, rules_only_score
from dozor_training.cli import main
from dozor_training.history_writer import ORDER_COLUMNS, write_orders

SIMULATE = ["simulate", "--days", "2", "--orders-per-day", "60", "--seed", "11"]
ACTION = {rule.id: rule.action for rule in RULES}
SEVERITY = {DecisionKind.APPROVE: 0, DecisionKind.REVIEW: 1, DecisionKind.DECLINE: 2}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, json.loads(captured.out) if status == 0 else {}, captured.err


def read_rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
        return rows
    if path.suffix == ".csv":
        import csv  # noqa: PLC0415

        with path.open(encoding="utf-8", newline="") as f:
            return [
                {**row, "score": float(row["score"]), "rules": json.loads(row["rules"])}
                for row in csv.DictReader(f)
            ]
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("history")
    assert main([*SIMULATE, "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_simulate_writes_the_same_bytes_for_the_same_seed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fmt: str
) -> None:
    status, summary, _ = run(capsys, *SIMULATE, "--format", fmt, "--out", str(tmp_path / "a"))
    run(capsys, *SIMULATE, "--format", fmt, "--out", str(tmp_path / "b"))
    run(capsys, *SIMULATE[:-1], "12", "--format", fmt, "--out", str(tmp_path / "c"))

    for name in ("orders", "labels"):
        first = (tmp_path / "a" / f"{name}.{fmt}").read_bytes()
        assert first == (tmp_path / "b" / f"{name}.{fmt}").read_bytes()
        assert first != (tmp_path / "c" / f"{name}.{fmt}").read_bytes()
    assert status == 0
    assert summary["files"]["orders"] == str(tmp_path / "a" / f"orders.{fmt}")
    assert summary["orders"] > 100 and 0 < summary["labels"] < summary["orders"]
    assert summary["first_order_at"].startswith("2026-10-01")
    assert summary["last_order_at"].startswith("2026-10-02")


def test_simulate_writes_the_expected_columns(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run(capsys, *SIMULATE, "--format", "csv", "--out", str(tmp_path))

    orders_header = (tmp_path / "orders.csv").read_text(encoding="utf-8").splitlines()[0]
    labels_lines = (tmp_path / "labels.csv").read_text(encoding="utf-8").splitlines()

    assert orders_header.split(",") == list(ORDER_COLUMNS)
    assert labels_lines[0] == "order_id,label,reported_at,pattern"
    # Verdicts, and parcels lost (their scans are in shipments.jsonl, one event a line)
    assert {line.split(",")[1] for line in labels_lines[1:]} == {"fraud", "legit", "lost"}
    scans = [json.loads(line) for line in (tmp_path / "shipments.jsonl").read_text().splitlines()]
    lost = {s["order_id"] for s in scans if s["status"] == "LOST"}
    assert lost <= {line.split(",")[0] for line in labels_lines[1:] if line.split(",")[1] == "lost"}


@pytest.mark.parametrize("out_name", ["decisions.csv", "decisions.jsonl", "decisions.parquet"])
def test_score_batch_decides_every_order_as_serving_would(
    capsys: pytest.CaptureFixture[str], simulated: Path, tmp_path: Path, out_name: str
) -> None:
    out = tmp_path / out_name
    status, summary, _ = run(
        capsys, "score-batch", "--orders", str(simulated / "orders.jsonl"), "--out", str(out)
    )

    rows = read_rows(out)
    model = FraudModel.load()
    order_ids = [
        json.loads(line)["order_id"] for line in (simulated / "orders.jsonl").read_text().splitlines()
    ]
    assert status == 0 and summary["orders"] == len(rows) == len(order_ids)
    assert [r["order_id"] for r in rows] == order_ids  # the simulator writes in time order
    assert all(0.0 <= r["score"] <= 1.0 for r in rows)
    assert {r["model_version"] for r in rows} == {model.version}
    for r in rows:
        by_score = model_decision(r["score"], model.thresholds)
        decision = DecisionKind(r["decision"])
        allowed = any(rule.startswith("LIST_ALLOW") for rule in r["rules"])
        # Rules can only raise what the score says (allow lists aside); with no rule hit, the score decides.
        assert allowed or SEVERITY[decision] >= SEVERITY[by_score]
        if not r["rules"]:
            assert decision == by_score
    assert sum(summary["decisions"].values()) == len(rows)


def test_score_batch_is_point_in_time(
    capsys: pytest.CaptureFixture[str], simulated: Path, tmp_path: Path
) -> None:
    lines = (simulated / "orders.jsonl").read_text(encoding="utf-8").splitlines()
    first_part = tmp_path / "first.jsonl"
    first_part.write_text("\n".join(lines[:70]) + "\n", encoding="utf-8")

    run(capsys, "score-batch", "--orders", str(first_part), "--out", str(tmp_path / "first.jsonl.out.jsonl"))
    run(
        capsys,
        "score-batch",
        "--orders",
        str(simulated / "orders.jsonl"),
        "--out",
        str(tmp_path / "all.jsonl"),
    )

    early = read_rows(tmp_path / "first.jsonl.out.jsonl")
    full = read_rows(tmp_path / "all.jsonl")
    assert len(early) == 70 < len(full)
    assert early == full[:70]


def test_score_batch_backtests_against_labels_and_thresholds_can_be_overridden(
    capsys: pytest.CaptureFixture[str], simulated: Path, tmp_path: Path
) -> None:
    orders, labels = str(simulated / "orders.jsonl"), str(simulated / "labels.jsonl")

    _, as_trained, _ = run(
        capsys, "score-batch", "--orders", orders, "--labels", labels, "--out", str(tmp_path / "a.csv")
    )
    _, review_all, _ = run(
        capsys, "score-batch", "--orders", orders, "--labels", labels, "--out", str(tmp_path / "b.csv"),
        "--review-threshold", "0", "--decline-threshold", "1",
    )  # fmt: skip

    backtest = as_trained["backtest"]
    assert backtest["orders"] == as_trained["orders"]
    assert 0 < backtest["fraud_labelled"] < backtest["labelled"] <= backtest["orders"]
    assert 0.0 <= backtest["recall"] <= 1.0 and 0.0 <= backtest["precision"] <= 1.0
    # The model ranks the labelled orders better than the rules alone do on the same orders
    known = [r for r in read_rows(tmp_path / "a.csv") if r["label"]]
    rules_only = {r["order_id"]: rules_only_score([RuleHit(i, ACTION[i]) for i in r["rules"]]) for r in known}
    y = [r["label"] == "fraud" for r in known]
    rules_ap = average_precision_score(y, [rules_only[r["order_id"]] for r in known])
    assert backtest["average_precision"] > rules_ap, (backtest["average_precision"], rules_ap)
    assert review_all["thresholds"] == {"review": 0.0, "decline": 1.0}
    assert review_all["backtest"]["flagged_share"] == 1.0 and review_all["backtest"]["recall"] == 1.0
    assert review_all["backtest"]["roc_auc"] == backtest["roc_auc"]  # thresholds do not move scores
    labelled = {r["order_id"]: r["label"] for r in read_rows(tmp_path / "a.csv") if r["label"]}
    assert len(labelled) == backtest["labelled"]


def test_score_batch_refuses_a_bad_file_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    good = {
        "created_at": "2026-10-01T10:00:00Z",
        "buyer": {"id": "b"},
        "seller": {"id": "s"},
        "currency": "RUB",
    }
    path = write_orders(
        [{**good, "order_id": "o1", "amount": 10.0}, {**good, "order_id": "o2", "amount": "lots"}],
        tmp_path / "orders.jsonl",
    )
    out = tmp_path / "decisions.csv"

    status, _, err = run(capsys, "score-batch", "--orders", str(path), "--out", str(out))

    assert status == 2
    assert "line 2: amount:" in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("out_name", "extra"),
    [
        ("d.csv", ["--review-threshold", "0.9", "--decline-threshold", "0.5"]),
        ("d.csv", ["--labels", "no-such-labels.csv"]),
        ("d.csv", ["--model", "no-such-model-dir"]),
        ("d.xlsx", []),
    ],
)
def test_score_batch_refuses_bad_arguments(
    capsys: pytest.CaptureFixture[str], simulated: Path, tmp_path: Path, out_name: str, extra: list[str]
) -> None:
    orders = str(simulated / "orders.jsonl")

    status = main(["score-batch", "--orders", orders, "--out", str(tmp_path / out_name), *extra])

    assert status == 2
    assert capsys.readouterr().err.startswith("dozor score-batch: ")
    assert not list(tmp_path.iterdir())
