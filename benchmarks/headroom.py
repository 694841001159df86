"""Headroom: how low can a warm-started grid search get in its first trials, given its sources?

The ``grid`` suite asks WarmStartGridSampler for half the regret of GridSampler + the sources'
enqueued top configurations after 10 trials. This script measures what the sources make
possible at such a budget, on the same tables and the same source studies as
``benchmarks.cold_vs_warm`` (same seeds and storage: stored sources are reused), without running
any sampler:

* ``replay``: the best of the sources' first ``budget`` distinct configurations, best of each
  source in turn (what enqueueing more of them would reach);
* ``zero-shot``: the best of the sources' best configurations, one per source (the sampler's
  zero-shot portfolio);
* ``one move``: the best of those and every grid point one move away from one of them (the next
  smaller or larger value of a numeric parameter, any other value of another): what the zero-shot
  trials plus any number of local steps from them can reach before a second move;
* ``moves by tables`` / ``random moves``: the best of the first ``budget - n_sources - 1``
  one-move neighbours of the best zero-shot point (the local steps left after the portfolio and
  the probe), ordered by the sum of their ranks in the sources' *full tables* (knowledge no
  source study has) or at random (mean over 100 orders);
* ``tables: optima`` / ``tables: consensus``: the best of the first ``budget`` configurations of
  the source tables' own rankings taken in turn, or of their summed ranks (perfect knowledge of
  every source, no target feedback);
* ``studies: consensus`` / ``studies: grid score``: the same from what the source *studies*
  know: the best of the first ``budget`` configurations by the sources' smoothed rankings added
  up (the studies' estimate of the tables' consensus), or by WarmStartGridSampler's own score of
  the sources before any target trial (``GridRanker.prior_score``: each source's evaluated good
  configurations first, then its models). No target feedback either: what following the
  sources alone, as well as their studies allow, would reach.

Run from the repository root::

    python -m benchmarks.headroom --suites grid --seeds 20 --budget 10
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
import functools
from pathlib import Path
import sys

import numpy as np
import optuna
from scipy.stats import rankdata


if not __package__:
    # Run as a file (`python benchmarks/headroom.py`): make the repository root importable,
    # so the `benchmarks.*` imports below resolve as they do under `python -m`.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import provenance
from benchmarks.arguments import check_output_file
from benchmarks.arguments import open_storage
from benchmarks.arguments import parse_seeds
from benchmarks.methods import top_k_configs
from benchmarks.sources import as_study
from benchmarks.sources import load_stored_source
from benchmarks.sources import run_source
from benchmarks.sources import SourceJob
from benchmarks.sources import store_source
from benchmarks.suites import suite_tasks
from benchmarks.tasks import is_numeric
from benchmarks.tasks import Table
from benchmarks.tasks import Task
from optuna_transfer import redact_url
from optuna_transfer._grid._ranking import GridRanker
from optuna_transfer._grid._space import GridSpace
from optuna_transfer._local_search import grid_neighbours
from optuna_transfer._sources import load_sources as source_tasks


# Table suites the grid samplers run on; each target's sources are the other datasets.
HEADROOM_SUITES = ("grid", "grid-nb201", "grid-hpobench")
COLUMNS = (
    "replay", "zero-shot", "one move", "moves by tables", "random moves", "tables: optima",
    "tables: consensus", "studies: consensus", "studies: grid score",
)
_RANDOM_ORDERS = 100


@functools.cache
def value_orders(table: Table) -> list[np.ndarray | None]:
    """Per column, its value indices in ascending order if numeric, else None (unordered), as
    WarmStartGridSampler's local steps treat them. Cached: tables are per-process singletons."""
    return [
        np.argsort(np.asarray(values, dtype=float)) if is_numeric(values) else None
        for values in table.choices.values()
    ]


def one_move(table: Table, index: int) -> np.ndarray:
    """Table indices one move from configuration ``index``."""
    sizes = [len(v) for v in table.choices.values()]
    digits = [int(i) for i in np.unravel_index(index, sizes)]
    return grid_neighbours(digits, sizes, value_orders(table))


def round_robin(rankings: Sequence[np.ndarray], k: int) -> list[int]:
    """The first ``k`` distinct indices taking each ranking's next best in turn."""
    out: list[int] = []
    for position in range(max(len(r) for r in rankings)):
        for ranking in rankings:
            i = int(ranking[position])
            if i not in out:
                out.append(i)
            if len(out) == k:
                return out
    return out


@dataclass(frozen=True)
class SourceTables:
    """What the sources' complete tables say, for one task: no seed changes it."""

    summed_ranks: np.ndarray  # per configuration, its ranks in the source tables added up
    tables_optima: list[int]  # the first ``budget`` of the tables' own rankings in turn
    tables_consensus: np.ndarray  # the ``budget`` configurations of least summed rank

    @classmethod
    def of(cls, task: Task, budget: int) -> SourceTables:
        tables = [p.table() for p in task.sources]
        summed = np.sum([rankdata(t.losses) for t in tables], axis=0)
        own = [np.argsort(t.losses, kind="stable") for t in tables]
        return cls(summed, round_robin(own, budget), np.argsort(summed, kind="stable")[:budget])


@functools.cache
def table_grid(table: Table) -> tuple[GridSpace, np.ndarray]:
    """The table as WarmStartGridSampler's grid, and each grid id's table index. Cached as
    :func:`value_orders`: the same for every seed."""
    space = GridSpace({name: list(values) for name, values in table.choices.items()})
    return space, np.array([table.index(space.params_of(i)) for i in range(space.n_points)])


def studies_orders(
    task: Task, sources: list[optuna.Study], seed: int
) -> tuple[list[int], list[int]]:
    """Table indices best first by the source studies' summed smoothed rankings, and by
    WarmStartGridSampler's prior score of the sources (its tie order for ``seed``)."""
    space, to_table = table_grid(task.target.table())
    ranker = GridRanker(space, source_tasks(sources), 0, seed)
    consensus = np.sum(ranker.source_rankings, axis=0)
    return (
        to_table[ranker.order(consensus)].tolist(),
        to_table[ranker.order(ranker.prior_score())].tolist(),
    )


def _regret(table: Table, indices: Sequence[int] | np.ndarray) -> float:
    return table.normalised_regret(float(np.min(table.losses[np.asarray(indices)])))


def task_headroom(
    task: Task,
    sources: list[optuna.Study],
    budget: int,
    rng: np.random.Generator,
    source_tables: SourceTables | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Mean-normalised regret of every column of the module docstring for one task and seed
    (``source_tables``: :meth:`SourceTables.of` the task, computed here when not given;
    ``seed``: the grid ranking's tie order)."""
    table = task.target.table()
    known = source_tables or SourceTables.of(task, budget)
    # top_k_configs takes the sources in turn, so its first len(sources) are their bests.
    replayed = [table.index(p) for p in top_k_configs(sources, max(budget, len(sources)))]
    portfolio = replayed[: len(sources)]
    reachable = np.concatenate([portfolio] + [one_move(table, i) for i in portfolio])
    start = min(portfolio, key=lambda i: table.losses[i])
    moves = np.setdiff1d(one_move(table, start), portfolio)
    n_steps = max(1, min(budget - len(portfolio) - 1, len(moves)))
    by_tables = moves[np.argsort(known.summed_ranks[moves], kind="stable")[:n_steps]]
    random_moves = np.mean([
        _regret(table, np.append(rng.permutation(moves)[:n_steps], start))
        for _ in range(_RANDOM_ORDERS)
    ])
    by_consensus, by_score = studies_orders(task, sources, seed)
    return {
        "replay": _regret(table, replayed[:budget]),
        "zero-shot": _regret(table, portfolio),
        "one move": _regret(table, reachable),
        "moves by tables": _regret(table, np.append(by_tables, start)),
        "random moves": float(random_moves),
        "tables: optima": _regret(table, known.tables_optima),
        "tables: consensus": _regret(table, known.tables_consensus),
        "studies: consensus": _regret(table, by_consensus[:budget]),
        "studies: grid score": _regret(table, by_score[:budget]),
    }


def load_sources(
    task: Task, seed: int, n_trials: int, storage: optuna.storages.BaseStorage | None
) -> list[optuna.Study]:
    """The task's source studies for ``seed``, exactly as ``benchmarks.cold_vs_warm`` makes
    them (read from ``storage`` when stored there, else generated and stored)."""
    studies = []
    for problem in task.sources:
        job = SourceJob(problem, "tpe", n_trials, "mixed", seed)
        trials = load_stored_source(storage, job) if storage is not None else None
        if trials is None:
            trials = run_source(job)
            if storage is not None:
                store_source(storage, job, trials)
        studies.append(as_study(job.study_name, problem.direction, trials))
    return studies


def suite_headroom(
    suite: str, seeds: list[int], budget: int, n_source_trials: int,
    storage: optuna.storages.BaseStorage | None,
) -> dict[str, dict[str, float]]:
    """Task name -> column -> mean over ``seeds``."""
    out: dict[str, dict[str, float]] = {}
    for task in suite_tasks(suite):
        known = SourceTables.of(task, budget)
        rows = []
        for seed in seeds:
            sources = load_sources(task, seed, n_source_trials, storage)
            rng = np.random.default_rng(seed)
            rows.append(task_headroom(task, sources, budget, rng, known, seed))
        out[task.name] = {c: float(np.mean([r[c] for r in rows])) for c in COLUMNS}
    return out


def markdown(suite: str, result: dict[str, dict[str, float]], budget: int) -> str:
    lines = [
        f"**{suite}**: mean normalised regret within {budget} trials",
        "",
        "| target | " + " | ".join(COLUMNS) + " |",
        "|---|" + "---:|" * len(COLUMNS),
    ]
    for name, row in result.items():
        lines.append(f"| {name} | " + " | ".join(f"{row[c]:.3f}" for c in COLUMNS) + " |")
    mean = {c: np.mean([row[c] for row in result.values()]) for c in COLUMNS}
    lines.append("| **mean** | " + " | ".join(f"{mean[c]:.4f}" for c in COLUMNS) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.headroom",
        description="What the sources make possible within a few trials (see the docstring).",
    )
    p.add_argument("--suites", default="grid",
                   help=f"comma-separated, from {', '.join(HEADROOM_SUITES)} (default: grid)")
    p.add_argument("--seeds", type=parse_seeds, default=parse_seeds("20"),
                   help="a count (N -> seeds 0..N-1) or a comma-separated list (default: 20)")
    p.add_argument("--budget", type=int, default=10, help="target trials (default: 10)")
    p.add_argument("--source-trials", type=int, default=100, help="trials per source study")
    p.add_argument("--storage", default="none",
                   help="Optuna storage URL of the source studies, shared with "
                        "benchmarks.cold_vs_warm (default: none, generate in memory)")
    p.add_argument("--out", type=Path, default=None, help="also write the tables to this file")
    args = p.parse_args(argv)
    suites = [s.strip() for s in args.suites.split(",") if s.strip()]
    bad = [s for s in suites if s not in HEADROOM_SUITES]
    if bad or not suites:
        p.error(f"--suites: choose from {HEADROOM_SUITES}, got {args.suites!r}")
    if args.budget < 1:
        p.error("--budget must be at least 1")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    check_output_file(p, args.out)
    storage = open_storage(p, args.storage)
    shown = redact_url(args.storage)
    parts = [
        f"* Machine: {provenance.machine()}",
        f"* Versions: {provenance.versions()}",
        f"* Seeds: {args.seeds}; source studies: TPE, {args.source_trials} trials, storage "
        f"`{shown}`",
        f"* Command: `{provenance.command_line('benchmarks.headroom', argv)}`",
    ]
    for suite in suites:
        result = suite_headroom(suite, args.seeds, args.budget, args.source_trials, storage)
        parts += ["", markdown(suite, result, args.budget)]
    text = "\n".join(parts) + "\n"
    provenance.publish(text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
