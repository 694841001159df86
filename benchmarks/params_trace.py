"""Per-trial params of both samplers on fixed seeds: proof that a refactoring changed nothing.

Records, for TransferTPESampler and WarmStartGridSampler, the params of every trial of short
runs on the ``hpolib``, ``misleading``, ``grid`` and ``grid-misleading`` table suites and on the
synthetic family (related and misleading sources), then either writes them (``--record``) or
compares them with a recording (``--check``) and lists the first trial where a run differs.

    python -m benchmarks.params_trace --record results/params_before.json
    ... refactor ...
    python -m benchmarks.params_trace --check results/params_before.json

Sources are TPE studies of ``--source-trials`` trials, generated the same way as by
``benchmarks.cold_vs_warm`` (same seeds), so the runs are deterministic on one machine.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys
from typing import Any


if __package__ in (None, ""):  # run as a file: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import optuna  # noqa: E402

from benchmarks import synthetic  # noqa: E402
from benchmarks.runner import run  # noqa: E402
from benchmarks.runner import RunJob  # noqa: E402
from benchmarks.sources import run_source  # noqa: E402
from benchmarks.sources import SourceJob  # noqa: E402
from benchmarks.suites import suite_tasks  # noqa: E402


TABLE_RUNS = {
    "hpolib": "transfer-tpe",
    "misleading": "transfer-tpe",
    "grid": "warm-grid",
    "grid-misleading": "warm-grid",
}


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    # repr keeps float bits exactly and tells 1 from 1.0 and "1".
    return {k: repr(v) for k, v in sorted(params.items())}


def table_traces(seeds: list[int], n_trials: int, source_trials: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for suite, method in TABLE_RUNS.items():
        for task in suite_tasks(suite):
            for seed in seeds:
                sources = []
                for problem in task.sources:
                    job = SourceJob(problem, "tpe", source_trials, "mixed", seed)
                    sources.append((job.study_name, tuple(run_source(job))))
                result = run(
                    RunJob(task, method, seed, n_trials, "mixed", 5, tuple(sources))
                )
                if result.error is not None:
                    raise RuntimeError(f"{suite}/{task.name}/{seed}: {result.error}")
                key = f"{suite}/{task.name}/{method}/seed{seed}"
                out[key] = [_jsonable(t.params) for t in result.trials]
    return out


def synthetic_traces(seeds: list[int], n_trials: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    jobs = [
        (seed, kind, method, n_trials)
        for kind in ("related", "misleading")
        for seed in seeds
        for method in ("transfer-tpe", "warm-grid")
    ]
    for (seed, kind, method, _), result in zip(jobs, synthetic.run_jobs(jobs)):
        if result.error is not None:
            raise RuntimeError(f"synthetic-{kind}/{method}/{seed}: {result.error}")
        key = f"synthetic-{kind}/{method}/seed{seed}"
        out[key] = [_jsonable(t.params) for t in result.trials]
    return out


def first_difference(before: list[Any], after: list[Any]) -> int | None:
    for i, (a, b) in enumerate(zip(before, after)):
        if a != b:
            return i
    return None if len(before) == len(after) else min(len(before), len(after))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.params_trace", description=__doc__)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--record", type=Path, help="write the traces to this JSON file")
    mode.add_argument("--check", type=Path, help="compare with the traces in this JSON file")
    p.add_argument("--seeds", type=int, default=2, help="seeds 0..N-1 (default: 2)")
    p.add_argument("--n-trials", type=int, default=30, help="target trials (default: 30)")
    p.add_argument("--source-trials", type=int, default=50, help="(default: 50)")
    args = p.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    seeds = list(range(args.seeds))
    traces = {
        **table_traces(seeds, args.n_trials, args.source_trials),
        **synthetic_traces(seeds, args.n_trials),
    }
    if args.record is not None:
        args.record.parent.mkdir(parents=True, exist_ok=True)
        args.record.write_text(json.dumps(traces, indent=0))
        print(f"{len(traces)} runs recorded in {args.record}")
        return 0
    recorded = json.loads(args.check.read_text())
    differing = []
    for key in sorted(set(recorded) | set(traces)):
        if key not in recorded or key not in traces:
            differing.append(f"{key}: only in {'the recording' if key in recorded else 'now'}")
            continue
        i = first_difference(recorded[key], traces[key])
        if i is not None:
            differing.append(f"{key}: first differs at trial {i}")
    if differing:
        print("\n".join(differing))
        print(f"{len(differing)} of {len(traces)} runs differ")
        return 1
    print(f"all {len(traces)} runs identical, trial by trial")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
