"""Local search around the target's best trials, shared by both samplers.

TPE alone refines slowly early on: with few trials its good density is a broad kernel around
the incumbent, so most candidates land far from it. Both samplers therefore take *local steps*
while they pay off: configurations that differ from one of the target's best trials in one
parameter, ranked by the same vote as every other candidate (the target's model plus its
trusted sources). Once the incumbent has not improved for :data:`LOCAL_PATIENCE` finished
trials (a plateau, or a local optimum), the samplers go back to their global ranking until a
trial improves on it, so a local optimum costs a bounded number of trials.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution

from optuna_transfer._sources import decode
from optuna_transfer._sources import encode
from optuna_transfer._sources import snap


# Local steps continue while the incumbent is among the last LOCAL_PATIENCE finished trials.
# Measured on the hpolib and misleading suites (20 seeds): 8 beat 4 at every budget from 10
# trials on; 12 was no better with related sources and stalled on a plateau of the misleading
# suite (naval, 25 trials: 0.36 vs 0.02 normalised regret).
LOCAL_PATIENCE = 8
# Local steps start from the best of the target's top trials that still has unseen neighbours.
LOCAL_STARTS = 3
# Numeric moves, as fractions of the range in the sampler's scale (log scale for log params).
_STEPS = (-0.25, -0.1, 0.1, 0.25)


def incumbent_is_recent(losses: np.ndarray, numbers: np.ndarray) -> bool:
    """Whether the best finished trial (finite ``losses``, lower better) is among the last
    :data:`LOCAL_PATIENCE` finished trials, ordered by trial ``numbers``."""
    finished = np.isfinite(losses)
    if not finished.any():
        return False
    incumbent = numbers[finished][int(np.argmin(losses[finished]))]
    return int(np.sum(numbers[finished] > incumbent)) < LOCAL_PATIENCE


def neighbours(u: np.ndarray, space: dict[str, BaseDistribution]) -> np.ndarray:
    """Rows that differ from the unit-coordinate row ``u`` in one parameter of ``space``.

    A categorical takes each of its other choices; a number moves down and up by 0.1 and 0.25
    of its range, and a discrete number by at least one grid step (a shorter move would decode
    to the same value). NaN coordinates (a parameter the trial did not have) stay as they are.
    """
    rows = []
    for j, dist in enumerate(space.values()):
        if np.isnan(u[j]):
            continue
        if isinstance(dist, CategoricalDistribution):
            coords = [float(c) for c in range(len(dist.choices)) if c != int(round(u[j]))]
        else:
            assert isinstance(dist, (FloatDistribution, IntDistribution))
            coords = _numeric_moves(dist, float(u[j]))
        for c in coords:
            row = u.copy()
            row[j] = c
            rows.append(row)
    return np.array(rows).reshape(-1, len(u))


def _numeric_moves(dist: FloatDistribution | IntDistribution, u: float) -> list[float]:
    current = decode(dist, u)
    grid_step = 1 if isinstance(dist, IntDistribution) else dist.step
    out = []
    for step in _STEPS:
        w = float(np.clip(u + step, 0.0, 1.0))
        value = decode(dist, w)
        if value == current and grid_step is not None:
            value = snap(dist, current + np.sign(step) * grid_step)
            w = encode(dist, value)
        if value != current:
            out.append(w)
    return out


def grid_neighbours(
    index: Sequence[int], sizes: Sequence[int], value_orders: Sequence[np.ndarray | None]
) -> np.ndarray:
    """Flat ids of the grid points one move from the point with per-column value ``index``.

    ``value_orders[j]`` lists column ``j``'s value indices in ascending value order for a
    numeric column (a move goes to the next smaller or larger value, however the user ordered
    the list), or is None for an unordered column (a move goes to any other value).
    """
    ids = []
    for j, (i, size) in enumerate(zip(index, sizes)):
        order = value_orders[j]
        if order is None:
            others = [k for k in range(size) if k != i]
        else:
            pos = int(np.flatnonzero(order == i)[0])
            others = [int(order[p]) for p in (pos - 1, pos + 1) if 0 <= p < size]
        for k in others:
            moved = list(index)
            moved[j] = k
            ids.append(int(np.ravel_multi_index(tuple(moved), tuple(sizes))))
    return np.array(ids, dtype=np.int64)
