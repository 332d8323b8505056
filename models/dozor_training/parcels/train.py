"""Train the parcel-loss model: parcel histories → sweep snapshots → XGBoost → calibration → threshold.

Like the fraud trainer, parcels are split by time (when they shipped), never at random: lane
deadlines and the booster learn from the oldest parcels, calibration and the LIKELY_LOST threshold
come from the next ones, and the newest are held out for the report. A training row is a parcel as
the sweeper saw it at one sweep (only scans that had *arrived* by then), labelled with whether the
parcel ended lost; each parcel contributes several rows at different ages, mostly from the sweeps
where it was overdue, because those are the parcels the sweeper scores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb
from sklearn.metrics import average_precision_score, roc_auc_score

from dozor.domain.parcels.lanes import LANES_FILE, LaneDeadlines, learn_deadlines
from dozor.domain.parcels.model import PACKAGED_PARCEL_MODEL_DIR, PARCEL_FEATURE_NAMES, ParcelLossModel
from dozor.domain.parcels.model import parcel_features as features_of
from dozor.domain.parcels.shipments import TERMINAL
from dozor_training.fitting import ARTIFACTS_DIR, calibration_knots, fit_booster
from dozor_training.parcels.evaluation import (
    SWEEP_HOURS,
    CarrierFeeds,
    SellerLossRates,
    Sweep,
    alert_metrics,
    as_utc,
    at,
    evaluate_alerts,
    first_risk_alerts,
    known_states,
    overdue_sweeps,
    parcel_known,
)
from dozor_training.parcels.simulator import LOST, SimulatedParcel

PARAMS: dict[str, Any] = {
    "objective": "binary:logistic",
    "eval_metric": "aucpr",
    "tree_method": "hist",
    "max_depth": 5,
    "eta": 0.08,
    "min_child_weight": 5,
    "subsample": 0.9,
    "colsample_bytree": 0.9,
    "lambda": 1.0,
    "nthread": 2,
    "seed": 7,
}
ARTIFACT_FILES = ("model.ubj", "metadata.json", LANES_FILE, "metrics.json", "report.md", "MODEL_CARD.md")


@dataclass(frozen=True)
class ParcelTrainingConfig:
    calibration_share: float = 0.15
    test_share: float = 0.2
    sweep_hours: float = SWEEP_HOURS
    overdue_per_parcel: int = 8  # sweep snapshots kept per parcel while it is overdue
    fresh_per_parcel: int = 2  # snapshots at random moments of its journey, overdue or not
    false_alerts_per_1000_delivered: float = 10.0  # LIKELY_LOST's budget, set on calibration parcels
    # Share of training rows whose seller loss rate is blanked, so the model also knows what to do
    # when serving cannot supply it (a new seller, or a deployment without label aggregates).
    seller_rate_dropout: float = 0.3
    min_lane_samples: int = 30
    seed: int = 7


@dataclass(frozen=True)
class TrainedParcelModel:
    directory: Path
    metadata: dict[str, Any]
    evaluation: dict[str, Any]


@dataclass
class Rows:
    x: np.ndarray
    y: np.ndarray
    overdue: np.ndarray  # bool: taken at a sweep where the parcel was overdue


def _fresh_rows(
    parcels: Sequence[SimulatedParcel],
    deadlines: LaneDeadlines,
    sellers: SellerLossRates,
    fraud_scores: Mapping[str, float] | None,
    per_parcel: int,
    rng: np.random.Generator,
) -> tuple[list[np.ndarray], list[int]]:
    rows: list[np.ndarray] = []
    index: list[int] = []
    for n, p in enumerate(parcels):
        states = [s for s in known_states(p) if s.status not in TERMINAL]
        if not states:
            continue
        start, end = states[0].start, states[-1].end
        for t in rng.uniform(start, end, per_parcel):
            state = next((s for s in states if s.start <= t < s.end), None)
            if state is None:
                continue
            parcel = parcel_known(p, state, deadlines)
            fraud = None if fraud_scores is None else fraud_scores.get(p.order_id)
            rows.append(
                features_of(
                    parcel,
                    at(float(t)),
                    deadlines,
                    seller_loss_rate_30d=sellers.at(p.seller_id, float(t)),
                    order_fraud_score=fraud,
                )
            )
            index.append(n)
    return rows, index


def training_rows(
    parcels: Sequence[SimulatedParcel],
    deadlines: LaneDeadlines,
    sellers: SellerLossRates,
    fraud_scores: Mapping[str, float] | None,
    config: ParcelTrainingConfig,
    blank_seller_rates: bool = True,
) -> Rows:
    """Snapshot rows of these parcels: overdue sweeps (capped per parcel) plus a few random moments."""
    sweep = overdue_sweeps(
        parcels,
        deadlines,
        sellers,
        fraud_scores,
        config.sweep_hours * 3600,
        max_per_parcel=config.overdue_per_parcel,
        seed=config.seed,
    )
    fresh, fresh_index = _fresh_rows(
        parcels, deadlines, sellers, fraud_scores, config.fresh_per_parcel, np.random.default_rng(config.seed)
    )
    lost = np.array([p.outcome == LOST for p in parcels], dtype=np.float32)
    x = np.vstack([sweep.rows, *fresh]) if fresh else sweep.rows
    index = np.asarray(sweep.parcel_index + fresh_index, dtype=np.int64)
    overdue = np.zeros(len(index), dtype=bool)
    overdue[: sweep.size] = True
    x = x.astype(np.float32)
    dropout = config.seller_rate_dropout if blank_seller_rates else 0.0
    blank = np.random.default_rng(config.seed + 1).random(len(x)) < dropout
    x[blank, PARCEL_FEATURE_NAMES.index("seller_loss_rate_30d")] = np.nan
    return Rows(x, lost[index], overdue)


def _threshold(
    parcels: Sequence[SimulatedParcel], sweep: Sweep, risks: np.ndarray, budget: float
) -> tuple[float, dict[str, Any]]:
    """The lowest risk threshold whose LIKELY_LOST alerts stay within the false-alert budget."""
    candidates: list[float] = []
    if risks.size:
        candidates = np.unique(np.round(np.quantile(risks, np.linspace(0.5, 0.999, 120)), 4)).tolist()
    best: tuple[float, dict[str, Any]] = (1.0, alert_metrics(parcels, [None] * len(parcels)))
    for threshold in sorted(candidates, reverse=True):
        metrics = alert_metrics(parcels, first_risk_alerts(sweep, risks, float(threshold), len(parcels)))
        if metrics["false_alerts_per_1000_delivered"] > budget:
            break
        best = (float(threshold), metrics)
    return best


def fingerprint(parcels: Sequence[SimulatedParcel]) -> str:
    """A digest of which parcels were trained on and how they ended."""
    digest = hashlib.sha256()
    for p in sorted(parcels, key=lambda p: p.parcel_id):
        digest.update(f"{p.parcel_id}:{p.outcome}\n".encode())
    return digest.hexdigest()


def _split(parcels: Sequence[SimulatedParcel], config: ParcelTrainingConfig) -> tuple[list[Any], ...]:
    ordered = sorted(parcels, key=lambda p: p.shipped_at)
    start, end = ordered[0].shipped_at, ordered[-1].shipped_at
    cal_start = start + (end - start) * (1 - config.test_share - config.calibration_share)
    test_start = start + (end - start) * (1 - config.test_share)
    train = [p for p in ordered if p.shipped_at < cal_start]
    cal = [p for p in ordered if cal_start <= p.shipped_at < test_start]
    test = [p for p in ordered if p.shipped_at >= test_start]
    return train, cal, test, [start, cal_start, test_start, end]


def _scores(y: np.ndarray, risks: np.ndarray) -> dict[str, float]:
    if y.min() == y.max():
        return {"rows": len(y), "lost_share": float(y.mean())}
    return {
        "rows": len(y),
        "lost_share": round(float(y.mean()), 5),
        "average_precision": round(float(average_precision_score(y, risks)), 4),
        "roc_auc": round(float(roc_auc_score(y, risks)), 4),
    }


def train_parcel_model(
    parcels: Sequence[SimulatedParcel],
    out_dir: Path = ARTIFACTS_DIR,
    config: ParcelTrainingConfig | None = None,
    fraud_scores: Mapping[str, float] | None = None,
) -> TrainedParcelModel:
    """Learn lane deadlines, train and calibrate the loss model, evaluate alerts; write the artifact."""
    config = config or ParcelTrainingConfig()
    train, cal, test, bounds = _split(parcels, config)
    deadlines = learn_deadlines((p.final_parcel() for p in train), min_samples=config.min_lane_samples)
    sellers = SellerLossRates(parcels)
    train_rows = training_rows(train, deadlines, sellers, fraud_scores, config)
    cal_rows = training_rows(cal, deadlines, sellers, fraud_scores, config)
    test_rows = training_rows(test, deadlines, sellers, fraud_scores, config, blank_seller_rates=False)
    booster = fit_booster(PARAMS, PARCEL_FEATURE_NAMES, train_rows.x, train_rows.y, cal_rows.x, cal_rows.y)
    raw_cal = np.asarray(booster.inplace_predict(cal_rows.x), dtype=np.float64)
    calibration = calibration_knots(raw_cal, cal_rows.y)

    metadata: dict[str, Any] = {
        "version": "pending",
        "kind": "parcel_loss",
        "feature_names": list(PARCEL_FEATURE_NAMES),
        "calibration": calibration,
        "likely_lost_threshold": 1.0,
    }
    model = ParcelLossModel(booster, metadata, deadlines)
    cal_sweep = overdue_sweeps(cal, deadlines, sellers, fraud_scores, config.sweep_hours * 3600)
    cal_risks = model.risk(cal_sweep.rows) if cal_sweep.size else np.empty(0)
    threshold, cal_alerts = _threshold(cal, cal_sweep, cal_risks, config.false_alerts_per_1000_delivered)
    metadata["likely_lost_threshold"] = round(threshold, 6)

    test_risks = model.risk(test_rows.x)
    evaluation = evaluate_alerts(
        test, model, sellers, fraud_scores, config.sweep_hours, CarrierFeeds(parcels)
    )
    trained_at = datetime.now(UTC)
    version = f"parcels-{trained_at:%Y%m%d}-{fingerprint(parcels)[:8]}"
    metadata.update(
        {
            "version": version,
            "trained_at": trained_at.isoformat(),
            "data": {
                "parcels": len(parcels),
                "lost": sum(p.outcome == LOST for p in parcels),
                "train": [as_utc(bounds[0]), as_utc(bounds[1]), len(train)],
                "calibration": [as_utc(bounds[1]), as_utc(bounds[2]), len(cal)],
                "test": [as_utc(bounds[2]), as_utc(bounds[3]), len(test)],
                "rows": {
                    "train": len(train_rows.y),
                    "calibration": len(cal_rows.y),
                    "test": len(test_rows.y),
                },
            },
            "params": PARAMS | {"rounds": booster.num_boosted_rounds()},
            "xgboost_version": xgb.__version__,
            "config": asdict(config),
            "metrics": {
                "test_rows": _scores(test_rows.y, test_risks),
                "test_overdue_rows": _scores(test_rows.y[test_rows.overdue], test_risks[test_rows.overdue]),
                "calibration_likely_lost_alerts": cal_alerts,
                "test_alerts": evaluation,
            },
        }
    )
    directory = out_dir / version
    directory.mkdir(parents=True, exist_ok=True)
    booster.save_model(directory / "model.ubj")
    (directory / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
    (directory / LANES_FILE).write_text(deadlines.to_json() + "\n")
    (directory / "metrics.json").write_text(json.dumps(metadata["metrics"], indent=2) + "\n")
    # Slicing the booster to its best round drops the feature names: map xgboost's f<i> back.
    gains = booster.get_score(importance_type="gain")
    importance = {
        PARCEL_FEATURE_NAMES[int(k[1:])] if k.startswith("f") and k[1:].isdigit() else k: float(v)  # type: ignore[arg-type]
        for k, v in gains.items()
    }
    (directory / "report.md").write_text(report(metadata, importance))
    (directory / "MODEL_CARD.md").write_text(model_card(metadata))
    return TrainedParcelModel(directory, metadata, evaluation)


_METHODS = (
    ("dozor_stalled_or_likely_lost", "Dozor: STALLED or LIKELY_LOST"),
    ("stalled_lane_deadline", "STALLED only (lane deadline, carrier feed outages discounted)"),
    ("stalled_ignoring_feed_outages", "STALLED only, feed outages not discounted"),
    ("likely_lost_model", "LIKELY_LOST only (model)"),
    ("baseline_no_scan_30_days", "Baseline: no scan for 30 days"),
)


def alerts_table(evaluation: Mapping[str, Mapping[str, Any]]) -> str:
    lines = [
        "| rule | alerted | precision | recall | median lead (days) | false alerts / 1,000 delivered |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, name in _METHODS:
        m = evaluation[key]
        lead = "–" if m["median_lead_days"] is None else f"{m['median_lead_days']:.1f}"
        lines.append(
            f"| {name} | {m['alerted']} | {m['precision']:.1%} | {m['recall']:.1%} | {lead} "
            f"| {m['false_alerts_per_1000_delivered']:.1f} |"
        )
    return "\n".join(lines)


def tier_table(by_tier: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    lines = [
        "| tier | parcels | lost | Dozor recall | Dozor lead (days) | Dozor false / 1,000 | 30-day recall "
        "| 30-day lead (days) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for tier, rules in by_tier.items():
        d, b = rules["dozor_stalled_or_likely_lost"], rules["baseline_no_scan_30_days"]
        lead, base_lead = d["median_lead_days"], b["median_lead_days"]
        lines.append(
            f"| {tier} | {d['parcels']:,} | {d['lost']} | {d['recall']:.0%} | "
            f"{'–' if lead is None else f'{lead:.1f}'} | {d['false_alerts_per_1000_delivered']:.1f} | "
            f"{b['recall']:.0%} | {'–' if base_lead is None else f'{base_lead:.1f}'} |"
        )
    return "\n".join(lines)


def report(metadata: Mapping[str, Any], importance: Mapping[str, float]) -> str:
    """The evaluation report (markdown) for one trained parcel model."""
    m = metadata["metrics"]
    data = metadata["data"]
    test_alerts = m["test_alerts"]["dozor_stalled_or_likely_lost"]
    top = sorted(importance.items(), key=lambda kv: -kv[1])[:10]
    total = sum(importance.values()) or 1.0
    snapshot_table = "\n".join(
        [
            "| rows | count | lost share | average precision | ROC AUC |",
            "|---|---:|---:|---:|---:|",
            *(
                f"| {name} | {r['rows']:,} | {r['lost_share']:.3f} | {r.get('average_precision', 0):.3f} "
                f"| {r.get('roc_auc', 0):.3f} |"
                for name, r in (("all snapshots", m["test_rows"]), ("overdue sweeps", m["test_overdue_rows"]))
            ),
        ]
    )
    return f"""# Parcel-loss model {metadata["version"]}: evaluation report

Trained {metadata["trained_at"][:16]} UTC on {data["parcels"]:,} simulated parcels ({data["lost"]:,} lost),
split by ship time: train {data["train"][2]:,}, calibration {data["calibration"][2]:,}, test
{data["test"][2]:,} parcels (test period {data["test"][0][:10]} … {data["test"][1][:10]}).
LIKELY_LOST threshold: **{metadata["likely_lost_threshold"]:.3f}** (calibrated P(lost)), the lowest
that kept LIKELY_LOST within {metadata["config"]["false_alerts_per_1000_delivered"]:.0f} false alerts
per 1,000 delivered parcels on the calibration parcels.

## Alerts on the held-out parcels

An offline replay of the sweeper every {metadata["config"]["sweep_hours"]:.0f} h over the test
parcels, seeing only the scans that had arrived by then (late, duplicated, back-filled after
outages). Per parcel: precision = alerted parcels that were lost; recall = lost parcels alerted
before the loss became certain (the carrier's LOST scan arrived or the buyer claimed); lead time =
certainty minus first alert; false alerts = delivered parcels alerted before delivery.

{alerts_table(m["test_alerts"])}

Dozor's alerts reach {test_alerts["recall"]:.0%} of lost parcels a median of
{test_alerts["median_lead_days"] or 0:.1f} days before the loss is certain.

By remoteness of the destination (0 = Moscow / St Petersburg … 3 = Far East, far North):

{tier_table(m["test_alerts"]["by_remoteness_tier"])}

## Snapshot scores (test split)

{snapshot_table}

## What the model leans on (gain share)

{chr(10).join(f"- `{name}`: {gain / total:.1%}" for name, gain in top)}
"""


def model_card(metadata: Mapping[str, Any]) -> str:
    """The model card (markdown): what the model is for, how it was made and where it falls short."""
    m = metadata["metrics"]
    dozor = m["test_alerts"]["dozor_stalled_or_likely_lost"]
    model_only = m["test_alerts"]["likely_lost_model"]
    base = m["test_alerts"]["baseline_no_scan_30_days"]
    return f"""# Model card: parcel-loss model {metadata["version"]}

**What it does.** Estimates the probability that a parcel still in transit will end lost, for
the ParcelSweeperFunction, which re-scores parcels whose next scan is overdue and raises a
LIKELY_LOST alert above {metadata["likely_lost_threshold"]:.3f}. It ships with the lane deadlines it
was trained with (`lanes.json`): the same norms set every parcel's next-scan due time and its
STALLED deadline.

**Inputs.** {", ".join(f"`{n}`" for n in metadata["feature_names"])}. Missing values are NaN.

**Training data.** Simulated cross-border parcels (China → Russia) for simulated marketplace
orders: lane-dependent delays, customs holds, line-haul delays, failed deliveries, returns,
losses more likely far from the capitals / with some carriers / for valuable goods / for a few bad
sellers / for reshipping fraud, scans reported late, twice and after carrier outages. Rows are
snapshots at sweep times (mostly overdue ones); label = the parcel ended lost. Split by ship
time; XGBoost ({metadata["params"]["rounds"]} rounds, early-stopped on the calibration split),
isotonic calibration on the calibration split.

**Results (held-out newest parcels).** Test snapshots: AP {m["test_rows"].get("average_precision", 0):.3f},
ROC AUC {m["test_rows"].get("roc_auc", 0):.3f}. LIKELY_LOST alone: precision {model_only["precision"]:.1%},
recall {model_only["recall"]:.1%}, median lead {model_only["median_lead_days"] or 0:.1f} days,
{model_only["false_alerts_per_1000_delivered"]:.1f} false alerts per 1,000 delivered. With the lane
deadlines' STALLED alerts added (what the sweeper raises): precision {dozor["precision"]:.1%}, recall
{dozor["recall"]:.1%}, median lead {dozor["median_lead_days"] or 0:.1f} days,
{dozor["false_alerts_per_1000_delivered"]:.1f} false alerts per 1,000 delivered. The "no scan for 30
days" rule: precision {base["precision"]:.1%}, recall {base["recall"]:.1%}, median lead
{base["median_lead_days"] or 0:.1f} days, {base["false_alerts_per_1000_delivered"]:.1f} per 1,000 delivered.

**Limits.** Trained and judged on simulated parcels only: the numbers show the pipeline works
and what it can find, not what a real carrier mix will give; retrain on real scan histories
before trusting the threshold. Lane norms need about {metadata["config"]["min_lane_samples"]}
delivered parcels per stage and lane; thinner lanes borrow from their carrier's tier, carrier,
or everyone. Scans reported days late look like silence: most false STALLED alerts come from
them, and the evaluation discounts carrier feed outages (`FeedGap`), which the deployed sweeper
does not track yet. `seller_loss_rate_30d` was blanked in {metadata["config"]["seller_rate_dropout"]:.0%}
of training rows so the model copes when serving cannot supply it (today's sweeper does not);
`order_fraud_score` comes from the order's fraud decision and is NaN without one.

**Owners and use.** Ops alerting only: it prioritises parcels to chase; it does not decide
refunds or seller penalties on its own.
"""


def install(model_dir: Path, target: Path = PACKAGED_PARCEL_MODEL_DIR) -> None:
    """Make an artifact the parcel model the functions package carries."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ARTIFACT_FILES:
        shutil.copy2(model_dir / name, target / name)


def add_train_parcels(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "train-parcels",
        help="simulate orders and their parcels, learn lane deadlines and train the parcel-loss model",
    )
    parser.add_argument("--days", type=int, default=60, help="days of simulated orders")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--orders-per-day", type=int, default=1000)
    parser.add_argument(
        "--fraud-scores",
        action="store_true",
        help="score the orders with the packaged fraud model (slower) so order_fraud_score is a feature",
    )
    parser.add_argument("--out", type=Path, default=ARTIFACTS_DIR, help="where versioned artifacts go")
    parser.add_argument(
        "--install", action="store_true", help="make it the parcel model the functions package carries"
    )
    parser.set_defaults(run=train_parcels_command)


def _fraud_scores(history: Sequence[Any]) -> dict[str, float]:
    """Every order's fraud score from the packaged fraud model, replayed point in time."""
    from dozor.domain.contracts import Order  # noqa: PLC0415 - only with --fraud-scores
    from dozor.domain.fraud.model import FraudModel  # noqa: PLC0415
    from dozor_training.fraud.replay import replay  # noqa: PLC0415

    replayed = replay(Order.model_validate(s.order) for s in history)
    scores = FraudModel.load().scores(replayed.matrix)
    return {oid: float(s) for oid, s in zip(replayed.order_ids, scores, strict=True)}


def train_parcels_command(args: argparse.Namespace) -> int:
    from dozor_training.fraud.simulator import SimulationConfig, simulate  # noqa: PLC0415
    from dozor_training.parcels.simulator import simulate_shipments  # noqa: PLC0415

    t0 = time.perf_counter()
    history = simulate(SimulationConfig(days=args.days, seed=args.seed, orders_per_day=args.orders_per_day))
    parcels = simulate_shipments(history, args.seed)
    t1 = time.perf_counter()
    fraud_scores = _fraud_scores(history) if args.fraud_scores else None
    t2 = time.perf_counter()
    trained = train_parcel_model(parcels, args.out, fraud_scores=fraud_scores)
    t3 = time.perf_counter()
    if args.install:
        install(trained.directory)
    metrics = trained.metadata["metrics"]
    print(
        json.dumps(
            {
                "version": trained.metadata["version"],
                "directory": str(trained.directory),
                "installed": bool(args.install),
                "parcels": len(parcels),
                "seconds": {
                    "simulate": round(t1 - t0, 1),
                    "fraud_scores": round(t2 - t1, 1),
                    "train_and_evaluate": round(t3 - t2, 1),
                },
                "likely_lost_threshold": trained.metadata["likely_lost_threshold"],
                "test_rows": metrics["test_rows"],
                "test_alerts": metrics["test_alerts"],
            },
            indent=2,
        )
    )
    return 0
