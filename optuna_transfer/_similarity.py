"""Task similarity: how far a source's promising region agrees with the target's results.

Each source predicts how good any configuration is: its own quantiles (0 best, 1 worst),
smoothed over the space by kernel regression. On the target's finished trials we then ask the
question the target can answer itself: *do the configurations the source rates better actually
rank better on the target?* That is a Kendall-type rank agreement (:func:`rank_agreement`)
between the source's prediction and the target's own ranking, so objective scales and
directions never need to match. :func:`trust` turns it into a weight in [0, 1] that rewards
demonstrated agreement and withdraws weight quickly from a source that disagrees.

This measures the similarity between the source's promising region and the target's with the
target's own evidence, rather than by the overlap of two density estimates (Watanabe et al.,
IJCAI 2023): early on, the target's density is mostly its prior, so an overlap measure reacts
slowly, while rank agreement reacts to the first trials that contradict the source.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr
from scipy.stats import rankdata


# An untested source is assumed moderately related (the user chose it), worth this many trials.
PRIOR_AGREEMENT = 0.5
PRIOR_TRIALS = 2.0
# A source keeps weight only while its agreement is credibly above this bar.
MIN_AGREEMENT = 0.2
# A source is also judged within the target's better half, on at least this many trials.
MIN_JUDGED_TRIALS = 10


def source_trusts(predictions: np.ndarray, losses: np.ndarray) -> list[float]:
    """Each source's trust given its ``predictions`` (n_trials x n_sources, higher = predicted
    better) at the target's finished trials and the target's ``losses`` there (lower better).

    A source must rank the target's trials both overall (a misleading source fails here) and
    within the better half, at least :data:`MIN_JUDGED_TRIALS` (once the search has found the
    promising region, what matters is whether a source still ranks configurations *there*).
    Trust is the smaller of the two.
    """
    n, n_sources = predictions.shape
    k = max(min(MIN_JUDGED_TRIALS, n), n // 2)
    top = np.argsort(losses, kind="stable")[:k]
    overall = trusts(rank_agreements(predictions, losses), n)
    within = trusts(rank_agreements(predictions[top], losses[top]), k)
    return np.minimum(overall, within).tolist()


def rank_agreement(source_scores: np.ndarray, target_losses: np.ndarray) -> float:
    """Kendall-type agreement in [-1, 1] between higher ``source_scores`` and lower losses.

    Each pair counts in proportion to how far apart its two trials rank on the target, so a
    source is judged on the differences that matter (a disaster against a good trial) more than
    on near-ties, and one it got badly wrong is not forgiven on noise among similar trials.
    Pairs tied in either input are ignored; 0 when no pair is informative.
    """
    s = np.asarray(source_scores, dtype=float)
    y = np.asarray(target_losses, dtype=float)
    if s.size < 2:
        return 0.0
    ds = np.sign(s[:, None] - s[None, :])
    dy = np.sign(y[None, :] - y[:, None])  # +1 where the row trial is better (lower loss)
    q = rankdata(y) / len(y)
    weight = np.abs(q[:, None] - q[None, :]) * (ds * dy != 0)
    total = weight.sum()
    if total == 0:
        return 0.0
    return float((ds * dy * weight).sum() / total)


def rank_agreements(source_scores: np.ndarray, target_losses: np.ndarray) -> np.ndarray:
    """:func:`rank_agreement` of each column of ``source_scores`` (n x n_sources), in
    O(n log n) per source rather than over all pairs.

    With ``q`` the target's ranks (any positive multiple of them), a pair's term
    ``sign(dy) |q_i - q_j|`` is just ``q_j - q_i`` (pairs tied on the target have
    ``q_i = q_j``), so the numerator is
    ``sum_i q_i (#{j: s_j > s_i} - #{j: s_j < s_i})`` doubled, and the normaliser is the sum of
    ``|q_i - q_j|`` over all pairs less those tied in the source's score.
    """
    s = np.asarray(source_scores, dtype=float)
    y = np.asarray(target_losses, dtype=float)
    n, n_sources = s.shape
    if n < 2:
        return np.zeros(n_sources)
    # Twice the rank: whole numbers (ties share a half rank), so the sums below are exact
    # (in any order) and a target whose trials all tie gives exactly 0. The ratio is the same
    # as with quantiles.
    q = 2.0 * rankdata(y)
    # Every source's trials sorted by its score, one contiguous row per source (sources x
    # trials); the order within a tie group is settled below, where it matters.
    rows = np.ascontiguousarray(s.T)
    order = np.argsort(rows, axis=1)
    scores = np.take_along_axis(rows, order, axis=1)
    qs = q[order]
    first = np.ones(scores.shape, dtype=bool)
    first[:, 1:] = scores[:, 1:] != scores[:, :-1]
    # Where each trial's tie group (equal score) starts and ends in the sorted order.
    # A trial's term is q (#trials scored above it - #below it). The terms are whole
    # numbers, so the sums are exact in any order: matrix products, where there is no tie
    # (then a trial's position is its count below).
    position = np.arange(n)
    tied = np.zeros(n_sources)
    if first.all():
        num = 2.0 * (qs @ (n - 1 - 2.0 * position))
    else:
        start, end = _tie_groups(first)
        num = 2.0 * np.einsum("ij,ij->i", qs, (n - 1.0 - end) - start)
        with_ties = np.flatnonzero(~first.all(axis=1))
        s0, e0 = start[with_ties], end[with_ties]
        # Within a tie group sorted by q, sum |q_i - q_j| = sum q_(i) (2 pos - (size - 1)).
        # q is a whole number in [2, 2n], so sorting group start * (2n + 1) + q sorts each
        # row's trials by group, then by q, and the groups keep their places.
        stride = 2 * n + 1
        key = np.sort(s0 * stride + qs[with_ties].astype(np.int64), axis=1)
        qs_sorted = (key - s0 * stride).astype(float)
        tied[with_ties] = np.einsum(
            "ij,ij->i", qs_sorted, 2.0 * (position - s0) - (e0 - s0)
        )
    total = 2.0 * (_sum_abs_differences(q) - tied)
    return np.where(total > 0, num / np.where(total > 0, total, 1.0), 0.0)


def _tie_groups(first: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of sorted scores, where each entry's group of equal scores starts and ends,
    given ``first`` (whether an entry starts a new group; every row's first entry does).
    Numbered over the flattened array, which is much faster than accumulating per row."""
    n_rows, n = first.shape
    flat = first.ravel()
    starts = np.flatnonzero(flat)
    group = np.cumsum(flat) - 1
    ends = np.append(starts[1:], flat.size) - 1
    offset = np.arange(0, n_rows * n, n)[:, None]
    return (
        starts[group].reshape(n_rows, n) - offset,
        ends[group].reshape(n_rows, n) - offset,
    )


def _sum_abs_differences(values: np.ndarray) -> float:
    """Sum of ``|v_i - v_j|`` over unordered pairs, in O(n log n)."""
    v = np.sort(values)
    n = len(v)
    return float(np.dot(v, 2.0 * np.arange(n) - (n - 1)))


def trust(agreement: float, n: int) -> float:
    """How much to rely on a source whose predictions agree ``agreement`` on ``n`` trials.

    The agreement is shrunk towards :data:`PRIOR_AGREEMENT` (worth :data:`PRIOR_TRIALS`
    trials). Trust is then the one-sided confidence that the true agreement exceeds
    :data:`MIN_AGREEMENT`, using Kendall's tau standard error under independence,
    ``sqrt(2 (2n + 5) / (9 n (n - 1)))``. So a source must keep *earning* its weight: an
    uninformative one (agreement ~ 0) fades as evidence grows, a misleading one (agreement < 0)
    drops within a few trials, and a related one tends to 1.
    """
    shrunk = (n * agreement + PRIOR_TRIALS * PRIOR_AGREEMENT) / (n + PRIOR_TRIALS)
    m = max(n, 2)
    stderr = math.sqrt(2.0 * (2 * m + 5) / (9.0 * m * (m - 1)))
    return float(ndtr((shrunk - MIN_AGREEMENT) / stderr))


def trusts(agreements: np.ndarray, n: int) -> np.ndarray:
    """:func:`trust` of each of ``agreements``, all judged on ``n`` trials."""
    shrunk = (n * agreements + PRIOR_TRIALS * PRIOR_AGREEMENT) / (n + PRIOR_TRIALS)
    m = max(n, 2)
    stderr = math.sqrt(2.0 * (2 * m + 5) / (9.0 * m * (m - 1)))
    return np.asarray(ndtr((shrunk - MIN_AGREEMENT) / stderr), dtype=float)


def vote(target_score: np.ndarray, source_scores: list[tuple[float, np.ndarray]]) -> np.ndarray:
    """The weighted vote both samplers rank candidates by (higher is better).

    The target votes with weight 1 with the rank of ``target_score`` (its TPE density ratio),
    each source with its weight and the rank of its score (its smoothed ranking). Ranks scaled
    to [0, 1], not raw scores, keep every vote bounded, so a nearly distrusted source cannot
    outvote the target whatever its scale.
    """
    total = _rank01(target_score)
    for weight, score in source_scores:
        if weight > 0:
            total = total + weight * _rank01(score)
    return total


def _rank01(values: np.ndarray) -> np.ndarray:
    """Ranks of ``values`` scaled to [0, 1] (ties share their mean rank)."""
    if len(values) < 2:
        return np.zeros(len(values))
    return np.asarray((rankdata(values) - 1.0) / (len(values) - 1.0))


def vote_weight(trust_value: float) -> float:
    """A source's weight in a decision: its trust once that exceeds a coin flip's, else 0.

    A source the target does not confirm (trust <= 1/2) has no say at all, so a misleading
    source stops steering the search as soon as the first contradicting trials arrive, rather
    than fading out over many trials.
    """
    return trust_value if trust_value > 0.5 else 0.0
