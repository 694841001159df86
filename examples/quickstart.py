"""Quickstart: warm-start a new Optuna study from a finished one, by name, with TransferTPE.

1. A "previous run" study tunes a small synthetic objective (lr, n_layers, optimizer) and is
   saved in SQLite under ``--workdir`` as study ``"previous-run"``.
2. A new study on a related-but-different task (its optimum is moved by ``task_shift``) samples
   with ``TransferTPESampler.from_storage(url, ["previous-run"])``.
3. A cold ``TPESampler`` study on the same new task is run for comparison.

The best values of both new studies are printed, with the weight each trial gave the source
(its trust, in [0, 1]; 0 means the source had no say).

Run::

    python examples/quickstart.py            # 60 source trials, 30 per new study
    python examples/quickstart.py --fast     # 30 source trials, 15 per new study (seconds)
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
import tempfile
from typing import Any

import optuna

from optuna_transfer import TransferTPESampler


SOURCE_NAME = "previous-run"
OPTIMIZER_PENALTY = {"adam": 0.0, "rmsprop": 0.3, "sgd": 1.0}


def make_objective(task_shift: float) -> Any:
    """A synthetic "validation loss" whose optimum moves with ``task_shift``.

    The best lr is ``10 ** (-3 + task_shift)``, the best depth ``4 + 2 * task_shift`` layers,
    and Adam is the best optimizer on every task, so two tasks with a small shift are related
    but not identical.
    """

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
        n_layers = trial.suggest_int("n_layers", 1, 8)
        optimizer = trial.suggest_categorical("optimizer", ["sgd", "adam", "rmsprop"])
        return (
            (math.log10(lr) - (-3.0 + task_shift)) ** 2
            + 0.1 * (n_layers - (4.0 + 2.0 * task_shift)) ** 2
            + OPTIMIZER_PENALTY[optimizer]
        )

    return objective


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the source, warm and cold studies; return their results for inspection.

    Returns:
        A dict with ``storage`` (URL), ``source_best_params``, ``source_best_value``,
        ``warm_best_value``, ``cold_best_value``, ``warm_first_params`` (the first warm trial's
        params), ``warm_values`` and ``cold_values`` (per trial) and ``weights`` (trial number
        -> {label: weight} for the warm study).
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", default=None, help="where hpo.db goes (default: temp dir)")
    parser.add_argument("--fast", action="store_true", help="few trials: runs in seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--task-shift",
        type=float,
        default=0.3,
        help="how far the new task's optimum moves from the source's",
    )
    args = parser.parse_args(argv)

    n_source, n_target = (30, 15) if args.fast else (60, 30)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="optuna-transfer-"))
    workdir.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{(workdir / 'hpo.db').resolve()}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    # 1. Last time's study, persisted under a name.
    source = optuna.create_study(
        study_name=SOURCE_NAME,
        storage=storage,
        sampler=optuna.samplers.TPESampler(seed=args.seed),
        load_if_exists=True,
    )
    missing = n_source - len(source.trials)
    if missing > 0:
        source.optimize(make_objective(0.0), n_trials=missing)

    # 2. The new task, warm-started from the stored study by name.
    target_objective = make_objective(args.task_shift)
    sampler = TransferTPESampler.from_storage(storage, [SOURCE_NAME], seed=args.seed)
    warm = optuna.create_study(sampler=sampler)
    warm.optimize(target_objective, n_trials=n_target)

    # 3. The same new task from scratch.
    cold = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=args.seed))
    cold.optimize(target_objective, n_trials=n_target)

    weights = sampler.get_source_weights(warm)
    print(f"source study {SOURCE_NAME!r} in {storage}")
    print(f"  best value {source.best_value:.4f} at {source.best_params}")
    print(f"warm-started TPE ({n_target} trials): best {warm.best_value:.4f}")
    print(f"cold TPE         ({n_target} trials): best {cold.best_value:.4f}")
    print(f"source weights (trust) for the last trials, sources {sampler.source_names}:")
    for number in sorted(weights)[-5:]:
        shown = ", ".join(f"{k}={v:.2f}" for k, v in weights[number].items() if k != "target")
        print(f"  trial {number:3d}: {shown}")

    return {
        "storage": storage,
        "source_best_params": dict(source.best_params),
        "source_best_value": float(source.best_value),
        "warm_best_value": float(warm.best_value),
        "cold_best_value": float(cold.best_value),
        "warm_first_params": dict(warm.trials[0].params),
        "warm_values": [t.value for t in warm.trials],
        "cold_values": [t.value for t in cold.trials],
        "source_names": sampler.source_names,
        "weights": weights,
    }


if __name__ == "__main__":
    main()
