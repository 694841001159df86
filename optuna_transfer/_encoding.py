"""Alignment of parameter values onto a target distribution.

Numeric parameters live in a "unit" coordinate u in [0, 1]: linear or log scale as the target
distribution says, widened by half a step on each side for discrete ones (as Optuna's TPE
does), so every grid value owns an equal-width cell. Categorical parameters are choice indices.

Alignment rules (documented in the README, tested in ``tests/test_sources.py``):

* A source parameter the target does not have is ignored.
* A target parameter the source does not have is *missing* for that source: its densities are
  uniform in that dimension, so the target's own trials decide it.
* Numeric values are compared in the target's coordinates: an ``int`` source value can inform a
  ``float`` target and vice versa, and a log/linear change needs nothing special because values
  are taken in their external form. A value outside the target's ``[low, high]`` is *missing*
  for density estimation (it says nothing about the new range) and *clipped* to the range when
  a zero-shot configuration is projected into the target space.
* A categorical value is matched against the target's choices; a choice that no longer exists
  is *missing*. A numeric source value can fill a categorical target only if it equals a choice.
* Conditional parameters are simply missing in the trials that did not suggest them.
"""

from __future__ import annotations

from collections.abc import Sequence
import enum
import math
import sys
from typing import Any
from typing import Final

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.trial import FrozenTrial


def numeric_bounds(dist: FloatDistribution | IntDistribution) -> tuple[float, float]:
    low, high = float(dist.low), float(dist.high)
    if dist.step is not None:
        low -= dist.step / 2
        high += dist.step / 2
    if dist.log:
        # log of a widened int range may start at 0.5: still positive.
        return math.log(max(low, 1e-300)), math.log(high)
    return low, high


def n_values(dist: BaseDistribution) -> int | None:
    """How many values ``dist`` can take; None for a continuous range."""
    if isinstance(dist, CategoricalDistribution):
        return len(dist.choices)
    if isinstance(dist, IntDistribution):
        return (dist.high - dist.low) // dist.step + 1
    if isinstance(dist, FloatDistribution) and dist.step is not None:
        return int(round((dist.high - dist.low) / dist.step)) + 1
    return None


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def choice_index(dist: CategoricalDistribution, value: Any) -> int | None:
    """Index of ``value`` among the target's choices, or None. ``True`` never matches ``1``."""
    for i, c in enumerate(dist.choices):
        if type(c) is type(value) and c == value:
            return i
    for i, c in enumerate(dist.choices):
        if is_number(c) and is_number(value) and float(c) == float(value):  # type: ignore[arg-type]
            return i
    return None


def conflated_choices(dist: CategoricalDistribution) -> list[tuple[Any, Any]]:
    """(stored, lost) pairs of ``dist``'s choices: Optuna stores a choice as the first one equal
    to it (its internal representation is the index ``choices.index`` finds), so ``1`` after
    ``True`` is stored as ``True`` and can never be evaluated."""
    pairs = []
    for i, choice in enumerate(dist.choices):
        j = int(dist.to_internal_repr(choice))
        if j != i:
            pairs.append((dist.choices[j], choice))
    return pairs


def encode(dist: BaseDistribution, value: Any) -> float:
    """Unit coordinate (or choice index) of ``value`` in ``dist``; NaN when it does not fit."""
    kind = type(dist)
    # Exact types first: isinstance on Optuna's abstract distribution classes is slow, and
    # this runs for every parameter of every target trial, every trial.
    if kind is FloatDistribution or kind is IntDistribution:
        return _encode_number(dist, value)  # type: ignore[arg-type]
    if isinstance(dist, CategoricalDistribution):
        idx = choice_index(dist, value)
        return math.nan if idx is None else float(idx)
    if isinstance(dist, (FloatDistribution, IntDistribution)):
        return _encode_number(dist, value)
    return math.nan


def _encode_number(dist: FloatDistribution | IntDistribution, value: Any) -> float:
    kind = type(value)
    if not (kind is float or kind is int or is_number(value)):
        return math.nan
    x = float(value)
    if not math.isfinite(x) or (dist.log and x <= 0):
        return math.nan
    scaled_low, scaled_high, tol, low, high = _constants(dist)
    # Outside [low, high] (up to rounding noise, see _tolerance) says nothing of this range.
    x = math.log(x) if dist.log else x
    if not scaled_low - tol <= x <= scaled_high + tol:
        return math.nan
    return min(max((x - low) / (high - low), 0.0), 1.0) if high > low else 0.5


# id(dist) -> (dist, its _constants): the distribution is held, so its id is not reused.
_CONSTANTS: dict[int, tuple[BaseDistribution, tuple[float, float, float, float, float]]] = {}
_MAX_CONSTANTS = 1024


def _constants(
    dist: FloatDistribution | IntDistribution,
) -> tuple[float, float, float, float, float]:
    """What encoding a number needs from ``dist`` alone: its bounds in the encoded (linear
    or log) scale, their tolerance, and :func:`numeric_bounds`."""
    entry = _CONSTANTS.get(id(dist))
    if entry is not None and entry[0] is dist:
        return entry[1]
    scale = math.log if dist.log else float
    low, high = scale(dist.low), scale(dist.high)
    constants = (low, high, _tolerance(low, high), *numeric_bounds(dist))
    if len(_CONSTANTS) >= _MAX_CONSTANTS:
        _CONSTANTS.clear()
    _CONSTANTS[id(dist)] = (dist, constants)
    return constants


def _tolerance(low: float, high: float) -> float:
    """How far outside ``[low, high]`` (in the encoded scale) a value still counts as inside.

    Relative to the range, so a range of any width, 1e-15..1e-14 included, keeps its outside
    values missing; the second term covers rounding at the bounds' own magnitude (a range
    narrow relative to it, or a single point).
    """
    return 1e-12 * (high - low) + 8 * sys.float_info.epsilon * max(abs(low), abs(high))


def decode(dist: BaseDistribution, u: float) -> Any:
    """External value of unit coordinate (or index) ``u``, snapped onto ``dist``'s grid."""
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[int(min(max(round(u), 0), len(dist.choices) - 1))]
    assert isinstance(dist, (FloatDistribution, IntDistribution))
    low, high = _constants(dist)[3:]
    x = low + min(max(u, 0.0), 1.0) * (high - low)
    if dist.log:
        x = math.exp(x)
    return snap(dist, x)


def snap(dist: FloatDistribution | IntDistribution, x: float) -> Any:
    """Nearest valid value of ``dist`` to the number ``x`` (clipped into the range)."""
    x = min(max(x, dist.low), dist.high)
    if dist.step is not None:
        n = round((x - dist.low) / dist.step)
        x = min(dist.low + n * dist.step, dist.high)
    if isinstance(dist, IntDistribution):
        return int(round(x))
    return float(x)


class _Unfit(enum.Enum):
    UNFIT = enum.auto()


# What :func:`project` returns for a value the distribution cannot take. Not None: ``None`` is
# a valid categorical choice (``max_depth=None``).
UNFIT: Final = _Unfit.UNFIT


def project(dist: BaseDistribution, value: Any) -> Any:
    """``value`` made valid for ``dist`` (numbers clipped/snapped), or :data:`UNFIT`."""
    if isinstance(dist, CategoricalDistribution):
        idx = choice_index(dist, value)
        return UNFIT if idx is None else dist.choices[idx]
    if isinstance(dist, (FloatDistribution, IntDistribution)) and is_number(value):
        x = float(value)
        if not math.isfinite(x):
            return UNFIT
        return snap(dist, x)
    return UNFIT


def project_config(config: dict[str, Any], space: dict[str, BaseDistribution]) -> dict[str, Any]:
    """``config`` as ``space`` would run it: each value projected, and the parameters that
    ``space`` lacks or cannot take left out."""
    out = {}
    for name, dist in space.items():
        if name in config:
            value = project(dist, config[name])
            if value is not UNFIT:
                out[name] = value
    return out


def aligned_matrix(
    trials: Sequence[FrozenTrial], search_space: dict[str, BaseDistribution]
) -> np.ndarray:
    """(n_trials x n_params) matrix of unit coordinates; NaN where a trial gives no value."""
    out = np.full((len(trials), len(search_space)), np.nan)
    values: dict[str, list[Any]] = {name: [] for name in search_space}
    # Values first, rows only for a parameter some trials lack: a thousand sources of a
    # hundred trials are aligned when the sampler starts.
    for t in trials:
        for name, value in t.params.items():
            if name in values:
                values[name].append(value)
    for j, (name, dist) in enumerate(search_space.items()):
        if len(values[name]) == len(trials):
            out[:, j] = encode_many(dist, values[name])
        elif values[name]:
            rows = [i for i, t in enumerate(trials) if name in t.params]
            out[rows, j] = encode_many(dist, values[name])
    return out


def encode_many(dist: BaseDistribution, values: Sequence[Any]) -> np.ndarray:
    """:func:`encode` of each of ``values``, equal to it, in a few array operations (a source
    of thousands of trials is encoded once per search space)."""
    if isinstance(dist, CategoricalDistribution):
        # Choices repeat: encode each distinct value once.
        memo: dict[tuple[type, Any], float] = {}
        out = np.empty(len(values))
        for i, v in enumerate(values):
            try:
                key = (type(v), v)
                out[i] = memo[key] if key in memo else memo.setdefault(key, encode(dist, v))
            except TypeError:  # unhashable
                out[i] = encode(dist, v)
        return out
    if not isinstance(dist, (FloatDistribution, IntDistribution)):
        return np.full(len(values), np.nan)
    if set(map(type, values)) <= {float, int}:  # the usual case, converted in one call
        x = np.array(values, dtype=float)
    else:
        x = np.array([float(v) if is_number(v) else math.nan for v in values], dtype=float)
    ok = np.isfinite(x)
    if dist.log:
        ok &= x > 0
        # math.log, as encode uses, so that both give the same bits.
        x[ok] = list(map(math.log, x[ok]))
        low_s, high_s = math.log(dist.low), math.log(dist.high)
    else:
        low_s, high_s = float(dist.low), float(dist.high)
    tol = _tolerance(low_s, high_s)
    ok &= (low_s - tol <= x) & (x <= high_s + tol)
    low, high = numeric_bounds(dist)
    out = np.full(len(values), np.nan)
    if high > low:
        out[ok] = np.minimum(np.maximum((x[ok] - low) / (high - low), 0.0), 1.0)
    else:
        out[ok] = 0.5
    return out
