"""The order of a warm-started search, shared by both samplers.

1. **Zero-shot portfolio**: the first trials evaluate the sources' best configurations, the best
   of each source in turn (:func:`round_robin_portfolio`), so every source gets its say before
   any is judged.
2. **Probe**: one trial after the portfolio, away from it and where the sources predict the
   worst. Every portfolio configuration comes from the sources' good regions; without a point
   from elsewhere a misleading source cannot be told apart from a related one.
3. **Start-up**: while the target has few trials, a trial is random with a probability that
   falls as the best source's trust rises (:func:`startup_explore_probability`), and always
   while the best trial so far is a random one that beat a completed pick
   (:func:`chance_leads`). If the probe beat a pick (:func:`probe_beat_a_pick`), the first
   start-up trial is random whatever the trust.
4. The sampler's model after that; a worker that lost a collision with another worker over its
   pick takes one of the next best instead (:func:`one_of_best`).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Hashable
from collections.abc import Sequence

import numpy as np
from optuna.study import Study
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_transfer._optuna_compat import is_multi_objective
from optuna_transfer._ranking import trial_losses
from optuna_transfer._sources import SourceTask


# Portfolio size by default: one configuration per source, within these bounds.
MIN_DEFAULT_PORTFOLIO = 2
MAX_DEFAULT_PORTFOLIO = 5
# Above this many scores, one_of_best partitions before it sorts.
_PARTITION_ABOVE = 4096


def portfolio_size(n_zero_shot: int | None, n_sources: int) -> int:
    """``n_zero_shot``, or by default one per source (those that rank anything) within the
    default bounds."""
    if n_zero_shot is not None:
        return n_zero_shot
    return min(MAX_DEFAULT_PORTFOLIO, max(MIN_DEFAULT_PORTFOLIO, n_sources))


def round_robin_portfolio(
    tasks: Sequence[SourceTask], size: int, key: Callable[[FrozenTrial], Hashable | None]
) -> list[tuple[int, FrozenTrial]]:
    """Up to ``size`` (source index, trial) pairs: the best trial of each source in turn, then
    the second best, ...; a trial whose ``key`` is None (it does not fit the target) or repeats
    an earlier one's is skipped, and so is a source that ranks nothing (its "best" is merely
    its first trial)."""
    portfolio: list[tuple[int, FrozenTrial]] = []
    seen: set[Hashable] = set()
    depth = 0
    n_best = [0 if t.ranks_nothing else t.n_complete for t in tasks]
    while len(portfolio) < size and any(depth < n for n in n_best):
        for i, task in enumerate(tasks):
            if depth >= n_best[i] or len(portfolio) >= size:
                continue
            best = task.best_trials[depth]
            k = key(best)
            if k is not None and k not in seen:
                seen.add(k)
                portfolio.append((i, best))
        depth += 1
    return portfolio


def startup_explore_probability(max_trust: float) -> float:
    """Probability that a start-up trial is sampled at random rather than from the model, given
    the largest source trust. Squared, so a well-trusted source leaves few random trials (trust
    0.8: 4%, not 20%) while refuted ones (trust near 0) leave the start to random search, where
    a model fitted on the points they chose would keep the search next to them."""
    return (1.0 - max_trust) ** 2


def chance_leads(
    study: Study,
    finished: Sequence[FrozenTrial],
    is_random: Callable[[FrozenTrial], bool],
    is_pick: Callable[[FrozenTrial], bool],
) -> bool:
    """Whether the best of the target's ``finished`` trials was drawn at random (``is_random``:
    the probe, or a random start-up trial) and beat a completed pick of the sources
    (``is_pick``: a zero-shot trial); the start-up then goes on at random. Never with several
    objectives: there is no single best trial, and trust alone decides.

    Chance beat every configuration the sources and the model chose, so they do not know this
    target's good region, even when a source ranks the few trials so far in the right order by
    luck (on a plateau of diverged runs, say) and keeps its trust. Local steps from a random
    point would crawl through the space one parameter at a time, where random sampling, as
    cold TPE's start-up, finds a good region sooner. Picks that failed were not beaten on their
    values: a failure says where the target fails (out of memory, divergence), not that the
    sources rank it wrongly, so it does not count, as it does not count against their trust.
    """
    if len(finished) == 0 or is_multi_objective(study):
        return False
    best = finished[int(np.argmin(trial_losses(study, list(finished))))]
    if not is_random(best):
        return False
    return any(t.state == TrialState.COMPLETE and is_pick(t) for t in finished)


def probe_beat_a_pick(
    study: Study,
    finished: Sequence[FrozenTrial],
    is_probe: Callable[[FrozenTrial], bool],
    is_pick: Callable[[FrozenTrial], bool],
) -> bool:
    """Whether the probe (``is_probe``) completed better than a completed pick of the sources
    (``is_pick``: a zero-shot trial) among ``finished``; ties do not count.

    The probe goes where the sources predict the worst, so it loses to every pick where they
    know the target. Having beaten one, some source is wrong about this target, although the
    others may keep their trust by ranking the few trials in the target's order: on a plateau
    of diverged runs, the picks differ by noise and the probe was placed on the plateau too.
    Whether the picks beat a typical configuration is then tested by one uniform trial, which
    :func:`chance_leads` judges.
    """
    probes = [t for t in finished if t.state == TrialState.COMPLETE and is_probe(t)]
    picks = [t for t in finished if t.state == TrialState.COMPLETE and is_pick(t)]
    if not probes or not picks:
        return False
    # The probe last: trial_losses breaks ties in list order, so a tie ranks it behind.
    losses = trial_losses(study, [*picks, probes[0]])
    return bool(losses[-1] < losses[:-1].max())


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
