"""The report's model-selection section: what `--tune` tried, what it chose, its validation curve."""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dozor.domain.clock import from_epoch
from dozor_training.report import Section
from dozor_training.tune import Trial, TuneResult

TUNING_PLOT = "tuning.png"
_SHOWN = 8  # trials the table lists, best first
_CURVE_ROUNDS = (10, 25, 50, 100, 200, 400, 800)


def _params_text(trial: Trial) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in trial.params.items())


def tuning_section(result: TuneResult, out: Path) -> Section:
    """Text and a plot (written into ``out``) of one tuning run."""
    chosen, default = result.chosen, result.default
    folds = ", ".join(
        f"{from_epoch(f.validation_start):%Y-%m-%d} "
        f"({f.validation_rows:,} orders, {f.validation_positives} fraud)"
        for f in result.folds
    )
    lines = [
        f"Hyperparameters chosen by `--tune` on {len(result.folds)} rolling-origin folds of the fitting "
        f"period (each fits on everything before its validation block, never shuffled; validation "
        f"blocks from {folds}). {len(result.trials)} candidates in {result.seconds:.0f} s of a "
        f"{result.budget_seconds:.0f} s budget (stopped by {result.stopped_by}). The final model was fitted "
        "with the chosen parameters; calibration and thresholds were chosen afterwards on the calibration "
        "split, as without tuning.",
        "",
        f"- chosen: {_params_text(chosen)}; {chosen.rounds} rounds on the folds; "
        f"mean validation AP {chosen.score:.4f}",
        f"- default: {_params_text(default)}; {default.rounds} rounds; "
        f"mean validation AP {default.score:.4f}",
        "",
        "| candidate | validation AP (mean) | per fold | rounds | seconds |",
        "|---|---:|---|---:|---:|",
    ]
    ranked = sorted(result.trials, key=lambda t: -t.score)[:_SHOWN]
    for trial in ranked:
        mark = " (chosen)" if trial is chosen else " (default)" if trial is default else ""
        per_fold = " / ".join(f"{s:.3f}" for s in trial.fold_scores)
        lines.append(
            f"| {_params_text(trial)}{mark} | {trial.score:.4f} | {per_fold} | {trial.rounds} "
            f"| {trial.seconds:.1f} |"
        )
    shown = [r for r in _CURVE_ROUNDS if r <= len(chosen.curve)]
    lines += [
        "",
        "Validation curve of the chosen parameters (mean AP over the folds after n rounds): "
        + ", ".join(f"{r}: {chosen.curve[r - 1]:.4f}" for r in shown)
        + ".",
        "",
        f"![Validation curves]({_plot(result, out / TUNING_PLOT).name})",
    ]
    return Section("Model selection", lines)


def _plot(result: TuneResult, path: Path) -> Path:
    figure = Figure(figsize=(11, 4.2))
    curves, trials = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    for trial, name, colour in ((result.chosen, "chosen", "#1f5fa8"), (result.default, "default", "#7f8c8d")):
        curves.plot(
            range(1, len(trial.curve) + 1), trial.curve, label=f"{name} ({trial.score:.3f})", color=colour
        )
    curves.set(xlabel="boosting rounds", ylabel="mean validation AP", title="Validation curve over the folds")
    curves.legend(loc="lower right")
    scores = [t.score for t in result.trials]
    best_so_far = [max(scores[: i + 1]) for i in range(len(scores))]
    trials.scatter(range(1, len(scores) + 1), scores, s=14, color="#7f8c8d", label="candidate")
    trials.plot(range(1, len(scores) + 1), best_so_far, color="#1f5fa8", label="best so far")
    trials.set(xlabel="candidate (1 = default)", ylabel="mean validation AP", title="Search")
    trials.legend(loc="lower right")
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    return path
