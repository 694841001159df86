"""Many workers: N processes share one storage, for both samplers, with short sleeps as the
objective.

Optuna's storages are the distributed engine: a team runs the same script on N machines (or
N processes) against one storage URL, or behind Optuna's gRPC storage proxy when the database
limits connections. This script does that on one machine, on

* ``postgresql``: a PostgreSQL server (a throw-away one from ``tests/_pg.py`` unless
  ``--pg-url`` names one), each worker with its own ``RDBStorage``;
* ``grpc+postgresql`` / ``grpc+sqlite``: ``optuna.storages.run_grpc_proxy_server`` in a
  process of its own, in front of that PostgreSQL database (or a SQLite file), each worker with
  a ``GrpcStorageProxy``.

First ``--n-sources`` small source studies are created in the storage (``--source-trials``
trials each of a 3-parameter objective). Then, per sampler, every worker builds its sampler
from them with ``from_storage`` and the same seed (users copy one script), waits until all
workers are ready, and runs ``--trials-per-worker`` trials whose objective sleeps 20-50 ms.
The grid has fewer points (75) than the trials all workers may run, so the claim protocol is
stressed to the end of the grid. Measured:

* **repeats while unvisited** (grid): trials that took a point another trial had already
  taken (claim settled earlier) while some grid point was still free: not yet approached by
  any trial (no trial that ends up holding it had started its claim by then), or never visited
  at all. Must be 0. Repeats after that are what ``GridSampler`` does too (trials started while
  the last points were being claimed);
* **repeats** (TransferTPE): trials with the exact params of an earlier one, and of those the
  **unclaimed** ones: sampled one parameter at a time (no trial had finished yet, so the
  relative search space was empty), which TransferTPE does not claim. Workers built with one
  seed used to draw the same value when they sampled a parameter at the same moment (through
  the gRPC proxy, slower per call, most of the first wave samples before any trial finishes);
  such a parameter now gets a generator of its own trial while other trials run;
* **lost trials**: trials left RUNNING or WAITING, and trials finished in the storage that no
  worker reports having finished, or the other way round. Must be 0;
* trials done (COMPLETE), wall time (first worker's start of ``optimize`` to the last one's
  end, sampler construction excluded), and the sampler's share: the time spent in the
  sampler's calls (``before_trial``, ``infer_relative_search_space``, ``sample_*``,
  ``after_trial``; for the grid, waiting out other workers' claims included), summed over the
  workers, over the workers' summed ``optimize`` time.

Run from the repository root (the table goes to stdout and to ``--out``)::

    python -m benchmarks.workers --workers 16 --trials-per-worker 8 \\
        --out benchmarks/figures/workers_table.md
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
import contextlib
from dataclasses import dataclass
from dataclasses import field
import functools
import itertools
import math
import multiprocessing
import multiprocessing.context
import multiprocessing.queues
import multiprocessing.synchronize
import os
from pathlib import Path
import queue
import random
import shlex
import socket
import sys
import tempfile
import time
import traceback
from typing import Any
import warnings


if not __package__:
    # Run as a file (`python benchmarks/workers.py`): make the repository root importable,
    # so the `benchmarks.*` imports below resolve as they do under `python -m`.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial
from optuna.trial import Trial
from optuna.trial import TrialState

from benchmarks import provenance
from benchmarks.arguments import check_output_file
from optuna_transfer import redact_url
from optuna_transfer import TransferTPESampler
from optuna_transfer import WarmStartGridSampler
from optuna_transfer._optuna_compat import get_chunked_system_attr
from optuna_transfer._tpe._claims import is_zero_shot_trial
from optuna_transfer._tpe._claims import RELATIVE_PARAMS_KEY


ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("postgresql", "grpc+postgresql", "grpc+sqlite")
SAMPLERS = ("transfer-tpe", "warm-grid")
# 5 x 5 x 3 = 75 points over the objective's parameters.
GRID: dict[str, list[Any]] = {
    "x": [0.0, 0.25, 0.5, 0.75, 1.0],
    "y": [0.001, 0.005, 0.02, 0.1, 0.5],
    "c": ["a", "b", "c"],
}
TARGET_SHIFT = 0.15
DEFAULT_OUT = ROOT / "benchmarks" / "figures" / "workers_table.md"
# Imported once in the fork server, so that each worker forks with them loaded: 16 fresh
# interpreters importing optuna, scipy and SQLAlchemy take a while on a small machine.
_PRELOAD = ["numpy", "scipy.stats", "sqlalchemy", "optuna", "optuna_transfer"]


def objective(trial: Trial, shift: float = 0.0) -> float:
    """A 3-parameter stand-in for a training run; ``shift`` moves its optimum a little."""
    x = trial.suggest_float("x", 0.0, 1.0)
    y = trial.suggest_float("y", 1e-3, 1.0, log=True)
    c = trial.suggest_categorical("c", ["a", "b", "c"])
    return (
        (x - 0.3 - shift) ** 2
        + 0.2 * (math.log10(y) + 2.0 - shift) ** 2
        + {"a": 0.0, "b": 0.1, "c": 0.3}[c]
    )


def _quiet() -> None:
    """Warnings only; and not that the gRPC proxy is experimental (in every process)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


# ---------------------------------------------------------------------------------------------
# The timed sampler
# ---------------------------------------------------------------------------------------------


class TimedSampler(BaseSampler):
    """Delegates every sampler call to ``inner`` and adds up the time spent in them (elapsed,
    and this process's CPU time: with more workers than cores, elapsed time includes waiting
    for a core); records, per trial number, when its ``before_trial`` started and ended (wall
    clock, comparable between processes of one machine): for the grid, when the trial's claim
    was made."""

    def __init__(self, inner: BaseSampler) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self.claims: dict[int, tuple[float, float]] = {}

    def _timed(self, call: Callable[..., Any], *args: Any) -> Any:
        start, cpu = time.perf_counter(), time.process_time()
        try:
            return call(*args)
        finally:
            self.seconds += time.perf_counter() - start
            self.cpu_seconds += time.process_time() - cpu

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        start = time.time()
        try:
            self._timed(self.inner.before_trial, study, trial)
        finally:
            self.claims[trial.number] = (start, time.time())

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        result: dict[str, BaseDistribution] = self._timed(
            self.inner.infer_relative_search_space, study, trial
        )
        return result

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        result: dict[str, Any] = self._timed(
            self.inner.sample_relative, study, trial, search_space
        )
        return result

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._timed(
            self.inner.sample_independent, study, trial, param_name, param_distribution
        )

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._timed(self.inner.after_trial, study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()


# ---------------------------------------------------------------------------------------------
# Storages
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StorageSpec:
    """How a process opens the storage: an RDB URL, or the gRPC proxy's port."""

    url: str | None = None
    grpc_port: int | None = None
    # The proxy's process, whose CPU time the report shows beside the workers'.
    server_pid: int | None = None

    def open(self) -> optuna.storages.BaseStorage:
        if self.grpc_port is not None:
            return optuna.storages.GrpcStorageProxy(host="127.0.0.1", port=self.grpc_port)
        assert self.url is not None
        return optuna.storages.RDBStorage(self.url, **_engine_kwargs(self.url))


def _engine_kwargs(url: str) -> dict[str, Any]:
    # SQLite serialises writers; wait for the lock rather than fail at once.
    if url.startswith("sqlite"):
        return {"engine_kwargs": {"connect_args": {"timeout": 60}}}
    return {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int | None) -> float | None:
    """A process's CPU time so far (user + system), from /proc; None where unreadable."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # utime and stime: fields 14 and 15 of stat(5), the 12th and 13th after the name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _serve_grpc(url: str, port: int) -> None:
    """The gRPC proxy's process: serves ``url``'s storage until terminated."""
    _quiet()
    # get_storage, not RDBStorage: Optuna's docs ask for its in-process cache here.
    storage = optuna.storages.get_storage(optuna.storages.RDBStorage(url, **_engine_kwargs(url)))
    optuna.storages.run_grpc_proxy_server(storage, host="127.0.0.1", port=port)


@contextlib.contextmanager
def grpc_proxy(
    ctx: multiprocessing.context.BaseContext, url: str, timeout: float = 60.0
) -> Iterator[StorageSpec]:
    port = _free_port()
    proc = ctx.Process(target=_serve_grpc, args=(url, port), daemon=True)  # type: ignore[attr-defined]
    proc.start()
    try:
        client = optuna.storages.GrpcStorageProxy(host="127.0.0.1", port=port)
        try:
            client.wait_server_ready(timeout=timeout)
        except Exception as e:
            raise RuntimeError(
                f"The gRPC storage proxy on port {port} did not start within {timeout:.0f} s "
                f"(its process is {'alive' if proc.is_alive() else 'dead'})."
            ) from e
        finally:
            client.close()
        yield StorageSpec(grpc_port=port, server_pid=proc.pid)
    finally:
        proc.terminate()
        proc.join(10)


@contextlib.contextmanager
def postgresql_url(pg_url: str | None) -> Iterator[tuple[str, str]]:
    """A PostgreSQL URL and the server's version: ``pg_url``'s, or a throw-away server's."""
    if pg_url is not None:
        yield pg_url, _pg_version(pg_url)
        return
    sys.path.insert(0, str(ROOT / "tests"))
    import _pg  # the tests' throw-away server: temp data dir, 127.0.0.1, a random port

    bin_dir = _pg.ensure_installed()
    if bin_dir is None:
        raise SystemExit(
            "PostgreSQL server binaries not found and tests/postgres.sh could not install them: "
            "install PostgreSQL, pass --pg-url postgresql+psycopg2://USER:PASS@HOST/DB, or run "
            "--backends grpc+sqlite."
        )
    with _pg.server(bin_dir) as server:
        yield server.url(), server.show("server_version")


def _pg_version(url: str) -> str:
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(sqlalchemy.text("SHOW server_version")).scalar())
    finally:
        engine.dispose()


# ---------------------------------------------------------------------------------------------
# Workers
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    index: int
    storage: StorageSpec
    sampler: str
    sources: tuple[str, ...]
    target: str
    seed: int
    n_trials: int
    sleep_s: tuple[float, float]
    timeout_s: float
    grid: dict[str, list[Any]]


def build_sampler(
    name: str,
    storage: optuna.storages.BaseStorage,
    sources: Sequence[str],
    seed: int,
    grid: dict[str, list[Any]] | None = None,
) -> BaseSampler:
    if name == "transfer-tpe":
        return TransferTPESampler.from_storage(storage, list(sources), seed=seed)
    if name == "warm-grid":
        return WarmStartGridSampler.from_storage(storage, list(sources), grid or GRID, seed=seed)
    raise ValueError(f"Unknown sampler {name!r}: use one of {', '.join(SAMPLERS)}.")


def _worker(job: Job, barrier: multiprocessing.synchronize.Barrier, results: Any) -> None:
    """One worker process: build the sampler, wait for the others, optimize, report."""
    report: dict[str, Any] = {"index": job.index}
    try:
        _quiet()
        started = time.perf_counter()
        storage = job.storage.open()
        inner = build_sampler(job.sampler, storage, job.sources, job.seed, job.grid)
        sampler = TimedSampler(inner)
        study = optuna.load_study(study_name=job.target, storage=storage, sampler=sampler)
        report["setup_s"] = time.perf_counter() - started
        # Each worker sleeps its own random durations; the sampler seed is the same everywhere.
        jitter = random.Random(f"{job.seed}-{job.index}")
        done: list[int] = []

        def sleepy(trial: Trial) -> float:
            value = objective(trial, TARGET_SHIFT)
            time.sleep(jitter.uniform(*job.sleep_s))
            return value

        barrier.wait(timeout=job.timeout_s)
        report["start"] = time.time()
        study.optimize(
            sleepy,
            n_trials=job.n_trials,
            callbacks=[lambda _study, trial: done.append(trial.number)],
        )
        report["end"] = time.time()
        report.update(
            done=done,
            sampler_s=sampler.seconds,
            sampler_cpu_s=sampler.cpu_seconds,
            claims=sampler.claims,
        )
    except BaseException:
        report["error"] = traceback.format_exc()
        with contextlib.suppress(Exception):
            barrier.abort()
    results.put(report)


def _run_workers(
    ctx: multiprocessing.context.BaseContext, jobs: list[Job], timeout_s: float
) -> list[dict[str, Any]]:
    barrier = ctx.Barrier(len(jobs))
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(job, barrier, results))  # type: ignore[attr-defined]
        for job in jobs
    ]
    for p in procs:
        p.start()
    reports: dict[int, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout_s
    # Read the queue before joining: a worker blocks on exit until its report is read.
    while len(reports) < len(jobs) and time.monotonic() < deadline:
        try:
            report = results.get(timeout=1.0)
        except queue.Empty:
            if not any(p.is_alive() for p in procs) and results.empty():
                break
            continue
        reports[report["index"]] = report
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()) + 5.0)
        if p.is_alive():
            p.terminate()
            p.join(5.0)
    for job in jobs:
        reports.setdefault(
            job.index, {"index": job.index, "error": f"no report within {timeout_s:.0f} s"}
        )
    return [reports[job.index] for job in jobs]


# ---------------------------------------------------------------------------------------------
# Measures
# ---------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One backend x sampler run."""

    backend: str
    sampler: str
    workers: int
    trials_done: int
    lost: int
    failed: int
    distinct: int
    repeats: int
    # Grid only (None for TPE): repeats while some grid point was still free.
    repeats_while_unvisited: int | None
    wall_s: float
    sampler_share: float
    sampler_ms_per_trial: float
    sampler_cpu_ms_per_trial: float
    setup_s: float
    errors: list[str] = field(default_factory=list)
    # gRPC backends: the proxy process's CPU time per trial (every storage call, not only the
    # sampler's).
    proxy_cpu_ms_per_trial: float | None = None
    # TransferTPE only: repeats whose params were sampled one parameter at a time (no joint
    # sample, so no claim), as in a study's first wave; see tpe_repeats.
    repeats_unclaimed: int | None = None

    @property
    def ok(self) -> bool:
        return not self.errors and self.lost == 0 and not self.repeats_while_unvisited


def _point(trial: FrozenTrial, grid: dict[str, list[Any]]) -> tuple[Any, ...] | None:
    if not all(n in trial.params for n in grid):
        return None
    return tuple(trial.params[n] for n in grid)


def repeats_while_unvisited(
    trials: Sequence[FrozenTrial],
    claims: dict[int, tuple[float, float]],
    grid: dict[str, list[Any]] = GRID,
) -> tuple[int, int, int]:
    """(distinct points, repeats, repeats while some point was free): see the module doc.

    Trials are taken in the order their claims settled (the end of ``before_trial``); one
    repeats if an earlier-settled trial holds its point. A point is still free at that moment if
    no trial that ends up holding it had started its claim yet (or none ever holds it)."""
    points = [p for t in trials if (p := _point(t, grid)) is not None]
    first_start: dict[tuple[Any, ...], float] = {}
    timed: list[tuple[float, tuple[Any, ...]]] = []
    for t in trials:
        p = _point(t, grid)
        if p is None:
            continue
        # A trial without timing (none expected) falls back to the storage's start time.
        fallback = t.datetime_start.timestamp() if t.datetime_start else 0.0
        start, end = claims.get(t.number, (fallback, fallback))
        first_start[p] = min(first_start.get(p, math.inf), start)
        timed.append((end, p))
    every = list(itertools.product(*grid.values()))
    seen: set[tuple[Any, ...]] = set()
    repeats = while_free = 0
    for end, p in sorted(timed, key=lambda e: e[0]):
        if p in seen:
            repeats += 1
            if any(first_start.get(q, math.inf) > end for q in every):
                while_free += 1
        seen.add(p)
    return len(set(points)), repeats, while_free


def _config(trial: FrozenTrial) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(trial.params.items()))


def tpe_repeats(trials: Sequence[FrozenTrial]) -> tuple[int, int, int]:
    """TransferTPE's (distinct configurations, repeats, unclaimed repeats).

    A repeat is a trial with the exact params of a lower-numbered one. It is unclaimed when
    the trial is not zero-shot and has no joint sample recorded (TransferTPE writes one, and
    re-reads the study for a rival with the same params, only for a joint sample): until a
    trial finishes, the relative search space is empty and every parameter is sampled on its
    own, unclaimed.
    """
    configs = [_config(t) for t in trials if t.params]
    first: set[tuple[tuple[str, Any], ...]] = set()
    repeats = unclaimed = 0
    for t in sorted((t for t in trials if t.params), key=lambda t: t.number):
        config = _config(t)
        if config in first:
            repeats += 1
            # Zero-shot trials are claimed by the portfolio's own protocol.
            unclaimed += get_chunked_system_attr(t, RELATIVE_PARAMS_KEY) is None and not (
                is_zero_shot_trial(t)
            )
        first.add(config)
    return len(set(configs)), repeats, unclaimed


def measure(
    backend: str,
    sampler: str,
    read_url: str,
    target: str,
    reports: list[dict[str, Any]],
    grid: dict[str, list[Any]] = GRID,
) -> Row:
    """The row of one run, from the storage (read directly, not through the proxy) and the
    workers' reports."""
    storage = optuna.storages.RDBStorage(read_url, **_engine_kwargs(read_url))
    trials = optuna.load_study(study_name=target, storage=storage).get_trials(deepcopy=False)
    complete = {t.number for t in trials if t.state == TrialState.COMPLETE}
    unfinished = sum(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials)
    failed = sum(t.state == TrialState.FAIL for t in trials)
    ok = [r for r in reports if "error" not in r]
    finished_by_workers = [n for r in ok for n in r["done"]]
    # A trial counted by two workers would be a lost one in disguise: count it too.
    lost = (
        unfinished
        + len(complete.symmetric_difference(finished_by_workers))
        + len(finished_by_workers) - len(set(finished_by_workers))
    )
    claims: dict[int, tuple[float, float]] = {
        int(n): (float(c[0]), float(c[1])) for r in ok for n, c in r["claims"].items()
    }
    if sampler == "warm-grid":
        distinct, repeats, while_free = repeats_while_unvisited(trials, claims, grid)
        unvisited: int | None = while_free
        unclaimed: int | None = None
    else:
        distinct, repeats, unclaimed = tpe_repeats(trials)
        unvisited = None
    worker_s = sum(r["end"] - r["start"] for r in ok)
    sampler_s = sum(r["sampler_s"] for r in ok)
    n_trials = max(1, len(trials))
    return Row(
        backend=backend,
        sampler=sampler,
        workers=len(reports),
        trials_done=len(complete),
        lost=lost,
        failed=failed,
        distinct=distinct,
        repeats=repeats,
        repeats_while_unvisited=unvisited,
        wall_s=(max(r["end"] for r in ok) - min(r["start"] for r in ok)) if ok else math.nan,
        sampler_share=sampler_s / worker_s if worker_s > 0 else math.nan,
        sampler_ms_per_trial=1e3 * sampler_s / n_trials,
        sampler_cpu_ms_per_trial=1e3 * sum(r["sampler_cpu_s"] for r in ok) / n_trials,
        setup_s=max((r["setup_s"] for r in ok), default=math.nan),
        errors=[f"worker {r['index']}: {r['error']}" for r in reports if "error" in r],
        repeats_unclaimed=unclaimed,
    )


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    workers: int = 16
    trials_per_worker: int = 8
    backends: tuple[str, ...] = ("postgresql", "grpc+postgresql")
    samplers: tuple[str, ...] = SAMPLERS
    n_sources: int = 3
    source_trials: int = 30
    seed: int = 0
    sleep_s: tuple[float, float] = (0.02, 0.05)
    pg_url: str | None = None
    timeout_s: float = 600.0
    # The grid of WarmStartGridSampler, over ``objective``'s parameters.
    grid: dict[str, list[Any]] = field(default_factory=lambda: dict(GRID))

    @property
    def n_grid_points(self) -> int:
        return math.prod(len(v) for v in self.grid.values())


def create_sources(storage: optuna.storages.BaseStorage, prefix: str, config: Config) -> list[str]:
    """``config.n_sources`` finished studies of ``objective``, optima shifted a little apart."""
    names = []
    for i in range(config.n_sources):
        name = f"{prefix}source-{i}"
        study = optuna.create_study(
            study_name=name,
            storage=storage,
            sampler=optuna.samplers.TPESampler(seed=config.seed + i),
        )
        study.optimize(functools.partial(objective, shift=0.1 * i), n_trials=config.source_trials)
        names.append(name)
    return names


def run(config: Config, log: Callable[[str], None] = print) -> tuple[list[Row], dict[str, str]]:
    """Run every backend x sampler; the rows and what the header needs (server versions)."""
    for b in config.backends:
        if b not in BACKENDS:
            raise ValueError(f"Unknown backend {b!r} in `backends`: use {', '.join(BACKENDS)}.")
    for s in config.samplers:
        if s not in SAMPLERS:
            raise ValueError(f"Unknown sampler {s!r} in `samplers`: use {', '.join(SAMPLERS)}.")
    if config.workers < 1 or config.trials_per_worker < 1:
        raise ValueError("`workers` and `trials_per_worker` must be >= 1.")
    _quiet()
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    rows: list[Row] = []
    info: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        pg: str | None = None
        if any("postgresql" in b for b in config.backends):
            pg, info["postgresql"] = stack.enter_context(postgresql_url(config.pg_url))
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ot-workers-")))
        # Every backend's studies are new: a run id keeps them apart in a reused database.
        run_id = f"{os.getpid()}-{time.time_ns()}"
        for backend in config.backends:
            read_url = pg if "postgresql" in backend else f"sqlite:///{tmp / 'workers.db'}"
            assert read_url is not None
            optuna.storages.RDBStorage(read_url, **_engine_kwargs(read_url))  # create tables
            with contextlib.ExitStack() as proxy:
                spec = (
                    proxy.enter_context(grpc_proxy(ctx, read_url))
                    if backend.startswith("grpc")
                    else StorageSpec(url=read_url)
                )
                storage = spec.open()
                prefix = f"workers-{run_id}-{backend}-"
                sources = create_sources(storage, prefix, config)
                for sampler in config.samplers:
                    target = f"{prefix}{sampler}-target"
                    optuna.create_study(study_name=target, storage=storage)
                    jobs = [
                        Job(i, spec, sampler, tuple(sources), target, config.seed,
                            config.trials_per_worker, config.sleep_s, config.timeout_s,
                            config.grid)
                        for i in range(config.workers)
                    ]
                    log(f"{backend} / {sampler}: {config.workers} workers ...")
                    before = cpu_seconds(spec.server_pid)
                    reports = _run_workers(ctx, jobs, config.timeout_s)
                    after = cpu_seconds(spec.server_pid)
                    row = measure(backend, sampler, read_url, target, reports, config.grid)
                    if before is not None and after is not None:
                        row.proxy_cpu_ms_per_trial = 1e3 * (after - before) / max(
                            1, row.trials_done
                        )
                    for error in row.errors:
                        log(error)
                    rows.append(row)
                if isinstance(storage, optuna.storages.GrpcStorageProxy):
                    storage.close()
    return rows, info


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def table(rows: Sequence[Row], config: Config, command: str, info: dict[str, str]) -> str:
    import grpc
    import sqlalchemy

    versions = (
        f"{provenance.versions()}, SQLAlchemy {sqlalchemy.__version__}, grpcio {grpc.__version__}"
    )
    if "postgresql" in info:
        versions += f", PostgreSQL {info['postgresql']}"
    sleep = f"{1e3 * config.sleep_s[0]:.0f}-{1e3 * config.sleep_s[1]:.0f} ms"
    lines = [
        "# Many workers: one storage, N processes",
        "",
        f"- machine: {provenance.machine()}",
        f"- versions: {versions}",
        f"- seeds: sampler seed {config.seed} in every worker; sources: TPE seeds "
        f"{config.seed}..{config.seed + config.n_sources - 1}",
        f"- setup: {config.workers} worker processes x up to {config.trials_per_worker} "
        f"trials, objective = 3 parameters + a sleep of {sleep}; {config.n_sources} sources x "
        f"{config.source_trials} trials in the same storage; grid {config.n_grid_points} points "
        f"({' x '.join(str(len(v)) for v in config.grid.values())})",
        f"- command: `{command}`",
        "",
        "Repeats while unvisited: a grid trial taking a point another trial already held while "
        "some point was still free (must be 0). Lost: trials left RUNNING/WAITING or finished "
        "without a worker reporting it (must be 0). Repeats for TransferTPE: trials with the "
        "exact params of an earlier one; unclaimed: of those, trials sampled one parameter at a "
        "time (before any trial finished, the relative search space is empty), which "
        "TransferTPE does not claim, so while other trials run such a parameter is drawn from "
        "a generator of its own trial (same-seed workers sampling it at the same moment "
        "otherwise draw the same value). Sampler share: time in the sampler's calls over the "
        "workers' time in `optimize` (for the grid, waiting out other workers' claims "
        f"included); {config.workers} processes on {os.cpu_count()} cores, so it includes "
        "waiting for a core. Sampler CPU: the workers' CPU time in those calls (what they cost on "
        "a core of their own), per trial; the database server's is not counted, nor the gRPC "
        "proxy's, which is shown apart (all its storage calls, the workers' own included).",
        "",
        "| backend | sampler | workers | trials done | distinct configs | repeats | repeats "
        "while unvisited | repeats unclaimed | lost | failed | wall s | sampler share | "
        "sampler ms/trial | sampler CPU ms/trial | proxy CPU ms/trial |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        unvisited = "n/a" if r.repeats_while_unvisited is None else str(r.repeats_while_unvisited)
        unclaimed = "n/a" if r.repeats_unclaimed is None else str(r.repeats_unclaimed)
        proxy = "n/a" if r.proxy_cpu_ms_per_trial is None else f"{r.proxy_cpu_ms_per_trial:.0f}"
        lines.append(
            f"| {r.backend} | {r.sampler} | {r.workers} | {r.trials_done} | {r.distinct} | "
            f"{r.repeats} | {unvisited} | {unclaimed} | {r.lost} | {r.failed} | {r.wall_s:.1f} | "
            f"{100 * r.sampler_share:.0f}% | {r.sampler_ms_per_trial:.0f} | "
            f"{r.sampler_cpu_ms_per_trial:.0f} | {proxy} |"
        )
    errors = [e for r in rows for e in r.errors]
    if errors:
        lines += ["", "Errors:", ""] + [f"    {line}" for e in errors for line in e.splitlines()]
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--workers", type=int, default=16, help="worker processes (default 16)")
    p.add_argument("--trials-per-worker", type=int, default=8)
    p.add_argument("--backends", nargs="+", choices=BACKENDS,
                   default=["postgresql", "grpc+postgresql"])
    p.add_argument("--samplers", nargs="+", choices=SAMPLERS, default=list(SAMPLERS))
    p.add_argument("--n-sources", type=int, default=3)
    p.add_argument("--source-trials", type=int, default=30)
    p.add_argument("--seed", type=int, default=0, help="the sampler seed of every worker")
    p.add_argument("--sleep-ms", type=float, nargs=2, default=[20.0, 50.0],
                   metavar=("MIN", "MAX"), help="the objective's sleep range")
    p.add_argument("--pg-url", default=None,
                   help="an existing PostgreSQL database (default: a throw-away server)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per run of workers")
    p.add_argument("--out", type=Path, default=None, help=f"also write the table (e.g. "
                   f"{DEFAULT_OUT.relative_to(ROOT)})")
    args = p.parse_args(argv)
    check_output_file(p, args.out)
    return args


def main(argv: Sequence[str] | None = None) -> list[Row]:
    """Run, print the table (and write it to ``--out``); return the rows."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.sleep_ms[0] < 0 or args.sleep_ms[1] < args.sleep_ms[0]:
        raise SystemExit("--sleep-ms MIN MAX: need 0 <= MIN <= MAX.")
    config = Config(
        workers=args.workers,
        trials_per_worker=args.trials_per_worker,
        backends=tuple(args.backends),
        samplers=tuple(args.samplers),
        n_sources=args.n_sources,
        source_trials=args.source_trials,
        seed=args.seed,
        sleep_s=(args.sleep_ms[0] / 1e3, args.sleep_ms[1] / 1e3),
        pg_url=args.pg_url,
        timeout_s=args.timeout,
    )
    rows, info = run(config, log=lambda line: print(line, file=sys.stderr))
    shown = [redact_url(a) if "://" in a else a for a in argv]
    text = table(rows, config, shlex.join(["python", "-m", "benchmarks.workers", *shown]), info)
    print(text, end="")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return rows


if __name__ == "__main__":
    sys.exit(0 if all(r.ok for r in main()) else 1)
