"""The report's plots, drawn on bare matplotlib Figures with the Agg canvas: no pyplot state, no display."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from dozor_training.evaluation import LOGISTIC, MODEL, RULES_ONLY, EvaluationSet
from dozor_training.report_text import Task, lookup, num, pct, scorer_name

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


def draw_plots(
    data: EvaluationSet,
    metrics: Mapping[str, Any],
    task: Task,
    out: Path,
    contributions: np.ndarray | None,
    feature_names: Sequence[str],
) -> list[Path]:
    """Every plot the metrics allow, as PNG files in `out`; the paths in report order."""
    plots = _curves(data, metrics, task, out)
    if (path := _calibration_plot(metrics, task, out)) is not None:
        plots.append(path)
    plots.append(_distribution_plot(data, metrics, task, out))
    if contributions is not None:
        plots.append(_contributions_plot(contributions, feature_names, task, out))
    plots.append(_daily_plot(metrics, task, out))
    return plots


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
    fpr_target = float(lookup(metrics, "scorers", MODEL, "recall_at_fpr", "fpr") or 0.01)
    for name, raw in data.scores.items():
        colour = _COLOURS.get(name)
        scorer = metrics["scorers"][name]
        precision, recall, _ = precision_recall_curve(y, raw)
        ax_pr.step(
            recall,
            precision,
            where="post",
            color=colour,
            label=f"{scorer_name(name)} (AP {num(scorer['average_precision'])})",
        )
        false_positive, true_positive, _ = roc_curve(y, raw)
        for ax in (ax_roc, ax_zoom):
            ax.plot(
                false_positive,
                true_positive,
                color=colour,
                label=f"{scorer_name(name)} (AUC {num(scorer['roc_auc'])})",
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
    ax_zoom.set(xlim=(0, 5 * fpr_target), ylim=(0, 1.02), title=f"ROC up to {pct(5 * fpr_target, 0)} FPR")
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
            label=f"{scorer_name(name)} (ECE {num(cal['ece'])})",
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
            label=scorer_name(name),
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
    thresholds = lookup(metrics, "scorers", MODEL, "thresholds") or {}
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
                label=scorer_name(name),
            )
        ax.set(ylabel="precision", ylim=(0, 1.02), title=f"{task.title}: {title}, each test day")
        ax.legend(loc="best")
    axes[-1].set_xticks(x, daily["day"], rotation=60, ha="right", fontsize=8)
    return _save(figure, out / "daily_precision_at_k.png")
