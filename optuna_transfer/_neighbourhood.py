"""``neighbourhood_grid``: a grid around a known-good configuration, for the grid samplers."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import math
from numbers import Real
from typing import Any

import numpy as np
from optuna.study import Study

from optuna_transfer._grid._space import check_container
from optuna_transfer._grid._space import grid_value_equal
from optuna_transfer._grid._space import GridValueType
from optuna_transfer._grid._space import is_numeric


def neighbourhood_grid(
    best_params: Mapping[str, Any] | Study,
    factors: Mapping[str, Sequence[float]] | None = None,
    *,
    offsets: Mapping[str, Sequence[float]] | None = None,
    values: Mapping[str, Sequence[GridValueType]] | None = None,
    keep: Sequence[str] | None = None,
) -> dict[str, list[GridValueType]]:
    """A grid around a known-good configuration, for :class:`WarmStartGridSampler`.

    Example:

        .. testcode::

            from optuna_transfer import neighbourhood_grid

            grid = neighbourhood_grid(
                {"lr": 1e-3, "weight_decay": 1e-4, "bs": 64},
                {"lr": (0.1, 1, 10), "weight_decay": (0.1, 1, 10)},
                keep=["bs"],
            )
            assert grid["lr"] == [1e-4, 1e-3, 1e-2]
            assert grid["bs"] == [64]

    Args:
        best_params:
            The configuration to search around, or a study (its ``best_params``). NumPy
            numbers count as Python numbers.
        factors:
            Multiplicative factors per parameter, for log-scale parameters: values are
            ``best * f``. The best value and the factors must be positive (a log scale has no
            0: use ``offsets`` or ``values`` for a best value of 0). Integer parameters are
            rounded to the nearest integer, and to at least 1 (``4 * 0.1`` gives 1, not 0);
            duplicates are dropped, and factors that leave a single value raise a
            :class:`ValueError`.
        offsets:
            Additive offsets per parameter, for linear-scale parameters: values are
            ``best + o``. Integer parameters stay integers when the offsets are integers.
        values:
            Explicit candidate lists for some parameters (a list even for one value:
            ``{"opt": ["adam"]}``). Values are ``None``, ``bool``, ``int``, ``float`` or
            ``str``, as :class:`WarmStartGridSampler` requires.
        keep:
            Parameters fixed at their best value (none of them also in ``factors``,
            ``offsets`` or ``values``). ``None`` keeps every parameter of
            ``best_params`` not named in ``factors``, ``offsets`` or ``values``; a list keeps
            only those and leaves the other unnamed parameters out of the grid.

    Returns:
        A ``search_space`` dictionary for :class:`WarmStartGridSampler` or
        :class:`~optuna.samplers.GridSampler`.

    Raises:
        TypeError: An argument of the wrong shape (a bare number where a list is expected,
            a string for ``values`` or ``keep``, a tuple as a grid value, given or kept).
        ValueError: A grid that could not be what was meant: a best value that is not a
            finite number, or not positive with ``factors``; a factor that is not positive;
            steps that collapse to one value or overflow; a candidate listed twice in
            ``values``; a parameter named twice or not in ``best_params``.
    """
    if isinstance(best_params, Study):
        try:
            raw_best = dict(best_params.best_params)
        except (ValueError, RuntimeError) as e:
            raise ValueError(
                f"Cannot take best_params from study {best_params.study_name!r}: {e}"
            ) from None
    elif isinstance(best_params, Mapping):
        raw_best = dict(best_params)
    else:
        raise TypeError(
            "`best_params` must be a dict of parameter values or an optuna.Study, got "
            f"{type(best_params).__name__}."
        )
    best = {name: _plain(v) for name, v in raw_best.items()}
    factor_steps = _steps("factors", factors, "(0.1, 1, 10)")
    offset_steps = _steps("offsets", offsets, "(-0.1, 0, 0.1)")
    explicit = _candidate_lists(values)
    if keep is not None and (
        isinstance(keep, (str, bytes)) or not isinstance(keep, (Sequence, set, frozenset))
    ):
        raise TypeError(
            f"`keep` must be a list of parameter names, e.g. [{keep!r}], got the "
            f"{type(keep).__name__} {keep!r}."
        )
    named: dict[str, str] = {}
    # `keep` too: a kept parameter with steps would be varied, not fixed. Named twice in
    # `keep` alone is no conflict.
    kept = dict.fromkeys(keep or [])
    for arg, names in (
        ("factors", factor_steps),
        ("offsets", offset_steps),
        ("values", explicit),
        ("keep", kept),
    ):
        for name in names:
            if name in named:
                raise ValueError(
                    f"Parameter {name!r} is given in both `{named[name]}` and `{arg}`; give it "
                    "in one."
                )
            named[name] = arg
    for name in (*factor_steps, *offset_steps, *(keep or [])):
        if name not in best:
            raise ValueError(
                f"Parameter {name!r} is not in `best_params` (which has {sorted(best)})."
            )
    grid: dict[str, list[GridValueType]] = {}
    for name, value in best.items():
        if name in factor_steps or name in offset_steps:
            grid[name] = _stepped(name, value, factor_steps, offset_steps)
        elif name in explicit:
            grid[name] = list(explicit[name])
        elif keep is None or name in keep:
            check_container(f"best_params[{name!r}]", value)
            grid[name] = [value]
    for name, given in explicit.items():
        if name not in grid:
            grid[name] = list(given)
        if not grid[name]:
            raise ValueError(f"`values[{name!r}]` is empty: give at least one value.")
    return grid


def _plain(value: Any) -> Any:
    """A NumPy scalar as the Python number it holds; anything else as it is."""
    return value.item() if isinstance(value, np.generic) else value


def _steps(
    arg: str, given: Mapping[str, Sequence[float]] | None, example: str
) -> dict[str, list[float]]:
    """``factors`` or ``offsets``, checked: a dict from name to a non-empty list of finite
    numbers (positive for factors)."""
    if given is None:
        return {}
    if not isinstance(given, Mapping):
        raise TypeError(
            f"`{arg}` must be a dict from parameter name to a list of numbers, e.g. "
            f"{{'lr': {example}}}, got {type(given).__name__}."
        )
    out: dict[str, list[float]] = {}
    for name, steps in given.items():
        if isinstance(steps, (str, bytes)) or not isinstance(steps, (Sequence, np.ndarray)):
            raise TypeError(
                f"`{arg}[{name!r}]` must be a list of numbers such as {example}, got the "
                f"{type(steps).__name__} {steps!r}."
            )
        plain = [_plain(s) for s in steps]
        if not plain or not all(is_numeric(s) for s in plain):
            raise ValueError(
                f"`{arg}[{name!r}]` must be a non-empty list of finite numbers such as "
                f"{example}, got {steps!r}."
            )
        if arg == "factors" and any(s <= 0 for s in plain):
            raise ValueError(
                f"`factors[{name!r}]` must be positive (values are best * factor), got "
                f"{steps!r}. Use `offsets` to step through zero or to negative values."
            )
        out[name] = plain
    return out


def _candidate_lists(
    given: Mapping[str, Sequence[GridValueType]] | None,
) -> dict[str, list[GridValueType]]:
    """``values``, checked: a dict from name to a list of grid values."""
    if given is None:
        return {}
    if not isinstance(given, Mapping):
        raise TypeError(
            "`values` must be a dict from parameter name to a list of candidate values, got "
            f"{type(given).__name__}."
        )
    out: dict[str, list[GridValueType]] = {}
    for name, candidates in given.items():
        if isinstance(candidates, (str, bytes)) or not isinstance(
            candidates, (Sequence, np.ndarray)
        ):
            raise TypeError(
                f"`values[{name!r}]` must be a list of candidate values, got the "
                f"{type(candidates).__name__} {candidates!r}; for a single value write "
                f"[{candidates!r}]."
            )
        plain = [_plain(v) for v in candidates]
        for v in plain:
            check_container(f"values[{name!r}]", v)
        repeated = [
            v for i, v in enumerate(plain) if any(grid_value_equal(u, v) for u in plain[:i])
        ]
        if repeated:
            # Each would be a grid point evaluated twice (equal as the grid compares them:
            # True and 1 are two values).
            raise ValueError(
                f"`values[{name!r}]` lists {repeated[0]!r} more than once: give each "
                "candidate once."
            )
        out[name] = plain
    return out


def _stepped(
    name: str,
    value: Any,
    factor_steps: dict[str, list[float]],
    offset_steps: dict[str, list[float]],
) -> list[GridValueType]:
    """The candidates of one parameter given by ``factors`` or ``offsets``."""
    by_factor = name in factor_steps
    arg = "factors" if by_factor else "offsets"
    steps = factor_steps[name] if by_factor else offset_steps[name]
    if not is_numeric(value):
        what = "not a finite number" if isinstance(value, Real) else "non-numeric"
        raise ValueError(
            f"Parameter {name!r} has the best value {value!r}, {what}; give its candidates "
            "in `values` instead."
        )
    if by_factor and value <= 0:
        raise ValueError(
            f"Parameter {name!r} has the best value {value!r}, and `factors` multiply it, so "
            "they need a positive value (a log scale has no 0 or negative values). Give its "
            "candidates in `offsets` or `values` instead."
        )
    raw = [value * s if by_factor else value + s for s in steps]
    is_int = isinstance(value, int) and (by_factor or all(isinstance(s, int) for s in steps))
    cands: list[GridValueType]
    if is_int:
        # A positive integer times a positive factor is positive: 0 (which a log-scale
        # suggestion refuses) would only be an artefact of rounding.
        cands = [max(1, int(round(v))) if by_factor else int(round(v)) for v in raw]
    else:
        # Twelve significant digits turn 1e-3 * 0.1 = 1.0000000000000002e-04 into 1e-04; the
        # best value itself stays exact, so the grid point matches the source trial that
        # found it and ranks first by that source's own ranking.
        cands = [float(value) if v == value else float(f"{v:.12g}") for v in raw]
    if not all(math.isfinite(float(c)) for c in raw):
        raise ValueError(
            f"`{arg}[{name!r}]` takes parameter {name!r} from {value!r} past the largest "
            f"float ({cands!r}); use smaller {arg}."
        )
    column = list(dict.fromkeys(cands))
    if len(column) == 1 and len(set(steps)) > 1:
        raise ValueError(
            f"`{arg}[{name!r}]` gives only the value {column[0]!r} for parameter {name!r}"
            f"{' once rounded to integers' if is_int else ''}; use wider {arg}, or list the "
            "candidates in `values`."
        )
    return column
