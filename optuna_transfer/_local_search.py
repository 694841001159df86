"""Local search around the target's best trials, shared by both samplers.

TPE alone refines slowly early on: with few trials its good density is a broad kernel around
the incumbent, so most candidates land far from it. Both samplers therefore take *local steps*
while they pay off: configurations that differ from one of the target's best trials in one
parameter, ranked by the same vote as every other candidate (the target's model plus its
trusted sources). TransferTPE's numeric moves follow a compass search (Kolda, Lewis and
Torczon, SIAM Review 45(3), 2003), one parameter at a time: a coarse step first, halved once
both directions have been tried; the grid sampler moves to the next grid value. When the
space has several continuous parameters (unstepped floats), TransferTPE moves them together
instead, along random directions (:func:`joint_moves`): one parameter at a time crawls along a
valley that is not aligned with the axes, and a compass over many parameters spends its
patience on coarse steps before any step halves. Once the
incumbent has not improved for :data:`LOCAL_PATIENCE` finished trials (a plateau, or a local
optimum), the samplers go back to their global ranking until a trial improves on it, so a local
optimum costs a bounded number of trials.

Where the sources' trials show that the objective tells nearby configurations apart (no ties
between configurations, :func:`resolves_short_moves`), TransferTPE's joint moves behave more
like an evolution strategy on a smooth function: they start from the length of the move that
made the incumbent, never shorter than the moves were then, and persist longer
(:func:`joint_first_step`, :func:`local_patience`), and one more candidate joins each local
step: the incumbent with its continuous parameters at the mean of the trusted sources' best
configurations that the target confirmed (:func:`consensus_move`,
:func:`confirmed_by_target`). On a table, where a short move often returns the same value,
they keep starting far.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Hashable
from collections.abc import Iterable
from collections.abc import Sequence

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution

from optuna_transfer._encoding import decode
from optuna_transfer._encoding import encode
from optuna_transfer._encoding import snap


# Local steps continue while the incumbent is among the last LOCAL_PATIENCE finished trials.
# Measured on the hpolib and misleading suites (20 seeds): 8 beat 4 at every budget from 10
# trials on; 12 was no better with related sources and stalled on a plateau of the misleading
# suite (naval, 25 trials: 0.36 vs 0.02 normalised regret).
LOCAL_PATIENCE = 8
# Local steps start from the best of the target's top trials that still has unseen neighbours.
LOCAL_STARTS = 3
# A numeric move's first step, as a fraction of the range in the sampler's scale (log scale for
# log params), and how many times it may halve. Against fixed moves of 0.1 and 0.25 of the range,
# measured with TransferTPE on the hpolib suite (seeds 0-39): %-better 0.81 vs 0.84 at 10 trials
# and 0.17 vs 0.20 at 25; short moves first spend trials on changes too small to matter (on a
# table, that decode to the same configuration). The cost is on smooth objectives whose optimum
# is close to the sources' (benchmarks/synthetic.py): mean regret 0.035 vs 0.026 at 50 trials.
FIRST_STEP = 0.25
N_STEP_LEVELS = 4
# Joint moves apply from this many continuous parameters on: with one, a random direction is
# down or up, which the compass covers.
MIN_JOINT_PARAMS = 2
# A joint move's length, as a fraction of the unit cube's side, when the incumbent is new; it
# halves with every JOINT_HALVING_TRIALS finished trials that have not beaten the incumbent, so
# the first trials try far moves (on a table a short one changes little) and the next ones ever
# shorter ones (on a smooth objective the optimum is near). Chosen on the continuous and
# hpobench suites (tuning seeds 0-15) over lengths 0.25, 0.5 and 1.0 and halving every 2, 3 or
# 4 trials: the smooth suite gained most with 0.25 or 0.5, and the OpenML tables lost unless
# the moves started far and halved fast.
JOINT_FIRST_STEP = 0.5
JOINT_HALVING_TRIALS = 2
# On an objective that resolves short moves (:func:`resolves_short_moves`), the moves after a
# success start at this multiple of the move that made it (at most JOINT_FIRST_STEP), and never
# shorter than the moves were when it was made, so the step follows the distance that paid
# off, as an evolution strategy's grows after a success; and the patience grows by one trial
# per continuous parameter, as an evolution strategy needs trials in proportion to the
# dimension at each step length. Neither applies where the objective ties: there a short move
# often returns the incumbent's value, and far moves that halve fast did better (chosen on the
# continuous and hpobench suites, tuning seeds 0-15).
JOINT_GROWTH = 2.0
# A consensus move needs the best configurations of at least this many trusted sources: with
# one, there is nothing to average, and its best configuration was the first pick.
MIN_CONSENSUS_SOURCES = 2
# The sources resolve short moves unless more than this fraction of their trials share their
# value with a trial of another configuration: a table (or a metric over few validation
# samples) maps nearby configurations to one value, a smooth objective never does.
MAX_TIED_FRACTION = 0.1


def incumbent_is_recent(
    losses: np.ndarray, numbers: np.ndarray, patience: int = LOCAL_PATIENCE
) -> bool:
    """Whether the best finished trial (finite ``losses``, lower better) is among the last
    ``patience`` finished trials, ordered by trial ``numbers``."""
    finished = np.isfinite(losses)
    if not finished.any():
        return False
    incumbent = numbers[finished][int(np.argmin(losses[finished]))]
    return int(np.sum(numbers[finished] > incumbent)) < patience


def local_patience(space: dict[str, BaseDistribution], fine: bool) -> int:
    """Finished trials without improvement before local steps stop: :data:`LOCAL_PATIENCE`,
    plus one per jointly moved parameter where the objective resolves short moves (``fine``)."""
    return LOCAL_PATIENCE + (len(joint_columns(space)) if fine else 0)


def tied_fraction(values: np.ndarray, config: Callable[[int], Hashable]) -> float:
    """The fraction of trials (row ``i`` of ``values``, n x objectives, and ``config(i)``)
    whose value another trial with a different config also has. Configs are only built for
    trials whose value repeats: on a smooth objective that is none."""
    if len(values) == 0:
        return 0.0
    # One objective: a plain sort, much cheaper than unique rows (a thousand sources).
    rows = values[:, 0] if values.shape[1] == 1 else values
    _, inverse, counts = np.unique(
        rows, axis=None if rows.ndim == 1 else 0, return_inverse=True, return_counts=True
    )
    if len(counts) == len(values):
        return 0.0
    groups = np.split(np.argsort(inverse.ravel(), kind="stable"), np.cumsum(counts)[:-1])
    n_tied = sum(
        len(group)
        for group in groups
        if len(group) > 1 and len({config(int(k)) for k in group}) > 1
    )
    return n_tied / len(values)


def resolves_short_moves(studies: Iterable[tuple[np.ndarray, Callable[[int], Hashable]]]) -> bool:
    """Whether an objective tells nearby configurations apart, judged on finished studies of
    it (per study, its trials' values and their configs, as :func:`tied_fraction`): at most
    :data:`MAX_TIED_FRACTION` of their trials tie with another configuration, ties counted
    within each study."""
    n_tied, n = 0.0, 0
    for values, config in studies:
        n_tied += tied_fraction(values, config) * len(values)
        n += len(values)
    return n > 0 and n_tied <= MAX_TIED_FRACTION * n


def joint_first_step(
    x: np.ndarray, losses: np.ndarray, numbers: np.ndarray, i: int, columns: Sequence[int]
) -> float:
    """The first length of joint moves from row ``i`` of ``x`` on an objective that resolves
    short moves: :data:`JOINT_GROWTH` times its distance, over ``columns``, from the best
    finished trial before it (the move that made it), at most :data:`JOINT_FIRST_STEP`; that
    maximum where no finished trial came before it.

    Never shorter than the joint moves were when it was made: the vote picks among several
    candidate moves, and where it prefers the shorter ones (its densities peak at the
    incumbent), distances alone would shrink with every success and stall a search whose
    optimum lies far away. That length is replayed over the finished trials up to row ``i`` in
    trial order, without state: each new best trial sets the first length as above, and the
    length halves as in :func:`joint_moves` with the trials that did not beat it."""
    cols = list(columns)
    finished = np.flatnonzero(np.isfinite(losses) & (numbers <= numbers[i]))
    finished = finished[np.argsort(numbers[finished], kind="stable")]
    best = -1
    first = JOINT_FIRST_STEP
    n_failed = 0
    for t in finished.tolist():
        if best >= 0 and t != i and losses[t] >= losses[best]:
            n_failed += 1
            continue
        if best >= 0:
            diff = x[t, cols] - x[best, cols]
            diff = diff[~np.isnan(diff)]
            distance = float(np.linalg.norm(diff)) if len(diff) else JOINT_FIRST_STEP
            length = _joint_length(first, n_failed)
            first = min(JOINT_FIRST_STEP, max(JOINT_GROWTH * distance, length))
        if t == i:
            break
        best, n_failed = t, 0
    return first


def _joint_length(first_step: float, n_failed: int) -> float:
    """The joint moves' expected length: ``first_step``, halved with every
    :data:`JOINT_HALVING_TRIALS` of the ``n_failed`` finished trials since the incumbent."""
    return first_step * 2.0 ** (-n_failed / JOINT_HALVING_TRIALS)


def consensus_move(
    u: np.ndarray,
    bests: Sequence[np.ndarray | None],
    weights: Sequence[float],
    columns: Sequence[int],
) -> np.ndarray | None:
    """The unit-coordinate row ``u`` with its ``columns`` moved to the ``weights``-weighted mean
    of the sources' best configurations ``bests`` there; the other parameters stay as ``u`` has
    them. Sources without a best configuration, or lacking one of ``columns`` (NaN), do not
    count; None with fewer than :data:`MIN_CONSENSUS_SOURCES` left, no ``columns`` or no weight.

    On a smooth objective each related source's optimum lies off the target's by a shift of its
    own; where the shifts are independent, their mean lies closer than any one of them, whose
    best configurations are the zero-shot picks the target has already evaluated.
    """
    cols = list(columns)
    usable = [
        (w, b[cols]) for w, b in zip(weights, bests)
        if b is not None and w > 0 and not np.isnan(b[cols]).any()
    ]
    if not cols or len(usable) < MIN_CONSENSUS_SOURCES:
        return None
    w = np.array([w for w, _ in usable])
    points = np.array([b for _, b in usable])
    row = u.copy()
    row[cols] = (w[:, None] * points).sum(axis=0) / w.sum()
    return row


def confirmed_by_target(
    rows: Sequence[np.ndarray | None], x: np.ndarray, losses: np.ndarray
) -> list[bool]:
    """For each of ``rows`` (a source's best configuration in unit coordinates, or None),
    whether the target evaluated it (a row of ``x``) and it finished in the target's better
    half: a finite loss at most the median of ``losses``' finite values.

    A source's trust says how well it ranks the target's trials, not where its optimum lies
    from the target's: sources of the same shape with optima elsewhere rank the target well
    and keep their trust. Only a best configuration the target found good says that this
    source's optimum is near.
    """
    finished = np.isfinite(losses)
    present = [i for i, row in enumerate(rows) if row is not None]
    out = [False] * len(rows)
    if not finished.any() or not present:
        return out
    done = losses[finished]
    median = float(np.median(done))
    hit = first_match(np.array([rows[i] for i in present]), x[finished])
    for i, h in zip(present, hit):
        out[i] = bool(h >= 0 and done[h] <= median)
    return out


def neighbours(
    u: np.ndarray,
    space: dict[str, BaseDistribution],
    evaluated: np.ndarray,
    fixed: Collection[int] = (),
) -> np.ndarray:
    """Rows that differ from the unit-coordinate row ``u`` in one parameter of ``space`` and
    are not rows of ``evaluated``; the parameters whose column is in ``fixed`` do not move.

    A categorical takes each of its other choices. A number moves down and up by a step that
    starts at :data:`FIRST_STEP` of its range and halves, for that parameter alone, once both
    moves at the current step have been evaluated (up to :data:`N_STEP_LEVELS` steps): a compass
    search, one parameter at a time. A discrete number moves by at least one grid step (a
    shorter move would decode to the same value). NaN coordinates (a parameter the trial did not
    have) stay as they are. Numeric rows hold the coordinate of the value they decode to, so
    they compare equal to an evaluated trial with that value.
    """
    rows: list[np.ndarray] = []
    for j, dist in enumerate(space.values()):
        if np.isnan(u[j]) or j in fixed:
            continue
        if isinstance(dist, CategoricalDistribution):
            coords = [float(c) for c in range(len(dist.choices)) if c != int(round(u[j]))]
        else:
            assert isinstance(dist, (FloatDistribution, IntDistribution))
            coords = []
            for level in range(N_STEP_LEVELS):
                step = FIRST_STEP / 2**level
                moved = _moved_rows(u, j, _numeric_moves(dist, float(u[j]), step))
                fresh = [float(r[j]) for r in moved[~is_seen(moved, evaluated)]]
                if fresh:
                    coords = fresh
                    break
        rows.extend(_moved_rows(u, j, coords))
    out = np.array(rows).reshape(-1, len(u))
    return out[~is_seen(out, evaluated)]


def joint_columns(space: dict[str, BaseDistribution]) -> list[int]:
    """Columns of the continuous (unstepped float) parameters of ``space`` when there are at
    least :data:`MIN_JOINT_PARAMS` of them, else none."""
    cols = [
        j
        for j, dist in enumerate(space.values())
        if isinstance(dist, FloatDistribution) and dist.step is None
    ]
    return cols if len(cols) >= MIN_JOINT_PARAMS else []


def joint_moves(
    u: np.ndarray,
    columns: Sequence[int],
    n_failed: int,
    rng: np.random.RandomState,
    first_step: float = JOINT_FIRST_STEP,
) -> np.ndarray:
    """Two rows per column of ``columns`` (the count the compass would offer) that move all of
    them at once from the unit-coordinate row ``u``, by Gaussian steps clipped to [0, 1].

    An adaptive step size random search (Schumer and Steiglitz, IEEE Trans. Automatic Control
    13(3), 1968) without its state: the expected length is ``first_step`` and halves with every
    :data:`JOINT_HALVING_TRIALS` of ``n_failed``, the finished trials since the incumbent ``u``;
    a better trial makes a new incumbent and so the first length again (see
    :func:`joint_first_step`). Columns ``u`` lacks (NaN) stay as they are.
    """
    cols = np.array([j for j in columns if not np.isnan(u[j])], dtype=int)
    if len(cols) == 0:
        return np.empty((0, len(u)))
    length = _joint_length(first_step, n_failed)
    rows = np.repeat(u[None, :], 2 * len(cols), axis=0)
    steps = rng.standard_normal((len(rows), len(cols))) * length / np.sqrt(len(cols))
    rows[:, cols] = np.clip(rows[:, cols] + steps, 0.0, 1.0)
    return rows


def is_seen(rows: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Whether each row of ``rows`` equals a row of ``seen``; NaN (a parameter the trial did not
    have) equals NaN."""
    return first_match(rows, seen) >= 0


def first_match(rows: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """For each row of ``rows``, the index of the first row of ``seen`` equal to it (NaN equals
    NaN), or -1 where there is none."""
    if len(seen) == 0 or len(rows) == 0:
        return np.full(len(rows), -1, dtype=int)
    a, b = rows[:, None, :], seen[None, :, :]
    close = (np.abs(a - b) <= 1e-9) | (np.isnan(a) & np.isnan(b))
    equal = np.all(close, axis=2)
    return np.where(equal.any(axis=1), equal.argmax(axis=1), -1)


def _moved_rows(u: np.ndarray, j: int, coords: Sequence[float]) -> np.ndarray:
    rows = np.repeat(u[None, :], len(coords), axis=0)
    rows[:, j] = coords
    return rows


def _numeric_moves(
    dist: FloatDistribution | IntDistribution, u: float, step: float
) -> list[float]:
    current = decode(dist, u)
    grid_step = 1 if isinstance(dist, IntDistribution) else dist.step
    out = []
    for signed in (-step, step):
        value = decode(dist, float(np.clip(u + signed, 0.0, 1.0)))
        if value == current and grid_step is not None:
            value = snap(dist, current + np.sign(signed) * grid_step)
        if value != current:
            out.append(encode(dist, value))
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
