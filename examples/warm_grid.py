"""Warm grid: tune around last time's best config, best-first, with WarmStartGridSampler.

1. A source study (last time's search) tunes lr, weight_decay and batch_size of a synthetic
   objective.
2. ``neighbourhood_grid`` builds a small grid around its best config: lr times
   (0.1, 0.3, 1, 3, 10), weight_decay times (0.1, 1, 10), batch_size kept.
3. ``WarmStartGridSampler(source_study, grid)`` walks the grid best-first (ranked by the source)
   on the new, slightly shifted task until it is exhausted; we count the trials it takes to reach
   the grid's best point and compare with Optuna's ``GridSampler`` (random order) over several
   seeds.

Run::

    python examples/warm_grid.py           # 60 source trials, 20 GridSampler seeds
    python examples/warm_grid.py --fast    # 30 source trials, 5 GridSampler seeds
"""

from __future__ import annotations

import argparse
import itertools
import math
from pathlib import Path
import tempfile
from typing import Any

import optuna

from optuna_transfer import neighbourhood_grid
from optuna_transfer import WarmStartGridSampler


LR_FACTORS = (0.1, 0.3, 1, 3, 10)
WD_FACTORS = (0.1, 1, 10)


def make_objective(task_shift: float) -> Any:
    """A synthetic validation loss; ``task_shift`` moves its optimum (in decades of lr)."""

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-6, 1.0, log=True)
        weight_decay = trial.suggest_float("weight_decay", 1e-7, 1e-1, log=True)
        batch_size = trial.suggest_categorical("batch_size", [32, 64, 128, 256])
        return loss(lr, weight_decay, batch_size, task_shift)

    return objective


def loss(lr: float, weight_decay: float, batch_size: int, task_shift: float) -> float:
    """The objective in closed form (best lr ``10 ** (-3 + shift)``, weight decay ``1e-4``)."""
    return (
        (math.log10(lr) - (-3.0 + task_shift)) ** 2
        + 0.3 * (math.log10(weight_decay) + 4.0) ** 2
        + 0.2 * abs(math.log2(batch_size / 64))
    )


def trials_to_reach(values: list[float], best: float) -> int:
    """1-based index of the first value within 1e-12 of ``best`` (len + 1 if never)."""
    for i, v in enumerate(values):
        if v <= best + 1e-12:
            return i + 1
    return len(values) + 1


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the source study, the warm grid and GridSampler; return the comparison.

    Returns:
        A dict with ``grid`` (the search space), ``grid_size``, ``grid_best_value``,
        ``warm_trials_to_best`` (one past the last warm trial if never reached),
        ``warm_n_trials``, ``warm_exhausted``, ``warm_first_params``, ``source_best_params``
        and ``grid_trials_to_best`` (one count per GridSampler seed).
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", default=None, help="where hpo.db goes (default: temp dir)")
    parser.add_argument("--fast", action="store_true", help="fewer trials and seeds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--task-shift",
        type=float,
        default=0.4,
        help="how far (decades of lr) the new task's optimum moves",
    )
    parser.add_argument(
        "--n-trials",
        type=int,
        default=None,
        help="stop the warm grid after this many trials (default: exhaust it)",
    )
    args = parser.parse_args(argv)

    n_source, n_seeds = (30, 5) if args.fast else (60, 20)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="optuna-transfer-"))
    workdir.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{(workdir / 'warm_grid.db').resolve()}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    # 1. Last time's search.
    source = optuna.create_study(
        study_name="last-time",
        storage=storage,
        sampler=optuna.samplers.TPESampler(seed=args.seed),
        load_if_exists=True,
    )
    missing = n_source - len(source.trials)
    if missing > 0:
        source.optimize(make_objective(0.0), n_trials=missing)

    # 2. A grid around its best config.
    grid = neighbourhood_grid(
        source, {"lr": LR_FACTORS, "weight_decay": WD_FACTORS}, keep=["batch_size"]
    )
    grid_size = math.prod(len(v) for v in grid.values())
    names = list(grid)
    points: list[dict[str, Any]] = [dict(zip(names, p)) for p in itertools.product(*grid.values())]
    grid_best = min(
        loss(float(p["lr"]), float(p["weight_decay"]), int(p["batch_size"]), args.task_shift)
        for p in points
    )

    # 3. Best-first on the new task, until the grid is exhausted (or --n-trials). The sampler
    # stops the study itself once every point is taken; the trial cap is only a safety net.
    objective = make_objective(args.task_shift)
    sampler = WarmStartGridSampler(source, grid, seed=0)
    warm = optuna.create_study(sampler=sampler)
    warm.optimize(objective, n_trials=args.n_trials or 2 * grid_size)
    warm_values = [float(t.value) for t in warm.trials if t.value is not None]
    warm_to_best = trials_to_reach(warm_values, grid_best)

    # Optuna's GridSampler visits the same grid in a random order.
    grid_to_best = []
    for s in range(n_seeds):
        study = optuna.create_study(sampler=optuna.samplers.GridSampler(grid, seed=s))
        study.optimize(objective, n_trials=grid_size)
        values = [float(t.value) for t in study.trials if t.value is not None]
        grid_to_best.append(trials_to_reach(values, grid_best))
    mean_grid = sum(grid_to_best) / len(grid_to_best)

    print(f"source best: {source.best_params} (value {source.best_value:.4f})")
    print(f"grid: {grid} ({grid_size} points), best value on the new task {grid_best:.4f}")
    print(f"first warm trial: {warm.trials[0].params}")
    # trials_to_reach counts "never" as one past the end: that trial did not run.
    reached = (
        f"reached the grid's best at trial {warm_to_best}"
        if warm_to_best <= len(warm_values)
        else f"did not reach the grid's best within {len(warm.trials)} trials"
    )
    print(
        f"WarmStartGridSampler: {len(warm.trials)} trials, exhausted="
        f"{sampler.is_exhausted(warm)}, {reached}"
    )
    print(
        f"GridSampler (random order, {n_seeds} seeds): reached it at trial "
        f"{mean_grid:.1f} on average (min {min(grid_to_best)}, max {max(grid_to_best)})"
    )

    return {
        "grid": grid,
        "grid_size": grid_size,
        "grid_best_value": grid_best,
        "source_best_params": dict(source.best_params),
        "warm_first_params": dict(warm.trials[0].params),
        "warm_n_trials": len(warm.trials),
        "warm_exhausted": sampler.is_exhausted(warm),
        "warm_trials_to_best": warm_to_best,
        "grid_trials_to_best": grid_to_best,
    }


if __name__ == "__main__":
    main()
