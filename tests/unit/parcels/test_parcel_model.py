"""The parcel-loss model: features, training on simulated parcels, the artifact, the alert evaluation."""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from dozor.domain.clock import DAY
from dozor.domain.errors import ModelMismatchError
from dozor.domain.parcels.lanes import LaneDeadlines
from dozor.domain.parcels.model import (
    PACKAGED_PARCEL_MODEL_DIR,
    PARCEL_FEATURE_NAMES,
    ParcelLossModel,
    parcel_features,
)
from dozor.domain.parcels.shipments import ParcelStatus, ScanRecord, build_parcel
from dozor_training.evaluation import LOGISTIC, MODEL
from dozor_training.fraud.simulator import SimulationConfig, simulate
from dozor_training.parcels.evaluation import SellerLossRates, alert_metrics, known_states, stalled_times
from dozor_training.parcels.simulator import LOST, SimulatedParcel, simulate_shipments
from dozor_training.parcels.train import ARTIFACT_FILES, ParcelTrainingConfig, install, train_parcel_model

FEATURE = {name: i for i, name in enumerate(PARCEL_FEATURE_NAMES)}


@pytest.fixture(scope="module")
def parcels() -> list[SimulatedParcel]:
    return simulate_shipments(simulate(SimulationConfig(days=24, orders_per_day=260, seed=5)), seed=5)


@pytest.fixture(scope="module")
def trained(parcels: list[SimulatedParcel], tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    config = ParcelTrainingConfig(overdue_per_parcel=6, fresh_per_parcel=1)
    return train_parcel_model(parcels, tmp_path_factory.mktemp("artifacts"), config)


def test_features_follow_the_parcel_and_the_clock(parcels: list[SimulatedParcel]) -> None:
    p = next(p for p in parcels if p.outcome == LOST and len(p.scans) > 3)
    parcel = p.parcel_at(p.scans[2].occurred_at + 7 * DAY)
    assert parcel is not None
    deadlines = LaneDeadlines()
    soon = parcel_features(parcel, parcel.last_scan_at + timedelta(hours=1), deadlines)
    later = parcel_features(
        parcel, parcel.last_scan_at + timedelta(days=10), deadlines, seller_loss_rate_30d=0.2
    )
    assert soon.dtype == np.float32 and soon.shape == (len(PARCEL_FEATURE_NAMES),)
    assert later[FEATURE["hours_since_last_scan"]] == pytest.approx(240, rel=1e-3)
    assert later[FEATURE["silence_over_lane_due"]] == pytest.approx(240 / 96, rel=1e-3)  # default due: 4 days
    assert math.isnan(soon[FEATURE["seller_loss_rate_30d"]]) and later[FEATURE["seller_loss_rate_30d"]] == 0.2
    assert math.isnan(soon[FEATURE["order_fraud_score"]])
    assert soon[FEATURE["declared_value_rub"]] == pytest.approx(p.declared_value * 90, rel=1e-3)


def test_the_order_fraud_score_kept_on_the_parcel_is_a_feature() -> None:
    scan = ScanRecord("e1", ParcelStatus.IN_TRANSIT, datetime(2026, 10, 1, tzinfo=UTC), "cdek")
    parcel = replace(build_parcel("p", "o", [scan]), order_fraud_score=0.7)
    row = parcel_features(parcel, parcel.last_scan_at, LaneDeadlines())
    assert row[FEATURE["order_fraud_score"]] == pytest.approx(0.7)
    assert math.isnan(row[FEATURE["destination_remoteness"]])


def test_training_writes_a_loadable_artifact_with_its_report(trained) -> None:  # type: ignore[no-untyped-def]
    for name in ARTIFACT_FILES:
        assert (trained.directory / name).is_file(), name
    model = ParcelLossModel.load(trained.directory)
    assert model.version == trained.metadata["version"].strip()
    assert 0 < model.likely_lost_threshold <= 1
    assert model.deadlines == LaneDeadlines.load(trained.directory)
    report = (trained.directory / "report.md").read_text()
    assert "Baseline: no scan for 30 days" in report and "LIKELY_LOST" in report
    metrics = json.loads((trained.directory / "metrics.json").read_text())
    # The loss model ranks the test snapshots better than the logistic baseline fitted in the same run
    scorers = metrics["scorers"]
    assert scorers[MODEL]["average_precision"] > scorers[LOGISTIC]["average_precision"]
    assert metrics["test_rows"]["roc_auc"] == scorers[MODEL]["roc_auc"]


def test_risk_grows_with_silence(trained, parcels: list[SimulatedParcel]) -> None:  # type: ignore[no-untyped-def]
    model = ParcelLossModel.load(trained.directory)
    grew = 0
    in_transit = [p for p in parcels[-400:] if len(p.scans) > 4]
    for p in in_transit[:50]:
        parcel = build_parcel(p.parcel_id, p.order_id, p.records()[:4], model.deadlines)
        fresh = model.risk_of(parcel, parcel.last_scan_at + timedelta(hours=2))
        silent = model.risk_of(parcel, parcel.last_scan_at + timedelta(days=25))
        assert 0 <= fresh <= 1 and 0 <= silent <= 1
        grew += silent > fresh
    assert grew >= 45


def test_the_model_driven_alerts_beat_the_thirty_day_rule_on_recall_and_lead_time(trained) -> None:  # type: ignore[no-untyped-def]
    alerts = trained.evaluation
    dozor, baseline = alerts["dozor_stalled_or_likely_lost"], alerts["baseline_no_scan_30_days"]
    assert dozor["lost"] == baseline["lost"] > 0
    assert dozor["recall"] > baseline["recall"]
    assert alerts["likely_lost_model"]["precision"] > dozor["lost"] / dozor["parcels"]  # better than chance
    budget = trained.metadata["config"]["false_alerts_per_1000_delivered"]
    calibration = trained.metadata["metrics"]["calibration_likely_lost_alerts"]
    assert calibration["false_alerts_per_1000_delivered"] <= budget


def test_a_model_trained_on_other_features_is_refused(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    install(trained.directory, tmp_path)
    metadata = json.loads((tmp_path / "metadata.json").read_text())
    metadata["feature_names"] = metadata["feature_names"][:-1]
    (tmp_path / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(ModelMismatchError):
        ParcelLossModel.load(tmp_path)


def test_the_packaged_model_matches_the_code() -> None:
    model = ParcelLossModel.load(PACKAGED_PARCEL_MODEL_DIR)
    assert model.metadata["feature_names"] == list(PARCEL_FEATURE_NAMES)
    assert model.deadlines.norms  # it carries learned lane deadlines, not just the defaults


def test_the_baseline_fires_thirty_days_after_the_last_known_scan(parcels: list[SimulatedParcel]) -> None:
    lost = [p for p in parcels if p.outcome == LOST][:30]
    fired = stalled_times(lost, None, silence=30 * DAY)
    for p, t in zip(lost, fired, strict=True):
        if t is None:
            continue
        state = next(s for s in known_states(p) if s.start <= t < s.end)
        assert t - state.last_scan_at > 30 * DAY
        assert t - state.last_scan_at <= 30 * DAY + 6 * 3600 or t == pytest.approx(state.start, abs=6 * 3600)


def test_alert_metrics_count_only_alerts_before_the_outcome(parcels: list[SimulatedParcel]) -> None:
    lost = next(p for p in parcels if p.outcome == LOST)
    delivered = next(p for p in parcels if p.outcome == "delivered")
    assert lost.loss_certain_at is not None
    metrics = alert_metrics([lost, delivered], [lost.loss_certain_at - 2 * DAY, delivered.finished_at + 1])
    assert metrics["recall"] == 1.0 and metrics["precision"] == 1.0
    assert metrics["median_lead_days"] == pytest.approx(2.0)
    assert metrics["false_alerts_per_1000_delivered"] == 0.0
    late = alert_metrics([lost], [lost.loss_certain_at + 1])
    assert late["recall"] == 0.0


def test_seller_loss_rates_only_count_outcomes_already_known(parcels: list[SimulatedParcel]) -> None:
    rates = SellerLossRates(parcels)
    seller = Counter(p.seller_id for p in parcels).most_common(1)[0][0]
    first_finish = min(p.finished_at for p in parcels if p.seller_id == seller)
    assert rates.at(seller, first_finish) is None  # nothing known yet
    assert rates.at("nobody", first_finish + 100 * DAY) is None
