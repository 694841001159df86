"""Failing-region scenarios: the target fails where the sources were best.

What happens when the old study's best learning rate diverges on the new data, or its best
batch size runs out of memory on the new GPU. Each scenario makes the target *fail* (NaN, or a
``MemoryError`` caught with ``catch=``) in a region that holds the sources' best
configurations, and runs cold TPE, TPE + the sources' top-5 enqueued, and TransferTPE on it:

* ``nan-lr``: a smooth 2-D task (log learning rate and weight decay); the sources' optimum is
  at lr ~0.3 and the target returns NaN above lr 0.1 (feasible optimum 0.25, at lr = 0.1).
* ``oom-bs``: learning rate, batch size and optimiser, the learning rate's optimum moving with
  the batch size; the sources are best at batch size 256 and the target runs out of memory at
  256 and above (feasible optimum 0.3, at batch size 128).
* ``oom-discrete``: three integer parameters of 5 values each (125 configurations), the sources
  best at the centre; the target runs out of memory wherever the first two are at the centre
  (5 configurations, the sources' best among them; feasible optimum 1, one step away). In a
  space this small a sampler that ignores failures proposes the same failing configuration
  again and again.
* ``hpolib-oom-<table>``: each HPOLib table as the target, the other three as sources (as in
  the ``hpolib`` suite); the target runs out of memory at the batch size of the sources'
  pooled best configuration and above (at that batch size alone when it is the smallest).
* ``constrained-bs``: ``oom-bs``'s task with the memory limit reported as a constraint
  (``trial.set_constraint``) rather than a crash, by the sources as by the target: the sources'
  best values lie beyond the limit, their best feasible configurations at batch size 128.
* ``constrained-bs-new``: the same target, the sources ``oom-bs``'s (run without the limit):
  their best configurations are infeasible on the target.

Per scenario and method: FAIL trials (and COMPLETE trials that violate a constraint) and
distinct configurations among the first ``--n-trials`` trials, and the regret of the best
feasible value (0 = the best configuration that neither fails nor violates a constraint) at
10 trials and at the end, means over seeds.

Usage: ``python -m benchmarks.failures --seeds 10 --out benchmarks/figures/failures_table.md``
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
import math
from pathlib import Path
import sys

import numpy as np
import optuna
from optuna.trial import TrialState


if __package__ in (None, ""):  # run as a file: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import provenance  # noqa: E402
from benchmarks.arguments import check_output_file
from benchmarks.arguments import positive_int
from benchmarks.methods import MethodContext  # noqa: E402
from benchmarks.methods import METHODS  # noqa: E402
from benchmarks.methods import top_k_configs  # noqa: E402
from benchmarks.tasks import derive_seed  # noqa: E402
from benchmarks.tasks import load_table  # noqa: E402
from benchmarks.tasks import nearest_choice  # noqa: E402
from benchmarks.tasks import Problem  # noqa: E402
from benchmarks.tasks import TABLE_BENCHES  # noqa: E402
from optuna_transfer._ranking import violation  # noqa: E402


METHOD_NAMES = ("tpe", "tpe+enqueue", "transfer-tpe")
BATCH_SIZES = [16, 32, 64, 128, 256, 512]
Objective = Callable[[optuna.Trial], float]


@dataclass(frozen=True)
class Scenario:
    name: str
    sources: list[optuna.Study]
    objective: Objective
    # Best value the target can reach without failing; regret is measured from it.
    feasible_optimum: float


def _lr_wd(trial: optuna.Trial) -> float:
    lr = trial.suggest_float("lr", 1e-5, 1.0, log=True)
    wd = trial.suggest_float("wd", 1e-6, 1e-2, log=True)
    return (math.log10(lr) + 0.5) ** 2 + (math.log10(wd) + 4) ** 2


def _nan_above_lr(trial: optuna.Trial) -> float:
    value = _lr_wd(trial)
    return value if trial.params["lr"] <= 0.1 else float("nan")


def _lr_bs(trial: optuna.Trial) -> float:
    lr = trial.suggest_float("lr", 1e-5, 1.0, log=True)
    bs = trial.suggest_categorical("bs", BATCH_SIZES)
    opt = trial.suggest_categorical("opt", ["sgd", "adam", "rmsprop"])
    shift = math.log2(bs / 256)
    return (math.log10(lr) + 2.5 + 0.3 * shift) ** 2 + 0.3 * abs(shift) + 0.5 * (opt != "adam")


def _oom_above_bs(trial: optuna.Trial) -> float:
    value = _lr_bs(trial)
    if trial.params["bs"] >= 256:
        raise MemoryError("CUDA out of memory (simulated)")
    return value


def _memory_limited_bs(trial: optuna.Trial) -> float:
    value = _lr_bs(trial)
    # Feasible up to batch size 128, the limit of ``_oom_above_bs`` reported instead of raised.
    trial.set_constraint("memory", math.log2(trial.params["bs"] / 128))
    return value


def _grid3(trial: optuna.Trial) -> float:
    x, y, z = (trial.suggest_int(name, 0, 4) for name in ("x", "y", "z"))
    return float((x - 2) ** 2 + (y - 2) ** 2 + (z - 2) ** 2)


def _oom_at_centre(trial: optuna.Trial) -> float:
    value = _grid3(trial)
    if trial.params["x"] == 2 and trial.params["y"] == 2:
        raise MemoryError("CUDA out of memory (simulated)")
    return value


def _tpe_source(objective: Objective, seed: int, n_trials: int, name: str) -> optuna.Study:
    study = optuna.create_study(
        study_name=name, sampler=optuna.samplers.TPESampler(seed=derive_seed(seed, name))
    )
    study.optimize(objective, n_trials=n_trials)
    return study


def _hpolib_scenario(target: str, seed: int, source_trials: int) -> Scenario:
    datasets = [d for d in TABLE_BENCHES["hpolib"][3] if d != target]
    problem = Problem("hpolib", target)
    sources = [
        _tpe_source(Problem("hpolib", d).objective("mixed"), seed, source_trials, d)
        for d in datasets
    ]
    table = load_table("hpolib", target)
    choices = table.choices["batch_size"]
    limit = nearest_choice(choices, top_k_configs(sources, 1)[0]["batch_size"])
    # From the sources' best batch size up; at the smallest batch size, that one alone.
    fails_at = set(range(limit, len(choices))) if limit > 0 else {0}
    inner = problem.objective("mixed")

    def objective(trial: optuna.Trial) -> float:
        value = inner(trial)
        if nearest_choice(choices, trial.params["batch_size"]) in fails_at:
            raise MemoryError("CUDA out of memory (simulated)")
        return value

    # The table's digits of batch_size for every configuration, to find the feasible optimum.
    names = list(table.choices)
    j = names.index("batch_size")
    radices = [len(c) for c in table.choices.values()]
    stride = int(np.prod(radices[j + 1 :]))
    digit = (np.arange(table.n_configs) // stride) % radices[j]
    feasible = ~np.isin(digit, sorted(fails_at))
    return Scenario(
        f"hpolib-oom-{target}", sources, objective, float(table.losses[feasible].min())
    )


def scenarios(seed: int, source_trials: int) -> list[Scenario]:
    return [
        Scenario("nan-lr", [_tpe_source(_lr_wd, seed, source_trials, "lr-wd")], _nan_above_lr,
                 0.25),
        Scenario("oom-bs", [_tpe_source(_lr_bs, seed, source_trials, "lr-bs")], _oom_above_bs,
                 0.3),
        Scenario("oom-discrete", [_tpe_source(_grid3, seed, source_trials, "grid3")],
                 _oom_at_centre, 1.0),
        *[_hpolib_scenario(t, seed, source_trials) for t in TABLE_BENCHES["hpolib"][3]],
        Scenario(
            "constrained-bs",
            [_tpe_source(_memory_limited_bs, seed, source_trials, "lr-bs-limited")],
            _memory_limited_bs,
            0.3,
        ),
        Scenario("constrained-bs-new", [_tpe_source(_lr_bs, seed, source_trials, "lr-bs")],
                 _memory_limited_bs, 0.3),
    ]



def run_one(scenario: Scenario, method: str, seed: int, n_trials: int) -> dict[str, float]:
    setup = METHODS[method](MethodContext({}, None, scenario.sources, seed, top_k=5))
    study = optuna.create_study(sampler=setup.sampler)
    for params in setup.enqueue:
        study.enqueue_trial(params)
    study.optimize(scenario.objective, n_trials=n_trials, catch=(MemoryError,))
    trials = study.trials[:n_trials]

    def regret_at(budget: int) -> float:
        values = [
            t.values[0]
            for t in trials[:budget]
            if t.state == TrialState.COMPLETE and not violation(t) > 0
        ]
        return (min(values) - scenario.feasible_optimum) if values else float("nan")

    return {
        "fails": float(sum(t.state == TrialState.FAIL or violation(t) > 0 for t in trials)),
        "distinct": float(len({tuple(sorted(t.params.items())) for t in trials})),
        "regret@10": regret_at(10),
        "regret@end": regret_at(n_trials),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.failures",
        description="Failing-region scenarios: cold TPE, TPE + enqueue, TransferTPE.",
    )
    p.add_argument("--seeds", type=positive_int, default=10, help="seeds 0..N-1 (default: 10)")
    p.add_argument("--n-trials", type=positive_int, default=40, help="target trials (default: 40)")
    p.add_argument("--source-trials", type=int, default=60, help="trials per source study")
    p.add_argument("--out", type=Path, default=None, help="also write the table to this file")
    args = p.parse_args(argv)
    check_output_file(p, args.out)
    optuna.logging.set_verbosity(optuna.logging.ERROR)

    rows: dict[tuple[str, str], list[dict[str, float]]] = {}
    for seed in range(args.seeds):
        for scenario in scenarios(seed, args.source_trials):
            for method in METHOD_NAMES:
                result = run_one(scenario, method, seed, args.n_trials)
                rows.setdefault((scenario.name, method), []).append(result)

    n = args.n_trials
    # A run shorter than 10 trials has no regret at 10 (it would read its last trial's).
    early = n >= 10
    lines = [
        "# Failing-region scenarios",
        "",
        f"* Machine: {provenance.machine()}",
        f"* Versions: {provenance.versions()}",
        f"* Seeds: 0-{args.seeds - 1}; source studies: TPE, {args.source_trials} trials",
        f"* Command: `{provenance.command_line('benchmarks.failures', argv)}`",
        "",
        f"Means over seeds. FAIL and distinct: of the first {n} trials (FAIL counts the "
        "trials that violate a constraint too). Regret: the best feasible value found minus "
        "the best value of a configuration that neither fails nor violates a constraint "
        "(validation loss for the tables).",
        "",
        f"| scenario | method | FAIL of {n} | distinct configs of {n} | "
        + ("regret at 10 | " if early else "") + f"regret at {n} |",
        "|---|---|---:|---:|---:|" + ("---:|" if early else ""),
    ]
    for (scenario_name, method), results in rows.items():
        mean = {k: float(np.nanmean([r[k] for r in results])) for k in results[0]}
        lines.append(
            f"| {scenario_name} | {method} | {mean['fails']:.1f} | {mean['distinct']:.1f} | "
            + (f"{mean['regret@10']:.4g} | " if early else "") + f"{mean['regret@end']:.4g} |"
        )
    text = "\n".join(lines) + "\n"
    provenance.publish(text, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
