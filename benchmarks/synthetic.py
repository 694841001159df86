"""Cold vs warm on a continuous synthetic family: shifted, scaled quadratic bowls.

The HPOLib tables are coarse grids (6 values per numeric parameter), where a small move in a
continuous range often lands on the same table configuration. This family is the opposite case:
every parameter is continuous (or categorical), the target's optimum lies close to the sources'
(a shift of about 0.08 of each range), and fine refinement is what wins. A sampler's defaults
should hold up on both.

Per seed: a centre ``mu`` in the unit cube, a learning-rate optimum and a categorical penalty
are drawn; each of 3 sources and the target moves the centre by N(0, 0.08) per coordinate, the
learning-rate optimum by N(0, 0.3) decades, and scales its loss by a factor in [0.5, 5] (sources
only). ``related`` sources minimise their bowl; ``misleading`` ones minimise its negation (their
best trials are the worst configurations); ``unrelated`` ones come from another draw of the
family (their own centre, learning-rate optimum and penalties), so they share the target's
shape but not its optimum. Each source is a 100-trial TPE study. The target's
loss is ``sum_i i * (x_i - c_i)^2 + 0.3 (log10 lr - l0)^2 + penalty[opt]``, so 0 is optimal and
the numbers below are regrets.

    python -m benchmarks.synthetic --seeds 40 --n-trials 100

The grid methods (``--methods grid,grid+enqueue,warm-grid``) search the same targets over
:data:`GRID` (5 values per coordinate, 5 learning rates, the 3 choices: 9,375 points), warm-started
from the same continuous source studies; their regret is measured against the best grid point
(``grid+enqueue`` enqueues the source configurations moved to their nearest grid points).

Each (seed, kind) is a benchmark task of :class:`SyntheticProblem` objects, run like the table
suites: source studies by ``benchmarks.sources``, methods from ``benchmarks.methods`` by
``benchmarks.runner``, tables by ``benchmarks.report``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
import functools
import itertools
import math
from pathlib import Path
import sys
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution


if not __package__:
    # Run as a file (`python benchmarks/synthetic.py`): make the repository root importable,
    # so the `benchmarks.*` imports below resolve as they do under `python -m`.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import provenance
from benchmarks.arguments import positive_int  # noqa: E402
from benchmarks.report import budgets_for
from benchmarks.report import regret_by_budget
from benchmarks.report import SuiteData
from benchmarks.runner import map_jobs
from benchmarks.runner import run as run_job
from benchmarks.runner import RunJob
from benchmarks.runner import RunResult
from benchmarks.sources import run_source
from benchmarks.sources import SourceJob
from benchmarks.suites import GRID_METHODS
from benchmarks.tasks import derive_seed
from benchmarks.tasks import Direction
from benchmarks.tasks import Encoding
from benchmarks.tasks import nearest_choice
from benchmarks.tasks import Objective as TimedObjective
from benchmarks.tasks import Problem
from benchmarks.tasks import Task


N_DIMS = 4
CHOICES = ("a", "b", "c")
LR_RANGE = (1e-5, 1e-1)  # the log-scaled "learning rate"
LR_WEIGHT = 0.3  # loss per squared decade away from the learning-rate optimum
PENALTIES = (0.0, 0.3, 0.6)  # loss of each choice of ``opt``, permuted per task
KINDS = ("related", "misleading", "unrelated")
METHODS = ("tpe", "tpe+enqueue", "transfer-tpe")
# Accepted by --methods, not run by default: the cold baselines with another seed stream, how
# far two runs of the same method differ on these seeds (the noise reference).
RESEEDED_METHODS = ("tpe-reseeded", "grid-reseeded")
ALL_METHODS = METHODS + GRID_METHODS + RESEEDED_METHODS
ON_GRID = (*GRID_METHODS, "grid-reseeded")  # reported against the best grid point
# A user's grid over the same space: coarser than the sources' continuous ranges.
GRID: dict[str, list[float | str]] = {
    **{f"x{i}": [0.0, 0.25, 0.5, 0.75, 1.0] for i in range(N_DIMS)},
    "lr": [1e-5, 1e-4, 1e-3, 1e-2, 1e-1],
    "opt": list(CHOICES),
}
BUDGETS = (5, 10, 25, 50, 100)
SUITE = "synthetic"
N_SOURCES = 3
SOURCE_TRIALS = 100
TOP_K = 5  # source configurations enqueued by the *+enqueue methods

Objective = Callable[[optuna.trial.BaseTrial], float]


def _bowl(centre: np.ndarray, lr_opt: float, penalty: np.ndarray, factor: float) -> Objective:
    weights = np.arange(1, N_DIMS + 1)

    def objective(trial: optuna.trial.BaseTrial) -> float:
        x = np.array([trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(N_DIMS)])
        lr = trial.suggest_float("lr", LR_RANGE[0], LR_RANGE[1], log=True)
        opt = trial.suggest_categorical("opt", CHOICES)
        loss = (
            np.sum(weights * (x - centre) ** 2)
            + LR_WEIGHT * (np.log10(lr) - lr_opt) ** 2
            + penalty[CHOICES.index(opt)]
        )
        return float(factor * loss)

    return objective


def draw_lr_and_penalty(rng: np.random.RandomState) -> tuple[float, np.ndarray]:
    """The log10 learning-rate optimum and the penalty per choice of ``opt`` of a task."""
    lr_opt = rng.uniform(-4, -2)
    penalty = np.array(PENALTIES)[rng.permutation(len(CHOICES))]
    return lr_opt, penalty


def _draw_task(rng: np.random.RandomState) -> tuple[np.ndarray, float, np.ndarray]:
    """A task of the family: centre, log10 learning-rate optimum, penalty per choice."""
    mu = rng.uniform(0.2, 0.8, N_DIMS)
    return (mu, *draw_lr_and_penalty(rng))


def make_task(seed: int, kind: str) -> tuple[list[Objective], Objective]:
    """The 3 source objectives and the target objective of ``seed``."""
    rng = np.random.RandomState(seed)
    mu, lr_opt, penalty = _draw_task(rng)
    # Unrelated sources are another task of the family, drawn with their own generator so that
    # the target (from ``rng``) is the same for every kind.
    source_task = _draw_task(np.random.RandomState([seed, 1])) if kind == "unrelated" else (
        mu, lr_opt, penalty
    )
    sources = []
    for _ in range(N_SOURCES):
        centre = np.clip(source_task[0] + rng.normal(0, 0.08, N_DIMS), 0, 1)
        sign = -1.0 if kind == "misleading" else 1.0
        sources.append(_bowl(
            centre, source_task[1] + rng.normal(0, 0.3), source_task[2],
            sign * rng.uniform(0.5, 5),
        ))
    centre = np.clip(mu + rng.normal(0, 0.08, N_DIMS), 0, 1)
    return sources, _bowl(centre, lr_opt + rng.normal(0, 0.3), penalty, 1.0)


@dataclass(frozen=True)
class SyntheticProblem(Problem):
    """One bowl of draw ``draw`` (a seed) of the family: its target, or source ``source``.

    The samplers' seeds are derived from the draw and the problem's role, never the draw
    itself: ``make_task`` draws the target's optimum from ``RandomState(draw)``, and a sampler
    seeded with ``draw`` would make the same draws and start next to it. Every method of a
    draw gets the same target seed (paired runs); each source study its own.
    """

    bench: str = "synthetic"
    dataset: str = "related"  # the kind of the sources: one of KINDS
    draw: int = 0
    source: int | None = None  # None: the target

    @property
    def name(self) -> str:
        role = "target" if self.source is None else f"source{self.source}"
        return f"{self.bench}-{self.dataset}-draw{self.draw}-{role}"

    @property
    def n_dims(self) -> int:
        """Number of unit-range coordinates ``x0``, ``x1``, ... (besides ``lr`` and ``opt``)."""
        return N_DIMS

    @property
    def direction(self) -> Direction:
        return "minimize"

    def search_space(self, encoding: Encoding) -> dict[str, BaseDistribution]:
        return {
            **{f"x{i}": FloatDistribution(0.0, 1.0) for i in range(self.n_dims)},
            "lr": FloatDistribution(LR_RANGE[0], LR_RANGE[1], log=True),
            "opt": CategoricalDistribution(CHOICES),
        }

    @property
    def has_grid(self) -> bool:
        return True

    def grid(self) -> dict[str, list[Any]]:
        return {k: list(v) for k, v in GRID.items()}

    def onto_grid(self, params: dict[str, Any]) -> dict[str, Any]:
        return nearest_grid_point(params)

    def optimum(self, on_grid: bool) -> float | None:
        # The bowl's own minimum is 0; a grid search can reach only the best grid point.
        return _target_grid_optimum(self.draw) if on_grid else 0.0

    def source_seed(self, seed: int) -> int:
        if self.source is None:
            raise ValueError(f"{self.name} is a target: give a source number to seed its study.")
        return derive_seed(seed, "synthetic-source", str(self.source))

    def target_seed(self, seed: int, *keys: str) -> int:
        return derive_seed(seed, "synthetic-target")

    def objective(self, encoding: Encoding) -> TimedObjective:
        sources, target = make_task(self.draw, self.dataset)
        bowl = target if self.source is None else sources[self.source]
        return TimedObjective(self, encoding, bowl)


def synthetic_task(seed: int, kind: str) -> Task:
    """Draw ``seed`` of the family with ``kind`` sources, as a benchmark task named ``kind``."""
    return Task(
        SUITE,
        SyntheticProblem(dataset=kind, draw=seed),
        tuple(SyntheticProblem(dataset=kind, draw=seed, source=k) for k in range(N_SOURCES)),
    )


def _source_job(problem: Problem, seed: int) -> SourceJob:
    return SourceJob(problem, "tpe", SOURCE_TRIALS, "mixed", seed)


def run_jobs(jobs: list[tuple[int, str, str, int]], workers: int = 1) -> list[RunResult]:
    """Run every (seed, kind, method, n_trials) job through the common runner: each source
    study generated once, then shared by every method of its seed and kind."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    tasks = {(seed, kind): synthetic_task(seed, kind) for seed, kind, _, _ in jobs}
    sources: dict[SourceJob, list[optuna.trial.FrozenTrial]] = {}
    source_jobs = list(dict.fromkeys(
        _source_job(p, seed) for (seed, _), task in tasks.items() for p in task.sources
    ))
    map_jobs(run_source, source_jobs, workers, sources.__setitem__)
    targets = []
    for seed, kind, method, n_trials in jobs:
        task = tasks[(seed, kind)]
        trials = []
        for problem in task.sources:
            job = _source_job(problem, seed)
            trials.append((job.study_name, tuple(sources[job])))
        targets.append(RunJob(task, method, seed, n_trials, "mixed", TOP_K, tuple(trials)))
    results: dict[tuple[int, str, str], RunResult] = {}

    def done(_: RunJob, r: RunResult) -> None:
        results[(r.seed, r.task, r.method)] = r

    map_jobs(run_job, targets, workers, done)
    return [results[(seed, kind, method)] for seed, kind, method, _ in jobs]


def run(job: tuple[int, str, str, int]) -> tuple[str, str, list[float]]:
    """Best-so-far regret per trial of one (seed, kind, method, n_trials) run."""
    result = run_jobs([job])[0]
    if result.error is not None:
        raise RuntimeError(f"{result.study_name}: {result.error}")
    return result.task, result.method, result.regret


def nearest_grid_point(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` on :data:`GRID`: each number to the nearest grid value (the learning rate on
    a log scale), as a user enqueueing a continuous source's configuration would."""
    return {name: values[nearest_choice(values, params[name])] for name, values in GRID.items()}


def grid_optimum(objective: Objective) -> float:
    """The smallest loss of ``objective`` over :data:`GRID`."""
    names = list(GRID)
    best = np.inf
    for combo in itertools.product(*GRID.values()):
        best = min(best, objective(optuna.trial.FixedTrial(dict(zip(names, combo)))))
    return float(best)


@functools.cache
def _target_grid_optimum(seed: int) -> float:
    # The target does not depend on the kind, so each worker enumerates the grid once a seed.
    return grid_optimum(make_task(seed, "related")[1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=positive_int, default=40, help="seeds 0..N-1")
    parser.add_argument("--n-trials", type=positive_int, default=100)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"from {', '.join(ALL_METHODS)}")
    parser.add_argument("--workers", type=positive_int, default=2)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    # Taken now, not when the tables are printed: the checkout may change during a long run.
    versions = provenance.versions()
    kinds, methods = args.kinds.split(","), args.methods.split(",")
    unknown = sorted(set(kinds) - set(KINDS)) + sorted(set(methods) - set(ALL_METHODS))
    if unknown:
        parser.error(
            f"unknown {unknown}; kinds: {', '.join(KINDS)}; methods: "
            f"{', '.join(ALL_METHODS)}"
        )
    seeds = list(range(args.seeds))
    jobs = [(s, k, m, args.n_trials) for k in kinds for m in methods for s in seeds]
    data = SuiteData.from_results(run_jobs(jobs, args.workers), methods, seeds, args.n_trials)
    budgets = budgets_for(args.n_trials, BUDGETS)
    print(
        f"Command: `{provenance.command_line('benchmarks.synthetic', argv)}`\n"
        f"Machine: {provenance.machine()}\n"
        f"Versions: {versions}\n"
        f"Seeds: 0..{args.seeds - 1}\n"
    )
    groups = [
        ("", [m for m in methods if m not in ON_GRID]),
        (f" over the {math.prod(len(v) for v in GRID.values()):,}-point grid (regret against "
         "its best point)", [m for m in methods if m in ON_GRID]),
    ]
    for kind in kinds:
        for label, group in groups:
            if not group:
                continue
            print(f"{kind}{label}: mean (median) best regret after n trials\n")
            print("\n".join(regret_by_budget(data, kind, group, budgets)))
            print()


if __name__ == "__main__":
    # The importable module's main, not this __main__ copy: worker processes unpickle the
    # problems of the jobs by their module's name.
    from benchmarks.synthetic import main as _main

    _main()
