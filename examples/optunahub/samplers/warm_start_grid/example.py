"""Search a grid best-first from a finished study with WarmStartGridSampler, via OptunaHub.

Run from anywhere (``pip install optunahub`` and this repository first)::

    python examples/optunahub/samplers/warm_start_grid/example.py
"""

from __future__ import annotations

from pathlib import Path

import optuna
import optunahub


# This folder's grandparent plays the registry's ``package/`` folder. Once registered, the same
# module comes from ``optunahub.load_module(package="samplers/warm_start_grid")``.
REGISTRY_ROOT = str(Path(__file__).resolve().parents[2])


def objective(trial: optuna.Trial) -> float:
    lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
    batch_size = trial.suggest_categorical("batch_size", [32, 64, 128])
    return (lr * 1e3 - 1.5) ** 2 + (batch_size != 64) * 0.5


def main(n_source_trials: int = 30) -> optuna.Study:
    module = optunahub.load_local_module(
        package="samplers/warm_start_grid", registry_root=REGISTRY_ROOT
    )
    source = optuna.create_study(
        study_name="last-time", sampler=optuna.samplers.TPESampler(seed=0)
    )
    source.optimize(objective, n_trials=n_source_trials)

    # A 5 x 1 grid around last time's best learning rate, at its batch size.
    grid = module.neighbourhood_grid(
        source.best_params, {"lr": (0.25, 0.5, 1, 2, 4)}, keep=["batch_size"]
    )
    study = optuna.create_study(sampler=module.WarmStartGridSampler(source, grid, seed=0))
    study.optimize(objective)  # stops by itself once every grid point has been evaluated
    print(f"grid {grid}")
    print(f"order of lr: {[round(t.params['lr'], 6) for t in study.trials]}")
    return study


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    main()
