"""Warm-start a study from a finished one with TransferTPESampler, loaded through OptunaHub.

Run from anywhere (``pip install optunahub`` and this repository first)::

    python examples/optunahub/samplers/transfer_tpe/example.py
"""

from __future__ import annotations

from pathlib import Path

import optuna
import optunahub


# This folder's grandparent plays the registry's ``package/`` folder. Once registered, the same
# module comes from ``optunahub.load_module(package="samplers/transfer_tpe")``.
REGISTRY_ROOT = str(Path(__file__).resolve().parents[2])


def objective(trial: optuna.Trial, shift: float = 0.0) -> float:
    x = trial.suggest_float("x", -10, 10)
    y = trial.suggest_int("y", -10, 10)
    return (x - 2 - shift) ** 2 + (y + 3) ** 2


def main(n_source_trials: int = 40, n_trials: int = 30) -> optuna.Study:
    module = optunahub.load_local_module(
        package="samplers/transfer_tpe", registry_root=REGISTRY_ROOT
    )
    source = optuna.create_study(
        study_name="last-time", sampler=optuna.samplers.TPESampler(seed=0)
    )
    source.optimize(objective, n_trials=n_source_trials)

    study = optuna.create_study(sampler=module.TransferTPESampler(source, seed=0))
    study.optimize(lambda trial: objective(trial, shift=0.5), n_trials=n_trials)
    print(f"source best {source.best_value:.3f} at {source.best_params}")
    print(f"warm-started best after {n_trials} trials: {study.best_value:.3f}")
    return study


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    main()
