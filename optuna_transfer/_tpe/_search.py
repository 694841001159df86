"""Choosing one configuration: TransferTPE's candidates and the vote among them.

Pure functions of the target's observations, the source models and a random generator: no
storage access. The sampler (``_sampler.py``) gathers the observations and records the
outcome.
"""

from __future__ import annotations

from collections.abc import Callable
import math
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.study import Study
from optuna.trial import FrozenTrial

from optuna_transfer._encoding import decode
from optuna_transfer._encoding import encode
from optuna_transfer._encoding import encode_many
from optuna_transfer._encoding import n_values
from optuna_transfer._local_search import confirmed_by_target
from optuna_transfer._local_search import consensus_move
from optuna_transfer._local_search import incumbent_is_recent
from optuna_transfer._local_search import is_seen
from optuna_transfer._local_search import joint_columns
from optuna_transfer._local_search import JOINT_FIRST_STEP
from optuna_transfer._local_search import joint_first_step
from optuna_transfer._local_search import joint_moves
from optuna_transfer._local_search import local_patience
from optuna_transfer._local_search import LOCAL_STARTS
from optuna_transfer._local_search import neighbours
from optuna_transfer._ranking import trial_losses
from optuna_transfer._schedule import one_of_best
from optuna_transfer._similarity import average_ranks
from optuna_transfer._similarity import vote
from optuna_transfer._task_model import choice_counts
from optuna_transfer._task_model import SourceEnsemble
from optuna_transfer._task_model import TargetModel
from optuna_transfer._tpe._claims import params_with_running


# Scale of the random tie-break added to candidates' votes (votes are ranks in [0, n]).
TIE_JITTER = 1e-9
# Uniform draws tried for an exploration step before listing the configurations not tried.
MAX_RANDOM_DRAWS = 100
# Above this many configurations the untried ones are not listed: uniform draws miss them only
# once nearly all were tried, which no study of a space that large reaches.
MAX_LISTED_CONFIGS = 100_000


def choose(
    x: np.ndarray,
    losses: np.ndarray,
    numbers: np.ndarray,
    space: dict[str, BaseDistribution],
    ensemble: SourceEnsemble,
    weights: list[float],
    n_candidates: int,
    local: bool,
    attempt: int,
    rng: np.random.RandomState,
    fine: bool = False,
    tried: np.ndarray | None = None,
) -> tuple[np.ndarray, int | None, bool]:
    """One configuration of ``space`` (as a row of unit coordinates), given the target's
    observations ``x`` with their ``losses`` and trial ``numbers``, and each source's weight.

    A local step around the target's best trials while they keep improving (if ``local``),
    else a TPE step: ``n_candidates`` draws from each task's good density in proportion to its
    weight. The target's density ratio and each voting source's smoothed ranking vote on the
    candidates; after ``attempt`` lost claims, one of the ``attempt + 1`` best wins at random.
    Also returns the row of ``x`` a local step starts from (or None) and whether every
    candidate was one the target already has. ``fine``: the objective resolves short moves
    (:func:`~optuna_transfer._local_search.resolves_short_moves`), so joint moves follow the
    length of the last success, local steps are more patient, and the consensus of the voting
    sources whose best configuration the target confirmed
    (:func:`~optuna_transfer._local_search.consensus_move`) is one more local candidate.
    ``tried``: the rows that are whole configurations the target has (default ``x``; in a
    conditional space a row of ``x`` may be part of a longer one), never proposed again while
    an untried candidate exists.
    """
    tried = x if tried is None else tried
    target = TargetModel(x, losses, choice_counts(space))
    voting = [i for i, (w, m) in enumerate(zip(weights, ensemble.models)) if m.usable and w > 0]
    cand, start = None, None
    if local and incumbent_is_recent(losses, numbers, local_patience(space, fine)):
        cand, start = local_step_candidates(
            x, losses, numbers, target.order, space, rng, fine
        )
        if fine and cand is not None and start is not None:
            bests = [ensemble.models[i].best for i in voting]
            confirmed = confirmed_by_target(bests, x, losses)
            consensus = consensus_move(
                x[start],
                [b if ok else None for b, ok in zip(bests, confirmed)],
                [weights[i] for i in voting],
                joint_columns(space),
            )
            if consensus is not None:
                cand = np.vstack([cand, consensus[None, :]])
    if cand is None:
        mix = np.array([1.0] + [weights[i] for i in voting])
        below = [target.below] + [ensemble.models[i].below for i in voting]
        counts = rng.multinomial(n_candidates, mix / mix.sum())
        draws = [b.sample(rng, k) for b, k in zip(below, counts) if k > 0]
        cand = canonical(np.vstack(draws), space)
    # A source votes with its smoothed ranking rather than its own l/g: between
    # neighbouring configurations, which all lie in its good region, the ranking still
    # tells them apart.
    quantiles = ensemble.predicted_quantiles(cand, voting)
    acq = vote(target.score(cand), [(weights[i], -quantiles[:, k]) for k, i in enumerate(voting)])
    # Ties (common among a few discrete candidates) go to a random one, not the first.
    acq += TIE_JITTER * rng.uniform(size=len(cand))
    # Re-evaluating a configuration the target already has (or is running) teaches nothing
    # new; in discrete spaces TPE would otherwise keep proposing its incumbent.
    seen = is_seen(cand, tried)
    if seen.all():
        # In a small discrete space every candidate may be a configuration already tried;
        # an untried one, if there is any, teaches more than a repeat.
        u = uniform_unseen(rng, space, tried)
        if not is_seen(u[None, :], tried)[0]:
            return u, None, False
    else:
        acq[seen] = -np.inf
    best = cand[int(np.argmax(acq)) if attempt == 0 else one_of_best(acq, attempt, rng)]
    return best, start, bool(seen.all())


def local_step_candidates(
    x: np.ndarray,
    losses: np.ndarray,
    numbers: np.ndarray,
    order: np.ndarray,
    space: dict[str, BaseDistribution],
    rng: np.random.RandomState,
    fine: bool = False,
) -> tuple[np.ndarray | None, int | None]:
    """Unseen moves from the best of the target's top finished trials that has any, and the
    row of ``x`` they start from; ``(None, None)`` if none has. Only trials with every
    parameter of ``space`` inside its range count. Continuous parameters move together
    when there are several (:func:`joint_moves`; from :func:`joint_first_step` if ``fine``),
    the others one at a time."""
    joint = joint_columns(space)
    finished = np.isfinite(losses)
    # A row with a NaN coordinate is no configuration of this space (a value outside today's
    # range, such as an enqueued trial from an older search): no move from it decodes.
    whole = finished & ~np.isnan(x).any(axis=1)
    for i in order[whole[order]][:LOCAL_STARTS]:
        moves = neighbours(x[i], space, x, fixed=joint)
        if joint:
            n_failed = int(np.sum(finished & (numbers > numbers[i])))
            first = (
                joint_first_step(x, losses, numbers, int(i), joint)
                if fine
                else JOINT_FIRST_STEP
            )
            moves = np.vstack([moves, joint_moves(x[i], joint, n_failed, rng, first)])
        if len(moves):
            return moves, int(i)
    return None, None


def target_observations(
    study: Study,
    trials: list[FrozenTrial],
    space: dict[str, BaseDistribution],
    violations: dict[int, float] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Aligned target params, a loss per trial (lower is better; running trials = inf) and
    the trial numbers; ``violations`` as in ``trial_losses``."""
    x = np.full((len(trials), len(space)), np.nan)
    for i, t in enumerate(trials):
        params = params_with_running(t)
        for j, (name, dist) in enumerate(space.items()):
            if name in params:
                x[i, j] = encode(dist, params[name])
    losses = trial_losses(study, trials, violations)
    keep = ~np.all(np.isnan(x), axis=1)
    numbers = np.array([t.number for t in trials], dtype=int)
    return x[keep], losses[keep], numbers[keep]


def uniform_unseen(
    rng: np.random.RandomState, space: dict[str, BaseDistribution], seen: np.ndarray
) -> np.ndarray:
    """A uniform draw over ``space`` (choice indices for categoricals, unit coordinates else)
    that is not a row of ``seen``: if a few draws find none, one of the finite space's
    configurations that ``seen`` lacks (:func:`unseen_rows`), drawn uniformly; the last draw
    where there is none, or the space is too large to list."""
    n_choices = choice_counts(space)
    for _ in range(MAX_RANDOM_DRAWS):
        u = canonical(
            np.array([[rng.randint(c) if c > 0 else rng.uniform() for c in n_choices]]), space
        )[0]
        if not is_seen(u[None, :], seen)[0]:
            return u
    # Draws miss only once nearly every configuration was tried: then there are few left.
    left = unseen_rows(space, seen)
    return u if left is None or len(left) == 0 else left[rng.randint(len(left))]


def unseen_rows(space: dict[str, BaseDistribution], seen: np.ndarray) -> np.ndarray | None:
    """Every configuration of a finite ``space`` (as canonical rows) that is not a row of
    ``seen``; None where there is no parameter, a parameter is continuous or there are more
    than :data:`MAX_LISTED_CONFIGS` configurations."""
    sizes = [n_values(d) for d in space.values()]
    known = [size for size in sizes if size is not None]
    if not sizes or len(known) < len(sizes) or math.prod(known) > MAX_LISTED_CONFIGS:
        return None
    columns = [_value_coordinates(d, size) for d, size in zip(space.values(), known)]
    rows = np.array(np.meshgrid(*columns, indexing="ij")).reshape(len(columns), -1).T
    tried = {tuple(r) for r in np.round(seen, 9) if not np.isnan(r).any()}
    return rows[[tuple(r) not in tried for r in np.round(rows, 9)]]


def _value_coordinates(dist: BaseDistribution, size: int) -> np.ndarray:
    """The canonical coordinate of each of the ``size`` values of a discrete ``dist``."""
    if isinstance(dist, CategoricalDistribution):
        return np.arange(size, dtype=float)
    assert isinstance(dist, (IntDistribution, FloatDistribution)) and dist.step is not None
    values = [dist.low + k * dist.step for k in range(size)]
    return canonical(encode_many(dist, values)[:, None], {"_": dist})[:, 0]


def probe_row(
    rng: np.random.RandomState,
    space: dict[str, BaseDistribution],
    seen: np.ndarray,
    n_candidates: int,
    predicted_quantiles: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """The probe: of ``n_candidates`` uniform draws (as :func:`uniform_unseen`), the one with
    the highest sum of two ranks among them, its distance from its nearest row of ``seen``
    (:func:`distance_to_nearest`) and the sources' mean ``predicted_quantiles`` there (rows x
    sources; higher is worse).

    Away from every trial so far, and where the sources predict the worst: the strongest test
    of their ranking. Misleading sources predict the worst where the target is good, and lose
    their trust at once; related ones see their prediction confirmed. Ranks, not raw values,
    so neither criterion needs a scale; with no source opinion, distance alone decides.
    """
    draws = np.array([uniform_unseen(rng, space, seen) for _ in range(max(1, n_candidates))])
    if len(seen) == 0:
        return draws[0]
    quantiles = predicted_quantiles(draws)
    worse = quantiles.mean(axis=1) if quantiles.shape[1] else np.zeros(len(draws))
    score = average_ranks(distance_to_nearest(draws, seen, space)) + average_ranks(worse)
    return draws[int(np.argmax(score))]


def distance_to_nearest(
    rows: np.ndarray, seen: np.ndarray, space: dict[str, BaseDistribution]
) -> np.ndarray:
    """Each row's distance from its nearest row of ``seen``: per parameter the distance in
    unit coordinates, 0 or 1 for a categorical, averaged over the parameters both rows have."""
    is_cat = np.array([c > 0 for c in choice_counts(space)])
    diff = np.abs(rows[:, None, :] - seen[None, :, :])
    # Parameters a seen trial lacks (NaN) do not count towards its distance.
    known = ~np.isnan(diff)
    diff = np.where(known, diff, 0.0)
    diff[..., is_cat] = diff[..., is_cat] > 0
    distance = diff.sum(axis=2) / np.maximum(known.sum(axis=2), 1)
    return np.asarray(distance.min(axis=1))


def canonical(cand: np.ndarray, space: dict[str, BaseDistribution]) -> np.ndarray:
    """Move discrete coordinates to the coordinate of the value they decode to, so candidates
    are scored where they will be evaluated and equal configurations compare equal."""
    out = cand.copy()
    for j, dist in enumerate(space.values()):
        if isinstance(dist, CategoricalDistribution):
            out[:, j] = np.round(out[:, j])
        elif isinstance(dist, IntDistribution) or (
            isinstance(dist, FloatDistribution) and dist.step is not None
        ):
            out[:, j] = [encode(dist, decode(dist, float(u))) for u in out[:, j]]
    return out


def decode_row(u: np.ndarray, space: dict[str, BaseDistribution]) -> dict[str, Any]:
    return {name: decode(dist, float(v)) for (name, dist), v in zip(space.items(), u)}


def encode_row(params: dict[str, Any], space: dict[str, BaseDistribution]) -> np.ndarray:
    """``params`` as a row of unit coordinates over ``space`` (NaN where a parameter is
    missing), comparable with :func:`target_observations`' rows."""
    return np.array(
        [encode(dist, params[name]) if name in params else np.nan for name, dist in space.items()]
    )
