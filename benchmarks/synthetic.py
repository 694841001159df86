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
from the same continuous source studies; their regret is measured against the best grid point.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
import functools
import itertools
import math
from multiprocessing import Pool
from pathlib import Path
import sys
from typing import Any

import numpy as np
import optuna


if not __package__:
    # Run as a file (`python benchmarks/synthetic.py`): make the repository root importable,
    # so the `benchmarks.*` imports below resolve as they do under `python -m`.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import provenance
from benchmarks.methods import top_k_configs
from benchmarks.tasks import nearest_choice
from optuna_transfer import TransferTPESampler
from optuna_transfer import WarmStartGridSampler


N_DIMS = 4
CHOICES = ("a", "b", "c")
KINDS = ("related", "misleading", "unrelated")
METHODS = ("tpe", "tpe+enqueue", "transfer-tpe")
GRID_METHODS = ("grid", "grid+enqueue", "warm-grid")
# A user's grid over the same space: coarser than the sources' continuous ranges.
GRID: dict[str, list[float | str]] = {
    **{f"x{i}": [0.0, 0.25, 0.5, 0.75, 1.0] for i in range(N_DIMS)},
    "lr": [1e-5, 1e-4, 1e-3, 1e-2, 1e-1],
    "opt": list(CHOICES),
}
BUDGETS = (5, 10, 25, 50, 100)

Objective = Callable[[optuna.trial.BaseTrial], float]


def _bowl(centre: np.ndarray, lr_opt: float, penalty: np.ndarray, factor: float) -> Objective:
    weights = np.arange(1, N_DIMS + 1)

    def objective(trial: optuna.trial.BaseTrial) -> float:
        x = np.array([trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(N_DIMS)])
        lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
        opt = trial.suggest_categorical("opt", CHOICES)
        loss = (
            np.sum(weights * (x - centre) ** 2)
            + 0.3 * (np.log10(lr) - lr_opt) ** 2
            + penalty[CHOICES.index(opt)]
        )
        return float(factor * loss)

    return objective


def _draw_task(rng: np.random.RandomState) -> tuple[np.ndarray, float, np.ndarray]:
    """A task of the family: centre, log10 learning-rate optimum, penalty per choice."""
    mu = rng.uniform(0.2, 0.8, N_DIMS)
    lr_opt = rng.uniform(-4, -2)
    penalty = np.array([0.0, 0.3, 0.6])[rng.permutation(3)]
    return mu, lr_opt, penalty


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
    for _ in range(3):
        centre = np.clip(source_task[0] + rng.normal(0, 0.08, N_DIMS), 0, 1)
        sign = -1.0 if kind == "misleading" else 1.0
        sources.append(_bowl(
            centre, source_task[1] + rng.normal(0, 0.3), source_task[2],
            sign * rng.uniform(0.5, 5),
        ))
    centre = np.clip(mu + rng.normal(0, 0.08, N_DIMS), 0, 1)
    return sources, _bowl(centre, lr_opt + rng.normal(0, 0.3), penalty, 1.0)


def run(job: tuple[int, str, str, int]) -> tuple[str, str, list[float]]:
    """Best-so-far target loss per trial of one (seed, kind, method) run."""
    seed, kind, method, n_trials = job
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    source_objectives, target = make_task(seed, kind)
    sources = []
    for k, objective in enumerate(source_objectives):
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=1000 * seed + k))
        study.optimize(objective, n_trials=100)
        sources.append(study)
    sampler: optuna.samplers.BaseSampler
    if method == "transfer-tpe":
        sampler = TransferTPESampler(sources, seed=seed)
    elif method == "warm-grid":
        sampler = WarmStartGridSampler(sources, GRID, seed=seed)
    elif method in GRID_METHODS:
        sampler = optuna.samplers.GridSampler(GRID, seed=seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(sampler=sampler)
    if method in ("tpe+enqueue", "grid+enqueue"):
        for params in top_k_configs(sources, 5):
            study.enqueue_trial(params if method == "tpe+enqueue" else nearest_grid_point(params))
    study.optimize(target, n_trials=n_trials)
    values = np.array([float(t.value) for t in study.trials])  # type: ignore[arg-type]
    if method in GRID_METHODS:
        values -= _target_grid_optimum(seed)
    return kind, method, np.minimum.accumulate(values).tolist()


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
    parser.add_argument("--seeds", type=int, default=40, help="seeds 0..N-1")
    parser.add_argument("--n-trials", type=int, default=100)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"from {', '.join(METHODS + GRID_METHODS)}")
    parser.add_argument("--workers", type=int, default=2)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    # Taken now, not when the tables are printed: the checkout may change during a long run.
    versions = provenance.versions()
    kinds, methods = args.kinds.split(","), args.methods.split(",")
    unknown = sorted(set(kinds) - set(KINDS)) + sorted(set(methods) - set(METHODS + GRID_METHODS))
    if unknown:
        parser.error(
            f"unknown {unknown}; kinds: {', '.join(KINDS)}; methods: "
            f"{', '.join(METHODS + GRID_METHODS)}"
        )
    jobs = [(s, k, m, args.n_trials) for k in kinds for m in methods for s in range(args.seeds)]
    with Pool(args.workers) as pool:
        results = pool.map(run, jobs, chunksize=1)
    curves: dict[tuple[str, str], list[list[float]]] = {}
    for kind, method, curve in results:
        curves.setdefault((kind, method), []).append(curve)
    budgets = [b for b in BUDGETS if b <= args.n_trials]
    print(
        f"Command: `{provenance.command_line('benchmarks.synthetic', argv)}`\n"
        f"Machine: {provenance.machine()}\n"
        f"Versions: {versions}\n"
        f"Seeds: 0..{args.seeds - 1}\n"
    )
    groups = [
        ("", [m for m in methods if m not in GRID_METHODS]),
        (f" over the {math.prod(len(v) for v in GRID.values()):,}-point grid (regret against "
         "its best point)", [m for m in methods if m in GRID_METHODS]),
    ]
    for kind in kinds:
        for label, group in groups:
            if not group:
                continue
            print(f"{kind}{label}: mean (median) best regret after n trials\n")
            print("| method | " + " | ".join(str(b) for b in budgets) + " |")
            print("|---|" + "---:|" * len(budgets))
            for method in group:
                c = np.array(curves[(kind, method)])
                cells = [
                    f"{c[:, b - 1].mean():.4f} ({np.median(c[:, b - 1]):.4f})" for b in budgets
                ]
                print(f"| {method} | " + " | ".join(cells) + " |")
            print()


if __name__ == "__main__":
    main()
