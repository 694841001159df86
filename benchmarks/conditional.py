"""Conditional search spaces: the target chooses a model first, the sources tuned one model.

A team re-tunes an SVM, a random forest and a k-NN under one ``model`` parameter, and has old
studies that tuned one model's parameters alone (no ``model`` parameter). Each scenario runs
cold TPE, TPE + the sources' top-5 enqueued (the model is then left to TPE, as
``enqueue_trial`` with the old parameters leaves it) and TransferTPE on the same target, each
with Optuna's default (joint sampling of the parameters every trial has) and with
``group=True`` (Optuna's advice for conditional spaces):

* ``svm-related``: one source, the SVM's ``C`` and ``gamma``, best near the target's optimum
  (the SVM is the target's best model).
* ``svm-misleading``: one SVM source whose best lies far from the target's.
* ``per-model``: three sources, one per model, each best near that model's optimum.

Per scenario and method: the regret of the best value (0 = the target's optimum) at 10 and
20 trials and at the end, means and medians over seeds.

Usage:
``python -m benchmarks.conditional --seeds 24 --out benchmarks/figures/conditional_table.md``
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
import math
from pathlib import Path
import sys
from typing import Any

import numpy as np
import optuna


if __package__ in (None, ""):  # run as a file: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import provenance  # noqa: E402
from benchmarks.arguments import check_output_file  # noqa: E402
from benchmarks.arguments import positive_int  # noqa: E402
from benchmarks.methods import top_k_configs  # noqa: E402
from benchmarks.tasks import derive_seed  # noqa: E402


Objective = Callable[[optuna.Trial], float]
BUDGETS = (10, 20)
MODELS = ["svm", "rf", "knn"]


def _svm(trial: optuna.Trial, log_c: float, log_gamma: float, scale: float = 1.0) -> float:
    c = trial.suggest_float("C", 1e-3, 1e3, log=True)
    gamma = trial.suggest_float("gamma", 1e-4, 1.0, log=True)
    return scale * ((math.log10(c) - log_c) ** 2 + (math.log10(gamma) - log_gamma) ** 2)


def _forest(trial: optuna.Trial, depth: int, offset: float = 0.0) -> float:
    return offset + abs(trial.suggest_int("depth", 1, 20) - depth) / 10


def _knn(trial: optuna.Trial, k: int, offset: float = 0.0) -> float:
    return offset + abs(trial.suggest_int("k", 1, 20) - k) / 10


def target(trial: optuna.Trial) -> float:
    """The SVM is the best model (optimum 0), the forest and k-NN plateau above it."""
    model = trial.suggest_categorical("model", MODELS)
    if model == "svm":
        return _svm(trial, 1.0, -2.0, scale=0.05)
    if model == "rf":
        return _forest(trial, 7, offset=0.3)
    return _knn(trial, 5, offset=0.35)


@dataclass(frozen=True)
class Scenario:
    name: str
    sources: list[optuna.Study]


def _source(objective: Objective, seed: int, n_trials: int, name: str) -> optuna.Study:
    study = optuna.create_study(
        study_name=name, sampler=optuna.samplers.TPESampler(seed=derive_seed(seed, name))
    )
    study.optimize(objective, n_trials=n_trials)
    return study


def scenarios(seed: int, source_trials: int) -> list[Scenario]:
    def related_svm() -> optuna.Study:
        return _source(lambda t: _svm(t, 1.2, -2.2), seed, source_trials, "svm")

    return [
        Scenario("svm-related", [related_svm()]),
        Scenario(
            "svm-misleading",
            [_source(lambda t: _svm(t, -2.5, -0.2), seed, source_trials, "svm-far")],
        ),
        Scenario(
            "per-model",
            [
                related_svm(),
                _source(lambda t: _forest(t, 8), seed, source_trials, "rf"),
                _source(lambda t: _knn(t, 6), seed, source_trials, "knn"),
            ],
        ),
    ]


METHOD_NAMES = ("tpe", "tpe+enqueue", "transfer-tpe")


def _sampler(
    method: str, sources: list[optuna.Study], seed: int, group: bool
) -> optuna.samplers.BaseSampler:
    options: dict[str, Any] = {"multivariate": True, "group": True} if group else {}
    if method == "transfer-tpe":
        from optuna_transfer import TransferTPESampler

        return TransferTPESampler(sources, seed=seed, **options)
    return optuna.samplers.TPESampler(seed=seed, **options)


def budgets(n_trials: int) -> list[int]:
    """The budgets a run of ``n_trials`` is read at: those of :data:`BUDGETS` below it, and
    its end."""
    return [b for b in BUDGETS if b < n_trials] + [n_trials]


def run_one(
    scenario: Scenario, method: str, seed: int, n_trials: int, group: bool
) -> list[float]:
    """The best value after each of ``budgets(n_trials)``."""
    study = optuna.create_study(sampler=_sampler(method, scenario.sources, seed, group))
    if method == "tpe+enqueue":
        for params in top_k_configs(scenario.sources, 5):
            study.enqueue_trial(params)
    study.optimize(target, n_trials=n_trials)
    values = [t.value for t in study.trials if t.value is not None]
    return [min(values[:budget]) for budget in budgets(n_trials)]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.conditional",
        description="Conditional target, sources of one model: cold TPE, TPE + enqueue, "
        "TransferTPE.",
    )
    p.add_argument("--seeds", type=positive_int, default=24, help="seeds 0..N-1 (default: 24)")
    p.add_argument("--n-trials", type=positive_int, default=40,
                   help="target trials (default: 40)")
    p.add_argument("--source-trials", type=positive_int, default=60,
                   help="trials per source study")
    p.add_argument("--out", type=Path, default=None, help="also write the table to this file")
    args = p.parse_args(argv)
    check_output_file(p, args.out)
    optuna.logging.set_verbosity(optuna.logging.ERROR)

    rows: dict[tuple[str, str, bool], list[list[float]]] = {}
    for seed in range(args.seeds):
        for scenario in scenarios(seed, args.source_trials):
            for group in (False, True):
                for method in METHOD_NAMES:
                    result = run_one(scenario, method, seed, args.n_trials, group)
                    rows.setdefault((scenario.name, method, group), []).append(result)

    n = args.n_trials
    lines = [
        "# Conditional search spaces: sources of one model",
        "",
        f"* Machine: {provenance.machine()}",
        f"* Versions: {provenance.versions()}",
        f"* Seeds: 0-{args.seeds - 1}; source studies: TPE, {args.source_trials} trials",
        f"* Command: `{provenance.command_line('benchmarks.conditional', argv)}`",
        "",
        "Mean regret over seeds (the best value found; the target's optimum is 0), median in "
        "brackets. `group`: the samplers built with `multivariate=True, group=True`.",
        "",
        "| scenario | sampling | method | "
        + " | ".join(f"regret at {b}" for b in budgets(n))
        + " |",
        "|---|---|---|" + "---:|" * len(budgets(n)),
    ]
    for (scenario_name, method, group), results in rows.items():
        table = np.array(results)
        cells = [
            f"{m:.4f} ({q:.4f})" for m, q in zip(table.mean(axis=0), np.median(table, axis=0))
        ]
        sampling = "group" if group else "joint"
        lines.append(f"| {scenario_name} | {sampling} | {method} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    provenance.publish(text, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
