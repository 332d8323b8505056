"""The evaluation report and model card a trained model ships with: metrics.json, report.md,
MODEL_CARD.md and the plots, written to one directory by one call.

Generic over the task: the fraud model and the parcel-loss model get the same report with their
own words ("fraud orders" / "lost parcels", buyers / sellers). Plots are drawn on bare matplotlib
Figures with the Agg canvas: no pyplot state, no display.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from dozor_training.evaluation import LOGISTIC, MODEL, RULES_ONLY, EvaluationSet

SCORER_NAMES = {MODEL: "Model", RULES_ONLY: "Rules only", LOGISTIC: "Logistic regression"}
_COLOURS = {MODEL: "#1f5fa8", RULES_ONLY: "#c0392b", LOGISTIC: "#7f8c8d"}
_DPI = 110

PLOTS = {
    "pr_curves": "Precision–recall curves",
    "roc_curves": "ROC curves",
    "calibration": "Calibration (reliability diagram)",
    "score_distribution": "Score distribution by class",
    "feature_contributions": "Feature contributions",
    "daily_precision_at_k": "Daily precision@k",
}


@dataclass(frozen=True)
class Task:
    """What is being predicted, in the words the report uses."""

    title: str  # "Dozor fraud model"
    positive: str  # the positive class as an adjective: "fraud", "lost"
    unit: str  # what a row is, plural: "orders", "parcels"
    entity: str | None = (
        None  # who entity precision@k ranks, plural: "buyers", "sellers"; None: no such metric
    )
    amount_word: str = "order amount"  # what the cost model's shares are shares of

    @property
    def positive_rows(self) -> str:
        return f"{self.positive} {self.unit}"

    @property
    def one_unit(self) -> str:
        return self.unit.removesuffix("s")


FRAUD_TASK = Task("Dozor fraud model", "fraud", "orders", "buyers")
PARCEL_LOSS_TASK = Task("Dozor parcel-loss model", "lost", "parcels", "sellers", "declared value")


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


# --- formatting -------------------------------------------------------------------------------


def _pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{100 * value:.{digits}f}%"


def _num(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _rub(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} RUB"


def _get(metrics: Mapping[str, Any], *path: str) -> Any:
    node: Any = metrics
    for key in path:
        if not isinstance(node, Mapping) or node.get(key) is None:
            return None
        node = node[key]
    return node


def _name(scorer: str) -> str:
    return SCORER_NAMES.get(scorer, scorer)


# --- plots ------------------------------------------------------------------------------------


def _save(figure: Figure, path: Path) -> Path:
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=_DPI, bbox_inches="tight")
    return path


def _curves(data: EvaluationSet, metrics: Mapping[str, Any], task: Task, out: Path) -> list[Path]:
    y = data.labels
    if y.min() == y.max():
        return []
    pr, roc = Figure(figsize=(6.4, 4.8)), Figure(figsize=(11, 4.6))
    ax_pr = pr.add_subplot()
    ax_roc, ax_zoom = roc.subplots(1, 2)
    fpr_target = float(_get(metrics, "scorers", MODEL, "recall_at_fpr", "fpr") or 0.01)
    for name, raw in data.scores.items():
        colour = _COLOURS.get(name)
        scorer = metrics["scorers"][name]
        precision, recall, _ = precision_recall_curve(y, raw)
        ax_pr.step(
            recall,
            precision,
            where="post",
            color=colour,
            label=f"{_name(name)} (AP {_num(scorer['average_precision'])})",
        )
        false_positive, true_positive, _ = roc_curve(y, raw)
        for ax in (ax_roc, ax_zoom):
            ax.plot(
                false_positive,
                true_positive,
                color=colour,
                label=f"{_name(name)} (AUC {_num(scorer['roc_auc'])})",
            )
    ax_pr.axhline(float(y.mean()), color="black", lw=0.8, ls=":", label=f"{task.positive} rate")
    ax_pr.set(
        xlabel=f"recall (share of {task.positive_rows} found)",
        ylabel="precision",
        xlim=(0, 1),
        ylim=(0, 1.02),
        title=f"{task.title}: precision–recall, test period",
    )
    ax_pr.legend(loc="lower left")
    for ax in (ax_roc, ax_zoom):
        ax.axvline(fpr_target, color="black", lw=0.8, ls=":")
        ax.set(xlabel="false-positive rate", ylabel="true-positive rate (recall)")
    ax_roc.plot([0, 1], [0, 1], color="black", lw=0.6, ls="--")
    ax_roc.set(xlim=(0, 1), ylim=(0, 1.02), title="ROC, test period")
    ax_roc.legend(loc="lower right")
    # Reviews only ever reach the top few percent: that corner is where scorers differ.
    ax_zoom.set(xlim=(0, 5 * fpr_target), ylim=(0, 1.02), title=f"ROC up to {_pct(5 * fpr_target, 0)} FPR")
    return [_save(pr, out / "pr_curves.png"), _save(roc, out / "roc_curves.png")]


def _calibration_plot(metrics: Mapping[str, Any], task: Task, out: Path) -> Path | None:
    calibrated = {n: s["calibration"] for n, s in metrics["scorers"].items() if s.get("calibration")}
    if not calibrated:
        return None
    figure = Figure(figsize=(6.4, 6.4))
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], color="black", lw=0.6, ls="--", label="perfectly calibrated")
    for i, (name, cal) in enumerate(calibrated.items()):
        bins = [b for b in cal["reliability"] if b["rows"]]
        top.plot(
            [b["mean_score"] for b in bins],
            [b["positive_rate"] for b in bins],
            marker="o",
            color=_COLOURS.get(name),
            label=f"{_name(name)} (ECE {_num(cal['ece'])})",
        )
        # Side by side within each bin, so one scorer's counts do not hide another's.
        width = (cal["reliability"][0]["upper"] - cal["reliability"][0]["lower"]) / len(calibrated)
        lefts = [b["lower"] + i * width for b in cal["reliability"]]
        bottom.bar(
            lefts,
            [b["rows"] for b in cal["reliability"]],
            width=width * 0.9,
            align="edge",
            color=_COLOURS.get(name),
            label=_name(name),
        )
    top.set(
        ylabel=f"observed {task.positive} rate",
        xlim=(0, 1),
        ylim=(0, 1.02),
        title=f"{task.title}: reliability, test period",
    )
    top.legend(loc="upper left")
    bottom.set(xlabel="mean score in bin", ylabel=task.unit, yscale="log")
    return _save(figure, out / "calibration.png")


def _distribution_plot(data: EvaluationSet, metrics: Mapping[str, Any], task: Task, out: Path) -> Path:
    y = data.labels
    scores = np.asarray(data.scores[MODEL], dtype=np.float64)
    figure = Figure(figsize=(7.5, 4.6))
    ax = figure.add_subplot()
    edges = np.linspace(float(scores.min()), float(scores.max()) + 1e-12, 51)
    for label, mask, colour in (
        (f"not {task.positive}", y == 0, "#7f8c8d"),
        (task.positive, y == 1, "#c0392b"),
    ):
        ax.hist(
            scores[mask],
            bins=edges.tolist(),
            histtype="stepfilled",
            alpha=0.45,
            color=colour,
            label=f"{label} ({int(mask.sum()):,} {task.unit})",
        )
    thresholds = _get(metrics, "scorers", MODEL, "thresholds") or {}
    for key, style in (("review", "--"), ("decline", "-")):
        if key in thresholds and thresholds[key] <= edges[-1]:
            ax.axvline(
                thresholds[key], color="black", ls=style, lw=1, label=f"{key.upper()} ≥ {thresholds[key]:.4g}"
            )
    ax.set(
        yscale="log",
        xlabel="model score",
        ylabel=task.unit,
        title=f"{task.title}: score by class, test period",
    )
    ax.legend()
    return _save(figure, out / "score_distribution.png")


def _contributions_plot(
    contributions: np.ndarray, feature_names: Sequence[str], task: Task, out: Path, top: int = 20
) -> Path:
    magnitude = np.nanmean(np.abs(np.asarray(contributions, dtype=np.float64)), axis=0)
    if len(magnitude) != len(feature_names):
        raise ValueError(f"{len(feature_names)} feature names for {len(magnitude)} contribution columns")
    order = np.argsort(magnitude)[::-1][:top][::-1]  # largest at the top of a barh
    figure = Figure(figsize=(7.5, 0.32 * len(order) + 1.4))
    ax = figure.add_subplot()
    ax.barh([feature_names[i] for i in order], magnitude[order], color=_COLOURS[MODEL])
    ax.set(xlabel="mean |contribution| (log-odds)", title=f"{task.title}: top {len(order)} features")
    return _save(figure, out / "feature_contributions.png")


def _daily_plot(metrics: Mapping[str, Any], task: Task, out: Path) -> Path:
    daily = metrics["daily"]
    series = [("precision_at_k", f"precision of the top {metrics['k_per_day']} {task.unit}")]
    if task.entity and "entity_precision_at_k" in daily:
        series.append(
            (
                "entity_precision_at_k",
                f"precision of the top {metrics['k_per_day']} {task.entity} not flagged before",
            )
        )
    figure = Figure(figsize=(max(7.0, 0.35 * len(daily["day"]) + 3), 3.4 * len(series)))
    axes = figure.subplots(len(series), 1, sharex=True, squeeze=False)[:, 0]
    x = np.arange(len(daily["day"]))
    for ax, (key, title) in zip(axes, series, strict=True):
        for name, values in daily[key].items():
            ax.plot(
                x,
                [np.nan if v is None else v for v in values],
                marker="o",
                ms=3,
                color=_COLOURS.get(name),
                label=_name(name),
            )
        ax.set(ylabel="precision", ylim=(0, 1.02), title=f"{task.title}: {title}, each test day")
        ax.legend(loc="best")
    axes[-1].set_xticks(x, daily["day"], rotation=60, ha="right", fontsize=8)
    return _save(figure, out / "daily_precision_at_k.png")


# --- markdown ---------------------------------------------------------------------------------


def _headline(metrics: Mapping[str, Any], task: Task) -> list[str]:
    scorers = list(metrics["scorers"])
    k = metrics["k_per_day"]
    fpr = _get(metrics, "scorers", MODEL, "recall_at_fpr", "fpr") or 0.01
    rows: list[tuple[str, tuple[str, ...], Any]] = [
        ("ROC AUC", ("roc_auc",), _num),
        ("average precision", ("average_precision",), _num),
        (f"precision@{k} a day (mean over days)", ("precision_at_k", "mean_daily"), _pct),
        (f"share of {task.positive_rows} in the daily top {k}", ("precision_at_k", "recall"), _pct),
    ]
    if task.entity and any("entity_precision_at_k" in s for s in metrics["scorers"].values()):
        rows.append(
            (
                f"{task.entity.removesuffix('s')} precision@{k} a day (not flagged before)",
                ("entity_precision_at_k", "mean_daily"),
                _pct,
            )
        )
    rows += [
        (f"recall at {_pct(fpr, 0)} FPR", ("recall_at_fpr", "recall"), _pct),
        ("expected calibration error", ("calibration", "ece"), _num),
        ("Brier score", ("calibration", "brier"), lambda v: _num(v, 4)),
        (f"{task.unit} reviewed a day", ("decisions", "reviewed_per_day"), lambda v: _num(v, 1)),
        (f"{task.unit} declined a day", ("decisions", "declined_per_day"), lambda v: _num(v, 1)),
        (f"share of {task.positive_rows} reviewed or declined", ("decisions", "recall"), _pct),
        ("expected cost a day", ("decisions", "cost", "per_day_rub"), _rub),
        ("saving vs approving everything", ("decisions", "cost", "saving_share"), _pct),
    ]
    lines = [
        "| metric | " + " | ".join(_name(s) for s in scorers) + " |",
        "|---|" + "---:|" * len(scorers),
    ]
    for title, path, fmt in rows:
        values = [_get(metrics["scorers"][s], *path) for s in scorers]
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
            f"DECLINE where precision reaches {_pct(params['decline_precision'], 0)}"
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
            f"- **{_name(name)}**: REVIEW at score ≥ {chosen['review']:.4g}, DECLINE at ≥ "
            f"{chosen['decline']:.4g} ({_method_text(chosen, task)}). On the test period that is "
            f"{_num(decisions['reviewed_per_day'], 1)} {task.unit} reviewed a day "
            f"({_pct(decisions['review_precision'])} {task.positive}) and "
            f"{_num(decisions['declined_per_day'], 1)} declined a day "
            f"({_pct(decisions['decline_precision'])} {task.positive}), of {rows_per_day:,.0f} a day; "
            f"together they stop {_pct(decisions['recall'])} of the {task.positive_rows}."
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
        f"- a {task.positive} {task.one_unit} approved loses {_pct(cost['fraud_loss_share'], 0)} of its "
        f"{task.amount_word};",
        f"- a review costs {cost['review_cost_rub']:,.0f} RUB and stops a {task.positive} "
        f"{task.one_unit} with probability {_pct(cost['review_catch_rate'], 0)};",
        f"- declining a legitimate {task.one_unit} loses {_pct(cost['false_decline_share'], 0)} of its "
        f"{task.amount_word}.",
        "",
        f"Approving everything would cost {_rub(metrics.get('approve_all_cost_per_day_rub'))} a day on the "
        "test period.",
    ]


def _daily_table(metrics: Mapping[str, Any], task: Task) -> list[str]:
    daily = metrics["daily"]
    scorers = list(daily["precision_at_k"])
    entity = task.entity is not None and "entity_precision_at_k" in daily
    head = f"| day | {task.unit} | {task.positive} | " + " | ".join(f"{_name(s)} p@k" for s in scorers)
    head += (" | " + " | ".join(f"{_name(s)} {task.entity} p@k" for s in scorers)) if entity else ""
    lines = [head + " |", "|---" * (3 + len(scorers) * (2 if entity else 1)) + "|"]
    for i, day in enumerate(daily["day"]):
        cells = [day, f"{daily['rows'][i]:,}", str(daily["positives"][i])]
        cells += [_pct(daily["precision_at_k"][s][i], 0) for s in scorers]
        if entity:
            cells += [_pct(daily["entity_precision_at_k"][s][i], 0) for s in scorers]
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


def _report_md(metrics: Mapping[str, Any], task: Task, card: ModelCardInfo, plots: list[Path]) -> str:
    period = metrics.get("period") or ["—", "—"]
    days = metrics.get("period_days") or metrics["days"]
    lines = [
        f"# {task.title} {card.version}: evaluation report",
        "",
        f"Test period {period[0]} – {period[1]}: {days:.1f} days, {metrics['rows']:,} {task.unit}, "
        f"{metrics['positives']:,} {task.positive} ({_pct(metrics['positive_rate'], 2)}). "
        f"Review capacity k = {metrics['k_per_day']} {task.unit} a day. The model was never fitted, "
        "calibrated or thresholded on these days.",
        "",
        "## Model against the baselines (test period)",
        "",
        *_headline(metrics, task),
        "",
        *_baseline_note(metrics),
        "",
        "## Thresholds and what they mean a day",
        "",
        *_thresholds_section(metrics, task),
        "",
        "## Cost model",
        "",
        *_cost_section(metrics, task),
        "",
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


def _model_card_md(metrics: Mapping[str, Any], task: Task, card: ModelCardInfo) -> str:
    lines = [
        f"# Model card: {task.title}",
        "",
        "## Model",
        "",
        f"- name: `{card.name}`",
        f"- version: `{card.version}`",
    ]
    if card.trained_at:
        lines.append(f"- trained at: {card.trained_at}")
    lines += [f"- {key}: {value}" for key, value in card.training.items()]
    lines += [
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
            f"| {_pct(rate, 2)} |"
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
        "Baselines: rules only (sum of rule severities) and a logistic regression on the same features "
        "and split. Details and plots: [report.md](report.md); every number: [metrics.json](metrics.json).",
        "",
        "## Thresholds",
        "",
        *_thresholds_section({**metrics, "scorers": {MODEL: metrics["scorers"][MODEL]}}, task),
        "",
        "## Cost model",
        "",
        *_cost_section(metrics, task),
        "",
        "## Limitations",
        "",
        *(f"- {item}" for item in _limitations(metrics, task, card)),
        "",
    ]
    return "\n".join(lines)


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
) -> list[Path]:
    """Write metrics.json, report.md, MODEL_CARD.md and the PNG plots into ``out_dir``; return the paths.

    ``metrics`` is ``evaluation.evaluate(data, ...)``; ``contributions`` (rows × features, on the
    test rows or a sample of them) and ``feature_names`` add the feature-contribution plot.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = _curves(data, metrics, task, out_dir)
    if (path := _calibration_plot(metrics, task, out_dir)) is not None:
        plots.append(path)
    plots.append(_distribution_plot(data, metrics, task, out_dir))
    if contributions is not None:
        plots.append(_contributions_plot(contributions, feature_names or card.feature_names, task, out_dir))
    plots.append(_daily_plot(metrics, task, out_dir))

    written = [out_dir / "metrics.json", out_dir / "report.md", out_dir / "MODEL_CARD.md"]
    written[0].write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    written[1].write_text(_report_md(metrics, task, card, plots))
    written[2].write_text(_model_card_md(metrics, task, card))
    return written + plots
