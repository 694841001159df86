"""Best-so-far regret curves: one panel per task, mean line and interquartile band; and the
source weights of one transfer run per task."""

from __future__ import annotations

import math
from pathlib import Path
import re

import numpy as np

from benchmarks.methods import METHODS
from benchmarks.report import SuiteData
from benchmarks.sources import as_study
from benchmarks.suites import suite_tasks
from optuna_transfer.visualization._source_weights import _get_source_weights_info
from optuna_transfer.visualization.matplotlib._source_weights import _draw


WEIGHTS_PNG = "source_weights.png"


def plot_suite(data: SuiteData, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # Headless: workers and CI have no display.
    import matplotlib.pyplot as plt

    n = len(data.tasks)
    cols = min(n, 2)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.0 * cols, 4.2 * rows), squeeze=False)
    x = np.arange(1, data.n_trials + 1)
    colors = plt.get_cmap("tab10")
    working = [m for m in data.methods if data.ok(m)]
    for ax, task in zip(axes.flat, data.tasks, strict=False):
        for i, m in enumerate(data.methods):
            curves = data.regret[task].get(m)
            if m not in working or curves is None:
                continue
            curves = curves[~np.isnan(curves).all(axis=1)]
            if not len(curves):
                continue
            # Colour by registry position so a method looks the same in every suite's plot.
            c = colors(list(METHODS).index(m) % 10 if m in METHODS else i % 10)
            ax.plot(x, curves.mean(axis=0), color=c, label=m, lw=1.8)
            lo, hi = np.percentile(curves, [25, 75], axis=0)
            ax.fill_between(x, lo, hi, color=c, alpha=0.18, lw=0)
        ax.set_xscale("log")
        ticks = [b for b in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if b <= data.n_trials]
        ax.set_xticks(ticks, [str(b) for b in ticks])
        ax.minorticks_off()
        # Regret spans decades and reaches 0 at the optimum: symlog keeps 0 on the axis while
        # showing small regrets on a log scale.
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_ylim(bottom=0)
        ax.set_title(task)
        ax.set_xlabel("target trials")
        ax.set_ylabel("normalised regret (best so far)")
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    failed = [m for m in data.methods if m not in working]
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=max(len(labels), 1), frameon=False)
    title = (
        f"{data.suite}: mean (line) and interquartile range (band) over {len(data.seeds)} seeds"
    )
    if failed:
        title += f"\nfailed, not drawn: {', '.join(failed)} (see table)"
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    if data.weight_runs:
        plot_source_weights(data, path.with_name(WEIGHTS_PNG))


def plot_source_weights(data: SuiteData, path: Path) -> None:
    """One panel per task: the source weights of the first seed's run of the first method that
    records them (the data of optuna_transfer.visualization.plot_source_weights)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directions = {t.name: t.target.direction for t in suite_tasks(data.suite)}
    tasks = [t for t in data.tasks if t in data.weight_runs]
    cols = min(len(tasks), 2)
    rows = math.ceil(len(tasks) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 5.0 * rows), squeeze=False)
    for ax, task in zip(axes.flat, tasks, strict=False):
        run = data.weight_runs[task]
        study = as_study(run.study_name, directions.get(task, "minimize"), run.trials)
        _draw(_get_source_weights_info(study, None, None, "objective value"), ax)
        ax.set_title(f"{task}: {run.method}, seed {run.seed}")
        handles, labels = ax.get_legend_handles_labels()
        right_handles, right_labels = ax.figure.axes[-1].get_legend_handles_labels()
        ax.legend(handles + right_handles, [_short(x) for x in labels + right_labels],
                  loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, fontsize="x-small")
    for ax in list(axes.flat)[len(tasks):]:
        ax.axis("off")
    fig.suptitle(f"{data.suite}: weight of each source's vote per trial (left axis) and the "
                 "target's objective (right axis)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _short(label: str) -> str:
    # "weight: source-hpolib-naval_propulsion-tpe-mixed-n30-seed0" -> "weight: naval_propulsion"
    match = re.fullmatch(r"weight: source-[^-]+-(.+)-(?:tpe|random)-.*", label)
    return f"weight: {match.group(1)}" if match else label
