"""Sampler overhead per trial: TransferTPESampler vs cold TPESampler.

The objective is a cheap synthetic function, so wall time of ``study.optimize`` is time spent in
the sampler and in Optuna itself. Sources are built directly from ``create_trial`` (random
configurations scored by a related function), so 10,000-trial sources take seconds to make.

Two spaces: a mixed one with continuous parameters, and an all-categorical one as large as
the HPOLib tables (62,208 configurations), on which TransferTPE ranks every configuration on
every model-based trial (``optuna_transfer._tpe._finite``).

    python -m benchmarks.overhead --source-trials 100,10000 --n-trials 100 --repeats 3
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
import math
from pathlib import Path
import sys
import time

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.trial import create_trial
from optuna.trial import Trial


if not __package__:
    # Run as a file (`python benchmarks/overhead.py`): make the repository root importable,
    # so the `benchmarks.*` imports below resolve as they do under `python -m`.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import provenance
from benchmarks.arguments import positive_int  # noqa: E402
from optuna_transfer import TransferTPESampler


SPACE = {
    "lr": FloatDistribution(1e-5, 1e-1, log=True),
    "wd": FloatDistribution(1e-6, 1e-2, log=True),
    "layers": IntDistribution(1, 8),
    "units": IntDistribution(16, 512, log=True),
    "dropout": FloatDistribution(0.0, 0.6),
    "opt": CategoricalDistribution(["sgd", "adam", "adamw"]),
}


# 4^4 x 3^5 = 62,208 configurations, as many as each HPOLib table has.
TABLE_CHOICES = {f"c{i}": list(range(4 if i < 4 else 3)) for i in range(9)}
TABLE_SPACE: dict[str, BaseDistribution] = {
    name: CategoricalDistribution(choices) for name, choices in TABLE_CHOICES.items()
}


def _loss(params: dict, shift: float) -> float:
    return (
        (np.log10(params["lr"]) + 3 + shift) ** 2
        + 0.3 * (np.log10(params["wd"]) + 4) ** 2
        + 0.1 * (params["layers"] - 4) ** 2
        + (params["opt"] != "adamw") * 0.5
        + (params["dropout"] - 0.2) ** 2
    )


def _objective(trial: Trial) -> float:
    params = {
        "lr": trial.suggest_float("lr", 1e-5, 1e-1, log=True),
        "wd": trial.suggest_float("wd", 1e-6, 1e-2, log=True),
        "layers": trial.suggest_int("layers", 1, 8),
        "units": trial.suggest_int("units", 16, 512, log=True),
        "dropout": trial.suggest_float("dropout", 0.0, 0.6),
        "opt": trial.suggest_categorical("opt", ["sgd", "adam", "adamw"]),
    }
    return _loss(params, 0.0)


def _table_loss(params: dict, shift: float) -> float:
    return sum(
        (1 + 0.3 * i) * ((params[name] - shift * len(choices)) / len(choices)) ** 2
        for i, (name, choices) in enumerate(TABLE_CHOICES.items())
    )


def _table_objective(trial: Trial) -> float:
    params = {name: trial.suggest_categorical(name, c) for name, c in TABLE_CHOICES.items()}
    return _table_loss(params, 0.35)


def _table_source(n: int, seed: int) -> optuna.Study:
    rng = np.random.default_rng(seed)
    study = optuna.create_study()
    trials = []
    for _ in range(n):
        params = {name: int(rng.choice(choices)) for name, choices in TABLE_CHOICES.items()}
        trials.append(
            create_trial(
                value=_table_loss(params, 0.3 + 0.05 * seed),
                params=params,
                distributions=TABLE_SPACE,
            )
        )
    study.add_trials(trials)
    return study


def _source(n: int, seed: int) -> optuna.Study:
    rng = np.random.default_rng(seed)
    study = optuna.create_study()
    trials = []
    for _ in range(n):
        params = {
            "lr": float(10 ** rng.uniform(-5, -1)),
            "wd": float(10 ** rng.uniform(-6, -2)),
            "layers": int(rng.integers(1, 9)),
            "units": int(np.exp(rng.uniform(np.log(16), np.log(512)))),
            "dropout": float(rng.uniform(0, 0.6)),
            "opt": str(rng.choice(["sgd", "adam", "adamw"])),
        }
        trials.append(
            create_trial(value=_loss(params, 0.3 * seed), params=params, distributions=SPACE)
        )
    study.add_trials(trials)
    return study


def _time(
    sampler: optuna.samplers.BaseSampler,
    n_trials: int,
    objective: Callable[[Trial], float] = _objective,
) -> float:
    study = optuna.create_study(sampler=sampler)
    start = time.perf_counter()
    study.optimize(objective, n_trials=n_trials)
    return (time.perf_counter() - start) / n_trials


def _table(
    objective: Callable[[Trial], float],
    make_source: Callable[[int, int], optuna.Study],
    source_trials: list[int],
    args: argparse.Namespace,
) -> None:
    print("| sampler | ms per trial (median of repeats) | ratio to cold TPE |")
    print("|---|---:|---:|")
    cold = float(
        np.median(
            [
                _time(optuna.samplers.TPESampler(seed=r), args.n_trials, objective)
                for r in range(args.repeats)
            ]
        )
    )
    print(f"| cold TPESampler | {1000 * cold:.1f} | 1.00 |")
    for n in source_trials:
        sources = [make_source(n, seed) for seed in range(args.n_sources)]
        times = []
        for r in range(args.repeats):
            start = time.perf_counter()
            sampler = TransferTPESampler(sources, seed=r)
            build = time.perf_counter() - start
            times.append(_time(sampler, args.n_trials, objective) + build / args.n_trials)
        t = float(np.median(times))
        print(
            f"| TransferTPESampler, {args.n_sources} sources x {n} trials | {1000 * t:.1f} | "
            f"{t / cold:.2f} |"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source-trials", default="100,10000")
    parser.add_argument("--n-sources", type=int, default=3)
    parser.add_argument("--n-trials", type=positive_int, default=100)
    parser.add_argument("--repeats", type=positive_int, default=3)
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.ERROR)

    argv = sys.argv[1:] if argv is None else argv
    print(f"Command: `{provenance.command_line('benchmarks.overhead', argv)}`")
    print(f"Machine: {provenance.machine()}")
    print(f"Versions: {provenance.versions()}\n")
    print("Mixed space (continuous, integer and categorical parameters):\n")
    _table(_objective, _source, [int(v) for v in args.source_trials.split(",")], args)
    print(
        f"\nAll-categorical space ({math.prod(len(c) for c in TABLE_CHOICES.values()):,} "
        "configurations), sources of 100 trials:\n"
    )
    _table(_table_objective, _table_source, [100], args)


if __name__ == "__main__":
    main()
