"""One benchmark run: a method on a task for a seed, timed and scored trial by trial."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED
from concurrent.futures import Future
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import wait
from dataclasses import dataclass
import math
import time
import traceback
from typing import Any
from typing import TypeVar
import warnings

import numpy as np
import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
from tqdm import tqdm

from benchmarks.methods import MethodContext
from benchmarks.methods import METHODS
from benchmarks.sources import as_study
from benchmarks.tasks import Encoding
from benchmarks.tasks import Task


@dataclass(frozen=True)
class RunJob:
    task: Task
    method: str
    seed: int
    n_trials: int
    encoding: Encoding
    top_k: int
    # (study name, trials) per source, in the order of ``task.sources``.
    sources: tuple[tuple[str, tuple[FrozenTrial, ...]], ...]
    # Set when a source study could not be generated; the run then reports it and stops.
    source_error: str | None = None

    @property
    def study_name(self) -> str:
        return f"target-{self.task.suite}-{self.task.name}-{self.method}-seed{self.seed}"


@dataclass
class RunResult:
    suite: str
    task: str
    method: str
    seed: int
    study_name: str
    source_studies: list[str]
    error: str | None
    # Per target trial, in trial order (empty when ``error`` is set).
    values: list[float]
    losses: list[float]
    best_loss: list[float]
    regret: list[float]
    pct_better: list[float]
    optimize_s: float
    objective_s: float
    trials: list[FrozenTrial]
    # What the sampler's ``get_source_weights(study)`` returned, for samplers that have it
    # (TransferTPESampler): how much each source was trusted, trial by trial.
    source_weights: Any = None

    @property
    def sampler_s_per_trial(self) -> float:
        """Wall time of ``study.optimize`` outside the objective, per trial."""
        if not self.values:
            return math.nan
        return (self.optimize_s - self.objective_s) / len(self.values)

    def to_json(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "task": self.task,
            "method": self.method,
            "seed": self.seed,
            "study_name": self.study_name,
            "source_studies": self.source_studies,
            "error": self.error,
            "values": self.values,
            "losses": self.losses,
            "best_loss": self.best_loss,
            "normalised_regret": self.regret,
            # JSON has no NaN: a score that does not exist (no table) is null.
            "pct_better": [None if math.isnan(x) else x for x in self.pct_better],
            "optimize_s": self.optimize_s,
            "objective_s": self.objective_s,
            "sampler_s_per_trial": self.sampler_s_per_trial,
            "source_weights": self.source_weights,
        }


def run(job: RunJob) -> RunResult:
    """Run ``job``; a sampler error is caught and recorded so the other runs go on."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    # Experimental-argument warnings (CmaEsSampler's source_trials) would repeat once per run.
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    task = job.task
    if job.source_error is not None:
        return _failed(job, job.source_error)
    direction = task.target.direction
    sources = [as_study(name, s_dir, list(trials)) for (name, trials), s_dir in zip(
        job.sources, [p.direction for p in task.sources], strict=True
    )]
    ctx = MethodContext(
        search_space=task.target.search_space(job.encoding),
        grid=task.target.grid() if task.target.has_grid else None,
        sources=sources,
        seed=task.target.target_seed(job.seed, task.suite, task.name, job.method),
        top_k=job.top_k,
        onto_grid=task.target.onto_grid,
    )
    objective = task.target.objective(job.encoding)

    error: str | None = None
    optimize_s = 0.0
    weights: Any = None
    on_grid = False
    study = optuna.create_study(direction=direction)
    try:
        # Building the sampler is part of the method's cost, so it is inside the timed span.
        t0 = time.perf_counter()
        setup = METHODS[job.method](ctx)
        on_grid = setup.on_grid
        study.sampler = setup.sampler
        for params in setup.enqueue:
            study.enqueue_trial(params)
        study.optimize(objective, n_trials=job.n_trials)
        optimize_s = time.perf_counter() - t0
        get_weights = getattr(setup.sampler, "get_source_weights", None)
        if get_weights is not None:
            weights = get_weights(study)
    except Exception as e:  # noqa: BLE001 - reported in the table, see module docstring.
        error = f"{type(e).__name__}: {e}"
        optuna.logging.get_logger("benchmarks").debug(traceback.format_exc())

    trials = study.get_trials(deepcopy=False)
    values: list[float] = []
    losses: list[float] = []
    if error is None:
        for t in trials:
            if t.state != TrialState.COMPLETE:
                error = f"trial {t.number} ended {t.state.name}"
                break
            values.append(float(t.value))  # type: ignore[arg-type]
            losses.append(_true_loss(task, t))
    if error is not None:
        values, losses = [], []
    best = np.minimum.accumulate(losses).tolist() if losses else []
    if task.target.is_table:
        table = task.target.table()
        regret = [table.normalised_regret(b) for b in best]
        pct = [table.pct_better(b) for b in best]
    elif (optimum := task.target.optimum(on_grid)) is not None:
        regret, pct = [b - optimum for b in best], [math.nan] * len(best)
    else:
        # No table: regret is filled in later against the best/median seen over all runs.
        regret, pct = [], []
    return RunResult(
        suite=task.suite,
        task=task.name,
        method=job.method,
        seed=job.seed,
        study_name=job.study_name,
        source_studies=[name for name, _ in job.sources],
        error=error,
        values=values,
        losses=losses,
        best_loss=best,
        regret=regret,
        pct_better=pct,
        optimize_s=optimize_s,
        objective_s=objective.eval_s,
        trials=trials,
        source_weights=weights,
    )


def _failed(job: RunJob, error: str) -> RunResult:
    return RunResult(
        suite=job.task.suite,
        task=job.task.name,
        method=job.method,
        seed=job.seed,
        study_name=job.study_name,
        source_studies=[name for name, _ in job.sources],
        error=error,
        values=[],
        losses=[],
        best_loss=[],
        regret=[],
        pct_better=[],
        optimize_s=0.0,
        objective_s=0.0,
        trials=[],
    )


def _true_loss(task: Task, trial: FrozenTrial) -> float:
    # Scored on the target table whatever the sampler saw; lower is better.
    if task.target.is_table:
        return task.target.table().loss(trial.params)
    value = float(trial.value)  # type: ignore[arg-type]
    return -value if task.target.direction == "maximize" else value


J = TypeVar("J")
R = TypeVar("R")


def map_jobs(
    fn: Callable[[J], R],
    jobs: list[J],
    workers: int,
    on_done: Callable[[J, R], None],
    bar: tqdm | None = None,
) -> None:
    """``on_done(job, fn(job))`` for every job, on ``workers`` processes (in this one for 1).

    Results are handled in the calling process as they finish, so it can stay the only writer
    of a database while the workers compute.
    """
    if workers <= 1:
        for job in jobs:
            on_done(job, fn(job))
            if bar is not None:
                bar.update()
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures: dict[Future[R], J] = {pool.submit(fn, job): job for job in jobs}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                on_done(futures[fut], fut.result())
                if bar is not None:
                    bar.update()
