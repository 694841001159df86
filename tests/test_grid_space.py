"""A grid point's id from a configuration's values: ``GridSpace.id_of``.

Ids are looked up in constant time per value; they must match the grid's value equality
(``grid_value_equal``: ``True`` is not ``1``, ``1`` is ``1.0``, NaN is NaN), the first of two
equal values, and none for a value the grid lacks.
"""

from __future__ import annotations

import itertools
import math
from typing import Any
import warnings

import pytest

from optuna_transfer._grid._space import GridSpace
from optuna_transfer._grid._space import value_index


def _reference_id(space: GridSpace, params: dict[str, Any]) -> int | None:
    """The id by definition: each value's first equal grid value, row-major."""
    gid = 0
    for name, size in zip(space.param_names, space.sizes):
        i = value_index(space.values[name], params[name])
        if i is None:
            return None
        gid = gid * size + i
    return gid


@pytest.mark.parametrize(
    "column",
    [
        [0, 1, 2],
        [True, False],
        [1, True, 0.5],
        [None, "relu", "gelu"],
        [0.1, float("nan"), 1.0],
        [2, 2.0, 3],
    ],
)
def test_id_of_matches_the_grids_value_equality(column: list[Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # [2, 2.0, 3] lists a value twice
        space = GridSpace({"a": column, "b": ["x", "y"]})
    lookups = [*column, 0, 1, 1.0, True, False, 2.0, "1", None, float("nan"), 7, [1]]
    for a, b in itertools.product(lookups, ["x", "y", "z"]):
        params = {"a": a, "b": b}
        assert space.id_of(params) == _reference_id(space, params), params


def test_id_of_tells_true_from_one_and_finds_nan() -> None:
    space = GridSpace({"flag": [1, True], "rate": [0.5, math.nan]})
    assert space.id_of({"flag": True, "rate": 0.5}) == 2
    assert space.id_of({"flag": 1.0, "rate": math.nan}) == 1
    assert space.id_of({"flag": False, "rate": 0.5}) is None
    assert space.id_of({"flag": 1}) is None  # a parameter missing
