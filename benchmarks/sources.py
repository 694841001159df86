"""Source studies: generated once per (problem, seed), stored, and shared by every method.

Every method of a seed warm-starts from the very same source trials, so differences between
methods are not differences in their luck with the sources.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from benchmarks.tasks import Direction
from benchmarks.tasks import Encoding
from benchmarks.tasks import Problem


SourceSampler = Literal["tpe", "random"]


@dataclass(frozen=True)
class SourceJob:
    problem: Problem
    sampler: SourceSampler
    n_trials: int
    encoding: Encoding
    seed: int

    @property
    def study_name(self) -> str:
        return (
            f"source-{self.problem.name}-{self.sampler}-{self.encoding}"
            f"-n{self.n_trials}-seed{self.seed}"
        )


def run_source(job: SourceJob) -> list[FrozenTrial]:
    """Optimise the source problem in memory and return its trials (the caller stores them)."""
    seed = job.problem.source_seed(job.seed)
    sampler: optuna.samplers.BaseSampler
    if job.sampler == "tpe":
        sampler = optuna.samplers.TPESampler(seed=seed)
    else:
        sampler = optuna.samplers.RandomSampler(seed=seed)
    study = optuna.create_study(direction=job.problem.direction, sampler=sampler)
    study.optimize(job.problem.objective(job.encoding), n_trials=job.n_trials)
    return study.get_trials(deepcopy=False)


def run_source_safely(job: SourceJob) -> list[FrozenTrial] | str:
    """:func:`run_source`, or the error text: a source that cannot run (e.g. the CIFAR objective
    without its dependencies) fails the target runs that need it, not the whole benchmark."""
    try:
        return run_source(job)
    except Exception as e:  # noqa: BLE001 - reported in the tables.
        # No study name in the text: the same cause then reads once in the table, not once per
        # source and seed.
        return f"source study failed: {type(e).__name__}: {e}"


def load_stored_source(
    storage: optuna.storages.BaseStorage, job: SourceJob
) -> list[FrozenTrial] | None:
    """The stored trials of ``job`` if a complete copy is in ``storage``, else None."""
    try:
        study = optuna.load_study(study_name=job.study_name, storage=storage)
    except KeyError:
        return None
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(trials) != job.n_trials:
        # A crashed earlier run left it half written: regenerate rather than trust it.
        optuna.delete_study(study_name=job.study_name, storage=storage)
        return None
    return trials


def store_study(
    storage: optuna.storages.BaseStorage,
    name: str,
    direction: Direction,
    trials: list[FrozenTrial],
    attrs: dict[str, object],
) -> None:
    """Write ``trials`` as study ``name`` (replacing any older one) for optuna-dashboard."""
    try:
        optuna.delete_study(study_name=name, storage=storage)
    except KeyError:
        pass
    study = optuna.create_study(study_name=name, storage=storage, direction=direction)
    for key, value in attrs.items():
        study.set_user_attr(key, value)
    study.add_trials(trials)


def store_source(
    storage: optuna.storages.BaseStorage, job: SourceJob, trials: list[FrozenTrial]
) -> None:
    """Write the trials of source ``job`` to ``storage``, where :func:`load_stored_source`
    finds them again."""
    store_study(storage, job.study_name, job.problem.direction, trials, {
        "role": "source", "problem": job.problem.name, "seed": job.seed,
        "sampler": job.sampler, "encoding": job.encoding,
    })


def as_study(name: str, direction: Direction, trials: list[FrozenTrial]) -> optuna.Study:
    """An in-memory copy of a source study, so samplers never read the database mid-run."""
    study = optuna.create_study(study_name=name, direction=direction)
    study.add_trials(trials)
    return study
