"""Aggregate run results into the markdown tables of one suite.

Definitions (also printed above every table):

* *loss*: the noise-free table score of the configuration (mean over the benchmark's training
  seeds), negated for maximised metrics so lower is always better.
* *normalised regret* after n trials: ``(incumbent - best) / (median - best)`` clipped at 0,
  where best/median are over all table configurations: 0 is the table optimum, 1 a median
  configuration. For a problem without a table (CIFAR) best/median are over every trial of
  every run of that task.
* *%-better*: percentage of table configurations strictly better than the incumbent; scale-free.
* *trials to target*: first trial at which the method's median (over seeds) incumbent is at
  least as good as the cold baseline's median incumbent after the full budget, on that task.
* *speed-up*: geometric mean over tasks of the baseline's trials-to-target divided by the
  method's, with a 95% percentile bootstrap interval over seeds (paired: one resample of seeds
  is applied to every method, since a seed fixes the sources all methods share).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
import math

import numpy as np
from scipy.stats import rankdata

from benchmarks.runner import RunResult


BUDGETS: tuple[int, ...] = (1, 5, 10, 25, 50, 100)


def budgets_for(n_trials: int, candidates: Sequence[int] = BUDGETS) -> list[int]:
    """The ``candidates`` a run of ``n_trials`` reaches, then ``n_trials`` itself: a column
    for a budget the run never reached would show a value read at another budget."""
    out = [b for b in candidates if b <= n_trials]
    if n_trials not in out:
        out.append(n_trials)
    return out


@dataclass
class SuiteData:
    """Results of one suite as arrays: ``[task][method]`` -> (n_seeds, n_trials)."""

    suite: str
    tasks: list[str]
    methods: list[str]
    seeds: list[int]
    n_trials: int
    loss: dict[str, dict[str, np.ndarray]]
    regret: dict[str, dict[str, np.ndarray]]
    pct: dict[str, dict[str, np.ndarray]]
    errors: dict[str, list[str]]  # method -> distinct error texts
    n_failed: dict[str, int]
    n_runs: dict[str, int]
    sampler_ms: dict[str, list[float]]
    # task -> one run (first seed) of the first method that records source weights, for the
    # source-weights plot.
    weight_runs: dict[str, RunResult] = field(default_factory=dict)

    @classmethod
    def from_results(
        cls, results: Sequence[RunResult], methods: list[str], seeds: list[int], n_trials: int
    ) -> SuiteData:
        suite = results[0].suite
        tasks = sorted({r.task for r in results})
        nan_curve = np.full(n_trials, np.nan)
        loss: dict[str, dict[str, np.ndarray]] = {t: {} for t in tasks}
        regret: dict[str, dict[str, np.ndarray]] = {t: {} for t in tasks}
        pct: dict[str, dict[str, np.ndarray]] = {t: {} for t in tasks}
        errors: dict[str, list[str]] = {m: [] for m in methods}
        n_failed = dict.fromkeys(methods, 0)
        n_runs = dict.fromkeys(methods, 0)
        sampler_ms: dict[str, list[float]] = {m: [] for m in methods}
        by_key = {(r.task, r.method, r.seed): r for r in results}
        for task in tasks:
            for m in methods:
                rows_l, rows_r, rows_p = [], [], []
                for s in seeds:
                    r = by_key.get((task, m, s))
                    if r is None:
                        continue
                    n_runs[m] += 1
                    if r.error is not None or len(r.best_loss) != n_trials:
                        n_failed[m] += 1
                        text = r.error or f"only {len(r.best_loss)} of {n_trials} trials"
                        if text not in errors[m]:
                            errors[m].append(text)
                        rows_l.append(nan_curve)
                        rows_r.append(nan_curve)
                        rows_p.append(nan_curve)
                        continue
                    rows_l.append(np.asarray(r.best_loss))
                    rows_r.append(np.asarray(r.regret) if r.regret else nan_curve)
                    rows_p.append(np.asarray(r.pct_better) if r.pct_better else nan_curve)
                    sampler_ms[m].append(1000.0 * r.sampler_s_per_trial)
                if rows_l:
                    loss[task][m] = np.vstack(rows_l)
                    regret[task][m] = np.vstack(rows_r)
                    pct[task][m] = np.vstack(rows_p)
        weight_runs = {}
        for task in tasks:
            for m in methods:
                r = by_key.get((task, m, seeds[0])) if seeds else None
                if r is not None and r.error is None and r.source_weights:
                    weight_runs[task] = r
                    break
        return cls(
            suite, tasks, methods, seeds, n_trials, loss, regret, pct, errors, n_failed, n_runs,
            sampler_ms, weight_runs,
        )

    def ok(self, method: str) -> bool:
        """True if at least one run of ``method`` finished."""
        return self.n_failed[method] < self.n_runs[method]

    def pooled(self, which: dict[str, dict[str, np.ndarray]], method: str) -> np.ndarray:
        """(tasks x seeds, n_trials) curves of ``method`` over all tasks."""
        rows = [which[t][method] for t in self.tasks if method in which[t]]
        return np.vstack(rows) if rows else np.full((0, self.n_trials), np.nan)


def _nanmean(a: np.ndarray) -> float:
    a = a[~np.isnan(a)]
    return float(a.mean()) if a.size else math.nan


def _fmt(x: float, digits: int = 3) -> str:
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "∞"
    return f"{x:.{digits}f}"


def _error_cell(data: SuiteData, method: str) -> str:
    text = "; ".join(data.errors[method]).replace("|", "\\|").replace("\n", " ")
    return f"**failed**: `{text}`"


def _by_budget_table(
    data: SuiteData, which: dict[str, dict[str, np.ndarray]], digits: int
) -> list[str]:
    lines = ["| trials | " + " | ".join(data.methods) + " |"]
    lines.append("|---:|" + "---:|" * len(data.methods))
    for i, b in enumerate(budgets_for(data.n_trials)):
        cells = []
        for m in data.methods:
            if not data.ok(m):
                cells.append(_error_cell(data, m) if i == 0 else "—")
            else:
                cells.append(_fmt(_nanmean(data.pooled(which, m)[:, b - 1]), digits))
        lines.append(f"| {b} | " + " | ".join(cells) + " |")
    return lines


def regret_by_budget(
    data: SuiteData, task: str, methods: Sequence[str], budgets: Sequence[int]
) -> list[str]:
    """Markdown table: per method, the mean (median) over seeds of its regret on ``task``
    after each of ``budgets`` trials."""
    lines = ["| method | " + " | ".join(str(b) for b in budgets) + " |"]
    lines.append("|---|" + "---:|" * len(budgets))
    for m in methods:
        if not data.ok(m):
            lines.append(f"| {m} | {_error_cell(data, m)} |" + " |" * (len(budgets) - 1))
            continue
        curves = data.regret[task][m]
        cells = [
            f"{curves[:, b - 1].mean():.4f} ({np.median(curves[:, b - 1]):.4f})" for b in budgets
        ]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return lines


def mean_ranks(data: SuiteData, budget: int) -> dict[str, float]:
    """Mean rank (1 = best, ties averaged) of the working methods at ``budget``."""
    working = [m for m in data.methods if data.ok(m)]
    ranks: dict[str, list[float]] = {m: [] for m in working}
    for t in data.tasks:
        for j in range(len(data.seeds)):
            vals = []
            for m in working:
                curve = data.loss[t].get(m)
                vals.append(np.nan if curve is None or j >= len(curve) else curve[j, budget - 1])
            arr = np.asarray(vals)
            if np.isnan(arr).any():
                continue  # Rank only seeds where every working method finished.
            for m, r in zip(working, rankdata(arr), strict=True):
                ranks[m].append(float(r))
    return {m: (float(np.mean(v)) if v else math.nan) for m, v in ranks.items()}


def trials_to_target(
    data: SuiteData, baseline: str, seed_idx: np.ndarray | None = None
) -> dict[str, dict[str, float]]:
    """Method -> task -> first trial at which the method's median incumbent reaches the target.

    The target of a task is the baseline's median (over seeds) incumbent after the full budget,
    so the baseline itself always reaches it, by its last trial at the latest. inf: the method's
    median incumbent never reaches it. ``seed_idx`` picks (resampled) seeds for the bootstrap.
    """
    out: dict[str, dict[str, float]] = {m: {} for m in data.methods}
    for t in data.tasks:
        base = data.loss[t].get(baseline)
        if base is None:
            continue
        idx = np.arange(len(base)) if seed_idx is None else seed_idx
        base_rows = base[idx]
        base_rows = base_rows[~np.isnan(base_rows).any(axis=1)]
        if not len(base_rows):
            continue  # The baseline failed on this task: no target to reach.
        base_curve = np.median(base_rows, axis=0)
        target = float(base_curve[-1])
        for m in data.methods:
            curves = data.loss[t].get(m)
            if curves is None or not data.ok(m):
                continue
            rows = curves[idx]
            rows = rows[~np.isnan(rows).all(axis=1)]
            if not len(rows):
                continue
            out[m][t] = first_trial_at_or_below(np.median(rows, axis=0), target)
    return out


def _speedup(base: dict[str, float], method: dict[str, float], n_trials: int) -> float:
    # Geometric mean over tasks of base/method trials. A task the method never reaches counts
    # as reached at n_trials + 1, which makes the result an upper bound (flagged by the caller).
    tasks = [t for t in method if t in base]
    if not tasks:
        return math.nan
    logs = [math.log(base[t] / min(method[t], n_trials + 1)) for t in tasks]
    return math.exp(sum(logs) / len(logs))


def speedups(
    data: SuiteData, baseline: str, n_boot: int = 1000, seed: int = 0
) -> dict[str, tuple[float, float, float, float, int]]:
    """Method -> (median over tasks of trials to target, speed-up, 95% CI low, high, tasks
    whose target the method's median run never reaches)."""
    point = trials_to_target(data, baseline)
    if not point.get(baseline):
        return {}
    rng = np.random.default_rng(seed)
    n = len(data.seeds)
    boot: dict[str, list[float]] = {m: [] for m in data.methods}
    for _ in range(n_boot):
        sample = trials_to_target(data, baseline, rng.integers(0, n, size=n))
        for m in data.methods:
            if sample[m]:
                boot[m].append(_speedup(sample[baseline], sample[m], data.n_trials))
    out = {}
    for m in data.methods:
        if not point[m]:
            continue
        med = float(np.median(list(point[m].values())))
        arr = np.asarray(boot[m])
        arr = arr[~np.isnan(arr)]
        lo, hi = (np.percentile(arr, [2.5, 97.5]) if arr.size else (math.nan, math.nan))
        missed = sum(math.isinf(v) for v in point[m].values())
        out[m] = (
            med, _speedup(point[baseline], point[m], data.n_trials), float(lo), float(hi), missed
        )
    return out


def weight_summary(
    results: Sequence[RunResult], methods: list[str], n_trials: int
) -> list[str]:
    """Markdown lines: mean mixture weight of the target and of the sources, for samplers that
    record them (``get_source_weights``). On the ``misleading`` suite this shows whether the
    negated sources lose their trust."""
    budgets = budgets_for(n_trials, (10, 25, 50))
    rows = []
    for m in methods:
        runs = [r for r in results if r.method == m and isinstance(r.source_weights, dict)]
        if not runs:
            continue
        cells = []
        for b in budgets:
            target: list[float] = []
            source: list[float] = []
            for r in runs:
                # Weights are keyed by trial number; zero-shot trials have none, so take the
                # latest entry at or before this budget.
                keys = [k for k in r.source_weights if int(k) <= b - 1]
                if not keys:
                    continue
                w = r.source_weights[max(keys, key=int)]
                target.append(float(w.get("target", math.nan)))
                source.extend(float(v) for k, v in w.items() if k != "target")
            cells.append(f"{_fmt(_nanmean(np.asarray(target)), 2)} / "
                         f"{_fmt(_nanmean(np.asarray(source)), 2)}")
        rows.append(f"| {m} | " + " | ".join(cells) + " |")
    if not rows:
        return []
    return [
        "",
        "## Source weights (mean target weight / mean weight per source)",
        "",
        "As returned by the sampler's `get_source_weights(study)` for the latest trial at or "
        "before each budget, averaged over tasks and seeds.",
        "",
        "| method | " + " | ".join(f"trial {b}" for b in budgets) + " |",
        "|---|" + "---:|" * len(budgets),
        *rows,
    ]


def suite_markdown(
    data: SuiteData,
    baseline: str,
    header: list[str],
    n_boot: int = 1000,
    extra: Sequence[str] = (),
) -> str:
    lines = [f"# Cold vs warm: `{data.suite}` suite", ""]
    lines += header
    lines += [
        "",
        f"Tasks (target datasets): {', '.join(data.tasks)}. Seeds: {len(data.seeds)}. Target "
        f"trials per run: {data.n_trials}. Cold baseline for speed-ups: `{baseline}`.",
        "",
        "## Mean normalised regret (0 = table optimum, 1 = median configuration)",
        "",
        "Mean over tasks and seeds of `max(0, (incumbent - best) / (median - best))`"
        + (
            ", best and median over every trial of every run of the task (no table)."
            if data.suite == "cifar10"
            else ", best and median over the whole table."
        ),
        "",
    ]
    lines += _by_budget_table(data, data.regret, 4)
    lines += [
        "",
        "## Mean %-better (percentage of all table configurations better than the incumbent)",
        "",
    ]
    lines += _by_budget_table(data, data.pct, 3)
    working = [m for m in data.methods if data.ok(m)]
    lines += ["", "## Mean rank (1 = best; ties averaged; per task and seed)", ""]
    lines.append("| trials | " + " | ".join(working) + " |")
    lines.append("|---:|" + "---:|" * len(working))
    for b in budgets_for(data.n_trials):
        r = mean_ranks(data, b)
        lines.append(f"| {b} | " + " | ".join(_fmt(r[m], 2) for m in working) + " |")
    lines += [
        "",
        f"## Trials to reach `{baseline}`'s final median best, speed-up and sampler overhead",
        "",
        f"Target per task: the median over seeds of `{baseline}`'s incumbent loss after "
        f"{data.n_trials} trials. Trials to target: first trial at which the method's median "
        "(over seeds) incumbent reaches it, median over tasks (∞: half or more of the tasks not "
        f"reached within {data.n_trials}). Speed-up: geometric mean over tasks of "
        f"`{baseline}`'s trials to target / the method's; 95% CI: percentile bootstrap over "
        "seeds (paired across methods). Where a method never reaches a task's target it counts "
        f"as {data.n_trials + 1} trials, so its speed-up is an upper bound, marked ≤. "
        "Overhead: (wall time of `study.optimize` - time in the objective) / trials, with "
        "in-memory storage; it includes building the sampler.",
        "",
        "| method | median trials to target | tasks not reached | speed-up | 95% CI | "
        "sampler ms/trial (mean) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    sp = speedups(data, baseline, n_boot=n_boot)
    for m in data.methods:
        if not data.ok(m):
            lines.append(f"| {m} | {_error_cell(data, m)} | | | | |")
            continue
        overhead = _fmt(float(np.mean(data.sampler_ms[m])), 2) if data.sampler_ms[m] else "n/a"
        if m not in sp:
            lines.append(f"| {m} | n/a | | | | {overhead} |")
            continue
        med, s, lo, hi, missed = sp[m]
        bound = "≤ " if missed else ""
        lines.append(
            f"| {m} | {_fmt(med, 1)} | {missed}/{len(data.tasks)} | {bound}{_fmt(s, 2)} | "
            f"[{_fmt(lo, 2)}, {_fmt(hi, 2)}] | {overhead} |"
        )
    if data.suite != "cifar10":
        lines += _top_percent_table(data, TOP_PERCENT)
    # A run shorter than 10 trials has no regret at 10: only its full budget is shown.
    early = 10 if data.n_trials >= 10 else None
    what = ("at 10 trials / at the full budget" if early else
            f"at the full budget ({data.n_trials} trials)")
    lines += ["", f"## Per task: mean normalised regret {what}", ""]
    lines.append("| task | " + " | ".join(working) + " |")
    lines.append("|---|" + "---|" * len(working))
    for t in data.tasks:
        cells = []
        for m in working:
            curves = data.regret[t].get(m)
            if curves is None:
                cells.append("n/a")
                continue
            final = _fmt(_nanmean(curves[:, -1]), 4)
            cells.append(f"{_fmt(_nanmean(curves[:, early - 1]), 4)} / {final}" if early
                         else final)
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    lines += list(extra)
    partial = [m for m in working if data.n_failed[m]]
    if partial:
        lines += [""]
        for m in partial:
            lines.append(
                f"Note: `{m}` failed in {data.n_failed[m]} of {data.n_runs[m]} runs "
                f"(means are over the others): {'; '.join(data.errors[m])}"
            )
    lines += ["", "Definitions:", ""]
    lines += [f"* {d.strip()}" for d in _DEFINITIONS]
    return "\n".join(lines) + "\n"


TOP_PERCENT = 1.0


def first_trial_at_or_below(curve: np.ndarray, level: float) -> float:
    """First trial (1-based) at which a best-so-far ``curve`` is <= ``level``, else inf."""
    hit = np.nonzero(curve <= level)[0]
    return float(hit[0] + 1) if hit.size else math.inf


def trials_to_top(pct_curve: np.ndarray, percent: float) -> float:
    """First trial (1-based) whose incumbent is in the table's top ``percent``%, else inf."""
    return first_trial_at_or_below(pct_curve, percent)


def _top_percent_table(data: SuiteData, percent: float) -> list[str]:
    lines = [
        "",
        f"## Trials to a top-{percent:g}% configuration",
        "",
        f"Per run (task and seed): the first trial whose incumbent is among the table's best "
        f"{percent:g}% of configurations. Median over all runs (∞: half or more never get "
        f"there within {data.n_trials}) and the share of runs that get there.",
        "",
        "| method | median trials | runs reaching it |",
        "|---|---:|---:|",
    ]
    for m in data.methods:
        if not data.ok(m):
            lines.append(f"| {m} | {_error_cell(data, m)} | |")
            continue
        curves = data.pooled(data.pct, m)
        curves = curves[~np.isnan(curves).all(axis=1)]
        hits = np.array([trials_to_top(c, percent) for c in curves])
        med = float(np.median(hits)) if hits.size else math.nan
        share = float(np.mean(np.isfinite(hits))) if hits.size else math.nan
        lines.append(f"| {m} | {_fmt(med, 1)} | {_fmt(100 * share, 0)}% |")
    return lines


_DEFINITIONS = [
    "loss: noise-free table score of the configuration (mean over the benchmark's training "
    "seeds; the sampler is given this same mean, so runs are deterministic), negated for "
    "maximised metrics.",
    "normalised regret: (incumbent - best) / (median - best) over the whole table, clipped at 0.",
    "%-better: percentage of table configurations strictly better than the incumbent.",
    "source studies: generated once per (source problem, seed) and shared by every method of "
    "that seed; enqueued source configurations count as target trials.",
]
