"""Shared pieces of the WarmStartGridSampler tests of issue 13: a one-parameter grid, a source
that evaluated all of it, and trials to add to a target."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import BaseTrial
from optuna.trial import create_trial
from optuna.trial import FrozenTrial


GRID_X = [float(x) for x in np.linspace(-10, 10, 21)]
X_DIST = FloatDistribution(-10, 10)


def grid_source(best: float) -> optuna.Study:
    """A source that evaluated every point of GRID_X; best at ``best``, then its neighbours."""
    source = optuna.create_study()
    for x in GRID_X:
        source.enqueue_trial({"x": x})
    source.optimize(lambda t: abs(t.suggest_float("x", -10, 10) - best), n_trials=len(GRID_X))
    return source


def distance_to(best: float) -> Callable[[BaseTrial], float]:
    return lambda t: abs(t.suggest_float("x", -10, 10) - best)


def added(x: float, value: float) -> FrozenTrial:
    """A finished trial at ``x``, for ``study.add_trial``."""
    return create_trial(params={"x": x}, distributions={"x": X_DIST}, value=value)
