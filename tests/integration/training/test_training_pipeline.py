"""simulate → train → score-batch, as an engineer runs them, on a small history.

The trained model must beat the rules-only and logistic baselines on the held-out weeks, write its
evaluation report, and serve: `score-batch` with it decides as its thresholds say. The orders file
it trains on holds a few poison rows, as real exports do: under `--max-invalid` they are
quarantined and reported; without it, bad input stops `train` with exit status 2 and writes nothing.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from dozor.domain.fraud.model import FraudModel
from dozor_training.cli import main

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, json.loads(captured.out) if status == 0 else {}, captured.err


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("history")
    # 42 days: 8 days of test, a label-delay gap, and enough before it to learn the patterns
    assert (
        main(["simulate", "--days", "42", "--orders-per-day", "350", "--seed", "4", "--out", str(out)]) == 0
    )
    return out


# Poison rows inserted after these lines of the simulated orders file: (line after, change, field)
POISON = [
    (10, {"created_at": "9999-12-31T23:59:59Z"}, "created_at"),
    (200, {"amount": -120.0}, "amount"),
    (3000, {"buyer": {"id": ""}}, "buyer.id"),
]


@pytest.fixture(scope="module")
def poisoned(history: Path) -> tuple[Path, dict[int, str]]:
    """The simulated orders with POISON rows among them; {line: field} of each poison row."""
    lines = (history / "orders.jsonl").read_text().splitlines()
    expected: dict[int, str] = {}
    for shift, (after, change, field) in enumerate(POISON):
        bad = json.loads(lines[after + shift - 1]) | change | {"order_id": f"poison-{after}"}
        lines.insert(after + shift, json.dumps(bad))
        expected[after + shift + 1] = field
    path = history / "orders-with-poison.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path, expected


@pytest.fixture(scope="module")
def trained(
    history: Path, poisoned: tuple[Path, dict[int, str]], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("model") / "fraud"
    status = main(
        [
            "train",
            "--orders",
            str(poisoned[0]),
            "--labels",
            str(history / "labels.jsonl"),
            "--out",
            str(out),
            "--review-budget",
            "8",
            "--max-invalid",
            "0.5%",
        ]
    )
    assert status == 0
    return out, json.loads((out / "metadata.json").read_text())


def test_the_trained_model_beats_rules_only_on_the_held_out_weeks(
    trained: tuple[Path, dict[str, Any]],
) -> None:
    out, metadata = trained
    test = metadata["metrics"]["test"]
    # Judged against the rules scored on the same held-out weeks in the same run, not a fixed bar
    for metric in ("average_precision", "roc_auc"):
        assert test["model"][metric] > test["rules_only"][metric], (metric, test)
    # Trained before the test weeks, with a gap for labels that had not arrived yet
    periods = metadata["data"]["periods"]
    assert periods["calibration"][1] <= periods["test"][0]
    assert periods["gap_days"] > 0
    # Thresholds from the review budget, stored as serving loads them
    assert set(metadata["thresholds"]) == {"review", "decline"}
    assert metadata["threshold_selection"]["method"] == "budget"
    assert FraudModel.load(out).version == metadata["version"]


def test_the_trained_model_beats_the_logistic_baseline_of_the_same_run(
    trained: tuple[Path, dict[str, Any]],
) -> None:
    # It lost (AP 0.33 vs 0.62) while isotonic calibration flattened its ranking into a few steps
    # (6 fraud orders in the calibration split); the calibrated score now keeps the booster's order.
    test = trained[1]["metrics"]["test"]
    for metric in ("average_precision", "roc_auc"):
        assert test["model"][metric] >= test["logistic"][metric], (metric, test)


def test_poison_rows_within_the_bound_are_quarantined_and_reported(
    trained: tuple[Path, dict[str, Any]], poisoned: tuple[Path, dict[int, str]]
) -> None:
    out, metadata = trained
    _, expected = poisoned
    rejected = metadata["data"]["rejected"]
    assert rejected["rejected_rows"] == len(POISON)
    assert rejected["file"] == str(out / "quarantine.csv")
    with (out / "quarantine.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {(int(r["line"]), r["field"]) for r in rows} == set(expected.items())
    assert all(r["reason"] for r in rows)
    assert metadata["data"]["orders"] == rejected["rows_read"] - len(POISON)
    report = (out / "report.md").read_text()
    assert f"{len(POISON)} of {rejected['rows_read']:,} rows" in report
    assert "quarantine.csv" in report


def test_the_evaluation_report_and_model_card_are_written(trained: tuple[Path, dict[str, Any]]) -> None:
    out, metadata = trained
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["scorers"]) == {"model", "rules_only", "logistic"}
    assert metrics["scorers"]["model"]["recall_at_fpr"]["fpr"] == 0.01
    for plot in (
        "pr_curves.png",
        "roc_curves.png",
        "calibration.png",
        "score_distribution.png",
        "feature_contributions.png",
        "daily_precision_at_k.png",
    ):
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    card = (out / "MODEL_CARD.md").read_text()
    assert metadata["version"] in card and "Limitations" in card
    assert "Rules only" in (out / "report.md").read_text()


def test_score_batch_with_the_trained_model_decides_by_its_thresholds(
    history: Path, trained: tuple[Path, dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, metadata = trained
    decisions = tmp_path / "decisions.jsonl"
    status, _, err = run(
        capsys,
        "score-batch",
        "--model",
        str(out),
        "--orders",
        str(history / "orders.jsonl"),
        "--labels",
        str(history / "labels.jsonl"),
        "--out",
        str(decisions),
    )
    assert status == 0, err
    rows = [json.loads(line) for line in decisions.read_text().splitlines()]
    assert {r["model_version"] for r in rows} == {metadata["version"]}
    declined = [r for r in rows if r["decision"] == "DECLINE" and not r["rules"]]
    assert all(r["score"] >= metadata["thresholds"]["decline"] for r in declined)


def test_a_bad_orders_file_stops_training_with_the_line(
    history: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = (history / "orders.jsonl").read_text().splitlines()[:400]
    broken = json.loads(lines[6])
    broken["amount"] = -3
    lines[6] = json.dumps(broken)
    orders = tmp_path / "orders.jsonl"
    orders.write_text("\n".join(lines) + "\n")
    out = tmp_path / "model"
    status, _, err = run(
        capsys, "train", "--orders", str(orders), "--labels", str(history / "labels.jsonl"), "--out", str(out)
    )
    assert status == 2
    assert "line 7" in err and "amount" in err
    assert not out.exists()


def test_dates_that_do_not_line_up_are_refused(
    history: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(
        capsys,
        "train",
        "--orders",
        str(history / "orders.jsonl"),
        "--labels",
        str(history / "labels.jsonl"),
        "--out",
        str(tmp_path / "m"),
        "--test-start",
        "2026-10-20",
        "--train-end",
        "2026-10-25",
    )
    assert status == 2
    assert "do not line up" in err
