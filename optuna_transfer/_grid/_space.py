"""The grid itself: its values, the ids of its points and the distributions it stands for.

A point of the grid is identified by its flat id in the Cartesian product of the columns, in
sorted parameter-name order (as Optuna's ``GridSampler``). Each column with more than one value
is modelled as the distribution it implies (:func:`implied_distribution`), and its values by
their unit coordinates there (``optuna_transfer._encoding``): that is the space source and
target trials are aligned onto.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import math
from numbers import Real
from typing import Any
import warnings

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution

from optuna_transfer._encoding import encode
from optuna_transfer._encoding import project
from optuna_transfer._encoding import UNFIT
from optuna_transfer._local_search import grid_neighbours


GridValueType = str | float | int | bool | None

# A grid beyond this many points is refused: scoring is O(points x source trials) memory-bounded
# chunks, and a bigger grid cannot be exhausted anyway.
MAX_GRID_POINTS = 10**7
# Numeric columns spanning at least this ratio (two decades) of positive values are modelled on a
# log scale, as learning rates and weight decays are; narrower ones linearly.
LOG_SPAN = 100.0

# Values a storage cannot give back as they were: a tuple comes back from JSON as a list, so a
# claim on it would never match its point again. Optuna's categorical choices cannot be these.
_CONTAINERS = (tuple, list, dict, set, frozenset, np.ndarray)


class GridSpace:
    """A checked ``search_space`` (as for :class:`~optuna.samplers.GridSampler`): its points'
    ids and values, the nearest point to a configuration, and the modelled columns.

    Raises the errors the sampler documents for a malformed ``search_space``; ``stacklevel``
    of the warning for a value of an unsupported type points at the sampler's caller.
    """

    def __init__(
        self, search_space: Mapping[str, Sequence[GridValueType]], stacklevel: int = 2
    ) -> None:
        if not isinstance(search_space, Mapping):
            raise TypeError(
                "`search_space` must be a dict from parameter name to a list of values, got "
                f"{type(search_space).__name__}."
            )
        space: dict[str, list[Any]] = {}
        for name, values in sorted(search_space.items()):
            if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
                raise TypeError(
                    f"`search_space[{name!r}]` must be a list of values, got "
                    f"{type(values).__name__}."
                )
            values = [v.item() if isinstance(v, np.generic) else v for v in values]
            if not values:
                raise ValueError(f"`search_space[{name!r}]` is empty: give at least one value.")
            seen: set[tuple[bool, Any]] = set()
            for v in values:
                check_container(f"search_space[{name!r}]", v)
                check_value(name, v, stacklevel=stacklevel + 1)
                if not (v is None or isinstance(v, (str, int, float))):
                    continue  # an unsupported type (warned above) may not be hashable
                key = _grid_key(v)
                if key in seen:
                    warnings.warn(
                        f"`search_space[{name!r}]` lists {v!r} twice: as with GridSampler, each "
                        "configuration with it is two grid points, evaluated twice. Give each "
                        "value once.",
                        UserWarning,
                        stacklevel=stacklevel + 1,
                    )
                seen.add(key)
            space[name] = values
        sizes = [len(v) for v in space.values()]
        n_points = math.prod(sizes)
        if n_points > MAX_GRID_POINTS:
            raise ValueError(
                f"The grid has {n_points:,} points, more than the {MAX_GRID_POINTS:,} this "
                "sampler ranks. Fix some parameters or use fewer values (see "
                "`neighbourhood_grid`), or use TransferTPESampler for large spaces."
            )
        self.values = space
        self.param_names = list(space)
        # Per column of hashable values, each value's index, keyed as grid_value_equal
        # compares: ids are looked up for every trial on every sample, so in constant time.
        self._indices = {n: _value_indices(v) for n, v in space.items()}
        self.sizes = sizes
        self.n_points = n_points
        # A point's id is the sum of its value indices times these (row-major, as
        # ``np.ravel_multi_index``).
        self._strides = [math.prod(sizes[k + 1 :]) for k in range(len(sizes))]
        # Modelled columns: constant ones carry no information.
        self.dists: dict[str, BaseDistribution] = {
            n: implied_distribution(v) for n, v in space.items() if len(v) > 1
        }
        # Unit coordinate (or choice index) of every value of every modelled column.
        self._coords = {
            n: np.array([encode(d, v) for v in space[n]]) for n, d in self.dists.items()
        }
        # Per grid parameter, its coordinates (None for a constant column); the modelled ones,
        # in grid order, are what every grid-wide model reads.
        self._coords_by_param = [self._coords.get(n) for n in self.param_names]
        self.columns = [c for c in self._coords_by_param if c is not None]
        # Value indices of numeric columns in ascending order: a local step moves to the next
        # smaller or larger value. Other columns are unordered.
        self._value_orders = [
            np.argsort(self._coords[n], kind="stable")
            if isinstance(self.dists.get(n), FloatDistribution)
            else None
            for n in self.param_names
        ]

    def values_of(self, grid_id: int) -> list[Any]:
        """The point's value of each parameter, in :attr:`param_names` order."""
        idx = np.unravel_index(grid_id, self.sizes)
        return [self.values[n][int(i)] for n, i in zip(self.param_names, idx)]

    def params_of(self, grid_id: int) -> dict[str, Any]:
        return dict(zip(self.param_names, self.values_of(grid_id)))

    def id_of(self, params: Mapping[str, Any], *, nearest: bool = False) -> int | None:
        """Grid id of a configuration that sets every grid parameter to a grid value, else None.

        With ``nearest``, the nearest grid point instead (see :meth:`nearest_indices`), or
        None where a grid parameter has no nearest value.
        """
        if nearest:
            indices = self.nearest_indices(params)
        else:
            indices = [
                self._index_of(name, params[name]) if name in params else None
                for name in self.param_names
            ]
        if any(i is None for i in indices):
            return None
        return sum(i * stride for i, stride in zip(indices, self._strides) if i is not None)

    def nearest_indices(self, params: Mapping[str, Any]) -> list[int | None]:
        """Per grid parameter, the index of the value nearest ``params``'s: numbers by their
        modelled coordinate (clipped into the grid's range), a constant column whatever
        ``params`` say, other values exactly; None where ``params`` lack the parameter or
        hold a value that fits no grid value."""
        indices: list[int | None] = []
        for name in self.param_names:
            dist = self.dists.get(name)
            if dist is None:  # a constant column: its only value
                indices.append(0)
            elif name not in params:
                indices.append(None)
            elif isinstance(dist, FloatDistribution):
                value = project(dist, params[name])
                indices.append(
                    None
                    if value is UNFIT
                    else int(np.argmin(np.abs(self._coords[name] - encode(dist, value))))
                )
            else:
                indices.append(self._index_of(name, params[name]))
        return indices

    def matching(self, indices: Sequence[int | None]) -> np.ndarray:
        """The ids of the points whose value of each grid parameter has the index in
        ``indices`` (any value where it is None)."""
        mask = np.ones(self.n_points, dtype=bool)
        ids = np.arange(self.n_points)
        for i, size, stride in zip(indices, self.sizes, self._strides):
            if i is not None:
                mask &= (ids // stride) % size == i
        return np.flatnonzero(mask)

    def _index_of(self, name: str, value: Any) -> int | None:
        index = self._indices[name]
        if index is None:
            return value_index(self.values[name], value)
        try:
            return index.get(_grid_key(value))
        except TypeError:  # an unhashable value equals no value of a hashable column
            return None

    def neighbours(self, grid_id: int) -> np.ndarray:
        """Ids of the points one move away (``optuna_transfer._local_search.grid_neighbours``)."""
        index = [int(i) for i in np.unravel_index(grid_id, self.sizes)]
        return grid_neighbours(index, self.sizes, self._value_orders)

    def points(self, ids: np.ndarray) -> np.ndarray:
        """(len(ids) x modelled columns): the coordinates of the points ``ids``."""
        return np.stack(
            [
                c[i]
                for c, i in zip(self._coords_by_param, np.unravel_index(ids, self.sizes))
                if c is not None
            ],
            axis=1,
        )

    def distance_to_nearest(self, ids: Sequence[int]) -> np.ndarray:
        """Per point, its distance to the nearest point of ``ids``: the mean over the modelled
        columns of the distance in unit coordinates, 0 or 1 between a categorical's choices."""
        nearest = np.full(self.n_points, np.inf)
        modelled = [
            (j, self._coords[n], isinstance(self.dists[n], CategoricalDistribution))
            for j, n in enumerate(self.param_names)
            if n in self._coords
        ]
        if not modelled:
            return np.zeros(self.n_points)
        for gid in ids:
            own = np.unravel_index(int(gid), self.sizes)
            # Summed column by column through broadcasting: one array of n_points, not one
            # per column.
            total = np.zeros(self.sizes)
            for j, coords, is_cat in modelled:
                column = (
                    np.arange(len(coords)) != own[j] if is_cat else np.abs(coords - coords[own[j]])
                )
                shape = [1] * len(self.sizes)
                shape[j] = len(coords)
                total = total + column.reshape(shape)
            nearest = np.minimum(nearest, total.ravel() / len(modelled))
        return nearest

    def same_as(self, search_space: Any) -> bool:
        """Whether ``search_space`` (as a trial recorded it) is this grid's, value for value."""
        if not isinstance(search_space, Mapping):
            return False
        if set(search_space.keys()) != set(self.values.keys()):
            return False
        for name, values in search_space.items():
            mine = self.values[name]
            if len(values) != len(mine):
                return False
            if not all(grid_value_equal(a, b) for a, b in zip(values, mine)):
                return False
        return True


def check_container(where: str, value: Any) -> None:
    if isinstance(value, _CONTAINERS):
        raise TypeError(
            f"`{where}` contains {value!r}, a {type(value).__name__}: grid values must be "
            "None, bool, int, float or str, as Optuna's categorical choices must (a storage "
            "would give it back as another type, and the grid would never see its point as "
            "done). Encode it as a string (e.g. '1x2') and decode it in the objective."
        )


def check_value(param_name: str, value: Any, stacklevel: int = 3) -> None:
    # GridSampler's check, kept as it is (Optuna's own grid tests call it): it only warns.
    if value is None or isinstance(value, (str, int, float, bool)):
        return
    warnings.warn(
        f"{param_name} contains a value with the type of {type(value)}, which is not supported "
        "by `WarmStartGridSampler`. Please make sure a value is `str`, `int`, `float`, `bool` "
        "or `None` for persistent storage.",
        UserWarning,
        stacklevel=stacklevel,
    )


def is_numeric(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_nan(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isnan(float(value))


def grid_value_equal(a: Any, b: Any) -> bool:
    """Equal as grid values: ``True`` is not ``1``, and NaN is NaN."""
    return (type(a) is type(b) or not (isinstance(a, bool) or isinstance(b, bool))) and (
        a == b or (_is_nan(a) and _is_nan(b))
    )


def _log_spaced(values: list[Any]) -> bool:
    """Whether positive ``values`` (three or more distinct) have steps more even in log than
    linearly: a user who wrote 16, 32, 64, 128 means a log scale, and a source's 23 is then
    nearer 32 than 16."""
    xs = np.unique(np.asarray(values, dtype=float))
    if len(xs) < 3 or xs[0] <= 0:
        return False
    linear, logs = np.diff(xs), np.diff(np.log(xs))
    return bool(np.std(logs) / np.mean(logs) < np.std(linear) / np.mean(linear))


def _grid_key(value: Any) -> tuple[bool, Any]:
    """A dict key that compares as :func:`grid_value_equal` does for values other than NaN:
    ``True`` is not ``1``, but ``1`` is ``1.0``."""
    return isinstance(value, bool), value


def _value_indices(values: list[Any]) -> dict[tuple[bool, Any], int] | None:
    """Each value's first index, by :func:`_grid_key`; None where a value is NaN (not equal
    to itself) or may be unhashable: such a column is searched value by value."""
    index: dict[tuple[bool, Any], int] = {}
    for i, v in enumerate(values):
        if not (v is None or isinstance(v, (str, int, float))) or _is_nan(v):
            return None
        index.setdefault(_grid_key(v), i)
    return index


def value_index(values: list[Any], value: Any) -> int | None:
    for i, v in enumerate(values):
        if grid_value_equal(v, value):
            return i
    return None


def implied_distribution(values: list[Any]) -> BaseDistribution:
    """The distribution a grid column stands for: a FloatDistribution over ``[min, max]`` of a
    numeric column (log scale when its positive values span :data:`LOG_SPAN` or are spaced
    more evenly in log than linearly, as 16, 32, 64, ... are), else a CategoricalDistribution
    of its values. A numeric column whose range overflows a float (``max - min`` is inf) has
    no unit coordinates: it is categorical too."""
    numeric = all(is_numeric(v) for v in values) and len(set(values)) > 1
    if numeric and math.isfinite(float(max(values)) - float(min(values))):
        low, high = float(min(values)), float(max(values))
        log = low > 0 and (high / low >= LOG_SPAN or _log_spaced(values))
        return FloatDistribution(low, high, log=log)
    # Duplicates and unhashable values only need a stable index here.
    choices = tuple(values)
    return CategoricalDistribution(choices)
