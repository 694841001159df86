"""Best-so-far regret curves: one panel per task, mean line and interquartile band."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from benchmarks.methods import METHODS
from benchmarks.report import SuiteData


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
