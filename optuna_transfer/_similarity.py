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
    # The trials best first: the better ones are the first k, and each source's order of
    # them (by its score, ties best first) is its order of all trials restricted to them.
    top = np.argsort(losses, kind="stable")
    scores, order = _sorted_rows(predictions[top])
    in_top = order < k
    overall = trusts(_sorted_agreements(scores, order, losses[top]), n)
    within = trusts(
        _sorted_agreements(
            scores[in_top].reshape(n_sources, k),
            order[in_top].reshape(n_sources, k),
            losses[top[:k]],
        ),
        k,
    )
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
    by_loss = np.argsort(y, kind="stable")
    scores, order = _sorted_rows(s[by_loss])
    return _sorted_agreements(scores, order, y[by_loss])


def _sorted_rows(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each column of ``s`` (trials x sources) sorted stably, one contiguous row per source:
    the scores and the trials' order. With the trials in order of loss, each tie group of
    scores is then in order of loss too."""
    rows = np.ascontiguousarray(s.T)
    order = np.argsort(rows, axis=1, kind="stable")
    return np.take_along_axis(rows, order, axis=1), order


def _sorted_agreements(scores: np.ndarray, order: np.ndarray, y: np.ndarray) -> np.ndarray:
    """:func:`rank_agreements` of trials in order of loss ``y``, given each source's scores
    sorted stably and their ``order`` (from :func:`_sorted_rows`)."""
    n_sources, n = scores.shape
    if n < 2:
        return np.zeros(n_sources)
    # Twice the rank: whole numbers (ties share a half rank), so the sums below are exact
    # (in any order) and a target whose trials all tie gives exactly 0. The ratio is the same
    # as with quantiles.
    q = 2.0 * average_ranks(y)
    qs = q[order].ravel()
    first = np.ones(scores.shape, dtype=bool)
    first[:, 1:] = scores[:, 1:] != scores[:, :-1]
    # Tie groups (equal scores) over the flattened rows; every row starts one. A group at
    # positions start..end of its row; its trials are in order of q.
    flat_first = first.ravel()
    starts = np.flatnonzero(flat_first)
    sizes = np.diff(np.append(starts, flat_first.size))
    start = starts % n
    row = starts // n
    # A trial's term is q (#trials scored above it - #below it), shared by its group: per
    # group, (n - 1 - end - start) times its q's sum. Within a group sorted by q,
    # sum |q_i - q_j| = sum q_(k) (2 k - (size - 1)). All terms are whole numbers, so the
    # sums are exact in any order.
    group_q = np.add.reduceat(qs, starts)
    num = 2.0 * np.bincount(row, (n - 2.0 * start - sizes) * group_q, n_sources)
    group = np.cumsum(flat_first) - 1
    k = np.arange(qs.size) - starts[group]
    weight = 2.0 * k - (sizes[group] - 1)
    tied = np.einsum("ij,ij->i", qs.reshape(n_sources, n), weight.reshape(n_sources, n))
    total = 2.0 * (_sum_abs_differences(q) - tied)
    return np.where(total > 0, num / np.where(total > 0, total, 1.0), 0.0)


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
    return (average_ranks(values) - 1.0) / (len(values) - 1.0)


def vote_weight(trust_value: float) -> float:
    """A source's weight in a decision: its trust once that exceeds a coin flip's, else 0.

    A source the target does not confirm (trust <= 1/2) has no say at all, so a misleading
    source stops steering the search as soon as the first contradicting trials arrive, rather
    than fading out over many trials.
    """
    return trust_value if trust_value > 0.5 else 0.0


def average_ranks(values: np.ndarray) -> np.ndarray:
    """``scipy.stats.rankdata(values)`` (1-based, ties share their mean rank), with equal
    values, without its per-call overhead: it runs several times per trial."""
    v = np.asarray(values, dtype=float).ravel()
    if np.isnan(v).any():
        return np.asarray(rankdata(v), dtype=float)  # scipy's NaN policy
    # Any sort will do: equal values get equal ranks whichever order they come in, and an
    # unstable sort is several times faster on large arrays.
    order = np.argsort(v)
    ordered = v[order]
    starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    counts = np.diff(np.append(starts, len(v)))
    out = np.empty(len(v))
    # Whole and half numbers: exact, as scipy's.
    out[order] = np.repeat(starts + 1 + (counts - 1) / 2, counts)
    return out
