"""WarmStartGridSampler and `neighbourhood_grid` on inputs that used to give bad grids without a
word (issue 13): grid values storage cannot give back, bare numbers or strings where lists
belong, values a factor cannot scale."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from _grid_support import grid_source
from _grid_support import GRID_X
import numpy as np
import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import BaseTrial
import pytest

from optuna_transfer import neighbourhood_grid
from optuna_transfer import WarmStartGridSampler


optuna.logging.set_verbosity(optuna.logging.ERROR)


@pytest.mark.parametrize("value", [(1, 2), [1, 2], {"a": 1}])
def test_container_grid_values_are_refused(value: Any) -> None:
    source = grid_source(4.0)
    with pytest.raises(TypeError, match=r"search_space\['shape'\].*string"):
        WarmStartGridSampler(source, {"x": GRID_X, "shape": [value, "other"]})


def test_string_encoded_values_round_trip_on_sqlite(tmp_path: Path) -> None:
    # What the refusal steers to: a tuple came back from SQLite as a list, so no claim was
    # recognised, the study never stopped and one point was repeated. A string round-trips.
    source = grid_source(4.0)
    shapes = ["1x2", "3x4"]
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'db.sqlite'}",
        sampler=WarmStartGridSampler(source, {"x": [-1.0, 1.0], "shape": shapes}, seed=0),
    )

    def objective(t: BaseTrial) -> float:
        rows, cols = map(int, t.suggest_categorical("shape", shapes).split("x"))
        return t.suggest_float("x", -1, 1) + rows * cols

    study.optimize(objective, n_trials=10)
    assert len(study.trials) == 4
    assert len({(t.params["x"], t.params["shape"]) for t in study.trials}) == 4


def test_neighbourhood_grid_zero_best_with_factors_is_refused() -> None:
    with pytest.raises(ValueError, match=r"'wd'.*0\.0.*`offsets` or `values`"):
        neighbourhood_grid({"wd": 0.0}, {"wd": (0.1, 1, 10)})


def test_neighbourhood_grid_negative_best_or_factor_is_refused() -> None:
    with pytest.raises(ValueError, match=r"'x'.*positive"):
        neighbourhood_grid({"x": -1.0}, {"x": (0.1, 1, 10)})
    with pytest.raises(ValueError, match=r"`factors\['x'\]`.*positive"):
        neighbourhood_grid({"x": 1.0}, {"x": (0.0, 1, 10)})


def test_neighbourhood_grid_small_integer_never_rounds_to_zero() -> None:
    grid = neighbourhood_grid({"bs": 4}, {"bs": (0.1, 1, 10)})
    assert grid == {"bs": [1, 4, 40]}
    assert all(type(v) is int for v in grid["bs"])
    # The grid runs with a log-scale suggestion (0 would be invalid there).
    source = grid_source(4.0)
    study = optuna.create_study(sampler=WarmStartGridSampler(source, grid, seed=0))
    study.optimize(lambda t: t.suggest_int("bs", 1, 64, log=True), n_trials=3)
    assert sorted(t.params["bs"] for t in study.trials) == [1, 4, 40]


def test_neighbourhood_grid_integer_factors_that_collapse_are_refused() -> None:
    with pytest.raises(ValueError, match=r"'k'.*only the value 1"):
        neighbourhood_grid({"k": 1}, {"k": (0.9, 1, 1.1)})


def test_neighbourhood_grid_string_values_are_refused() -> None:
    with pytest.raises(TypeError, match=r"`values\['opt'\]`.*\['adam'\]"):
        # A str is a Sequence to the type checker: only the runtime check catches this.
        neighbourhood_grid({"opt": "adam"}, values={"opt": "adam"})
    with pytest.raises(TypeError, match=r"`values\['opt'\]`"):
        neighbourhood_grid({"opt": "adam"}, values={"opt": 3})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match=r"values\['shape'\].*string"):
        neighbourhood_grid({}, values={"shape": [(1, 2)]})  # type: ignore[list-item]


def test_neighbourhood_grid_numpy_numbers_are_numbers() -> None:
    grid = neighbourhood_grid(
        {"bs": np.int64(64), "lr": np.float32(0.5)},
        {"bs": (np.float64(0.5), 1, 2), "lr": (np.int64(1), 2)},  # type: ignore[dict-item]
    )
    assert grid == {"bs": [32, 64, 128], "lr": [0.5, 1.0]}
    assert all(type(v) is int for v in grid["bs"])
    assert all(type(v) is float for v in grid["lr"])
    assert neighbourhood_grid({"k": np.int64(3)}, offsets={"k": (-1, 0, 1)}) == {"k": [2, 3, 4]}


def test_neighbourhood_grid_bare_number_steps_are_refused() -> None:
    with pytest.raises(TypeError, match=r"`factors\['lr'\]`.*\(0\.1, 1, 10\)"):
        neighbourhood_grid({"lr": 1e-3}, {"lr": 10})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match=r"`offsets\['d'\]`"):
        neighbourhood_grid({"d": 0.3}, offsets={"d": 0.1})  # type: ignore[dict-item]


def test_neighbourhood_grid_other_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"'lr'.*finite"):
        neighbourhood_grid({"lr": math.nan}, {"lr": (0.1, 1)})
    with pytest.raises(ValueError, match=r"`factors\['lr'\]`.*numbers"):
        neighbourhood_grid({"lr": 1e-3}, {"lr": (0.1, math.inf)})
    with pytest.raises(TypeError, match=r"`keep`.*\['bs'\]"):
        neighbourhood_grid({"bs": 64, "lr": 1e-3}, {"lr": (1, 2)}, keep="bs")
    with pytest.raises(TypeError, match="`factors`"):
        neighbourhood_grid({"lr": 1e-3}, [("lr", (1, 2))])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("arg", "steps"),
    [
        ("factors", {"factors": {"lr": (0.1, 1, 10)}}),
        ("offsets", {"offsets": {"lr": (-1e-4, 0, 1e-4)}}),
        ("values", {"values": {"lr": [1e-4, 1e-3]}}),
    ],
)
def test_neighbourhood_grid_keep_and_steps_on_one_parameter_are_refused(
    arg: str, steps: dict[str, Any]
) -> None:
    # On main `keep` was silently ignored for a parameter also given steps: the grid varied a
    # parameter the caller asked to fix.
    with pytest.raises(
        ValueError, match=rf"Parameter 'lr' is given in both `{arg}` and `keep`; give it in one"
    ):
        neighbourhood_grid({"lr": 1e-3, "bs": 64}, keep=["lr"], **steps)
    # Naming a kept parameter twice in `keep` alone is no conflict.
    assert neighbourhood_grid({"lr": 1e-3, "bs": 64}, keep=["bs", "bs"]) == {"bs": [64]}


@pytest.mark.parametrize(
    ("grid_values", "source_value", "expected"),
    [
        ([16, 32, 64, 128, 256, 512], 23, 32),  # doubling: nearest in log (23/16 > 32/23)
        ([10, 20, 30, 40, 50], 23, 20),  # evenly spaced: nearest linearly
        ([1e-4, 1e-3, 1e-2, 1e-1], 4e-3, 1e-2),  # wide span: log, as before
    ],
)
def test_source_configs_land_on_the_nearest_grid_value_in_the_grids_scale(
    grid_values: list[float], source_value: float, expected: float
) -> None:
    source = optuna.create_study()
    source.add_trial(
        optuna.trial.create_trial(
            params={"u": source_value},
            distributions={"u": FloatDistribution(min(grid_values), max(grid_values))},
            value=0.0,
        )
    )
    study = optuna.create_study(
        sampler=WarmStartGridSampler(source, {"u": grid_values}, seed=0)
    )
    study.optimize(lambda t: t.suggest_float("u", min(grid_values), max(grid_values)), 1)
    assert study.trials[0].params["u"] == expected


def test_neighbourhood_grid_values_it_would_not_check_are_refused() -> None:
    # On main a step past the largest float gave inf, a kept tuple passed (and failed later in
    # the sampler), and a candidate listed twice became a point evaluated twice.
    with pytest.raises(ValueError, match=r"`factors\['lr'\]` takes parameter 'lr'.*largest"):
        neighbourhood_grid({"lr": 1e300}, {"lr": (1, 1e10)})
    with pytest.raises(ValueError, match=r"`offsets\['x'\]` takes parameter 'x'.*largest"):
        neighbourhood_grid({"x": 1.7e308}, offsets={"x": (0, 1.7e308)})
    with pytest.raises(TypeError, match=r"`best_params\['shape'\]` contains \(1, 2\)"):
        neighbourhood_grid({"lr": 1e-3, "shape": (1, 2)}, {"lr": (0.5, 2)})
    with pytest.raises(ValueError, match=r"`values\['bs'\]` lists 32 more than once"):
        neighbourhood_grid({"lr": 1e-3}, values={"bs": [32, 32, 64]})
    # True and 1 are two choices, as in Optuna.
    assert neighbourhood_grid({}, values={"flag": [1, True]}) == {"flag": [1, True]}


def test_a_numeric_column_whose_range_overflows_a_float_is_visited_whole() -> None:
    # On main max - min = inf gave NaN coordinates, and the third trial crashed with an
    # IndexError; GridSampler visits such a grid.
    values = [-1.7e308, 0.0, 1.7e308]

    def objective(trial: BaseTrial) -> float:
        x = trial.suggest_categorical("x", values)
        return abs(x) / 1e308 + trial.suggest_categorical("y", [0, 1])

    source = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    source.optimize(objective, n_trials=10)
    grid: dict[str, list[float]] = {"x": values, "y": [0, 1]}
    study = optuna.create_study(sampler=WarmStartGridSampler(source, grid, seed=0))
    study.optimize(objective, n_trials=10)
    assert sorted((t.params["x"], t.params["y"]) for t in study.trials) == sorted(
        (x, y) for x in values for y in [0, 1]
    )
