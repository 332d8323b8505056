"""What the parcel-loss report says that the generic report does not: when its alerts come.

The generic report (`dozor_training.report`) covers the snapshot scores; these sections add the
LIKELY_LOST threshold, the alert metrics of every rule on the held-out parcels and their split by
remoteness, and the model card's identity, data and limits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dozor.domain.clock import from_epoch
from dozor.domain.parcels.model import PARCEL_FEATURE_NAMES
from dozor_training.parcels.simulator import LOST, SimulatedParcel
from dozor_training.report import ModelCardInfo, Period, Section

_METHODS = (
    ("dozor_stalled_or_likely_lost", "Dozor: STALLED or LIKELY_LOST"),
    ("stalled_lane_deadline", "STALLED only (lane deadline, carrier feed outages discounted)"),
    ("stalled_ignoring_feed_outages", "STALLED only, feed outages not discounted"),
    ("likely_lost_model", "LIKELY_LOST only (model)"),
    ("baseline_no_scan_30_days", "Baseline: no scan for 30 days"),
)


def _lead(days: float | None) -> str:
    return "–" if days is None else f"{days:.1f}"


def alerts_table(evaluation: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = [
        "| rule | alerted | precision | recall | median lead (days) | false alerts / 1,000 delivered |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, name in _METHODS:
        m = evaluation[key]
        lines.append(
            f"| {name} | {m['alerted']} | {m['precision']:.1%} | {m['recall']:.1%} | "
            f"{_lead(m['median_lead_days'])} | {m['false_alerts_per_1000_delivered']:.1f} |"
        )
    return lines


def tier_table(by_tier: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> list[str]:
    lines = [
        "| tier | parcels | lost | Dozor recall | Dozor lead (days) | Dozor false / 1,000 | 30-day recall "
        "| 30-day lead (days) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for tier, rules in by_tier.items():
        d, b = rules["dozor_stalled_or_likely_lost"], rules["baseline_no_scan_30_days"]
        lines.append(
            f"| {tier} | {d['parcels']:,} | {d['lost']} | {d['recall']:.0%} | "
            f"{_lead(d['median_lead_days'])} | {d['false_alerts_per_1000_delivered']:.1f} | "
            f"{b['recall']:.0%} | {_lead(b['median_lead_days'])} |"
        )
    return lines


def alert_sections(metadata: Mapping[str, Any], metrics: Mapping[str, Any]) -> list[Section]:
    """The LIKELY_LOST threshold, the alerts on the held-out parcels, and the overdue snapshots."""
    config, alerts = metadata["config"], metrics["test_alerts"]
    dozor = alerts["dozor_stalled_or_likely_lost"]
    overdue = metrics["test_overdue_rows"]
    threshold = [
        f"LIKELY_LOST at calibrated P(lost) ≥ **{metadata['likely_lost_threshold']:.3f}**: the lowest "
        f"threshold that kept LIKELY_LOST within {config['false_alerts_per_1000_delivered']:.0f} false "
        "alerts per 1,000 delivered parcels on the calibration parcels. STALLED comes from the lane "
        "deadlines shipped beside the model (`lanes.json`).",
    ]
    timing = [
        f"An offline replay of the sweeper every {config['sweep_hours']:.0f} h over the test parcels, "
        "seeing only the scans that had arrived by then (late, duplicated, back-filled after outages). "
        "Per parcel: precision = alerted parcels that were lost; recall = lost parcels alerted before "
        "the loss became certain (the carrier's LOST scan arrived or the buyer claimed); lead time = "
        "certainty minus first alert; false alerts = delivered parcels alerted before delivery.",
        "",
        *alerts_table(alerts),
        "",
        f"Dozor's alerts reach {dozor['recall']:.0%} of lost parcels a median of "
        f"{dozor['median_lead_days'] or 0:.1f} days before the loss is certain.",
        "",
        "By remoteness of the destination (0 = Moscow / St Petersburg … 3 = Far East, far North):",
        "",
        *tier_table(alerts["by_remoteness_tier"]),
    ]
    snapshots = [
        "The sweeper scores parcels whose next scan is overdue; on those test snapshots alone "
        f"({overdue['rows']:,} rows, {overdue['lost_share'] or 0:.1%} lost) the model's average precision is "
        f"{overdue['average_precision'] or 0:.3f} and its ROC AUC {overdue['roc_auc'] or 0:.3f}.",
    ]
    return [
        Section("LIKELY_LOST threshold", threshold),
        Section("Alerts on the held-out parcels", timing),
        Section("Snapshots at overdue sweeps", snapshots, in_card=False),
    ]


def _period(parcels: Sequence[SimulatedParcel]) -> Period:
    """A split by ship time: its first and last ship day, its parcels and how many were lost."""
    if not parcels:
        return Period("—", "—", 0, 0)
    shipped = [p.shipped_at for p in parcels]
    first, last = (from_epoch(t).date().isoformat() for t in (min(shipped), max(shipped)))
    return Period(first, last, len(parcels), sum(p.outcome == LOST for p in parcels))


def model_card_info(
    metadata: Mapping[str, Any], splits: Mapping[str, Sequence[SimulatedParcel]]
) -> ModelCardInfo:
    """The parcel model's identity, use, data and limits, in the generic model card's terms."""
    config = metadata["config"]
    return ModelCardInfo(
        name="dozor-parcel-loss",
        version=metadata["version"],
        intended_use=(
            "Estimates the probability that a parcel still in transit will end lost, for the "
            "ParcelSweeperFunction, which re-scores parcels whose next scan is overdue and raises a "
            f"LIKELY_LOST alert above {metadata['likely_lost_threshold']:.3f}. It ships with the lane "
            "deadlines it was trained with (`lanes.json`): the same norms set every parcel's next-scan "
            "due time and its STALLED deadline. Ops alerting only: it prioritises parcels to chase; it "
            "does not decide refunds or seller penalties on its own."
        ),
        data_source=(
            "simulated cross-border parcels (China → Russia) for simulated marketplace orders: "
            "lane-dependent delays, customs holds, line-haul delays, failed deliveries, returns, losses "
            "more likely far from the capitals / with some carriers / for valuable goods / for a few bad "
            "sellers / for reshipping fraud, scans reported late, twice and after carrier outages. Rows "
            "are snapshots at sweep times (mostly overdue ones), labelled with whether the parcel ended "
            "lost; parcels split by ship time"
        ),
        simulated=True,
        periods={name: _period(parcels) for name, parcels in splits.items()},
        feature_names=PARCEL_FEATURE_NAMES,
        features_defined_in="functions/dozor/domain/parcels/model.py",
        trained_at=metadata["trained_at"],
        training={
            "rounds": metadata["params"]["rounds"],
            "max_depth": metadata["params"]["max_depth"],
            "eta": metadata["params"]["eta"],
            "calibration": "isotonic, on the calibration parcels' snapshots",
        },
        label_delay=(
            "a loss becomes certain weeks after the parcel ships (the carrier's LOST scan arrives or the "
            "buyer claims)"
        ),
        blind_spots=(
            "anything the carrier does not scan: a parcel sitting in a warehouse looks like one in transit "
            "until its next scan is due",
            "scans reported days late, which look like silence: most false STALLED alerts come from them",
        ),
        limitations=(
            f"Lane norms need about {config['min_lane_samples']} delivered parcels per stage and lane; "
            "thinner lanes borrow from their carrier's tier, carrier, or everyone.",
            "The evaluation discounts carrier feed outages (`FeedGap`), which the deployed sweeper does "
            "not track yet.",
            f"`seller_loss_rate_30d` was blanked in {config['seller_rate_dropout']:.0%} of training rows so "
            "the model copes when serving cannot supply it (today's sweeper does not); `order_fraud_score` "
            "comes from the order's fraud decision and is NaN without one.",
        ),
    )
