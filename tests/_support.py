"""Shared helpers for the reliability tests: source studies and the sampler registry.

Every sampler of the package under test is an entry of :data:`SAMPLERS`, so a test that
parametrizes over ``SAMPLER_NAMES`` covers a new sampler by adding one line here.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import logging
from typing import Any
from typing import Literal

import optuna
from optuna.samplers import BaseSampler
from optuna.study import StudyDirection
from optuna.trial import Trial

from optuna_transfer import TransferTPESampler
from optuna_transfer import WarmStartGridSampler


SamplerFactory = Callable[..., BaseSampler]

# name -> factory(source, seed=..., **kwargs). ``source`` is whatever the sampler's first
# argument accepts (a study, a list of studies or of FrozenTrial).
SAMPLERS: dict[str, SamplerFactory] = {
    "TransferTPESampler": lambda source, seed=None, **kw: TransferTPESampler(
        source, seed=seed, **kw
    ),
}
SAMPLER_NAMES = sorted(SAMPLERS)

# Integer arguments both samplers take, each with a value they must refuse up front.
BAD_INTEGER_ARGUMENTS: list[tuple[str, Any]] = [
    ("seed", "0"),
    ("seed", 1.5),
    ("seed", -1),
    ("seed", 2**32),  # numpy's seeds end at 2**32 - 1: its error did not name `seed`
    ("n_startup_trials", None),
    ("n_startup_trials", 2.5),
    ("n_zero_shot", 1.5),
]

# Same for the ``from_storage`` constructors.
FROM_STORAGE: dict[str, Callable[..., BaseSampler]] = {
    "TransferTPESampler": TransferTPESampler.from_storage,
}

# Grid samplers take a search space as well: name -> factory(source, search_space, seed=...).
# They are not in SAMPLERS because they suggest only grid values, so the continuous-space tests
# parametrized over SAMPLER_NAMES cannot apply to them; their own cases are in
# tests/test_grid_bad_inputs.py and the grid parts of the concurrency/property/security tests.
GRID_SAMPLERS: dict[str, Callable[..., BaseSampler]] = {
    "WarmStartGridSampler": lambda source, search_space, seed=None: WarmStartGridSampler(
        source, search_space, seed=seed
    ),
}
GRID_SAMPLER_NAMES = sorted(GRID_SAMPLERS)


def grid_from_storage(
    name: str,
    storage: Any,
    study_names: Sequence[str],
    search_space: dict[str, list[Any]],
    seed: int | None = None,
) -> BaseSampler:
    """A grid sampler over source studies named in ``storage``.

    GAP: ``WarmStartGridSampler`` has no ``from_storage`` (TransferTPESampler has). Until it has,
    the studies are loaded here with ``optuna.load_study``, which gives no redacted "No study
    named ..." / "Could not open storage ..." errors and no per-process snapshot cache.
    """
    sources = [optuna.load_study(study_name=n, storage=storage) for n in study_names]
    return GRID_SAMPLERS[name](sources, search_space, seed=seed)


LOGGER_NAME = "optuna_transfer"


def quiet() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def finished_study(
    objective: Callable[[Trial], Any],
    n_trials: int,
    *,
    directions: Sequence[Literal["minimize", "maximize"] | StudyDirection] = ("minimize",),
    seed: int = 0,
    storage: Any = None,
    study_name: str | None = None,
) -> optuna.Study:
    """A finished source study, sampled by a seeded RandomSampler (deterministic)."""
    study = optuna.create_study(
        directions=list(directions),
        sampler=optuna.samplers.RandomSampler(seed=seed),
        storage=storage,
        study_name=study_name,
    )
    study.optimize(objective, n_trials=n_trials)
    return study


def xy_objective(trial: Trial) -> float:
    x = trial.suggest_float("x", -10, 10)
    y = trial.suggest_float("y", -10, 10)
    return (x - 0.3) ** 2 + (y + 0.2) ** 2


def xy_objective2(trial: Trial) -> tuple[float, float]:
    x = trial.suggest_float("x", -10, 10)
    y = trial.suggest_float("y", -10, 10)
    return x**2 + y**2, (x - 1) ** 2


def records(caplog: Any, level: int = logging.WARNING) -> list[str]:
    """Messages of the package's log records at ``level`` or above."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith(LOGGER_NAME) and r.levelno >= level
    ]
