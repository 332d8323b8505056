"""The evaluation report and model card a trained model ships with: metrics.json, report.md,
MODEL_CARD.md and the plots, written to one directory by one call.

Generic over the task: the fraud model and the parcel-loss model get the same report with their
own words ("fraud orders" / "lost parcels", buyers / sellers; `report_text.Task`), and a task can
add its own sections (the parcel model's alert timing). The plots are drawn by `report_plots`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dozor_training.evaluation import LOGISTIC, MODEL, RULES_ONLY, EvaluationSet
from dozor_training.report_plots import PLOTS, draw_plots
from dozor_training.report_text import Task, lookup, num, pct, rub, scorer_name


@dataclass(frozen=True)
class Period:
    """One split of the data window."""

    start: str
    end: str
    rows: int
    positives: int

    @classmethod
    def of(cls, days: np.ndarray, y: np.ndarray) -> Period:
        """The period spanned by these rows' days, with its row and positive counts."""
        labels = np.asarray(days)
        first, last = labels.min(), labels.max()
        return cls(str(first), str(last), len(labels), int(np.asarray(y).sum()))


@dataclass(frozen=True)
class ModelCardInfo:
    """What the model card states that the metrics do not: identity, data, use and limits."""

    name: str  # "dozor-fraud"
    version: str
    intended_use: str
    data_source: str  # where the history came from: "simulated (seed 42, 45 days)" or the real source
    simulated: bool
    periods: Mapping[str, Period]  # "train", "calibration", "test"
    feature_names: Sequence[str]
    features_defined_in: str | None = None  # pointer to the code that computes them
    trained_at: str | None = None
    training: Mapping[str, Any] = field(default_factory=dict)  # parameters worth stating
    label_delay: str = "labels (chargebacks, confirmations) arrive days to weeks after the event"
    blind_spots: Sequence[str] = ()  # what the model does not see
    limitations: Sequence[str] = ()  # anything else a user must know


@dataclass(frozen=True)
class Section:
    """A task's own part of the report (and of the model card, unless `in_card` is false)."""

    title: str
    lines: Sequence[str]
    in_card: bool = True


# --- markdown ---------------------------------------------------------------------------------


def _headline(metrics: Mapping[str, Any], task: Task) -> list[str]:
    scorers = list(metrics["scorers"])
    k = metrics["k_per_day"]
    fpr = lookup(metrics, "scorers", MODEL, "recall_at_fpr", "fpr") or 0.01
    rows: list[tuple[str, tuple[str, ...], Any]] = [
        ("ROC AUC", ("roc_auc",), num),
        ("average precision", ("average_precision",), num),
        (f"precision@{k} a day (mean over days)", ("precision_at_k", "mean_daily"), pct),
        (f"share of {task.positive_rows} in the daily top {k}", ("precision_at_k", "recall"), pct),
    ]
    if task.entity and any("entity_precision_at_k" in s for s in metrics["scorers"].values()):
        rows.append(
            (
                f"{task.entity.removesuffix('s')} precision@{k} a day (not flagged before)",
                ("entity_precision_at_k", "mean_daily"),
                pct,
            )
        )
    rows += [
        (f"recall at {pct(fpr, 0)} FPR", ("recall_at_fpr", "recall"), pct),
        ("expected calibration error", ("calibration", "ece"), num),
        ("Brier score", ("calibration", "brier"), lambda v: num(v, 4)),
        (f"{task.unit} reviewed a day", ("decisions", "reviewed_per_day"), lambda v: num(v, 1)),
        (f"{task.unit} declined a day", ("decisions", "declined_per_day"), lambda v: num(v, 1)),
        (f"share of {task.positive_rows} reviewed or declined", ("decisions", "recall"), pct),
        ("expected cost a day", ("decisions", "cost", "per_day_rub"), rub),
        ("saving vs approving everything", ("decisions", "cost", "saving_share"), pct),
    ]
    lines = [
        "| metric | " + " | ".join(scorer_name(s) for s in scorers) + " |",
        "|---|" + "---:|" * len(scorers),
    ]
    for title, path, fmt in rows:
        values = [lookup(metrics["scorers"][s], *path) for s in scorers]
        if all(v is None for v in values):
            continue
        lines.append(f"| {title} | " + " | ".join(fmt(v) for v in values) + " |")
    return lines


def _method_text(thresholds: Mapping[str, Any], task: Task) -> str:
    params = thresholds.get("params", {})
    if thresholds.get("method") == "cost":
        return "minimum expected cost under the cost model, on the calibration split"
    if thresholds.get("method") == "budget":
        decline = (
            f"DECLINE where precision reaches {pct(params['decline_precision'], 0)}"
            if params.get("decline_precision") is not None
            else "DECLINE at minimum expected cost"
        )
        return (
            f"review budget of {params.get('review_budget_per_day')} {task.unit} a day, {decline}, "
            "on the calibration split"
        )
    return "given"


def _thresholds_section(metrics: Mapping[str, Any], task: Task) -> list[str]:
    lines: list[str] = []
    for name, scorer in metrics["scorers"].items():
        chosen, decisions = scorer.get("thresholds"), scorer.get("decisions")
        if not chosen or not decisions:
            continue
        rows_per_day = metrics["rows"] / (metrics.get("period_days") or max(metrics["days"], 1))
        text = (
            f"- **{scorer_name(name)}**: REVIEW at score ≥ {chosen['review']:.4g}, DECLINE at ≥ "
            f"{chosen['decline']:.4g} ({_method_text(chosen, task)}). On the test period that is "
            f"{num(decisions['reviewed_per_day'], 1)} {task.unit} reviewed a day "
            f"({pct(decisions['review_precision'])} {task.positive}) and "
            f"{num(decisions['declined_per_day'], 1)} declined a day "
            f"({pct(decisions['decline_precision'])} {task.positive}), of {rows_per_day:,.0f} a day; "
            f"together they stop {pct(decisions['recall'])} of the {task.positive_rows}."
        )
        params = chosen.get("params", {})
        if "calibration_reviewed_per_day" in params:
            text += (
                f" On the calibration split: {params['calibration_reviewed_per_day']:.1f} reviewed and "
                f"{params['calibration_declined_per_day']:.1f} declined a day."
            )
        lines.append(text)
    return lines or ["No thresholds were given."]


def _cost_section(metrics: Mapping[str, Any], task: Task) -> list[str]:
    cost = metrics.get("cost_model")
    if not cost:
        return ["No cost model: expected cost is not reported."]
    return [
        f"- a {task.positive} {task.one_unit} approved loses {pct(cost['fraud_loss_share'], 0)} of its "
        f"{task.amount_word};",
        f"- a review costs {cost['review_cost_rub']:,.0f} RUB and stops a {task.positive} "
        f"{task.one_unit} with probability {pct(cost['review_catch_rate'], 0)};",
        f"- declining a legitimate {task.one_unit} loses {pct(cost['false_decline_share'], 0)} of its "
        f"{task.amount_word}.",
        "",
        f"Approving everything would cost {rub(metrics.get('approve_all_cost_per_day_rub'))} a day on the "
        "test period.",
    ]


def _daily_table(metrics: Mapping[str, Any], task: Task) -> list[str]:
    daily = metrics["daily"]
    scorers = list(daily["precision_at_k"])
    entity = task.entity is not None and "entity_precision_at_k" in daily
    head = f"| day | {task.unit} | {task.positive} | " + " | ".join(f"{scorer_name(s)} p@k" for s in scorers)
    head += (" | " + " | ".join(f"{scorer_name(s)} {task.entity} p@k" for s in scorers)) if entity else ""
    lines = [head + " |", "|---" * (3 + len(scorers) * (2 if entity else 1)) + "|"]
    for i, day in enumerate(daily["day"]):
        cells = [day, f"{daily['rows'][i]:,}", str(daily["positives"][i])]
        cells += [pct(daily["precision_at_k"][s][i], 0) for s in scorers]
        if entity:
            cells += [pct(daily["entity_precision_at_k"][s][i], 0) for s in scorers]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _baseline_note(metrics: Mapping[str, Any]) -> list[str]:
    notes = []
    if RULES_ONLY in metrics["scorers"]:
        notes.append(
            "- **Rules only**: the sum of the severities of the rules an order matches (REVIEW 1, "
            "DECLINE 2) — what Dozor would do without a model. Many orders tie at 0, so its top-k "
            "precision is the expectation over random tie-breaks; it has no calibration."
        )
    if LOGISTIC in metrics["scorers"]:
        notes.append(
            "- **Logistic regression**: fitted on the same training split and features (median "
            "imputation + missing indicators, standardised, balanced classes). Balanced weights "
            "inflate its probabilities, so judge it on ranking, not calibration."
        )
    return notes


def _has_thresholds(metrics: Mapping[str, Any]) -> bool:
    return any(s.get("thresholds") and s.get("decisions") for s in metrics["scorers"].values())


def _sections(sections: Sequence[Section], card: bool = False) -> list[str]:
    lines: list[str] = []
    for section in sections:
        if section.in_card or not card:
            lines += [f"## {section.title}", "", *section.lines, ""]
    return lines


def _report_md(
    metrics: Mapping[str, Any],
    task: Task,
    card: ModelCardInfo,
    plots: list[Path],
    sections: Sequence[Section],
) -> str:
    period = metrics.get("period") or ["—", "—"]
    days = metrics.get("period_days") or metrics["days"]
    lines = [
        f"# {task.title} {card.version}: evaluation report",
        "",
        f"Test period {period[0]} – {period[1]}: {days:.1f} days, {metrics['rows']:,} {task.unit}, "
        f"{metrics['positives']:,} {task.positive} ({pct(metrics['positive_rate'], 2)}). "
        f"Review capacity k = {metrics['k_per_day']} {task.unit} a day. The model was never fitted, "
        "calibrated or thresholded on these days.",
        "",
        "## Model against the baselines (test period)",
        "",
        *_headline(metrics, task),
        "",
        *_baseline_note(metrics),
        "",
        *(
            ["## Thresholds and what they mean a day", "", *_thresholds_section(metrics, task), ""]
            if _has_thresholds(metrics)
            else []
        ),
        "## Cost model",
        "",
        *_cost_section(metrics, task),
        "",
        *_sections(sections),
        "## Each test day",
        "",
        f"p@k: share of {task.positive} among the top {metrics['k_per_day']} of the day"
        + (
            f"; {task.entity} p@k: among the top {metrics['k_per_day']} {task.entity} not flagged on an "
            "earlier day."
            if task.entity
            else "."
        ),
        "",
        *_daily_table(metrics, task),
        "",
        "## Plots",
        "",
    ]
    for path in plots:
        lines += [f"### {PLOTS[path.stem]}", "", f"![{PLOTS[path.stem]}]({path.name})", ""]
    lines += ["All numbers: [metrics.json](metrics.json). Model card: [MODEL_CARD.md](MODEL_CARD.md).", ""]
    return "\n".join(lines)


def _identity(card: ModelCardInfo) -> list[str]:
    lines = [f"- name: `{card.name}`", f"- version: `{card.version}`"]
    if card.trained_at:
        lines.append(f"- trained at: {card.trained_at}")
    return lines + [f"- {key}: {value}" for key, value in card.training.items()]


def _model_card_md(
    metrics: Mapping[str, Any], task: Task, card: ModelCardInfo, sections: Sequence[Section]
) -> str:
    model_only = {**metrics, "scorers": {MODEL: metrics["scorers"][MODEL]}}
    lines = [
        f"# Model card: {task.title}",
        "",
        "## Model",
        "",
        *_identity(card),
        "",
        "## Intended use",
        "",
        card.intended_use,
        "",
        "## Data",
        "",
        f"Source: {card.data_source}.",
        "",
        f"| split | from | to | {task.unit} | {task.positive} | {task.positive} rate |",
        "|---|---|---|---:|---:|---:|",
    ]
    for split, period in card.periods.items():
        rate = period.positives / period.rows if period.rows else None
        lines.append(
            f"| {split} | {period.start} | {period.end} | {period.rows:,} | {period.positives:,} "
            f"| {pct(rate, 2)} |"
        )
    lines += [
        "",
        "Split by time, oldest to newest: fitted on train, calibrated and thresholded on calibration, "
        "judged on test.",
        "",
        "## Features",
        "",
        f"{len(card.feature_names)} features"
        + (f", computed by `{card.features_defined_in}`" if card.features_defined_in else "")
        + ": "
        + ", ".join(f"`{n}`" for n in card.feature_names)
        + ".",
        "",
        "## Metrics (test period)",
        "",
        *_headline(metrics, task),
        "",
        _baselines_line(metrics)
        + "Details and plots: [report.md](report.md); every number: [metrics.json](metrics.json).",
        "",
        *(
            ["## Thresholds", "", *_thresholds_section(model_only, task), ""]
            if _has_thresholds(model_only)
            else []
        ),
        "## Cost model",
        "",
        *_cost_section(metrics, task),
        "",
        *_sections(sections, card=True),
        "## Limitations",
        "",
        *(f"- {item}" for item in _limitations(metrics, task, card)),
        "",
    ]
    return "\n".join(lines)


_BASELINES = {
    RULES_ONLY: "rules only (sum of rule severities)",
    LOGISTIC: "a logistic regression on the same features and split",
}


def _baselines_line(metrics: Mapping[str, Any]) -> str:
    named = [text for name, text in _BASELINES.items() if name in metrics["scorers"]]
    return f"Baselines: {' and '.join(named)}. " if named else ""


def _limitations(metrics: Mapping[str, Any], task: Task, card: ModelCardInfo) -> list[str]:
    data = (
        "Simulated data: the metrics show the model learns the simulator's patterns, not that it "
        f"catches real {task.positive_rows}. Re-train and re-evaluate on real history before trusting "
        "the thresholds."
        if card.simulated
        else "Real history: labels are what was reported, not ground truth; unreported "
        f"{task.positive_rows} count as negatives."
    )
    blind = (
        "It does not see: " + "; ".join(card.blind_spots) + "."
        if card.blind_spots
        else f"It sees only the {len(card.feature_names)} features above; anything else about an "
        f"{task.one_unit} is invisible to it."
    )
    return [
        data,
        f"Label delay: {card.label_delay}. The newest rows of every split may still hide "
        f"{task.positive_rows} labelled as negatives, which understates precision and recall there.",
        f"Drift: {task.positive} patterns change. Thresholds were chosen on the calibration period "
        "and judged on the test period; watch daily precision@k and the share reviewed, and "
        "re-choose thresholds when they move.",
        blind,
        *card.limitations,
    ]


def write_report(
    out_dir: Path,
    *,
    task: Task,
    metrics: Mapping[str, Any],
    data: EvaluationSet,
    card: ModelCardInfo,
    contributions: np.ndarray | None = None,
    feature_names: Sequence[str] | None = None,
    sections: Sequence[Section] = (),
) -> list[Path]:
    """Write metrics.json, report.md, MODEL_CARD.md and the PNG plots into ``out_dir``; return the paths.

    ``metrics`` is ``evaluation.evaluate(data, ...)``; ``contributions`` (rows × features, on the
    test rows or a sample of them) and ``feature_names`` add the feature-contribution plot;
    ``sections`` are the task's own, after the cost model (in the card, before the limitations).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = draw_plots(data, metrics, task, out_dir, contributions, feature_names or card.feature_names)

    written = [out_dir / "metrics.json", out_dir / "report.md", out_dir / "MODEL_CARD.md"]
    written[0].write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    written[1].write_text(_report_md(metrics, task, card, plots, sections))
    written[2].write_text(_model_card_md(metrics, task, card, sections))
    return written + plots
