"""A history with few fields, as public benchmarks and thin exports come: ids, amount and time only.

`dozor train` must still train a model that ranks better than the baselines of the same run, say
which feature families the history fed, and list the features that came out constant (so none is
silently so). Some orders are fully discounted (amount 0), as in real histories.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from dozor_training.cli import main
from dozor_training.fraud.coverage import FAMILIES

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

FEW_FIELDS = ["order_id", "created_at", "buyer.id", "seller.id", "amount", "currency"]
FED = {"amount and time", "buyer history", "seller history", "fraud labels"}
NOT_FED = {"items", "buyer account", "channel", "email address", "card history", "device history"}


@pytest.fixture(scope="module")
def few_fields(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], int]:
    history = tmp_path_factory.mktemp("history")
    simulate = ["simulate", "--days", "42", "--orders-per-day", "350", "--seed", "4", "--without-shipments"]
    assert main([*simulate, "--out", str(history)]) == 0
    orders = history / "few.csv"
    zero = 0
    with orders.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(FEW_FIELDS)
        for i, line in enumerate((history / "orders.jsonl").read_text().splitlines()):
            o = json.loads(line)
            amount = 0 if i % 60 == 7 else o["amount"]  # fully discounted now and then
            zero += amount == 0
            writer.writerow(
                [o["order_id"], o["created_at"], o["buyer"]["id"], o["seller"]["id"], amount, "RUB"]
            )
    out = history / "model"
    labels = history / "labels.jsonl"
    assert main(["train", "--orders", str(orders), "--labels", str(labels), "--out", str(out)]) == 0
    return out, json.loads((out / "metadata.json").read_text()), zero


def test_the_model_beats_the_baselines_of_the_same_run(few_fields: tuple[Path, dict[str, Any], int]) -> None:
    _, metadata, zero = few_fields
    test = metadata["metrics"]["test"]
    assert zero > 0 and metadata["data"]["orders"] > 14000  # every row trained, zero amounts too
    for baseline in ("rules_only", "logistic"):
        for metric in ("average_precision", "roc_auc"):
            assert test["model"][metric] > test[baseline][metric], (baseline, metric, test)


def test_the_report_says_which_feature_families_were_available(
    few_fields: tuple[Path, dict[str, Any], int],
) -> None:
    out, metadata, _ = few_fields
    coverage = metadata["data"]["coverage"]
    assert set(coverage["available_families"]) >= FED
    assert set(coverage["unavailable_families"]) >= NOT_FED
    report = (out / "report.md").read_text()
    assert "Available feature families: amount and time, buyer history, seller history" in report
    assert "| card history | 9 | 0 | all |" in report


def test_no_feature_is_silently_constant(few_fields: tuple[Path, dict[str, Any], int]) -> None:
    out, metadata, _ = few_fields
    constant = set(metadata["data"]["coverage"]["constant_features"])
    # Never sent: NaN throughout; counted from absent links: 0 throughout. Both are listed.
    assert set(FAMILIES["card history"]) <= constant
    assert "buyer_distinct_cards_2mo" in constant
    assert {"amount_rub", "buyer_orders_24h", "seller_orders_7d"}.isdisjoint(constant)
    families = metadata["data"]["coverage"]["families"]
    assert sum(f["features"] - f["informative"] for f in families.values()) == len(constant)
    assert "`buyer_distinct_cards_2mo`" in (out / "report.md").read_text()
