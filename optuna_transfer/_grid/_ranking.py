"""How the grid ranks its points: pure functions of the sources and the target's trials.

Nothing here reads or writes a storage: the sampler hands in the target's finished trials and
their losses (``optuna_transfer._ranking.trial_losses``), and gets back a score per grid point
(higher first). See :class:`~optuna_transfer.WarmStartGridSampler` for the ranking in words.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_transfer._encoding import aligned_matrix
from optuna_transfer._grid._space import GridSpace
from optuna_transfer._local_search import incumbent_is_recent
from optuna_transfer._local_search import LOCAL_STARTS
from optuna_transfer._schedule import round_robin_portfolio
from optuna_transfer._similarity import average_ranks
from optuna_transfer._similarity import rank_agreements
from optuna_transfer._similarity import trust
from optuna_transfer._similarity import trusts
from optuna_transfer._similarity import vote
from optuna_transfer._similarity import vote_weight
from optuna_transfer._sources import SourceTask
from optuna_transfer._task_model import choice_counts
from optuna_transfer._task_model import source_gamma
from optuna_transfer._task_model import SourceModel
from optuna_transfer._task_model import TargetModel


# The target's model of its own trials outweighs the sources' scores as it grows: its weight is
# n / (n + TARGET_HALF_WEIGHT) after n finished trials.
TARGET_HALF_WEIGHT = 5.0
# Equal prior shares in the target's good and bad densities: a grid is walked best-first, so
# unexplored cells get a neutral score rather than TPE's optimistic one, and the target's best
# region leads.
TARGET_PRIOR_SHARE = 0.1
# The target's own model needs this many finished trials (one good, one bad); before, the
# sources rank alone, with their prior trust.
MIN_TARGET_TRIALS = 2
# A point a source evaluated among its best scores in (EVALUATED_GOOD_TOP - 1,
# EVALUATED_GOOD_TOP], above every score of a point it did not evaluate (at most 1): a source's
# best configurations come first by its own ranking.
EVALUATED_GOOD_TOP = 2.0
# Every point's score from a source without a usable model: the middle percentile, no opinion.
NO_OPINION = 0.5
# Local steps are placed this far above every other point's score: they come first.
LOCAL_STEP_LEAD = 1.0
# A local step's level (its start's rank among the best trials) is multiplied by this plus
# the sources' total weight, more than the vote can add (at most 1 + that total): the
# neighbours of a better start always come first, the vote only orders neighbours of one start.
LEVEL_GAP = 2.0
# Scale of the random tie-break among equally good probes: ranks differ by at least 1/2.
TIE_JITTER = 1e-9


class Ranking(NamedTuple):
    """The combined score of every grid point (higher first), the largest source trust, and
    whether the target's incumbent is recent (see ``optuna_transfer._local_search``)."""

    score: np.ndarray
    max_trust: float
    recent: bool


class GridRanker:
    """The sources' scores of every grid point, computed once, and the target's part per call.

    ``seed`` draws the tie-break permutation: equal scores order the same in every worker.
    """

    def __init__(
        self, space: GridSpace, tasks: Sequence[SourceTask], portfolio_size: int, seed: int
    ) -> None:
        self._space = space
        self._n_tasks = len(tasks)
        self._seed = seed
        rng = np.random.RandomState(seed)
        self.tie_key = rng.permutation(space.n_points).astype(np.int64)
        scored = [self._score_source(task) for task in tasks]
        self._source_scores = (
            np.vstack([score for score, _ in scored]) if scored else np.zeros((0, space.n_points))
        )
        # Each source's smoothed ranking of every point: its vote among local steps.
        self._source_rankings = [ranking for _, ranking in scored]
        # The zero-shot portfolio: the sources' best configurations on their nearest points.
        self._prior = self.prior_score()
        self.portfolio = [
            gid
            for _, best in round_robin_portfolio(tasks, portfolio_size, self._nearest_id)
            if (gid := self._nearest_id(best)) is not None
        ]

    @property
    def source_rankings(self) -> list[np.ndarray]:
        """Each source's smoothed ranking of every point (higher better; zeros where the
        source ranks nothing)."""
        return self._source_rankings

    def _nearest_id(self, trial: FrozenTrial) -> int | None:
        """The point nearest a source's ``trial``. A grid parameter the trial lacks (added
        since the source ran) or whose value fits no grid value (a choice renamed) is free:
        of the points nearest in the others, the one the sources together score best, as a
        source is uniform in a parameter it never had. None if every parameter is free."""
        space = self._space
        indices = space.nearest_indices(trial.params)
        if None not in indices:
            return space.id_of(trial.params, nearest=True)
        if all(i is None for i, n in zip(indices, space.param_names) if n in space.dists):
            return None
        candidates = space.matching(indices)
        best = self._prior[candidates].max()
        tied = candidates[self._prior[candidates] == best]
        return int(tied[np.argmin(self.tie_key[tied])])

    # -- the sources' part, computed once ----------------------------------------------------

    def _score_source(self, task: SourceTask) -> tuple[np.ndarray, np.ndarray]:
        """A source's score of every grid point, and its smoothed ranking (higher better;
        constant when the source has no usable model, and everywhere when it ranks nothing)."""
        space = self._space
        ranking = np.zeros(space.n_points)
        scores = np.full(space.n_points, NO_OPINION)
        if task.ranks_nothing:
            # Its "best" points would be whichever it evaluated first.
            return scores, ranking
        if space.dists:
            model = SourceModel(task, space.dists)
            if model.usable:
                ranking = -model.predicted_quantile_grid(space.columns)
                scores = self._source_model_score(model, ranking)
        n = len(task.trials)
        n_good = source_gamma(task.n_complete)
        seen: set[int] = set()
        # Trials are best first, so the first trial at a point carries its best rank.
        for rank, t in enumerate(task.trials):
            gid = space.id_of(t.params)
            if gid is None or gid in seen:
                continue
            seen.add(gid)
            if rank < n_good:
                scores[gid] = EVALUATED_GOOD_TOP - rank / n_good
            else:
                # Its quantile in the source, counted from the middle of its rank.
                scores[gid] = 1.0 - (rank + 0.5) / n
        return scores, ranking

    def _source_model_score(self, model: SourceModel, ranking: np.ndarray) -> np.ndarray:
        """A source's score of the points it never evaluated: the mean of two percentiles
        among all grid points, of its TPE density ratio (where it found good points) and of its
        smoothed ranking (which of them it ranked better). Measured on the grid suite, the mean
        beats either alone: the ratio alone orders neighbouring points poorly, the ranking
        alone puts a far-from-data point first."""
        return 0.5 * (self._ratio_percentile(model) + percentile(ranking))

    def _ratio_percentile(self, model: SourceModel | TargetModel) -> np.ndarray:
        """Percentile among the grid's points of a model's density ratio ``l(x) / g(x)``,
        evaluated over the Cartesian grid at once."""
        return percentile(model.score_grid(self._space.columns))

    def prior_score(self) -> np.ndarray:
        """The sources' combined score before the target has judged them (prior trust)."""
        return vote_weight(trust(0.0, 0)) * self._source_scores.sum(axis=0)

    # -- the target's part, per set of finished trials ---------------------------------------

    def rank(
        self,
        finished: list[FrozenTrial],
        losses: np.ndarray,
        ids: Sequence[int | None] | None = None,
    ) -> Ranking:
        """The ranking given the target's ``finished`` trials (FAIL ones included: they are
        evidence) and their ``losses`` (lower better); ``ids``: their grid ids, where the
        caller has looked them up."""
        space = self._space
        n = len(finished)
        total = np.zeros(space.n_points)
        source_trusts = [trust(0.0, 0)] * self._n_tasks
        recent = True
        if n >= MIN_TARGET_TRIALS and space.dists:
            x = aligned_matrix(finished, space.dists)
            # FAIL trials rank after every COMPLETE and PRUNED one: a source that put a failing
            # point first loses trust, and the target's model rates the failing region bad.
            failed = np.array([t.state == TrialState.FAIL for t in finished])
            if ids is None:
                ids = [space.id_of(t.params) for t in finished]
            on_grid = np.array([i is not None for i in ids])
            grid_ids = np.array([i for i in ids if i is not None], dtype=np.int64)
            source_trusts = self._trusts(grid_ids, losses[on_grid])
            weights = [vote_weight(t) for t in source_trusts]
            # Each weighted term in one scratch array: no fresh array of the grid's size each.
            term = np.empty(space.n_points)
            for s, weight in enumerate(weights):
                total += np.multiply(weight, self._source_scores[s], out=term)
            n_choices = choice_counts(space.dists)
            # A failed trial is never "good", even when too few others have finished.
            target = TargetModel(
                x, losses, n_choices, prior_share=TARGET_PRIOR_SHARE, never_good=failed
            )
            ratio = self._ratio_percentile(target)
            total += np.multiply(n / (n + TARGET_HALF_WEIGHT), ratio, out=ratio)
            numbers = np.array([t.number for t in finished])
            # Failed trials count as trials that did not improve on the incumbent, and are no
            # incumbent themselves: with nothing but failures there is nothing to step from.
            recent = bool((~failed).any()) and incumbent_is_recent(losses, numbers)
            if recent:
                starts = on_grid & ~failed
                # TPE's own prior (not the neutral one of the grid score), as TransferTPE's
                # vote uses.
                tpe = TargetModel(x, losses, n_choices, never_good=failed)
                local_ids, keys = self._local_steps(
                    np.array([i for i, ok in zip(ids, starts) if ok], dtype=np.int64),
                    losses[starts],
                    tpe,
                    weights,
                )
                total[local_ids] = total.max() + LOCAL_STEP_LEAD + keys
        else:
            total += self.prior_score()
        return Ranking(self.portfolio_first(total), max(source_trusts, default=0.0), recent)

    def _trusts(self, grid_ids: np.ndarray, losses: np.ndarray) -> list[float]:
        """Each source's trust: how its scores of the target's finished trials on the grid
        (``grid_ids``) agree with their ``losses``, overall. Not ``source_trusts`` on COMPLETE
        trials as TransferTPESampler's: see the sampler's docstring for why."""
        agreements = rank_agreements(self._source_scores[:, grid_ids].T, losses)
        return trusts(agreements, len(grid_ids)).tolist()

    def _local_steps(
        self,
        grid_ids: np.ndarray,
        losses: np.ndarray,
        target: TargetModel,
        weights: list[float],
    ) -> tuple[np.ndarray, np.ndarray]:
        """The points one move from the target's best trials (the local steps of
        ``optuna_transfer._local_search``) and a key per point, higher first: the neighbours of
        the best trial before those of the second best, ..., and among equals by
        TransferTPESampler's vote (``optuna_transfer._similarity.vote``: the target's TPE
        density ratio and each trusted source's smoothed ranking). Measured on the grid suite,
        the vote orders them better than the grid score, whose neutral target prior and source
        density ratios favour moves that change little."""
        space = self._space
        level = np.zeros(space.n_points)
        starts = grid_ids[np.argsort(losses, kind="stable")[:LOCAL_STARTS]]
        for rank, gid in zip(range(LOCAL_STARTS, 0, -1), starts):
            moves = space.neighbours(int(gid))
            level[moves] = np.maximum(level[moves], rank)
        ids = np.flatnonzero(level)
        if len(ids) == 0:
            return ids, np.zeros(0)
        votes = vote(
            target.score(space.points(ids)),
            [(w, r[ids]) for w, r in zip(weights, self._source_rankings)],
        )
        return ids, level[ids] * (LEVEL_GAP + sum(weights)) + votes

    def portfolio_first(self, score: np.ndarray) -> np.ndarray:
        """``score`` with the zero-shot portfolio on top, in its order (points already taken
        are skipped when picking)."""
        top = score.max()
        for i, gid in enumerate(self.portfolio):
            score[gid] = top + len(self.portfolio) - i
        return score

    def probe_score(self, near: Sequence[int], noise: np.ndarray) -> np.ndarray:
        """Per point, the probe's score (higher first): the sum of two ranks among the grid's
        points, its distance from the nearest of the points ``near`` and the sources' mean
        predicted quantile there (their smoothed rankings, negated), plus ``noise`` (a uniform
        draw per point) scaled below any difference of two such sums: ties at random.

        Away from every point so far, and where the sources predict the worst: the strongest
        test of their ranking, as TransferTPESampler's probe (``_tpe._search.probe_row``).
        Misleading sources predict the worst where the target is good, and lose their trust at
        once; related ones see their prediction confirmed. Ranks, so neither needs a scale;
        without a source model, distance alone decides."""
        distance = self._space.distance_to_nearest(near)
        worse = -np.mean(self._source_rankings, axis=0) if self._source_rankings else 0.0
        ranks = average_ranks(distance) + average_ranks(np.broadcast_to(worse, distance.shape))
        return ranks + TIE_JITTER * noise

    def near_failures(self, failed_ids: Iterable[int]) -> np.ndarray:
        """1 at the points one move from a failed trial's point, else 0."""
        near = np.zeros(self._space.n_points)
        for gid in failed_ids:
            near[self._space.neighbours(gid)] = 1.0
        return near

    # -- choosing a point --------------------------------------------------------------------

    def order(self, score: np.ndarray) -> np.ndarray:
        """Every point's id, best first, ties by the tie key."""
        return np.lexsort((self.tie_key, -score))

    def pick(
        self, score: np.ndarray, excluded: np.ndarray, number: int, attempt: int, skip: int = 0
    ) -> int:
        """The best-ranked id not ``excluded``, past the ``skip`` best (left to earlier
        claimers); after ``attempt`` lost claims, one of the next few at random."""
        masked = np.where(excluded, -np.inf, score)
        free = int((~excluded).sum())
        rank = skip
        if attempt > 0:
            # Two workers that keep colliding would otherwise keep choosing the same point.
            jitter = np.random.default_rng([self._seed, number, attempt])
            rank += int(jitter.integers(attempt + 1))
        return self._kth_best(masked, min(rank, free - 1))

    def _kth_best(self, score: np.ndarray, k: int) -> int:
        """The id ranked ``k`` (0 best) by ``score``, ties broken by the tie key; linear time,
        so it costs the same on a grid of millions."""
        n = len(score)
        # The best (nearly every pick) is a maximum, far cheaper than a partition.
        value = score.max() if k == 0 else np.partition(score, n - 1 - k)[n - 1 - k]
        tied = np.flatnonzero(score == value)
        within = k - int(np.count_nonzero(score > value))
        keys = self.tie_key[tied]
        return int(tied[np.argpartition(keys, within)[within]])


def percentile(raw: np.ndarray) -> np.ndarray:
    """Scores mapped to (0, 1] by rank; equal scores share their average rank."""
    # NaN ranks lowest, as -inf. Without NaN the scores are ranked as they are and the ranks
    # scaled in place: no copies of the grid's size.
    if np.isnan(raw).any():
        raw = np.nan_to_num(raw, nan=-np.inf)
    ranks = average_ranks(raw)
    ranks /= len(raw)
    return ranks
