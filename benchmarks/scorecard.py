"""The issue #17 scorecard: does the warm method beat its anchors, suite by suite?

Reads the ``<suite>/curves.json`` files that ``python -m benchmarks.cold_vs_warm ... --out DIR``
writes and prints one markdown report::

    python -m benchmarks.scorecard results/a results/b [--out scorecard.md]

Each argument is an output folder of ``cold_vs_warm`` (every ``*/curves.json`` under it is
read), one suite's folder, or a ``curves.json`` file. A suite met twice is an error: which run
would count is not obvious.

Roles per suite. The *warm* method is ``transfer-tpe``, or ``warm-grid`` on grid suites (those
that ran it). Its *anchors* are the ways a user warm-starts without this package:
``tpe+enqueue`` and ``wscmaes`` (``grid+enqueue`` on grid suites); the *cold* method is ``tpe``
(``grid``). For each task and budget in :data:`BUDGETS`:

* the mean over seeds of each method's normalised regret (finished runs only; a method that
  failed on every seed of a task has no value there);
* the ratio of the warm method's mean to each anchor's, to the best anchor's (the lowest mean
  among the anchors that ran) and to cold's, as ``(warm + EPS) / (other + EPS)``, since both
  can be 0 (the table optimum found).

Per suite, the geometric mean of those ratios over tasks; over all suites, the geometric mean
of the per-suite ones. Then the issue's targets, one row each: target, measured, holds.

Where the suite also ran the cold method with another seed stream (``tpe-reseeded``,
``grid-reseeded``: name it in ``cold_vs_warm --methods``), each target against cold also says
how that method fares against cold by the same measure: the noise of a few seeds, below which a
target against cold cannot tell a worse search from a different draw. Where the runs recorded
their sources, the geometric-mean targets against cold (the misleading ones) also give a delay
reference (:func:`delay_reference`): what cold scores had it spent the warm method's zero-shot
trials on nothing. The targets against the replay in the first trials name, for each task
above it, what one trial less of the replay scores (:func:`one_trial_reference`): the cost of a
probe that does not beat the best pick.

Each geometric-mean target, and each task a per-task target lists above its limit, also gets an
interval (:func:`bootstrap_replicates`): the central 90% of the same measure over draws of the
seeds, pairs of runs of one seed kept together. Where it straddles the limit, more seeds, not
the sampler, would settle the target. It is only as wide as the runs that happened: where one
rare run decides a mean, the interval is too narrow, and the noise reference shows it (the
reseeded cold method, the same sampler as cold, far from 1 with a narrow interval of its own).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace
import json
import math
from pathlib import Path
import sys
from typing import Any

import numpy as np


if not __package__:
    # Run as a file: make the repository root importable, as under `python -m`.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import provenance  # noqa: E402
from benchmarks.arguments import check_output_file  # noqa: E402
from benchmarks.report import first_trial_at_or_below  # noqa: E402
from optuna_transfer._schedule import portfolio_size  # noqa: E402


BUDGETS: tuple[int, ...] = (3, 5, 10, 25, 50)
# Normalised regret puts a median configuration at 1 on every suite (the tables, the continuous
# family's median random configuration, CIFAR's median trial), so 1e-3 of the median
# configuration's regret is this one constant everywhere.
EPS = 1e-3

# Targets of issue #17.
ANCHOR_TARGET = 0.6  # geomean warm / best anchor, at every budget of ANCHOR_BUDGETS
ANCHOR_BUDGETS = (10, 25, 50)
EARLY_BUDGETS = (3, 5)  # no task above 1.0x the enqueue anchor
FINAL_BUDGET = 50  # no task above cold
MISLEADING_TARGETS = ((50, 1.1), (10, 1.15))  # geomean warm / cold on misleading suites
GRID_TRIALS_TARGET = 10  # trials for warm-grid to reach grid's 50-trial median best

# How far a measure moves with the seeds drawn: the central INTERVAL of it over N_BOOTSTRAP
# draws of each task's seeds with replacement (see :func:`bootstrap_replicates`).
N_BOOTSTRAP = 1000
INTERVAL = 0.9


@dataclass(frozen=True)
class Roles:
    """Which method plays which part on a suite."""

    warm: str
    enqueue: str
    cold: str
    anchors: tuple[str, ...]
    grid: bool
    # The cold method again with another seed stream, where it ran: the noise reference.
    reseeded: str


TABLE_ROLES = Roles(
    "transfer-tpe", "tpe+enqueue", "tpe", ("tpe+enqueue", "wscmaes"), False, "tpe-reseeded"
)
GRID_ROLES = Roles("warm-grid", "grid+enqueue", "grid", ("grid+enqueue",), True, "grid-reseeded")


def roles_for(methods: Sequence[str]) -> Roles:
    """Grid roles where the suite ran ``warm-grid``, table roles otherwise."""
    return GRID_ROLES if GRID_ROLES.warm in methods else TABLE_ROLES


@dataclass
class SuiteRuns:
    """One suite's runs: per task and method, the finished runs' curves, seeds in rows."""

    suite: str
    path: Path
    command: str | None
    # Where the runs were made (curves written before it was recorded have none).
    machine: str | None
    # What made them: the versions (and commit) cold_vs_warm recorded.
    versions: str | None
    n_trials: int
    tasks: list[str]
    methods: list[str]
    regret: dict[str, dict[str, np.ndarray]]  # task -> method -> (finished runs, n_trials)
    best_loss: dict[str, dict[str, np.ndarray]]
    seeds: dict[str, dict[str, np.ndarray]]  # task -> method -> the seed of each finished run
    n_runs: dict[str, int]  # method -> runs, over all tasks
    n_failed: dict[str, int]
    errors: dict[str, list[str]]  # method -> distinct error texts
    n_sources: dict[str, int]  # task -> source studies, where the runs recorded them

    @property
    def roles(self) -> Roles:
        return roles_for(self.methods)

    def mean_regret(self, task: str, method: str, budget: int) -> float:
        """Mean over finished seeds of ``method``'s regret after ``budget`` trials; nan where it
        has no finished run on ``task`` or the runs are shorter than ``budget``."""
        rows = self.regret.get(task, {}).get(method)
        if rows is None or not len(rows) or budget > rows.shape[1]:
            return math.nan
        return float(rows[:, budget - 1].mean())


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    kinds: dict[type, str] = {dict: "a JSON object", list: "a list", str: "a string"}
    return kinds.get(type(value), "a number")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# What load_curves reads of each run: a check of it and what it should be.
_RUN_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "task": (lambda v: isinstance(v, str), "a string"),
    "method": (lambda v: isinstance(v, str), "a string"),
    "seed": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "error": (lambda v: v is None or isinstance(v, str), "a string or null"),
    "normalised_regret": (lambda v: isinstance(v, list), "a list of numbers"),
    "best_loss": (lambda v: isinstance(v, list), "a list of numbers"),
}


def _checked_runs(doc: Any) -> list[dict[str, Any]]:
    """The runs of a ``curves.json`` document; a ValueError saying what is wrong with it
    (not a KeyError or TypeError from deep in the tables)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("runs"), list):
        got = 'no "runs"' if isinstance(doc, dict) and "runs" not in doc else _json_kind(
            doc.get("runs") if isinstance(doc, dict) else doc)
        raise ValueError(f'expected a JSON object with a "runs" list, got {got}')
    n_trials = doc.get("n_trials")
    if n_trials is not None and not (_is_number(n_trials) and n_trials == int(n_trials)):
        raise ValueError(f'"n_trials" is {_json_kind(n_trials)}, expected an integer')
    for i, run in enumerate(doc["runs"], start=1):
        if not isinstance(run, dict):
            raise ValueError(f"run {i}: expected a JSON object, got {_json_kind(run)}")
        for key, (ok, expected) in _RUN_FIELDS.items():
            if key not in run:
                raise ValueError(f'run {i}: no "{key}"')
            if not ok(run[key]):
                raise ValueError(f'run {i}: "{key}" is {_json_kind(run[key])}, expected '
                                 f"{expected}")
            bad = [v for v in run[key] if not _is_number(v)] if isinstance(
                run[key], list) else []
            if bad:
                raise ValueError(f'run {i}: "{key}" holds {_json_kind(bad[0])}, expected '
                                 "numbers only")
    return doc["runs"]


def load_curves(path: Path) -> SuiteRuns:
    """A ``curves.json`` of ``cold_vs_warm`` as :class:`SuiteRuns`; a ValueError naming the
    file and what is wrong where it is not one."""
    try:
        with open(path, encoding="utf-8") as f:
            doc: dict[str, Any] = json.load(f)
        runs = _checked_runs(doc)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    n_trials = int(doc.get("n_trials") or max((len(r["normalised_regret"]) for r in runs),
                                                default=0))
    methods = list(dict.fromkeys(r["method"] for r in runs))
    tasks = sorted({r["task"] for r in runs})
    regret_rows: dict[str, dict[str, list[list[float]]]] = {t: {} for t in tasks}
    loss_rows: dict[str, dict[str, list[list[float]]]] = {t: {} for t in tasks}
    seed_rows: dict[str, dict[str, list[int]]] = {t: {} for t in tasks}
    n_runs = dict.fromkeys(methods, 0)
    n_failed = dict.fromkeys(methods, 0)
    errors: dict[str, list[str]] = {m: [] for m in methods}
    n_sources: dict[str, int] = {}
    for r in runs:
        m = r["method"]
        n_runs[m] += 1
        if r.get("source_studies"):
            n_sources[r["task"]] = max(n_sources.get(r["task"], 0), len(r["source_studies"]))
        curve = r["normalised_regret"]
        error = r["error"]
        if error is None and len(curve) < n_trials:
            error = f"only {len(curve)} of {n_trials} trials"
        if error is not None:
            n_failed[m] += 1
            if error not in errors[m]:
                errors[m].append(error)
            continue
        regret_rows[r["task"]].setdefault(m, []).append(curve[:n_trials])
        loss_rows[r["task"]].setdefault(m, []).append(r["best_loss"][:n_trials])
        seed_rows[r["task"]].setdefault(m, []).append(int(r["seed"]))

    def arrays(rows: dict[str, dict[str, list[list[float]]]]) -> dict[str, dict[str, np.ndarray]]:
        return {t: {m: np.asarray(v, dtype=float) for m, v in by_m.items()}
                for t, by_m in rows.items()}

    return SuiteRuns(
        suite=str(doc.get("suite") or path.parent.name),
        path=path,
        command=doc.get("command"),
        machine=doc.get("machine"),
        versions=doc.get("versions"),
        n_trials=n_trials,
        tasks=tasks,
        methods=methods,
        regret=arrays(regret_rows),
        best_loss=arrays(loss_rows),
        seeds={t: {m: np.asarray(v, dtype=int) for m, v in by_m.items()}
               for t, by_m in seed_rows.items()},
        n_runs=n_runs,
        n_failed=n_failed,
        errors=errors,
        n_sources=n_sources,
    )


def find_curves(paths: Iterable[Path]) -> list[Path]:
    """Every ``curves.json`` the arguments name: the file, a suite folder or an output folder."""
    found: list[Path] = []
    for p in paths:
        if p.is_file():
            found.append(p)
        elif (p / "curves.json").is_file():
            found.append(p / "curves.json")
        else:
            inside = sorted(p.glob("*/curves.json"))
            if not inside:
                raise FileNotFoundError(f"{p}: no curves.json in it or in its sub-folders.")
            found.extend(inside)
    return found


def load_suites(paths: Iterable[Path]) -> list[SuiteRuns]:
    suites: list[SuiteRuns] = []
    for path in find_curves(paths):
        data = load_curves(path)
        for other in suites:
            if other.suite == data.suite:
                raise ValueError(
                    f"suite {data.suite!r} is in both {other.path} and {path}; pass one of them."
                )
        suites.append(data)
    return suites


# A comparison: its label and, given the suite, task and budget, the other side's mean regret.
Comparison = tuple[str, Callable[[SuiteRuns, str, int], float]]


def _anchor_regret(method_of: Callable[[Roles], str | None]) -> Callable[
    [SuiteRuns, str, int], float
]:
    def regret(data: SuiteRuns, task: str, budget: int) -> float:
        method = method_of(data.roles)
        return math.nan if method is None else data.mean_regret(task, method, budget)

    return regret


def best_anchor_regret(data: SuiteRuns, task: str, budget: int) -> float:
    """The lowest mean regret among the suite's anchors that ran on ``task``; nan if none."""
    values = [data.mean_regret(task, a, budget) for a in data.roles.anchors]
    finite = [v for v in values if not math.isnan(v)]
    return min(finite) if finite else math.nan


COMPARISONS: tuple[Comparison, ...] = (
    ("enqueue anchor", _anchor_regret(lambda r: r.enqueue)),
    ("wscmaes", _anchor_regret(lambda r: None if r.grid else "wscmaes")),
    ("best anchor", best_anchor_regret),
    ("cold", _anchor_regret(lambda r: r.cold)),
)
COMPARISON_NAMES = tuple(name for name, _ in COMPARISONS)


def compared_methods(roles: Roles, comparison: str) -> tuple[str, ...]:
    """The methods ``comparison`` reads (any one of them will do for the best anchor)."""
    return {
        "enqueue anchor": (roles.enqueue,),
        "wscmaes": () if roles.grid else ("wscmaes",),
        "best anchor": roles.anchors,
        "cold": (roles.cold,),
    }[comparison]


def not_run(data: SuiteRuns, comparison: str) -> list[str]:
    """The methods of ``comparison`` with no run at all on the suite (a run that failed counts
    as run: it is reported as failed)."""
    return [m for m in compared_methods(data.roles, comparison) if m not in data.methods]


def comparable(data: SuiteRuns, comparison: str) -> bool:
    """Whether the suite ran the warm method and some method ``comparison`` reads."""
    needed = compared_methods(data.roles, comparison)
    return data.roles.warm in data.methods and len(not_run(data, comparison)) < len(needed)


def _quoted(methods: Iterable[str]) -> str:
    return ", ".join(f"`{m}`" for m in methods)


def ratio(warm: float, other: float) -> float:
    """``(warm + EPS) / (other + EPS)``; nan when either side is missing."""
    if math.isnan(warm) or math.isnan(other):
        return math.nan
    return (warm + EPS) / (other + EPS)


def task_ratios(
    data: SuiteRuns, comparison: str, budget: int, method: str | None = None
) -> dict[str, float]:
    """Task -> ratio of ``method`` (default: the warm method) to ``comparison`` at ``budget``
    (tasks with both)."""
    other_of = dict(COMPARISONS)[comparison]
    method = data.roles.warm if method is None else method
    out = {}
    for t in data.tasks:
        r = ratio(data.mean_regret(t, method, budget), other_of(data, t, budget))
        if not math.isnan(r):
            out[t] = r
    return out


def noise_reference(data: SuiteRuns, budget: int, limit: float | None) -> str:
    """What the cold method scores against itself with another seed stream (``Roles.reseeded``)
    at ``budget``: the geometric mean over tasks, and with ``limit`` the tasks above it.
    Empty where that method did not run. A target against cold that the cold method itself
    misses on these seeds cannot tell a worse search from seed noise."""
    reseeded = data.roles.reseeded
    if reseeded not in data.methods:
        return ""
    ratios = task_ratios(data, "cold", budget, reseeded)
    if not ratios:
        return ""
    text = (f"; noise reference, {reseeded} / {data.roles.cold}: "
            f"geomean {geomean(ratios.values()):.3f}")
    if limit is not None:
        above = _tasks_above(ratios, limit)
        text += f", max {max(ratios.values()):.3f}"
        if above:
            text += f", above: {', '.join(above)}"
    return text


def delay_reference(data: SuiteRuns, budget: int) -> str:
    """What the cold method scores against itself had it started ``k`` trials late, ``k`` the
    warm method's zero-shot trials (one per source by default): the geometric mean over tasks
    of cold's mean regret at ``budget - k`` over its mean regret at ``budget``. Empty where the
    runs did not record their sources.

    Evaluating the sources' picks first is what keeps the warm method level with the replay in
    its first trials; on misleading sources those trials say nothing of where the target is
    good, so a warm method that afterwards searched as well as cold would score this. Not a
    bound (a search better than cold's could do better), a measure of what the picks cost."""
    cold = data.roles.cold
    ratios: dict[str, float] = {}
    delays: set[int] = set()
    for t in data.tasks:
        n = data.n_sources.get(t)
        if not n:
            continue
        k = portfolio_size(None, n)
        if k >= budget:
            continue
        r = ratio(data.mean_regret(t, cold, budget - k), data.mean_regret(t, cold, budget))
        if not math.isnan(r):
            ratios[t] = r
            delays.add(k)
    if not ratios:
        return ""
    k_text = ", ".join(str(k) for k in sorted(delays))
    return (f"; delay reference, {cold} at {budget} - k (k = {k_text} zero-shot trials) / "
            f"{cold}: geomean {geomean(ratios.values()):.3f}")


def one_trial_reference(data: SuiteRuns, budget: int, tasks: Iterable[str]) -> str:
    """What one trial costs the replay on ``tasks``: the enqueue anchor's mean regret after
    ``budget - 1`` trials over its own after ``budget``. Empty where no task has both.

    A warm method that spends one of its first ``budget`` trials on a probe, and whose probe
    does not beat the best of the sources' picks, is behind the replay by exactly this much;
    above it, the trials after the probe lost ground too."""
    enqueue = data.roles.enqueue
    parts = []
    for t in tasks:
        r = ratio(data.mean_regret(t, enqueue, budget - 1), data.mean_regret(t, enqueue, budget))
        if not math.isnan(r):
            parts.append(f"{t} {r:.3f}")
    if not parts:
        return ""
    return f"; one trial less of {enqueue} on those tasks: {', '.join(parts)}"


def geomean(values: Iterable[float]) -> float:
    """Geometric mean of the finite values; nan if there are none."""
    logs = [math.log(v) for v in values if not math.isnan(v)]
    return math.exp(sum(logs) / len(logs)) if logs else math.nan


def suite_geomean(data: SuiteRuns, comparison: str, budget: int) -> float:
    return geomean(task_ratios(data, comparison, budget).values())


def overall_geomean(suites: Sequence[SuiteRuns], comparison: str, budget: int) -> float:
    """Geometric mean over suites of the per-suite geometric means."""
    return geomean(suite_geomean(s, comparison, budget) for s in suites)


def bootstrap_replicates(
    data: SuiteRuns, n: int = N_BOOTSTRAP, seed: int = 0
) -> list[SuiteRuns]:
    """``n`` copies of ``data``, each with every task's seeds drawn again with replacement.

    A task's draw is over the seeds on which every method that ran there finished, and the
    same draw serves every method: a seed fixes the task's source studies (and a method's
    target seed), so the methods' runs of one seed are a pair. A method that finished on no
    seed of the task stays out of it, as in the means. Seeded, so a report is reproducible.
    """
    rng = np.random.default_rng(seed)
    common: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]] = {}
    for t in data.tasks:
        by_method = data.seeds.get(t, {})
        finished = [set(v.tolist()) for v in by_method.values()]
        shared = sorted(set.intersection(*finished)) if finished else []
        # Each method's row of each shared seed (a seed's first finished run).
        rows = {m: np.array([int(np.flatnonzero(v == s_)[0]) for s_ in shared], dtype=int)
                for m, v in by_method.items()}
        common[t] = (np.asarray(shared, dtype=int), rows)
    replicates = []
    for _ in range(n):
        regret: dict[str, dict[str, np.ndarray]] = {}
        best_loss: dict[str, dict[str, np.ndarray]] = {}
        seeds: dict[str, dict[str, np.ndarray]] = {}
        for t, (task_seeds, rows) in common.items():
            if not len(task_seeds):
                regret[t], best_loss[t], seeds[t] = {}, {}, {}
                continue
            draw = rng.integers(0, len(task_seeds), size=len(task_seeds))
            regret[t] = {m: data.regret[t][m][r[draw]] for m, r in rows.items()}
            best_loss[t] = {m: data.best_loss[t][m][r[draw]] for m, r in rows.items()}
            seeds[t] = {m: task_seeds[draw] for m in rows}
        replicates.append(replace(data, regret=regret, best_loss=best_loss, seeds=seeds))
    return replicates


def interval(values: Iterable[float], level: float = INTERVAL) -> tuple[float, float]:
    """The central ``level`` of the finite ``values`` (percentiles); nan, nan if none."""
    finite = np.array([v for v in values if not math.isnan(v)], dtype=float)
    if not len(finite):
        return math.nan, math.nan
    tail = 50.0 * (1.0 - level)
    lo, hi = np.percentile(finite, [tail, 100.0 - tail])
    return float(lo), float(hi)


def _interval_text(lo: float, hi: float) -> str:
    return f"{_fmt(lo)}-{_fmt(hi)}"


def trials_to_cold_final(data: SuiteRuns, task: str, budget: int = FINAL_BUDGET) -> float:
    """First trial at which the warm method's median-over-seeds incumbent reaches the cold
    method's median-over-seeds incumbent after ``budget`` trials (inf: never; nan: a side
    has no finished run or the runs are shorter than ``budget``)."""
    roles = data.roles
    warm = data.best_loss[task].get(roles.warm)
    cold = data.best_loss[task].get(roles.cold)
    if warm is None or cold is None or budget > data.n_trials:
        return math.nan
    target = float(np.median(cold[:, budget - 1]))
    return first_trial_at_or_below(np.median(warm, axis=0), target)


@dataclass(frozen=True)
class Check:
    target: str
    measured: str
    holds: bool | None  # None: could not be measured


def _fmt(x: float, digits: int = 3) -> str:
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "never"
    return f"{x:.{digits}f}"


def _names_above(ratios: dict[str, float], limit: float) -> list[str]:
    """The tasks whose ratio is above ``limit``, worst first."""
    return [t for t, r in sorted(ratios.items(), key=lambda kv: -kv[1]) if r > limit]


def _tasks_above(ratios: dict[str, float], limit: float) -> list[str]:
    # Three decimals: a task just above the limit must not print as the limit itself.
    return [f"{t} {ratios[t]:.3f}" for t in _names_above(ratios, limit)]


def _short(data: SuiteRuns, budget: int) -> str | None:
    if budget > data.n_trials:
        return f"n/a: runs have {data.n_trials} trials"
    return None


def _not_run_text(data: SuiteRuns, comparison: str) -> str | None:
    """Why ``comparison`` cannot be measured for lack of runs, or None."""
    if comparable(data, comparison):
        return None
    missing = [m for m in (data.roles.warm, *not_run(data, comparison))
               if m not in data.methods]
    return f"not run: {_quoted(missing)} did not run on this suite"


def _geomean_check(data: SuiteRuns, comparison: str, budget: int, limit: float,
                   what: str, replicates: Sequence[SuiteRuns]) -> Check:
    target = f"`{data.suite}`: geomean {data.roles.warm} / {what} at {budget} <= {limit:g}x"
    if (why := _not_run_text(data, comparison) or _short(data, budget)) is not None:
        return Check(target, why, None)
    g = suite_geomean(data, comparison, budget)
    if math.isnan(g):
        return Check(target, f"n/a: no task where both {data.roles.warm} and {what} finished",
                     None)
    lo, hi = interval(suite_geomean(r, comparison, budget) for r in replicates)
    measured = f"{g:.3f} ({_interval_text(lo, hi)} over seeds)"
    if comparison == "cold":
        measured += noise_reference(data, budget, None) + delay_reference(data, budget)
    if comparison == "best anchor" and (missing := not_run(data, comparison)):
        ran = [a for a in data.roles.anchors if a not in missing]
        measured += (f"; best anchor of {_quoted(ran)} alone ({_quoted(missing)} did not "
                     "run)")
    return Check(target, measured, g <= limit)


def _per_task_check(data: SuiteRuns, comparison: str, budget: int, what: str,
                    replicates: Sequence[SuiteRuns]) -> Check:
    target = f"`{data.suite}`: no task above 1.0x {what} at {budget}"
    if (why := _not_run_text(data, comparison) or _short(data, budget)) is not None:
        return Check(target, why, None)
    ratios = task_ratios(data, comparison, budget)
    if not ratios:
        return Check(target, f"n/a: no task where both {data.roles.warm} and {what} finished",
                     None)
    names = _names_above(ratios, 1.0)
    drawn = [task_ratios(r, comparison, budget) for r in replicates] if names else []
    above = [
        f"{t} {ratios[t]:.3f} ({_interval_text(*interval(d.get(t, math.nan) for d in drawn))})"
        for t in names
    ]
    measured = f"max {max(ratios.values()):.3f}" + (
        f"; above: {', '.join(above)}" if above else ""
    )
    if comparison == "cold":
        measured += noise_reference(data, budget, 1.0)
    if comparison == "enqueue anchor" and names:
        measured += one_trial_reference(data, budget, names)
    return Check(target, measured, not above)


def checks(suites: Sequence[SuiteRuns]) -> list[Check]:
    """The issue's targets on ``suites``, in the order the report lists them."""
    out: list[Check] = []
    drawn = {s.suite: bootstrap_replicates(s) for s in suites}
    for s in suites:
        for b in ANCHOR_BUDGETS:
            out.append(_geomean_check(s, "best anchor", b, ANCHOR_TARGET, "best anchor",
                                      drawn[s.suite]))
    for s in suites:
        for b in EARLY_BUDGETS:
            out.append(_per_task_check(s, "enqueue anchor", b, s.roles.enqueue,
                                       drawn[s.suite]))
    for s in suites:
        out.append(_per_task_check(s, "cold", FINAL_BUDGET, f"cold {s.roles.cold}",
                                   drawn[s.suite]))
    for s in suites:
        if "misleading" in s.suite:
            for b, limit in MISLEADING_TARGETS:
                out.append(_geomean_check(s, "cold", b, limit, f"cold {s.roles.cold}",
                                          drawn[s.suite]))
    for s in suites:
        if s.suite == "continuous":
            out.append(_geomean_check(s, "wscmaes", FINAL_BUDGET, 1.0, "wscmaes",
                                      drawn[s.suite]))
    for s in suites:
        if s.roles.grid:
            out.append(_grid_check(s))
    return out


def _grid_check(data: SuiteRuns) -> Check:
    roles = data.roles
    target = (f"`{data.suite}`: trials for {roles.warm}'s median best to reach {roles.cold}'s "
              f"{FINAL_BUDGET}-trial median best <= {GRID_TRIALS_TARGET} on every task")
    if (why := _short(data, FINAL_BUDGET)) is not None:
        return Check(target, why, None)
    trials = {t: trials_to_cold_final(data, t) for t in data.tasks}
    trials = {t: v for t, v in trials.items() if not math.isnan(v)}
    if not trials:
        return Check(target, "n/a: no task where both finished", None)
    above = [f"{t} {_fmt(v, 0)}" for t, v in trials.items() if v > GRID_TRIALS_TARGET]
    measured = f"max {_fmt(max(trials.values()), 0)}" + (
        f"; above: {', '.join(above)}" if above else ""
    )
    return Check(target, measured, not above)


def _holds(h: bool | None) -> str:
    return "not measured" if h is None else ("yes" if h else "**no**")


def _ratio_table(rows: list[tuple[str, list[float]]], budgets: Sequence[int]) -> list[str]:
    lines = ["| warm / | " + " | ".join(str(b) for b in budgets) + " |",
             "|---|" + "---:|" * len(budgets)]
    for name, values in rows:
        lines.append(f"| {name} | " + " | ".join(_fmt(v) for v in values) + " |")
    return lines


def _suite_section(data: SuiteRuns) -> list[str]:
    roles = data.roles
    budgets = [b for b in BUDGETS if b <= data.n_trials]
    anchors = [a for a in roles.anchors if a in data.methods]
    missing = [a for a in roles.anchors if a not in anchors]
    anchor_text = _quoted(anchors) or "none"
    if missing:
        anchor_text += f" ({_quoted(missing)} did not run: left out of the comparisons)"
    lines = [
        "",
        f"## `{data.suite}`",
        "",
        f"From `{data.path}`" + (f", made by `{data.command}`" if data.command else "")
        + (f" on {data.machine}" if data.machine else "") + ". "
        f"Warm: `{roles.warm}`; anchors: {anchor_text}; "
        f"cold: `{roles.cold}`. Tasks: {len(data.tasks)}; trials per run: {data.n_trials}.",
    ]
    lines += _suite_tables(data, budgets, anchors) if budgets else ["", _no_budget(data.n_trials)]
    failed = [m for m in data.methods if data.n_failed[m]]
    if failed:
        lines.append("")
        for m in failed:
            text = "; ".join(data.errors[m]).replace("|", "\\|").replace("\n", " ")
            lines.append(f"* `{m}` failed in {data.n_failed[m]} of {data.n_runs[m]} runs "
                         f"(left out of its means): `{text}`")
    return lines


def _no_budget(n_trials: int) -> str:
    # A table with no budget column would be all row names and empty cells.
    return (f"No ratios: the runs have {n_trials} trials, fewer than the first budget, "
            f"{BUDGETS[0]}.")


def _suite_tables(data: SuiteRuns, budgets: Sequence[int], anchors: list[str]) -> list[str]:
    """The suite's ratio table and per-task table at ``budgets``."""
    roles = data.roles
    lines = ["", "Geometric mean over tasks of the warm method's ratio to each:", ""]
    names = [c for c in COMPARISON_NAMES if compared_methods(roles, c) and comparable(data, c)]
    labels = {"enqueue anchor": roles.enqueue, "cold": f"cold {roles.cold}"}
    lines += _ratio_table(
        [(labels.get(c, c), [suite_geomean(data, c, b) for b in budgets]) for c in names],
        budgets,
    )
    shown = [m for m in (roles.warm, *anchors, roles.cold, roles.reseeded) if m in data.methods]
    lines += [
        "",
        "Per task: mean regret over finished seeds, and the warm method's ratio to "
        + ", ".join(labels.get(c, c) for c in names) + ":",
        "",
        "| task | trials | " + " | ".join(shown) + " | "
        + " | ".join(f"/ {labels.get(c, c)}" for c in names) + " |",
        "|---|---:|" + "---:|" * (len(shown) + len(names)),
    ]
    comparisons = dict(COMPARISONS)
    for t in data.tasks:
        for b in budgets:
            warm = data.mean_regret(t, roles.warm, b)
            cells = [_fmt(data.mean_regret(t, m, b), 4) for m in shown]
            cells += [_fmt(ratio(warm, comparisons[c](data, t, b)), 2) for c in names]
            lines.append(f"| {t} | {b} | " + " | ".join(cells) + " |")
    return lines


def scorecard_markdown(suites: Sequence[SuiteRuns], command: str | None = None) -> str:
    """The whole report."""
    budgets = [b for b in BUDGETS if any(b <= s.n_trials for s in suites)]
    results = checks(suites)
    n_holds = sum(c.holds is True for c in results)
    n_measured = sum(c.holds is not None for c in results)
    lines = ["# Scorecard (issue #17)", ""]
    if command is not None:
        # The runs' versions, as recorded with them: a scorecard of old results made from
        # today's checkout is of those results.
        made = list(dict.fromkeys(s.versions or "not recorded" for s in suites))
        lines += [
            f"* Command: `{command}`",
            f"* Versions of the runs: {'; '.join(made)}",
            f"* Scorecard written with: {provenance.versions()}",
        ]
    lines.append(f"* Suites: {', '.join(f'`{s.suite}`' for s in suites)}")
    # Said only where it happened: a comparison with an anchor that did not run is left out.
    missing = [f"`{s.suite}`: {_quoted(m)}" for s in suites
               if (m := [a for a in s.roles.anchors if a not in s.methods])]
    if missing:
        lines.append(f"* Anchors that did not run: {'; '.join(missing)}")
    lines += [
        "",
        "Regret: the runs' normalised regret (0 = the optimum, 1 = a median configuration), "
        "mean over the seeds whose run finished. Ratio: `(warm + ε) / (other + ε)` with "
        f"ε = {EPS:g}, that is {EPS:g} x a median configuration's regret, so that a regret of 0 "
        "(the optimum found) gives a finite ratio. Warm: `transfer-tpe` (`warm-grid` on grid "
        "suites); enqueue anchor: `tpe+enqueue` (`grid+enqueue`); best anchor: per task and "
        "budget the lowest mean regret among `tpe+enqueue` and `wscmaes` where it finished "
        "(`grid+enqueue` alone on grid suites); cold: `tpe` (`grid`). Per suite: geometric mean "
        "over tasks; below 1 the warm method is better.",
        "",
        f"Intervals: the central {INTERVAL:.0%} of the same measure over {N_BOOTSTRAP} "
        "draws of the seeds (each task's seeds drawn with replacement, one draw for every "
        "method of the task: a seed fixes its source studies). A target whose interval "
        "straddles its limit is not settled by these seeds either way. The interval knows "
        "only the runs that happened: where a rare run decides a mean it is too narrow, and "
        "the noise reference (cold reseeded against cold, the same sampler) says where.",
        "",
        "## Over all suites: geometric mean of the per-suite geometric means",
        "",
    ]
    lines += _ratio_table(
        [(c, [overall_geomean(suites, c, b) for b in budgets]) for c in COMPARISON_NAMES
         if any(comparable(s, c) for s in suites)],
        budgets,
    ) if budgets else [_no_budget(max(s.n_trials for s in suites))]
    lines += [
        "",
        f"## Targets: {n_holds} of {n_measured} measured hold",
        "",
        "Misleading targets apply to every suite whose name contains `misleading`.",
        "",
        "| target | measured | holds? |",
        "|---|---|---|",
    ]
    lines += [f"| {c.target} | {c.measured} | {_holds(c.holds)} |" for c in results]
    for s in suites:
        lines += _suite_section(s)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.scorecard",
        description="The issue #17 scorecard of cold_vs_warm output folders.",
    )
    p.add_argument("paths", nargs="+", type=Path,
                   help="cold_vs_warm --out folders, suite folders or curves.json files")
    p.add_argument("--out", type=Path, default=None, help="also write the report to this file")
    args = p.parse_args(argv)
    check_output_file(p, args.out)
    try:
        suites = load_suites(args.paths)
    except (ValueError, FileNotFoundError) as err:
        # Each names the file or folder and what is wrong: one line, not a traceback.
        p.error(str(err))
    text = scorecard_markdown(suites, provenance.command_line("benchmarks.scorecard", argv))
    provenance.publish(text, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
