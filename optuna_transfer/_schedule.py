"""The order of a warm-started search, shared by both samplers.

1. **Zero-shot portfolio**: the first trials evaluate configurations the sources rate best,
   chosen greedily so that every source sees one of its good ones early
   (:func:`agreed_portfolio`): where the sources agree the portfolio is their joint favourites,
   where they disagree it hedges across them. :func:`round_robin_portfolio` (the best of each
   source in turn) is what a single source gets.
2. **Probe**: one random trial after the portfolio. Every portfolio configuration comes from the
   sources' good regions; without a point from elsewhere a misleading source cannot be told
   apart from a related one.
3. **Start-up**: while the target has few trials, a trial is random with a probability that
   falls as the best source's trust rises (:func:`startup_explore_probability`).
4. The sampler's model after that; a worker that lost a collision with another worker over its
   pick takes one of the next best instead (:func:`one_of_best`).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Hashable
from collections.abc import Sequence

import numpy as np
from optuna.trial import FrozenTrial

from optuna_transfer._sources import SourceTask


# Portfolio size by default: one configuration per source, within these bounds.
MIN_DEFAULT_PORTFOLIO = 2
MAX_DEFAULT_PORTFOLIO = 5
# Candidates of the agreed portfolio: each source's best few trials, at most MAX_POOL in all
# (with many sources, the best of each).
POOL_DEPTH = 10
MAX_POOL = 200
# Above this many scores, one_of_best partitions before it sorts.
_PARTITION_ABOVE = 4096


def check_n_zero_shot(n_zero_shot: int | None) -> None:
    if n_zero_shot is not None and n_zero_shot < 0:
        raise ValueError(f"`n_zero_shot` must be >= 0 or None, got {n_zero_shot}.")


def portfolio_size(n_zero_shot: int | None, n_sources: int) -> int:
    """``n_zero_shot``, or by default one per source within the default bounds."""
    if n_zero_shot is not None:
        return n_zero_shot
    return min(MAX_DEFAULT_PORTFOLIO, max(MIN_DEFAULT_PORTFOLIO, n_sources))


def round_robin_portfolio(
    tasks: Sequence[SourceTask],
    size: int,
    key: Callable[[FrozenTrial], Hashable | None],
    max_depth: int | None = None,
) -> list[tuple[int, FrozenTrial]]:
    """Up to ``size`` (source index, trial) pairs: the best trial of each source in turn, then
    the second best, ... (down to the ``max_depth``-th best); a trial whose ``key`` is None (it
    does not fit the target) or repeats an earlier one's is skipped."""
    portfolio: list[tuple[int, FrozenTrial]] = []
    seen: set[Hashable] = set()
    depth = 0
    deepest = max((t.n_complete for t in tasks), default=0)
    if max_depth is not None:
        deepest = min(deepest, max_depth)
    while len(portfolio) < size and depth < deepest:
        for i, task in enumerate(tasks):
            if depth >= task.n_complete or len(portfolio) >= size:
                continue
            best = task.best_trials[depth]
            k = key(best)
            if k is not None and k not in seen:
                seen.add(k)
                portfolio.append((i, best))
        depth += 1
    return portfolio


def agreed_portfolio(
    tasks: Sequence[SourceTask],
    size: int,
    key: Callable[[FrozenTrial], Hashable | None],
    predict: Callable[[list[FrozenTrial]], np.ndarray],
) -> list[tuple[int, FrozenTrial]]:
    """Up to ``size`` (source index, trial) pairs from the sources' best trials, chosen greedily
    to minimise the sum over sources of the best predicted quantile in the portfolio.

    ``predict(trials)`` is each source's predicted quantile (0 best, 1 worst) of each trial,
    shape (len(trials), len(tasks)). This is the greedy portfolio of Auto-sklearn 2.0 (Feurer et
    al., JMLR 2022) with the sources as its datasets: the first pick is the configuration the
    sources rate best on average; each next one helps the sources the portfolio serves worst
    so far. So sources that agree get their joint favourites (a config good for all rather than
    one source's best, which another source may rate poorly), and sources that disagree each get
    one of theirs. Candidates are each source's best :data:`POOL_DEPTH` trials (at most
    :data:`MAX_POOL` in all); ``key`` as in :func:`round_robin_portfolio`. Ties go to the
    earlier candidate in round-robin order. A single source's portfolio is its best trials.
    """
    if len(tasks) == 1:
        # Nothing to agree on: a lone source's own ranking beats its smoothed version of it.
        return round_robin_portfolio(tasks, size, key)
    pool = round_robin_portfolio(tasks, MAX_POOL, key, max_depth=POOL_DEPTH)
    if len(pool) <= 1:
        return pool[:size]
    quantiles = np.asarray(predict([t for _, t in pool]), dtype=float)
    served = np.ones(quantiles.shape[1])
    chosen: list[int] = []
    available = np.ones(len(pool), dtype=bool)
    for _ in range(min(size, len(pool))):
        gain = np.maximum(served[None, :] - quantiles, 0.0).sum(axis=1)
        # Once no candidate improves on what every source has, the lowest average rating wins.
        score = gain - 1e-9 * quantiles.mean(axis=1)
        score[~available] = -np.inf
        pick = int(np.argmax(score))
        chosen.append(pick)
        available[pick] = False
        served = np.minimum(served, quantiles[pick])
    return [pool[i] for i in chosen]


def startup_explore_probability(max_trust: float) -> float:
    """Probability that a start-up trial is sampled at random rather than from the model, given
    the largest source trust. Squared, so a well-trusted source leaves few random trials (trust
    0.8: 4%, not 20%) while refuted ones (trust near 0) leave the start to random search, where
    a model fitted on the points they chose would keep the search next to them."""
    return (1.0 - max_trust) ** 2


def one_of_best(
    scores: np.ndarray, attempt: int, rng: np.random.RandomState | np.random.Generator
) -> int:
    """Index of one of the ``attempt + 1`` highest ``scores``, at random, preferring finite ones.

    After ``attempt`` lost collisions: workers that collided once would otherwise collide again
    on the runner-up.
    """
    k = min(attempt + 1, len(scores))
    if len(scores) > _PARTITION_ABOVE:
        head = np.argpartition(-scores, k - 1)[:k]
        top = head[np.argsort(-scores[head], kind="stable")]
    else:
        top = np.argsort(-scores, kind="stable")[:k]
    fresh = top[np.isfinite(scores[top])]
    return int(rng.choice(fresh if len(fresh) else top))
