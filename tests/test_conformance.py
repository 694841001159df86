"""Optuna's generic sampler conformance suites, run with a real source study attached.

The generic suites name their parameters ``x``, ``y``, ``z``, ``category`` and ``a``-``f``; the
sources below cover ``x`` and ``y`` over a wider range than most tests use (so zero-shot
configurations must be clipped into the target range) plus a categorical ``category`` whose
choices partly overlap the tests'. Every test of the three suites applies; none is skipped.

Objective count: the samplers raise ``ValueError`` when source and target have a different
number of objectives (by design), so the single-objective suites get a 1-objective source and
the multi-objective suite (whose studies have directions ``["minimize", "maximize"]``) a
2-objective one.
"""

from __future__ import annotations

from collections.abc import Callable
import functools

import _support
import optuna
from optuna.samplers import BaseSampler
from optuna.testing.pytest_samplers import BasicSamplerTestCase
from optuna.testing.pytest_samplers import MultiObjectiveSamplerTestCase
from optuna.testing.pytest_samplers import RelativeSamplerTestCase
from optuna.trial import Trial
import pytest


def _single(trial: Trial) -> float:
    x = trial.suggest_float("x", -20, 20)
    y = trial.suggest_float("y", -20, 20)
    c = trial.suggest_categorical("category", ["x", "z"])
    return (x - 0.5) ** 2 + abs(y) + (c == "z")


def _multi(trial: Trial) -> tuple[float, float]:
    x = trial.suggest_float("x", -20, 20)
    y = trial.suggest_int("y", -20, 20)
    return x**2 + y**2, (x - 1) ** 2


@functools.cache
def _source(n_objectives: int) -> optuna.Study:
    _support.quiet()
    if n_objectives == 1:
        return _support.finished_study(_single, 20, seed=1)
    return _support.finished_study(_multi, 20, directions=("minimize", "maximize"), seed=1)


def _factory(name: str, n_objectives: int) -> Callable[[], BaseSampler]:
    source = _source(n_objectives)
    return lambda: _support.SAMPLERS[name](source)


class TestBasic(BasicSamplerTestCase):
    @pytest.fixture(params=_support.SAMPLER_NAMES)
    def sampler(self, request: pytest.FixtureRequest) -> Callable[[], BaseSampler]:
        return _factory(request.param, 1)


class TestRelative(RelativeSamplerTestCase):
    @pytest.fixture(params=_support.SAMPLER_NAMES)
    def sampler(self, request: pytest.FixtureRequest) -> Callable[[], BaseSampler]:
        return _factory(request.param, 1)


class TestMultiObjective(MultiObjectiveSamplerTestCase):
    @pytest.fixture(params=_support.SAMPLER_NAMES)
    def sampler(self, request: pytest.FixtureRequest) -> Callable[[], BaseSampler]:
        return _factory(request.param, 2)


@pytest.mark.parametrize("name", _support.SAMPLER_NAMES)
def test_zero_shot_trials_evaluate_clipped_source_bests(name: str) -> None:
    # Not covered by the generic suites: the first trials come from the source, projected.
    source = _source(1)
    study = optuna.create_study(sampler=_support.SAMPLERS[name](source, seed=0))
    study.optimize(lambda t: t.suggest_float("x", -1, 1), n_trials=3)
    best_x = sorted(
        (t for t in source.trials if t.value is not None),
        key=lambda t: float("inf") if t.value is None else t.value,
    )[0].params["x"]
    assert study.trials[0].params["x"] == pytest.approx(min(max(best_x, -1.0), 1.0))
