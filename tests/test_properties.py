"""Property tests: random (conditional) search spaces and random source studies.

Every suggestion lies inside the target's distributions, nothing raises, and a seed makes the
whole run reproducible. Examples are bounded so the module runs in well under a minute.
"""

from __future__ import annotations

import math
from typing import Any
from typing import cast
from typing import Literal

import _support
from hypothesis import assume
from hypothesis import given
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis import strategies as st
import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalChoiceType
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.trial import Trial
import pytest

from optuna_transfer import TransferTPESampler
from optuna_transfer import WarmStartGridSampler
from optuna_transfer._encoding import n_values


# Every sampler run: reproducible examples, no deadline (a study takes a while).
SAMPLER_RUNS = settings(
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
    ],
)


@st.composite
def distributions(draw: st.DrawFn) -> BaseDistribution:
    kind = draw(st.sampled_from(["float", "flog", "fstep", "int", "ilog", "istep", "cat"]))
    if kind == "cat":
        pool: list[CategoricalChoiceType] = ["a", "b", "c", 1, 2.5, None, True]
        n = draw(st.integers(1, 4))
        return CategoricalDistribution(draw(st.permutations(pool))[:n])
    if kind in ("flog", "ilog"):
        low = draw(st.sampled_from([1e-5, 1e-2, 1.0, 3.0]))
        high = low * draw(st.sampled_from([1.0, 10.0, 1e4]))
        if kind == "ilog":
            return IntDistribution(max(1, int(low)), max(1, int(high)), log=True)
        return FloatDistribution(low, high, log=True)
    low = draw(st.integers(-50, 50))
    width = draw(st.integers(0, 100))
    if kind == "float":
        return FloatDistribution(float(low), float(low + width))
    if kind == "fstep":
        step = draw(st.sampled_from([0.1, 0.5, 2.0]))
        n = math.floor(width / step)
        return FloatDistribution(float(low), low + n * step, step=step)
    if kind == "int":
        return IntDistribution(low, low + width)
    step = draw(st.integers(1, 7))
    return IntDistribution(low, low + (width // step) * step, step=step)


# A space: unconditional params plus params that exist only on one branch of "branch".
Space = tuple[dict[str, BaseDistribution], dict[str, BaseDistribution]]


@st.composite
def spaces(draw: st.DrawFn) -> Space:
    names = draw(st.lists(st.sampled_from("pqrstuvw"), min_size=1, max_size=4, unique=True))
    n_cond = draw(st.integers(0, len(names) - 1))
    dists = {n: draw(distributions()) for n in names}
    cond = {n: dists.pop(n) for n in names[:n_cond]}
    return dists, cond


def _objective(space: Space, seed: int) -> Any:
    flat, cond = space

    def objective(trial: Trial) -> float:
        total = 0.0
        for name, dist in flat.items():
            total += _score(trial._suggest(name, dist), seed)
        if cond and trial.suggest_categorical("branch", ["on", "off"]) == "on":
            for name, dist in cond.items():
                total += _score(trial._suggest(name, dist), seed)
        return total

    return objective


def _score(value: Any, seed: int) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return math.sin(float(value) * (seed % 7 + 1))
    return float(len(repr(value)) % (seed % 3 + 2))


def _run(name: str, source: optuna.Study, target: Space, seed: int) -> list[dict[str, Any]]:
    study = optuna.create_study(sampler=_support.SAMPLERS[name](source, seed=seed))
    study.optimize(_objective(target, seed), n_trials=6)
    flat, cond = target
    allowed = {**flat, **cond, "branch": CategoricalDistribution(["on", "off"])}
    for t in study.trials:
        assert t.state == optuna.trial.TrialState.COMPLETE
        for p, v in t.params.items():
            dist = allowed[p]
            assert dist._contains(dist.to_internal_repr(v)), (p, v, dist)
            if isinstance(dist, IntDistribution):
                assert type(v) is int
            elif isinstance(dist, FloatDistribution):
                assert type(v) is float
    return [t.params for t in study.trials]


@pytest.mark.parametrize("name", _support.SAMPLER_NAMES)
@settings(SAMPLER_RUNS, max_examples=80)
@given(
    source_space=spaces(),
    target_space=spaces(),
    n_source=st.integers(1, 15),
    seed=st.integers(0, 2**16),
)
def test_suggestions_inside_target_and_reproducible(
    name: str, source_space: Space, target_space: Space, n_source: int, seed: int
) -> None:
    _support.quiet()
    # The source shares parameter names with the target but may disagree on everything else.
    source = _support.finished_study(_objective(source_space, seed), n_source, seed=seed)
    first = _run(name, source, target_space, seed)
    again = _run(name, source, target_space, seed)
    assert first == again


# ---------------------------------------------------------------------------------------------
# Grid samplers: random grids and random source studies.
# ---------------------------------------------------------------------------------------------


@st.composite
def grid_columns(draw: st.DrawFn) -> list[Any]:
    kind = draw(st.sampled_from(["int", "float", "flog", "str", "mixed"]))
    n = draw(st.integers(1, 4))
    if kind == "int":
        return draw(st.lists(st.integers(-50, 50), min_size=n, max_size=n, unique=True))
    if kind == "float":
        floats = st.floats(-100, 100, allow_nan=False, allow_infinity=False)
        return draw(st.lists(floats, min_size=n, max_size=n, unique=True))
    if kind == "flog":
        return draw(st.permutations([1e-5, 1e-3, 0.1, 1.0, 30.0]))[:n]
    if kind == "str":
        return draw(st.permutations(["a", "b", "c", "d"]))[:n]
    return draw(st.permutations(["a", None, 2.5, True]))[:n]


Grid = dict[str, list[Any]]


@st.composite
def grids(draw: st.DrawFn) -> Grid:
    # Names overlap those of ``spaces()`` (p..w), so sources inform some columns, not others.
    names = draw(st.lists(st.sampled_from("pqrs"), min_size=1, max_size=3, unique=True))
    return {n: draw(grid_columns()) for n in names}


def _grid_objective(grid: Grid, seed: int) -> Any:
    def objective(trial: Trial) -> float:
        total = 0.0
        for name, values in grid.items():
            if all(type(v) is int for v in values):
                value: Any = trial.suggest_int(name, min(values), max(values))
            elif all(type(v) is float for v in values):
                value = trial.suggest_float(name, min(values), max(values))
            else:
                value = trial.suggest_categorical(name, values)
            total += _score(value, seed)
        return total

    return objective


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _run_grid(name: str, source: optuna.Study, grid: Grid, seed: int) -> list[dict[str, Any]]:
    from optuna_transfer._grid import GRID_ID_ATTR_KEY
    from optuna_transfer._grid import REPEAT_ATTR_KEY

    sampler = _support.GRID_SAMPLERS[name](source, grid, seed=seed)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_grid_objective(grid, seed))  # stops itself once the grid is exhausted
    n_points = math.prod(len(v) for v in grid.values())
    assert len(study.trials) == n_points
    for t in study.trials:
        assert t.state == optuna.trial.TrialState.COMPLETE
        assert REPEAT_ATTR_KEY not in t.system_attrs
        for p, v in t.params.items():
            assert any(_same(v, g) for g in grid[p]), (p, v, grid[p])
    points = {tuple(repr(t.params[p]) for p in sorted(grid)) for t in study.trials}
    assert len(points) == n_points  # every point once
    assert sorted(t.system_attrs[GRID_ID_ATTR_KEY] for t in study.trials) == list(range(n_points))
    return [t.params for t in study.trials]


@pytest.mark.parametrize("name", _support.GRID_SAMPLER_NAMES)
@settings(SAMPLER_RUNS, max_examples=60)
@given(
    source_space=spaces(),
    grid=grids(),
    n_source=st.integers(1, 15),
    seed=st.integers(0, 2**16),
)
def test_grid_suggestions_on_grid_and_reproducible(
    name: str, source_space: Space, grid: Grid, n_source: int, seed: int
) -> None:
    _support.quiet()
    source = _support.finished_study(_objective(source_space, seed), n_source, seed=seed)
    first = _run_grid(name, source, grid, seed)
    assert first == _run_grid(name, source, grid, seed)
    # The order is the sampler's ranking: the first trial is its top-ranked point.
    sampler = cast(WarmStartGridSampler, _support.GRID_SAMPLERS[name](source, grid, seed=seed))
    top = sampler.ranked_grid()[0]
    assert all(_same(first[0][p], top[p]) for p in first[0])


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=0, max_value=40).flatmap(
        lambda n: st.tuples(
            st.lists(st.integers(0, 5), min_size=n, max_size=n),
            st.lists(st.integers(-3, 3), min_size=n, max_size=n),
            st.lists(st.floats(-1, 1), min_size=n, max_size=n),
        )
    )
)
def test_rank_agreements_equal_the_pairwise_definition(
    data: tuple[list[int], list[int], list[float]],
) -> None:
    from optuna_transfer._similarity import rank_agreement
    from optuna_transfer._similarity import rank_agreements

    losses, tied_scores, scores = data
    columns = np.array([tied_scores, scores], dtype=float).T.reshape(len(losses), 2)
    fast = rank_agreements(columns, np.array(losses, dtype=float))
    slow = [rank_agreement(columns[:, k], np.array(losses, dtype=float)) for k in range(2)]
    assert np.allclose(fast, slow, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# Small discrete spaces: every configuration is tried before any is repeated.
# ---------------------------------------------------------------------------------------------


@st.composite
def small_discrete_spaces(draw: st.DrawFn) -> dict[str, BaseDistribution]:
    names = draw(st.lists(st.sampled_from("pqrs"), min_size=1, max_size=3, unique=True))
    space: dict[str, BaseDistribution] = {}
    for name in names:
        kind = draw(st.sampled_from(["cat", "int", "fstep"]))
        if kind == "cat":
            # Not both True and 1: Optuna records 1 as True when both are choices.
            pool: list[CategoricalChoiceType] = ["a", "b", None, True, 3, 2.5]
            n = draw(st.integers(2, 4))
            space[name] = CategoricalDistribution(draw(st.permutations(pool))[:n])
        elif kind == "int":
            low = draw(st.integers(-3, 3))
            space[name] = IntDistribution(low, low + draw(st.integers(1, 3)))
        else:
            space[name] = FloatDistribution(0.0, draw(st.sampled_from([0.5, 1.0, 1.5])), step=0.5)
    assume(_size(space) <= 24)
    return space


def _size(space: dict[str, BaseDistribution]) -> int:
    return math.prod(cast(int, n_values(d)) for d in space.values())


@settings(SAMPLER_RUNS, max_examples=60)
@given(
    space=small_discrete_spaces(),
    source_change=st.sampled_from(["same", "dropped", "extra"]),
    sign=st.sampled_from([1.0, -1.0]),
    options=st.sampled_from([{}, {"multivariate": False}, {"n_zero_shot": 3}]),
    n_objectives=st.sampled_from([1, 2]),
    seed=st.integers(0, 2**16),
)
def test_small_discrete_space_tried_whole_before_a_repeat(
    space: dict[str, BaseDistribution],
    source_change: str,
    sign: float,
    options: dict[str, Any],
    n_objectives: int,
    seed: int,
) -> None:
    # Sources with the target's space, one parameter fewer or one more (zero-shot picks that
    # are one configuration for the target), related or negated (then refuted: cold TPE's
    # random start-up), joint or one parameter at a time, one or two objectives.
    _support.quiet()
    source_space = dict(space)
    if source_change == "dropped" and len(space) > 1:
        source_space.pop(next(iter(space)))
    elif source_change == "extra":
        source_space["extra"] = IntDistribution(0, 3)

    def objective(source: bool) -> Any:
        def f(trial: Trial) -> Any:
            dists = source_space if source else space
            total = sum(_score(trial._suggest(n, d), seed) for n, d in dists.items())
            value = sign * total if source else total
            return (value, -value) if n_objectives == 2 else value

        return f

    directions: list[Literal["minimize", "maximize"]] = ["minimize"] * n_objectives
    source = optuna.create_study(
        directions=directions, sampler=optuna.samplers.RandomSampler(seed=seed)
    )
    source.optimize(objective(True), n_trials=12)
    study = optuna.create_study(
        directions=directions, sampler=TransferTPESampler(source, seed=seed, **options)
    )
    n = _size(space)
    study.optimize(objective(False), n_trials=n)
    configs = {tuple((k, repr(v)) for k, v in sorted(t.params.items())) for t in study.trials}
    assert len(configs) == n
