"""Optuna 5.0.0's tests/samplers_tests/test_grid.py, run against WarmStartGridSampler.

Each case is the upstream one with ``GridSampler(space)`` replaced by
``WarmStartGridSampler(source, space)``; the system-attribute keys are the sampler's own.
One case asserts a deliberate difference: the last ``tell`` of an ask-and-tell loop does not
raise (``test_ask_and_tell_records_the_last_point_without_raising``).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from collections.abc import ValuesView
import itertools
from pathlib import Path
import pickle
from typing import Any

import numpy as np
import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.testing.objectives import fail_objective
from optuna.testing.objectives import pruned_objective
from optuna.trial import Trial
from optuna.trial import TrialState
import pytest

from optuna_transfer import WarmStartGridSampler
from optuna_transfer._grid import _check_value
from optuna_transfer._grid import GRID_ID_ATTR_KEY
from optuna_transfer._grid import SEARCH_SPACE_ATTR_KEY


optuna.logging.set_verbosity(optuna.logging.WARNING)


def _source() -> optuna.Study:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: t.suggest_float("a", 0, 100) + t.suggest_float("b", -1, 1), 10)
    return study


SOURCE = _source()


def Grid(space: Any, seed: int | None = None) -> WarmStartGridSampler:  # noqa: N802
    return WarmStartGridSampler(SOURCE, space, seed=seed)


def test_study_optimize_with_single_search_space() -> None:
    def objective(trial: Trial) -> float:
        a = trial.suggest_int("a", 0, 100)
        b = trial.suggest_float("b", -0.1, 0.1)
        c = trial.suggest_categorical("c", ("x", "y", None, 1, 2.0))
        d = trial.suggest_float("d", -5, 5, step=1)
        e = trial.suggest_float("e", 0.0001, 1, log=True)

        if c == "x":
            return a * d
        else:
            return b * e

    search_space: dict[str, Sequence[Any] | np.ndarray] = {
        "b": np.arange(-0.1, 0.1, 0.05),
        "c": ("x", "y", None, 1, 2.0),
        "d": [-5.0, 5.0],
        "e": [0.1],
        "a": list(range(0, 100, 20)),
    }
    study = optuna.create_study(sampler=Grid(search_space))
    study.optimize(objective)

    def sorted_values(
        d: Mapping[str, Sequence[Any] | np.ndarray],
    ) -> ValuesView[Sequence[Any] | np.ndarray]:
        return dict(sorted(d.items())).values()

    all_grids = itertools.product(*sorted_values(search_space))
    all_suggested_values = [tuple([p for p in sorted_values(t.params)]) for t in study.trials]
    assert set(all_grids) == set(all_suggested_values)
    assert len(study.trials) == 4 * 5 * 2 * 1 * 5

    # A parameter that is not in the grid.
    study = optuna.create_study(sampler=Grid({"a": list(range(0, 100, 20))}))
    with pytest.raises(ValueError, match="not found in the given grid"):
        study.optimize(objective)

    # A value out of the range of the suggest call.
    search_space = {"a": [110], "b": [0], "c": ["x"], "d": [0], "e": [0.1]}
    study = optuna.create_study(sampler=Grid(search_space))
    with pytest.warns(UserWarning, match="out of range"):
        study.optimize(objective)


def test_study_optimize_with_exceeding_number_of_trials() -> None:
    def objective(trial: Trial) -> float:
        return trial.suggest_int("a", 0, 100)

    study = optuna.create_study(sampler=Grid({"a": [0, 50]}))
    study.optimize(objective, n_trials=None)
    assert len(study.trials) == 2

    # Re-running an exhausted study evaluates one more (repeated) trial, then stops.
    study.optimize(objective, n_trials=None)
    assert len(study.trials) == 3


def test_study_optimize_with_pruning() -> None:
    study = optuna.create_study(sampler=Grid({"a": [0, 50]}))
    study.optimize(pruned_objective, n_trials=None)
    assert len(study.trials) == 2


def test_study_optimize_with_fail() -> None:
    def objective(trial: Trial) -> float:
        return trial.suggest_int("a", 0, 100)

    study = optuna.create_study(sampler=Grid({"a": [0, 50]}))
    study.optimize(fail_objective, n_trials=1, catch=ValueError)
    study.optimize(objective, n_trials=None)
    assert len(study.trials) == 2


def test_study_optimize_with_numpy_related_search_space(tmp_path: Path) -> None:
    def objective(trial: Trial) -> float:
        return trial.suggest_float("a", 0, 10) + trial.suggest_float("b", -0.1, 0.1)

    search_space = {"a": np.linspace(0, 10, 11), "b": np.arange(-0.1, 0.1, 0.05)}
    storage = f"sqlite:///{tmp_path / 'grid.db'}"
    study = optuna.create_study(sampler=Grid(search_space), storage=storage)
    study.optimize(objective, n_trials=None)
    assert len(study.trials) == 44


def test_study_optimize_with_multiple_search_spaces() -> None:
    def objective(trial: Trial) -> float:
        return trial.suggest_int("a", 0, 100) * trial.suggest_float("b", -100, 100)

    sampler_0 = Grid({"a": [0, 50], "b": [-50, 0, 50]})
    study = optuna.create_study(sampler=sampler_0)
    study.optimize(objective, n_trials=3)
    assert len(study.trials) == 3
    for t in study.trials:
        assert sampler_0._same_search_space(t.system_attrs[SEARCH_SPACE_ATTR_KEY])

    sampler_1 = Grid({"a": [0, 25], "b": [-50]})
    study.sampler = sampler_1
    study.optimize(objective, n_trials=2)
    assert not sampler_0._same_search_space(sampler_1._search_space)
    assert len(study.trials) == 5
    for t in study.trials[3:5]:
        assert sampler_1._same_search_space(t.system_attrs[SEARCH_SPACE_ATTR_KEY])

    study.sampler = sampler_0
    study.optimize(objective, n_trials=3)
    assert len(study.trials) == 8
    for t in study.trials[:3] + study.trials[5:]:
        assert sampler_0._same_search_space(t.system_attrs[SEARCH_SPACE_ATTR_KEY])
    # The first space's six points were each evaluated once.
    ids = [t.system_attrs[GRID_ID_ATTR_KEY] for t in study.trials[:3] + study.trials[5:]]
    assert sorted(ids) == list(range(6))


def test_cast_value() -> None:
    for value in (None, True, False, -1, -1.5, float("nan"), "foo", ""):
        _check_value("x", value)
    with pytest.warns(UserWarning):
        _check_value("x", [1])


def test_has_same_search_space() -> None:
    search_space: dict[str, list[Any]] = {"x": [3, 2, 1], "y": ["a", "b", "c"]}
    sampler = Grid(search_space)
    assert sampler._same_search_space(search_space)
    assert sampler._same_search_space({"x": [3, 2, 1], "y": ["a", "b", "c"]})
    assert not sampler._same_search_space({"y": ["c", "a", "b"], "x": [1, 2, 3]})
    assert not sampler._same_search_space({"x": [3, 2, 1, 0], "y": ["a", "b", "c"]})
    assert not sampler._same_search_space({"x": [3, 2], "y": ["a", "b", "c"]})


def test_retried_trial() -> None:
    study = optuna.create_study(sampler=Grid({"a": [0, 50]}))
    trial = study.ask()
    trial.suggest_int("a", 0, 100)

    RetryHeartbeatStaleTrialCallback()(study, study.trials[0])
    study.optimize(lambda trial: trial.suggest_int("a", 0, 100))

    assert len(study.trials) == 3
    assert study.trials[0].params["a"] == study.trials[1].params["a"]
    first, retried = study.trials[0].system_attrs, study.trials[1].system_attrs
    assert first[GRID_ID_ATTR_KEY] == retried[GRID_ID_ATTR_KEY]


def test_enqueued_trial() -> None:
    study = optuna.create_study(sampler=Grid({"a": [0, 50]}))
    study.enqueue_trial({"a": 100})
    study.optimize(lambda trial: trial.suggest_int("a", 0, 100))
    assert len(study.trials) == 3
    assert study.trials[0].params["a"] == 100
    assert sorted([study.trials[1].params["a"], study.trials[2].params["a"]]) == [0, 50]


def test_enqueued_trial_on_the_grid_counts_as_evaluated() -> None:
    # Stricter than GridSampler, which evaluates an enqueued grid point a second time.
    study = optuna.create_study(sampler=Grid({"a": [0, 50]}))
    study.enqueue_trial({"a": 50})
    study.optimize(lambda trial: trial.suggest_int("a", 0, 100))
    assert [t.params["a"] for t in study.trials] == [50, 0]


def test_same_seed_trials() -> None:
    grid_values = [0, 20, 40, 60, 80, 100]
    studies = []
    for _ in range(2):
        study = optuna.create_study(sampler=Grid({"a": grid_values}, 0))
        study.optimize(lambda trial: trial.suggest_int("a", 0, 100))
        studies.append([t.params["a"] for t in study.trials])
    assert studies[0] == studies[1]
    assert sorted(studies[0]) == grid_values


def test_enqueued_insufficient_trial() -> None:
    study = optuna.create_study(sampler=Grid({"a": [0, 50]}))
    study.enqueue_trial({})
    with pytest.raises(ValueError, match="All parameters must be specified"):
        study.optimize(lambda trial: trial.suggest_int("a", 0, 100))


def test_nan() -> None:
    study = optuna.create_study(sampler=Grid({"x": [0, float("nan")]}))
    study.optimize(
        lambda trial: 1 if np.isnan(trial.suggest_categorical("x", [0, float("nan")])) else 0
    )
    assert len(study.get_trials()) == 2


def test_none_and_bool_choices() -> None:
    space = {"x": [None, True, False, 1, 0]}
    study = optuna.create_study(sampler=Grid(space))
    study.optimize(lambda trial: float(trial.suggest_categorical("x", space["x"]) is None))
    # Five distinct points. (Optuna's CategoricalDistribution itself stores 1 as True, since
    # True == 1, so the recorded params cannot tell them apart; the grid ids can.)
    assert sorted(t.system_attrs[GRID_ID_ATTR_KEY] for t in study.trials) == list(range(5))
    assert sum(t.params["x"] is None for t in study.trials) == 1


def test_is_exhausted() -> None:
    sampler = Grid({"a": [0, 50]})
    study = optuna.create_study(sampler=sampler)
    assert not sampler.is_exhausted(study)
    study.optimize(lambda trial: trial.suggest_categorical("a", [0, 50]))
    assert sampler.is_exhausted(study)


def test_pickle_round_trip() -> None:
    sampler = Grid({"a": [0, 20, 40, 60]}, seed=3)
    restored = pickle.loads(pickle.dumps(sampler))
    assert restored.ranked_grid() == sampler.ranked_grid()
    study = optuna.create_study(sampler=restored)
    study.optimize(lambda trial: trial.suggest_int("a", 0, 100))
    assert sorted(t.params["a"] for t in study.trials) == [0, 20, 40, 60]


def test_ask_and_tell_records_the_last_point_without_raising() -> None:
    # GridSampler's tell() on the last point calls study.stop(), which raises outside an
    # optimize loop (optuna#5141; on main, this sampler did the same): an ask-and-tell loop
    # over the whole grid crashed on its last tell.
    study = optuna.create_study(sampler=Grid({"a": [0, 50]}))
    for _ in range(2):
        trial = study.ask()
        study.tell(trial, trial.suggest_int("a", 0, 100))
    assert sorted(t.params["a"] for t in study.trials) == [0, 50]
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    # Within optimize, the last point still stops the loop.
    study = optuna.create_study(sampler=Grid({"a": [0, 50]}))
    study.optimize(lambda trial: trial.suggest_int("a", 0, 100), n_trials=10)
    assert len(study.trials) == 2
