"""Cold vs warm start: how much do finished source studies speed up a new search?

Run from the repository root::

    python -m benchmarks.cold_vs_warm --suites hpolib --seeds 10 --n-trials 100

Writes, per suite, under ``--out``: ``<suite>/curves.json`` (every run's per-trial curves),
``<suite>/table.md`` and ``<suite>/regret.png``. Every source study goes to ``--storage`` (and
every target study too with ``--store-targets``) so it can be opened in optuna-dashboard.

Storage: worker processes never touch the database. They run studies in memory (so the measured
sampler overhead has no database time in it) and send the trials back; the main process is the
only writer. That avoids SQLite lock contention between processes altogether.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from collections.abc import Iterable
import dataclasses
from dataclasses import dataclass
import json
import math
from pathlib import Path
import sys
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial
from tqdm import tqdm


if not __package__:
    # Run as a file (`python benchmarks/cold_vs_warm.py`): make the repository root importable,
    # so the `benchmarks.*` imports below resolve as they do under `python -m`.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import provenance
from benchmarks.arguments import check_output_folder
from benchmarks.arguments import open_storage
from benchmarks.arguments import parse_seeds
from benchmarks.arguments import positive_int
from benchmarks.methods import METHODS
from benchmarks.plots import plot_suite
from benchmarks.report import suite_markdown
from benchmarks.report import SuiteData
from benchmarks.report import weight_summary
from benchmarks.runner import map_jobs
from benchmarks.runner import run
from benchmarks.runner import RunJob
from benchmarks.runner import RunResult
from benchmarks.sources import load_stored_source
from benchmarks.sources import run_source_safely
from benchmarks.sources import SourceJob
from benchmarks.sources import store_source
from benchmarks.sources import store_study
from benchmarks.suites import SUITES
from benchmarks.tasks import Problem
from optuna_transfer import redact_url


def _csv(choices: Iterable[str]) -> Callable[[str], list[str]]:
    allowed = list(choices)

    def parse(text: str) -> list[str]:
        items = [s.strip() for s in text.split(",") if s.strip()]
        bad = [s for s in items if s not in allowed]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"choose from {allowed}, got {text!r}")
        return items

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.cold_vs_warm",
        description="Compare cold-start samplers with warm starts from source studies.",
    )
    p.add_argument("--suites", type=_csv(SUITES), default=["hpolib"],
                   help=f"comma-separated, from {list(SUITES)} (default: hpolib)")
    p.add_argument("--methods", type=_csv(METHODS), default=None,
                   help=f"comma-separated, from {list(METHODS)} (default: per suite)")
    p.add_argument("--seeds", type=parse_seeds, default=parse_seeds("10"),
                   help="number of seeds (0..N-1) or a comma-separated list (default: 10)")
    p.add_argument("--n-trials", type=positive_int, default=100, help="target trials per run")
    p.add_argument("--source-trials", type=positive_int, default=100,
                   help="trials per source study")
    p.add_argument("--source-sampler", choices=["tpe", "random"], default="tpe",
                   help="sampler that generates the source studies (default: tpe)")
    p.add_argument("--top-k", type=int, default=5, help="configurations enqueued by *+enqueue")
    p.add_argument("--encoding", choices=["mixed", "categorical"], default="mixed",
                   help="table numeric parameters as int/float ranges (mixed) or categorical")
    p.add_argument("--workers", type=positive_int, default=2,
                   help="worker processes (default: 2)")
    p.add_argument("--storage", default=None,
                   help="Optuna storage URL for all studies, or 'none' (default: SQLite file "
                        "<out>/studies.db)")
    p.add_argument("--store-targets", action="store_true",
                   help="also write every target study to --storage (slow with SQLite: about "
                        "2.5 s per 100-trial study, all in the main process)")
    p.add_argument("--out", type=Path, default=Path("results"), help="output folder")
    p.add_argument("--cifar-data-dir", default="data",
                   help="cifar10 suite: folder with (or to download) the CIFAR datasets")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    return p


def command_line(argv: list[str]) -> str:
    """The command that reran this benchmark, storage credentials redacted."""
    return provenance.command_line("benchmarks.cold_vs_warm", argv)


@dataclass(frozen=True)
class Plan:
    """What one invocation runs: per suite its methods, the source studies the target runs
    need (each once, however many tasks share it) and the target runs."""

    methods: dict[str, list[str]]
    source_jobs: list[SourceJob]
    run_jobs: list[RunJob]


def make_plan(args: argparse.Namespace) -> Plan:
    methods: dict[str, list[str]] = {}
    source_jobs: dict[SourceJob, None] = {}  # ordered set
    run_jobs: list[RunJob] = []
    for name in args.suites:
        suite = SUITES[name]
        methods[name] = args.methods or list(suite.methods)
        for task in suite.tasks(str(args.cifar_data_dir)):
            for seed in args.seeds:
                for problem in task.sources:
                    source_jobs[_source_job(args, problem, seed)] = None
                for method in methods[name]:
                    run_jobs.append(
                        RunJob(task, method, seed, args.n_trials, args.encoding, args.top_k, ())
                    )
    return Plan(methods, list(source_jobs), run_jobs)


def _source_job(args: argparse.Namespace, problem: Problem, seed: int) -> SourceJob:
    return SourceJob(problem, args.source_sampler, args.source_trials, args.encoding, seed)


class Sources:
    """The source studies' trials by job: loaded from storage or generated, then stored."""

    def __init__(self, storage: optuna.storages.BaseStorage | None) -> None:
        self.storage = storage
        self.trials: dict[SourceJob, list[FrozenTrial]] = {}
        self.errors: dict[SourceJob, str] = {}

    def load(self, jobs: list[SourceJob]) -> list[SourceJob]:
        """Take what the storage holds of ``jobs``; returns the jobs still to generate."""
        missing = []
        for job in jobs:
            stored = load_stored_source(self.storage, job) if self.storage is not None else None
            if stored is None:
                missing.append(job)
            else:
                self.trials[job] = stored
        return missing

    def generate(self, jobs: list[SourceJob], workers: int, bar: tqdm) -> None:
        map_jobs(run_source_safely, jobs, workers, self._done, bar)

    def _done(self, job: SourceJob, trials: list[FrozenTrial] | str) -> None:
        if isinstance(trials, str):
            self.errors[job] = trials
            return
        self.trials[job] = trials
        if self.storage is not None:
            store_source(self.storage, job, trials)

    def attach(self, args: argparse.Namespace, job: RunJob) -> RunJob:
        """``job`` with its sources' trials, or the errors of the sources that failed."""
        srcs = []
        errors: list[str] = []
        for problem in job.task.sources:
            sj = _source_job(args, problem, job.seed)
            if sj in self.errors and self.errors[sj] not in errors:
                errors.append(self.errors[sj])
            srcs.append((sj.study_name, tuple(self.trials.get(sj, ()))))
        return dataclasses.replace(
            job, sources=tuple(srcs), source_error="; ".join(errors) or None
        )


def run_targets(
    args: argparse.Namespace, plan: Plan, sources: Sources, bar: tqdm
) -> dict[str, list[RunResult]]:
    """Every target run of ``plan``, by suite; with ``--store-targets`` each study is stored."""
    results: dict[str, list[RunResult]] = {s: [] for s in args.suites}

    def run_done(job: RunJob, result: RunResult) -> None:
        results[job.task.suite].append(result)
        if sources.storage is not None and args.store_targets:
            store_study(sources.storage, result.study_name, job.task.target.direction,
                        result.trials, {
                            "role": "target", "suite": result.suite, "task": result.task,
                            "method": result.method, "seed": result.seed,
                            "source_studies": result.source_studies, "error": result.error,
                        })

    jobs = [sources.attach(args, j) for j in plan.run_jobs]
    map_jobs(run, jobs, args.workers, run_done, bar)
    return results


def write_suite(
    args: argparse.Namespace,
    suite: str,
    methods: list[str],
    runs: list[RunResult],
    header: list[str],
    json_header: dict[str, Any],
) -> None:
    """``curves.json``, ``table.md`` and ``regret.png`` of one suite under ``args.out``."""
    _fill_empirical_regret(runs)
    suite_dir = args.out / suite
    suite_dir.mkdir(parents=True, exist_ok=True)
    runs.sort(key=lambda r: (r.task, methods.index(r.method), r.seed))
    with open(suite_dir / "curves.json", "w") as f:
        json.dump(
            {"suite": suite, **json_header, "runs": [r.to_json() for r in runs]},
            f,
            indent=1,
            default=_json_default,
        )
    data = SuiteData.from_results(runs, methods, args.seeds, args.n_trials)
    baseline = SUITES[suite].baseline_among(methods)
    weights = weight_summary(runs, methods, args.n_trials)
    table = suite_markdown(data, baseline, header, n_boot=args.bootstrap, extra=weights)
    (suite_dir / "table.md").write_text(table)
    plot_suite(data, suite_dir / "regret.png")
    print(f"{suite}: table {suite_dir / 'table.md'}, plot {suite_dir / 'regret.png'}, "
          f"curves {suite_dir / 'curves.json'}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Both checked before any job: the default storage lives in --out.
    check_output_folder(parser, args.out)
    # Taken now, not when the tables are written: the checkout may change during a long run.
    versions = provenance.versions()
    storage_url = args.storage or f"sqlite:///{(args.out / 'studies.db').resolve()}"
    storage = open_storage(parser, storage_url)
    shown_storage = redact_url(storage_url)

    plan = make_plan(args)
    # Sources first: every target run of a seed needs them.
    sources = Sources(storage)
    missing = sources.load(plan.source_jobs)
    print(f"storage: {shown_storage}; {len(missing)} source studies to generate "
          f"({len(plan.source_jobs) - len(missing)} reused), {len(plan.run_jobs)} target runs; "
          f"{args.workers} worker(s)", file=sys.stderr)
    bar = tqdm(total=len(missing) + len(plan.run_jobs), desc="cold-vs-warm", unit="study")
    sources.generate(missing, args.workers, bar)
    results = run_targets(args, plan, sources, bar)
    bar.close()

    header = [
        f"* Machine: {provenance.machine()}",
        f"* Versions: {versions}",
        f"* Seeds: {args.seeds}",
        f"* Command: `{command_line(argv)}`",
        f"* Storage: `{shown_storage}`; source studies: {args.source_trials} trials each, "
        f"sampler `{args.source_sampler}`; search-space encoding `{args.encoding}`; "
        f"top-k enqueued: {args.top_k}",
    ]
    json_header = {
        "command": command_line(argv),
        # Runs are deterministic on one kind of CPU, not across kinds (numpy's and OpenBLAS's
        # vectorised kernels round differently), so a figure made from these curves says where.
        "machine": provenance.machine(),
        "versions": versions,
        "storage": shown_storage,
        "seeds": args.seeds,
        "n_trials": args.n_trials,
    }
    for suite, runs in results.items():
        write_suite(args, suite, plan.methods[suite], runs, header, json_header)
    if storage is not None:
        # Said here, from what was written: run.sh passes options through and cannot know.
        print(f"studies: {shown_storage} (optuna-dashboard {shown_storage})")
    return 0


def _fill_empirical_regret(runs: list[RunResult]) -> None:
    # Problems without a table (CIFAR): regret against the best and median loss seen in any
    # trial of any run on the same task, the closest stand-in for the unknown optimum.
    by_task: dict[str, list[RunResult]] = {}
    for r in runs:
        if r.error is None and r.best_loss and not r.regret:
            by_task.setdefault(r.task, []).append(r)
    for task_runs in by_task.values():
        seen = np.concatenate([np.asarray(r.losses) for r in task_runs])
        best, median = float(seen.min()), float(np.median(seen))
        scale = median - best if median > best else 1.0
        for r in task_runs:
            r.regret = [max(0.0, (b - best) / scale) for b in r.best_loss]
            r.pct_better = [math.nan] * len(r.best_loss)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


if __name__ == "__main__":
    sys.exit(main())
