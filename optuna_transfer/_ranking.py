"""How a task ranks its own trials: one rule for the target and the sources.

Samplers compare tasks by *ranks*, never raw values, so objective scales and even directions
may differ between the target and its sources. COMPLETE trials rank by value (several
objectives: by Pareto front), infeasible ones (a positive constraint violation, from
``Trial.set_constraint``) after every feasible one, least violation first, as Optuna's TPE and
``Study.best_trial`` rank them; PRUNED trials after those, FAIL trials last.
"""

from __future__ import annotations

import numpy as np
from optuna.study import Study
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial
from optuna.trial import TrialState


# Losses of PRUNED and FAIL trials, in multiples of the number of trials ranked: beyond every
# COMPLETE trial's rank, infeasible ones included (rank + n + total violation).
PRUNED_LOSS = 3.0
FAILED_LOSS = 4.0


def rank_order(losses: np.ndarray) -> np.ndarray:
    """Indices of ``losses`` (n x m, minimised) best first; several objectives by Pareto front."""
    n, m = losses.shape
    if m == 1:
        return np.argsort(losses[:, 0], kind="stable")
    fronts = non_domination_ranks(losses)
    # Within a front prefer points with a smaller sum of per-objective ranks: a cheap,
    # scale-free tie-break that favours balanced trade-offs.
    per_obj_rank = np.argsort(np.argsort(losses, axis=0), axis=0).sum(axis=1)
    return np.lexsort((per_obj_rank, fronts))


def violation(trial: FrozenTrial) -> float:
    """The total positive constraint violation of ``trial``; 0 where it is feasible (or has no
    constraints)."""
    return sum(v for v in trial.constraints.values() if v > 0)


def feasible_first(losses: np.ndarray, violations: np.ndarray) -> np.ndarray:
    """Indices of ``losses`` (n x m, minimised) best first, as :func:`rank_order`, except that
    rows with a positive ``violations`` come after every other row, least violation first
    (ties in the order of :func:`rank_order`)."""
    by_value = np.empty(len(losses), dtype=int)
    by_value[rank_order(losses)] = np.arange(len(losses))
    return np.lexsort((by_value, np.maximum(violations, 0.0)))


def non_domination_ranks(losses: np.ndarray) -> np.ndarray:
    """Pareto front index (0 = non-dominated) of each row of ``losses`` (minimised).

    The dominance relation is built once and the fronts peeled off by counting each row's
    dominators (as a topological sort): a long multi-objective study has dozens of fronts,
    and comparing the remaining rows anew for each front costs a pass over all pairs per
    front."""
    n = len(losses)
    le = np.all(losses[:, None, :] <= losses[None, :, :], axis=2)
    lt = np.any(losses[:, None, :] < losses[None, :, :], axis=2)
    dominates = le & lt  # [i, j]: row i dominates row j
    n_dominators = dominates.sum(axis=0)
    ranks = np.full(n, -1, dtype=int)
    current = np.flatnonzero(n_dominators == 0)
    front = 0
    while current.size:
        ranks[current] = front
        n_dominators = n_dominators - dominates[current].sum(axis=0)
        n_dominators[current] = -1
        current = np.flatnonzero(n_dominators == 0)
        front += 1
    return ranks


def trial_losses(
    study: Study, trials: list[FrozenTrial], violations: dict[int, float] | None = None
) -> np.ndarray:
    """A scalar loss per trial, lower better: value (Pareto rank for several objectives);
    infeasible trials after feasible (least violation first), PRUNED after COMPLETE, FAIL after
    PRUNED, anything else (RUNNING) last (inf).

    A failed trial is evidence that its region is bad (out of memory, a diverging learning
    rate), so it ranks as the worst finished observation rather than being ignored: ignored,
    it would look untried, and the sampler would propose it again.

    ``violations``, if given, caches each COMPLETE trial's :func:`violation` by trial number
    (one cache per study): a finished trial's constraints cannot change, and reading them
    scans every system attribute of the trial, on every trial of a long study."""
    n = len(trials)
    out = np.full(n, np.inf)
    complete = [i for i, t in enumerate(trials) if t.state == TrialState.COMPLETE]
    if complete:
        signs = np.array([-1.0 if d == StudyDirection.MAXIMIZE else 1.0 for d in study.directions])
        vals = np.array([trials[i].values for i in complete], dtype=float) * signs
        if vals.shape[1] == 1:
            rank = np.argsort(np.argsort(vals[:, 0], kind="stable"), kind="stable").astype(float)
        else:
            rank = non_domination_ranks(vals).astype(float)
        penalty = np.array([_violation(trials[i], violations) for i in complete])
        infeasible = penalty > 0
        if infeasible.any():
            # After every feasible trial, least violation first (ties by value).
            order = np.lexsort((rank[infeasible], penalty[infeasible]))
            rank[np.flatnonzero(infeasible)[order]] = n + np.arange(int(infeasible.sum()))
        out[complete] = rank
    pruned = [i for i, t in enumerate(trials) if t.state == TrialState.PRUNED]
    out[pruned] = PRUNED_LOSS * n
    failed = [i for i, t in enumerate(trials) if t.state == TrialState.FAIL]
    out[failed] = FAILED_LOSS * n
    return out


def _violation(trial: FrozenTrial, cache: dict[int, float] | None) -> float:
    """:func:`violation` of a COMPLETE ``trial``, through ``cache`` where given."""
    if cache is None:
        return violation(trial)
    value = cache.get(trial.number)
    if value is None:
        value = cache[trial.number] = violation(trial)
    return value
