"""Bad-input matrix for the grid samplers: one test per case.

Each asserts a clear error that names the problem, or the documented fallback (source trial
hygiene and alignment rules of ``optuna_transfer/_sources.py``; ranking rules of
``WarmStartGridSampler``) with actual values. A grid sampler only ever suggests grid values, so
"fallback" here means: the source says nothing about the affected points, they are ordered by
the seeded tie-break permutation, and the grid is still evaluated exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
import logging
import math
from pathlib import Path
from typing import Any
from typing import cast

import _support
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial
from optuna.trial import Trial
from optuna.trial import TrialState
import pytest

from optuna_transfer import WarmStartGridSampler
from optuna_transfer._grid import GRID_ID_ATTR_KEY
from optuna_transfer._grid import REPEAT_ATTR_KEY


pytestmark = pytest.mark.parametrize("name", _support.GRID_SAMPLER_NAMES)

X01 = FloatDistribution(0, 1)


@pytest.fixture(autouse=True)
def _logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    _support.quiet()
    optuna.logging.enable_propagation()
    caplog.set_level(logging.INFO, logger=_support.LOGGER_NAME)
    yield
    optuna.logging.disable_propagation()


def _make(name: str, source: Any, space: dict[str, list[Any]], seed: int = 0) -> BaseSampler:
    return _support.GRID_SAMPLERS[name](source, space, seed=seed)


def _trial(
    params: dict[str, Any],
    dists: dict[str, BaseDistribution],
    value: float | None = None,
    state: TrialState = TrialState.COMPLETE,
) -> FrozenTrial:
    return optuna.trial.create_trial(params=params, distributions=dists, value=value, state=state)


def _source(points: list[tuple[dict[str, Any], dict[str, BaseDistribution], float]]) -> Any:
    study = optuna.create_study()
    for params, dists, value in points:
        study.add_trial(_trial(params, dists, value))
    return study


def _uninformed() -> optuna.Study:
    """A source that shares no parameter with the grids below: it ranks nothing."""
    return _source([({"other": 0.5}, {"other": X01}, 1.0)])


def _run(
    sampler: BaseSampler, objective: Callable[[Trial], float | Sequence[float]], **kwargs: Any
) -> optuna.Study:
    study = optuna.create_study(sampler=sampler, **kwargs)
    study.optimize(objective)  # n_trials=None: the grid sampler stops the study when exhausted
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    return study


def _exactly_once(study: optuna.Study, n_points: int) -> None:
    ids = [t.system_attrs[GRID_ID_ATTR_KEY] for t in study.trials]
    assert sorted(ids) == list(range(n_points))
    assert not any(REPEAT_ATTR_KEY in t.system_attrs for t in study.trials)


def _xs(study: optuna.Study, param: str = "x") -> list[Any]:
    return [t.params[param] for t in study.trials]


def _fx(t: Trial, values: list[Any]) -> float:
    return float(t.suggest_categorical("x", values) if values else 0.0)


# ---------------------------------------------------------------------------------------------
# Unusable sources: clear errors.
# ---------------------------------------------------------------------------------------------


def test_source_sharing_no_parameter_is_named_in_a_warning_at_construction(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The grid's parameters are known up front, so a renamed parameter is reported at once.
    related = _source([({"x": 0.2}, {"x": X01}, 0.0), ({"x": 0.4}, {"x": X01}, 1.0)])
    _make(name, [_uninformed(), related], {"x": [0.2, 0.4]})
    warned = [m for m in _support.records(caplog) if "shares no parameter" in m]
    assert len(warned) == 1
    assert "['x']" in warned[0] and "['other']" in warned[0]
    caplog.clear()
    _make(name, related, {"x": [0.2, 0.4], "y": [1, 2]})
    assert not [m for m in _support.records(caplog, logging.INFO) if "shares no parameter" in m]


def test_source_with_one_value_for_every_trial_gets_no_pick_with_a_warning(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    flat = optuna.create_study(study_name="flat")
    for x in (0.2, 0.4, 0.6):
        flat.add_trial(_trial({"x": x}, {"x": X01}, 1.0))
    related = _source([({"x": 0.6}, {"x": X01}, 0.0), ({"x": 0.2}, {"x": X01}, 1.0)])
    grid = [0.2, 0.4, 0.6]
    study = _run(_make(name, [flat, related], {"x": grid}), lambda t: _fx(t, grid))
    warned = [m for m in _support.records(caplog) if "'flat'" in m]
    assert len(warned) == 1 and "3 COMPLETE" in warned[0]
    assert _xs(study)[0] == 0.6  # the related source's best, not the flat one's first trial
    # With no other source, the grid is visited as without sources: no error, each point once.
    study = _run(_make(name, flat, {"x": grid}), lambda t: _fx(t, grid))
    assert sorted(_xs(study)) == grid


def test_the_same_source_given_twice_counts_once(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    old = _source([({"x": 0.2}, {"x": X01}, 0.0), ({"x": 0.6}, {"x": X01}, 1.0)])
    grid = [0.2, 0.4, 0.6]
    sampler = cast(WarmStartGridSampler, _make(name, [old, old], {"x": grid}))
    assert len([m for m in _support.records(caplog) if "twice" in m]) == 1
    # One source, so the default portfolio is its best two points, then the probe.
    assert [p["x"] for p in sampler.ranked_grid()][:2] == [0.2, 0.6]


def test_source_empty(name: str) -> None:
    study = optuna.create_study(study_name="empty-src")
    with pytest.raises(ValueError, match=r"'empty-src' has no usable trials.*0 trial\(s\)"):
        _make(name, study, {"x": [0.1, 0.2]})


def test_source_list_empty(name: str) -> None:
    with pytest.raises(ValueError, match="`source` is empty"):
        _make(name, [], {"x": [0.1, 0.2]})


def test_source_only_fail_running_pruned(name: str) -> None:
    study = optuna.create_study(study_name="unfinished")
    for state in (TrialState.FAIL, TrialState.RUNNING, TrialState.PRUNED, TrialState.WAITING):
        study.add_trial(_trial({"x": 0.5}, {"x": X01}, state=state))
    with pytest.raises(ValueError) as info:
        _make(name, study, {"x": [0.1, 0.5]})
    msg = str(info.value)
    assert "'unfinished' has no usable trials" in msg
    assert "COMPLETE" in msg
    for part in ("1 FAIL", "1 PRUNED", "1 RUNNING", "1 WAITING"):
        assert part in msg


# ---------------------------------------------------------------------------------------------
# Non-finite and extreme values, live sources.
# ---------------------------------------------------------------------------------------------


def _nonfinite_trials(bad: float) -> list[FrozenTrial]:
    good = [_trial({"x": x}, {"x": X01}, value=v) for x, v in ((0.3, 1.0), (0.8, 2.0))]
    # create_trial/add_trial refuse NaN, but FrozenTrial objects from elsewhere may hold it.
    weird = FrozenTrial(
        number=2, state=TrialState.COMPLETE, value=bad, datetime_start=None,
        datetime_complete=None, params={"x": 0.9}, distributions={"x": X01}, user_attrs={},
        system_attrs={}, intermediate_values={}, trial_id=2,
    )
    return [*good, weird]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_source_nan_inf_values_skipped_with_warning(
    name: str, bad: float, caplog: pytest.LogCaptureFixture
) -> None:
    # With -inf kept, x=0.9 would be the source's best point and come first.
    sampler = _make(name, _nonfinite_trials(bad), {"x": [0.9, 0.8, 0.3]})
    warnings = _support.records(caplog)
    assert any("skipped 1 COMPLETE trial(s)" in m and "NaN or infinite" in m for m in warnings)
    study = _run(sampler, lambda t: t.suggest_float("x", 0, 1))
    assert _xs(study)[0] == 0.3
    assert sorted(_xs(study)) == [0.3, 0.8, 0.9]
    _exactly_once(study, 3)


def test_source_huge_finite_value_is_kept_as_worst(name: str) -> None:
    source = _source([({"x": 0.1}, {"x": X01}, 1e300), ({"x": 0.6}, {"x": X01}, 1.0)])
    study = _run(_make(name, source, {"x": [0.1, 0.6]}), lambda t: t.suggest_float("x", 0, 1))
    assert _xs(study) == [0.6, 0.1]


def test_source_still_running_is_snapshot_at_construction(
    name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = f"sqlite:///{tmp_path / 'src.db'}"
    source = optuna.create_study(study_name="live", storage=storage)
    source.add_trial(_trial({"x": 0.7}, {"x": X01}, value=5.0))
    running = source.ask({"x": X01})
    sampler = _make(name, source, {"x": [0.2, 0.7]})
    assert any("1 running/waiting trial(s)" in m for m in _support.records(caplog, logging.INFO))
    # Trials that finish after construction (one better than everything) are not seen.
    source.tell(running, 100.0)
    source.add_trial(_trial({"x": 0.2}, {"x": X01}, value=-1.0))
    study = _run(sampler, lambda t: t.suggest_float("x", 0, 1))
    assert _xs(study) == [0.7, 0.2]


# ---------------------------------------------------------------------------------------------
# Objective count. TransferTPESampler refuses a source whose objective count differs from the
# target's. The grid sampler only uses each source's *ranking* of its own trials (Pareto rank
# for several objectives) and weighs it by rank agreement with the target's results, and
# optuna's GridSampler accepts multi-objective studies, so the expected behaviour for an Optuna
# user is: no error, the grid is evaluated exactly once, best-ranked source point first.
# ---------------------------------------------------------------------------------------------

XY_GRID: dict[str, list[Any]] = {"x": [-6.0, 0.0, 6.0], "y": [-6.0, 0.0, 6.0]}


def test_single_objective_source_multi_objective_target(name: str) -> None:
    source = _support.finished_study(_support.xy_objective, 30)
    sampler = _make(name, source, XY_GRID)
    study = _run(sampler, _support.xy_objective2, directions=["minimize", "minimize"])
    _exactly_once(study, 9)
    # The source is best near (0.3, -0.2): (0, 0) is the closest grid point.
    assert study.trials[0].params == {"x": 0.0, "y": 0.0}
    assert len(study.best_trials) >= 1


def test_multi_objective_source_single_objective_target(name: str) -> None:
    source = _support.finished_study(_support.xy_objective2, 30, directions=("minimize",) * 2)
    sampler = _make(name, source, XY_GRID)
    study = _run(sampler, _support.xy_objective)
    _exactly_once(study, 9)
    assert study.best_params == {"x": 0.0, "y": 0.0}


def test_source_trials_with_mixed_objective_counts(name: str) -> None:
    good = _trial({"x": 0.3}, {"x": X01}, value=1.0)
    pair = optuna.trial.create_trial(params={"x": 0.9}, distributions={"x": X01}, values=[0, 0])
    with pytest.raises(ValueError, match=r"different numbers of objective values \[1, 2\]"):
        _make(name, [good, pair], {"x": [0.3, 0.9]})


# ---------------------------------------------------------------------------------------------
# Search space changed between source and grid.
# ---------------------------------------------------------------------------------------------


def test_type_changed_float_source_int_grid(name: str) -> None:
    # Source x was a float; 2.0 equals the grid value 2 (it counts as evaluating it).
    dist = FloatDistribution(0, 5)
    source = _source([({"x": 2.0}, {"x": dist}, 0.0), ({"x": 0.37}, {"x": dist}, 1.0)])
    study = _run(_make(name, source, {"x": [1, 2, 3]}), lambda t: t.suggest_int("x", 1, 3))
    assert _xs(study)[0] == 2 and type(_xs(study)[0]) is int
    _exactly_once(study, 3)


def test_type_changed_int_source_float_grid(name: str) -> None:
    dist = IntDistribution(0, 10)
    source = _source([({"x": 3}, {"x": dist}, 0.0), ({"x": 8}, {"x": dist}, 1.0)])
    study = _run(
        _make(name, source, {"x": [8.0, 5.0, 3.0]}), lambda t: t.suggest_float("x", 0, 10)
    )
    assert _xs(study)[0] == 3.0 and type(_xs(study)[0]) is float
    _exactly_once(study, 3)


def test_type_changed_float_source_string_grid(name: str) -> None:
    # Numbers never match string choices: the source says nothing, the seeded order decides.
    dist = FloatDistribution(0, 5)
    source = _source([({"x": 2.0}, {"x": dist}, 0.0), ({"x": 0.37}, {"x": dist}, 1.0)])
    space = {"x": ["lo", "mid", "high"]}
    sampler = _make(name, source, space)
    study = _run(sampler, lambda t: len(t.suggest_categorical("x", space["x"])))
    uninformed = cast(WarmStartGridSampler, _make(name, _uninformed(), space))
    expected = [p["x"] for p in uninformed.ranked_grid()]
    assert _xs(study) == expected
    _exactly_once(study, 3)


def test_range_shrunk(name: str) -> None:
    # Source values outside the grid's [min, max] are missing for the models, but the zero-shot
    # portfolio (the source's best two trials) clips them onto the nearest grid point, as
    # TransferTPESampler's portfolio does: 7.5 -> 1.0, then -9.0 -> -1.0.
    dist = FloatDistribution(-10, 10)
    source = _source([({"x": 7.5}, {"x": dist}, 0.0), ({"x": -9.0}, {"x": dist}, 1.0)])
    space = {"x": [-1.0, 0.0, 1.0]}
    study = _run(_make(name, source, space), lambda t: t.suggest_float("x", -1, 1))
    assert _xs(study) == [1.0, -1.0, 0.0]
    _exactly_once(study, 3)


def test_range_grown(name: str) -> None:
    dist = FloatDistribution(0, 1)
    source = _source([({"x": 0.25}, {"x": dist}, 0.0), ({"x": 0.75}, {"x": dist}, 1.0)])
    space = {"x": [-100.0, 0.75, 0.25, 100.0]}
    study = _run(_make(name, source, space), lambda t: t.suggest_float("x", -100, 100))
    assert _xs(study)[0] == 0.25
    _exactly_once(study, 4)


@pytest.mark.parametrize("source_log", [True, False])
def test_log_flag_changed(name: str, source_log: bool) -> None:
    # The grid [1e-3 .. 10] spans four decades, so it is modelled on a log scale whatever the
    # source's log flag was; values are compared in their external form.
    dist = FloatDistribution(1e-3, 10, log=source_log)
    source = _source([({"x": 0.01}, {"x": dist}, 0.0), ({"x": 5.0}, {"x": dist}, 1.0)])
    space = {"x": [10.0, 1.0, 0.1, 0.01, 0.001]}
    study = _run(
        _make(name, source, space), lambda t: t.suggest_float("x", 1e-3, 10, log=not source_log)
    )
    assert _xs(study)[0] == 0.01
    _exactly_once(study, 5)


def test_categorical_choices_renamed(name: str, caplog: pytest.LogCaptureFixture) -> None:
    old = CategoricalDistribution(["adam", "sgd"])
    source = _source([({"opt": "adam"}, {"opt": old}, 0.0), ({"opt": "sgd"}, {"opt": old}, 1.0)])
    space = {"opt": ["Adam", "SGD", "rmsprop"]}

    def objective(t: Trial) -> float:
        return float(space["opt"].index(t.suggest_categorical("opt", space["opt"])))

    # A renamed choice is missing for the source (case matters): no error, seeded order, and
    # one warning at construction naming the parameter.
    study = _run(_make(name, source, space), objective)
    warned = [m for m in _support.records(caplog) if "fits" in m]
    assert len(warned) == 1 and "'opt'" in warned[0] and "['adam', 'sgd']" in warned[0]
    uninformed = cast(WarmStartGridSampler, _make(name, _uninformed(), space))
    expected = [p["opt"] for p in uninformed.ranked_grid()]
    assert _xs(study, "opt") == expected
    _exactly_once(study, 3)


def test_conditional_params_in_some_trials(name: str) -> None:
    kind = CategoricalDistribution(["svm", "rf"])
    c_dist = FloatDistribution(1e-3, 1e3, log=True)
    d_dist = IntDistribution(1, 32)
    source = _source(
        [
            ({"kind": "svm", "C": 0.5}, {"kind": kind, "C": c_dist}, 0.1),
            ({"kind": "rf", "depth": 4}, {"kind": kind, "depth": d_dist}, 0.2),
            ({"kind": "svm", "C": 300.0}, {"kind": kind, "C": c_dist}, 0.9),
            ({"kind": "rf", "depth": 30}, {"kind": kind, "depth": d_dist}, 0.8),
        ]
    )
    space: dict[str, list[Any]] = {"kind": ["rf", "svm"], "C": [300.0, 0.5], "depth": [30, 4]}

    def objective(t: Trial) -> float:
        if t.suggest_categorical("kind", ["svm", "rf"]) == "svm":
            return math.log(t.suggest_float("C", 1e-3, 1e3, log=True)) ** 2
        return float(t.suggest_int("depth", 1, 32))

    # As with GridSampler, every point of the full product is a trial (the inactive parameter
    # is simply not suggested); the source's best branch and value come first.
    study = _run(_make(name, source, space), objective)
    _exactly_once(study, 8)
    assert study.trials[0].params == {"kind": "svm", "C": 0.5}
    assert study.best_params == {"kind": "svm", "C": 0.5}


# ---------------------------------------------------------------------------------------------
# Sources named in a storage.
# ---------------------------------------------------------------------------------------------

def test_from_storage_unknown_study_name(name: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'named.db'}"
    _support.finished_study(_support.xy_objective, 3, storage=url, study_name="real")
    with pytest.raises(ValueError) as info:
        WarmStartGridSampler.from_storage(url, ["nope"], XY_GRID)
    msg = str(info.value)
    assert "No study named 'nope'" in msg
    assert "'real'" in msg  # lists what is there


def test_from_storage_without_study_names_is_refused(name: str, tmp_path: Path) -> None:
    # On main None read every study of the storage, the target included, which then ranked
    # its own grid as a source.
    url = f"sqlite:///{tmp_path / 'named.db'}"
    _support.finished_study(_support.xy_objective, 3, storage=url, study_name="real")
    with pytest.raises(TypeError, match=r"`study_names` must name the source studies .*got None"):
        WarmStartGridSampler.from_storage(url, None, XY_GRID)  # type: ignore[arg-type]


def test_from_storage_unopenable_url(name: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'x.db'}"
    with pytest.raises(ValueError, match="Could not open storage sqlite:///") as info:
        WarmStartGridSampler.from_storage(url, ["a"], XY_GRID)
    assert "'a'" in str(info.value)


def test_load_study_workaround_unknown_study_name(name: str, tmp_path: Path) -> None:
    # What users do today instead of from_storage: optuna's own, less helpful, error.
    url = f"sqlite:///{tmp_path / 'named.db'}"
    _support.finished_study(_support.xy_objective, 3, storage=url, study_name="real")
    with pytest.raises(KeyError, match="Record does not exist"):
        _support.grid_from_storage(name, url, ["nope"], XY_GRID)
    sampler = _support.grid_from_storage(name, url, ["real"], XY_GRID)
    assert len(_run(sampler, _support.xy_objective).trials) == 9


@pytest.mark.parametrize(
    ("argument", "value"),
    _support.BAD_INTEGER_ARGUMENTS,
)
def test_a_non_integer_argument_is_named_up_front(name: str, argument: str, value: Any) -> None:
    source = _source([({"x": 0.5}, {"x": X01}, 1.0)])
    with pytest.raises(ValueError, match=rf"`{argument}` must be an integer >= \d.*got {value!r}"):
        WarmStartGridSampler(source, {"x": [0.0, 0.5, 1.0]}, **{argument: value})
