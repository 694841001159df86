"""WarmStartGridSampler: exhaustive grid search that evaluates the most promising points first.

The sampler is glue: the grid is a :class:`~optuna_transfer._grid._space.GridSpace`, points are
scored by a :class:`~optuna_transfer._grid._ranking.GridRanker` (no storage access), and a
trial takes its point through the :class:`~optuna_transfer._grid._claims.ClaimProtocol` (the
only code that touches the storage). What the sampler decides itself is the schedule: which
trials take the zero-shot portfolio, the probe or a random walk (``optuna_transfer._schedule``).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import contextlib
from typing import Any
from typing import NamedTuple
import warnings
import weakref

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_transfer._arguments import check_integer
from optuna_transfer._arguments import MAX_SEED
from optuna_transfer._grid._claims import claimed_id
from optuna_transfer._grid._claims import ClaimProtocol
from optuna_transfer._grid._claims import Claims
from optuna_transfer._grid._claims import is_enqueued
from optuna_transfer._grid._claims import is_random_point
from optuna_transfer._grid._ranking import GridRanker
from optuna_transfer._grid._ranking import MIN_TARGET_TRIALS
from optuna_transfer._grid._ranking import Ranking
from optuna_transfer._grid._space import GridSpace
from optuna_transfer._grid._space import GridValueType
from optuna_transfer._optuna_compat import distribution_contains
from optuna_transfer._optuna_compat import study_key
from optuna_transfer._ranking import trial_losses
from optuna_transfer._schedule import chance_leads
from optuna_transfer._schedule import portfolio_size
from optuna_transfer._schedule import startup_explore_probability
from optuna_transfer._sources import check_max_source_trials
from optuna_transfer._sources import DEFAULT_MAX_SOURCE_TRIALS
from optuna_transfer._sources import load_sources
from optuna_transfer._sources import load_sources_from_storage
from optuna_transfer._sources import report_disjoint_sources
from optuna_transfer._sources import report_unfitting_values
from optuna_transfer._sources import SourceTask


# As TPESampler's n_startup_trials: below this many finished target trials, a trial walks the
# grid at random with probability startup_explore_probability(largest source trust).
DEFAULT_N_STARTUP_TRIALS = 10


class _RankCache(NamedTuple):
    # The study (storage object, held weakly, and id) and its finished trials' numbers.
    key: tuple[tuple[weakref.ref[Any], int], tuple[int, ...]]
    ranking: Ranking


class WarmStartGridSampler(BaseSampler):
    """Grid sampler that evaluates the grid best-first, ranked by finished source studies.

    Like :class:`~optuna.samplers.GridSampler`, every combination of ``search_space`` is
    evaluated once and the study stops after the last one. The *order* is what differs: points
    are ranked by what the sources learned, so the first few trials are the likeliest to be
    good, and "tune around what worked last time" pays off in a handful of trials.

    Ranking. Each numeric column of the grid is treated as a
    :class:`~optuna.distributions.FloatDistribution` over ``[min, max]`` (log scale when all
    values are positive and span ``optuna_transfer._grid._space.LOG_SPAN``), every other column
    as a :class:`~optuna.distributions.CategoricalDistribution` of its values. Source trials,
    including ones sampled from continuous ranges, are aligned onto these distributions with the
    shared rules of ``optuna_transfer._encoding``. Per source, a grid point scores

    * just below ``EVALUATED_GOOD_TOP`` (``optuna_transfer._grid._ranking``), above every
      other score, if the source evaluated it and ranked it among its good trials
      (``optuna_transfer._task_model.source_gamma``; by the source's own ranking: these come
      first);
    * ``1 - (rank + 0.5) / n`` if the source evaluated it otherwise (its quantile in the source);
    * if the source never evaluated it, the mean of two percentiles among all grid points: of
      the source's TPE density ratio ``l(x) / g(x)`` and of its ranking smoothed over the
      space (kernel regression of its trials' quantiles).

    Scores of all sources are summed, each weighted by its trust (the confidence that it ranks
    the target's finished trials in agreement with the target, ``optuna_transfer._similarity``)
    when that exceeds 1/2 and not at all below, plus the percentile of a TPE model of the
    target's own trials weighted by ``n / (n + TARGET_HALF_WEIGHT)``. A misleading source
    therefore loses its say within a few target trials. Unlike
    :class:`~optuna_transfer.TransferTPESampler`, which judges a source on COMPLETE trials, both
    overall and within the better half, the grid judges it overall on every finished trial: a
    source whose best points fail on the target must lose trust here, because its evaluated
    points outrank every other point, and the better-half judgement made the grid suites worse.
    The target's FAIL trials (a diverging learning rate, an out-of-memory batch size) are
    information: they count as its worst observations, after PRUNED ones, so a source that put
    a failing point first loses trust and the target's model rates the failing region bad;
    local steps never start from a failure, and random walks take the grid neighbours of failed
    points last. Ties are broken by a permutation drawn from ``seed``. Source scores of all
    points are computed once; per trial only the target part is recomputed.

    Order of the trials. As in :class:`~optuna_transfer.TransferTPESampler`:

    * Zero-shot portfolio: the first trials the sampler samples evaluate the sources' best
      configurations on their nearest grid points (numbers clipped into the grid's range), the
      best of each source in turn, ``n_zero_shot`` points without repeats. A portfolio point a
      trial already claimed or evaluated (one the user enqueued or added, say) is not
      evaluated again; trials the user enqueued or added never push the others out.
    * Probe: once every portfolio point is claimed (or left to earlier trials still looking
      for a point), the next trial takes the point with the highest sum of two ranks among
      the grid's points, its distance from the nearest claimed point and the sources' mean
      predicted quantile there: far from the portfolio, where the sources predict the worst
      (it carries the system attribute ``"warm_start_grid:probe"``; one trial at most, also
      with workers). Every portfolio point comes from the sources' good regions; without a
      point from elsewhere a misleading source cannot be told apart from a related one, and
      where they predict the worst is the strongest test of their ranking.
    * Local steps: while the target's incumbent keeps improving (it is among the last
      ``LOCAL_PATIENCE`` finished trials, ``optuna_transfer._local_search``), the unvisited points
      one move away from the target's best trials come first (the next smaller or larger value of
      one numeric column, or another value of one other column; neighbours of the best trial before
      those of the second and third best), ordered among themselves by TransferTPESampler's vote:
      the target's TPE density ratio plus each trusted source's smoothed ranking, weighted by its
      trust.
    * Random walk: until the target has ``n_startup_trials`` finished trials, a trial takes a
      random point with probability ``startup_explore_probability(largest source trust)``
      (``optuna_transfer._schedule``), or always while the best finished trial took its point
      at random (the probe or a walk, which carries ``"warm_start_grid:walk"``), and once the
      incumbent is no longer recent with probability 1 - largest trust: with refuted sources
      the start is then GridSampler's rather than a model of the points the sources chose, and
      a flat region the target's own model would keep proposing is left rather than
      exhausted.
    * Otherwise the best unvisited point by the combined score.

    Parallel workers. A trial claims a point by recording its id in its system attributes
    (``"warm_start_grid:grid_id"``), then re-reads the study: if another trial records the same
    id, it withdraws its claim, waits a random moment (a window that doubles with each loss, so
    that two workers that keep colliding drift apart) and claims again. Of two trials claiming a
    point, the one that wrote second always sees the other, so at most one keeps it: no point is
    evaluated twice while unclaimed points remain, on any storage that is sequentially
    consistent (journal file, RDB). Earlier trials come first: a trial leaves the best free
    points to the lower-numbered trials still looking for one (one each) and takes the next,
    and near the grid's end waits for them rather than taking a point one of them needs. So
    workers built with the same seed spread over the best points at once instead of colliding,
    and a trial that lost a collision is not overtaken: the first trials, by number, take the
    grid's points once each. Failed, pruned and running trials keep their claims, as in
    ``GridSampler``. ``optimize`` stops once every point has been claimed (with ask-and-tell,
    ``tell`` on the last point does not raise, unlike ``GridSampler``'s). A worker that dies
    leaves its point claimed by a RUNNING trial; use heartbeats with
    :class:`~optuna.storages.RetryHeartbeatStaleTrialCallback` (the retried trial keeps the
    point) or re-run the study to evaluate it.

    Example:

        .. testcode::

            import optuna
            from optuna_transfer import WarmStartGridSampler

            optuna.logging.set_verbosity(optuna.logging.WARNING)


            def objective(trial):
                x = trial.suggest_float("x", -10, 10)
                return (x - 2) ** 2


            source = optuna.create_study()
            source.optimize(objective, n_trials=30)

            grid = {"x": [-8, -4, 0, 2, 4, 8]}
            study = optuna.create_study(sampler=WarmStartGridSampler(source, grid, seed=0))
            study.optimize(objective, n_trials=2)
            assert study.best_value <= 4.0

    Args:
        source:
            The source(s): an :class:`~optuna.study.Study`, a sequence of studies, or a sequence
            of :class:`~optuna.trial.FrozenTrial` (one source, minimised). Read once, when the
            sampler is created; unusable sources raise a :class:`ValueError`. A source given
            twice counts once, and one that ranks nothing (every trial the same value), shares
            no parameter with the grid or tried no value that fits one of its parameters is
            named in a warning (the README's table of search-space changes says what follows).
        search_space:
            A dictionary from parameter name to its candidate values, as for
            :class:`~optuna.samplers.GridSampler`. Values are ``None``, ``bool``, ``int``,
            ``float`` or ``str``; a tuple, list, dict or array raises a :class:`TypeError`
            (storage gives a tuple back as a list, so its point would never count as done).
            A value listed twice is two grid points, as with ``GridSampler``, with a warning.
        seed:
            Seed of the tie-breaking permutation. ``None`` means 0, so that workers built
            without a seed agree on the order (as ``GridSampler`` does).
        n_zero_shot:
            How many of the sources' best configurations (on their nearest grid points) to
            evaluate first, as in :class:`~optuna_transfer.TransferTPESampler`. ``None`` means
            one per source, within ``MIN_DEFAULT_PORTFOLIO`` and ``MAX_DEFAULT_PORTFOLIO``
            (``optuna_transfer._schedule``).
        n_startup_trials:
            As in :class:`~optuna_transfer.TransferTPESampler`: while the target has fewer
            finished trials than this, each trial walks the grid at random with a probability
            that falls as the largest source trust rises, and always while the best finished
            trial took its point at random.
        max_source_trials:
            Usable trials kept per source, as in :class:`~optuna_transfer.TransferTPESampler`:
            larger sources are subsampled (their best trials are always kept) with a logged
            warning, bounding memory and the time to rank the grid.
    """

    def __init__(
        self,
        source: Any,
        search_space: Mapping[str, Sequence[GridValueType]],
        *,
        seed: int | None = None,
        n_zero_shot: int | None = None,
        n_startup_trials: int = DEFAULT_N_STARTUP_TRIALS,
        max_source_trials: int = DEFAULT_MAX_SOURCE_TRIALS,
    ) -> None:
        check_integer("seed", seed, 0, maximum=MAX_SEED, none_ok=True)
        check_integer("n_zero_shot", n_zero_shot, 0, none_ok=True)
        check_integer("n_startup_trials", n_startup_trials, 0)
        check_max_source_trials(max_source_trials)
        # stacklevel 3: a warning about a grid value points at the code that built the sampler.
        self._space = GridSpace(search_space, stacklevel=3)
        self._seed = 0 if seed is None else seed
        self._n_startup_trials = n_startup_trials
        tasks: list[SourceTask] = load_sources(source, max_source_trials)
        names = [t.name for t in tasks]
        report_disjoint_sources(tasks, names, self._space.param_names, "the grid's search space")
        report_unfitting_values(tasks, names, self._space.dists, "the grid")
        self._ranker = GridRanker(
            self._space,
            tasks,
            portfolio_size(n_zero_shot, sum(not t.ranks_nothing for t in tasks)),
            self._seed,
        )
        self._claims = ClaimProtocol(self._space, self._ranker)
        # Read by Optuna's own grid tests (``_search_space``) and by this package's tests.
        self._search_space = self._space.values
        self._param_names = self._space.param_names
        self._portfolio = self._ranker.portfolio
        # The last ranking computed, and whose it is: only the latest is worth keeping, as a
        # study grows monotonically.
        self._rank_cache: _RankCache | None = None

    @classmethod
    def from_storage(
        cls,
        storage: str | optuna.storages.BaseStorage,
        study_names: str | Sequence[str],
        search_space: Mapping[str, Sequence[GridValueType]],
        *,
        seed: int | None = None,
        n_zero_shot: int | None = None,
        n_startup_trials: int = DEFAULT_N_STARTUP_TRIALS,
        max_source_trials: int = DEFAULT_MAX_SOURCE_TRIALS,
    ) -> WarmStartGridSampler:
        """Build the sampler from source studies named in a storage (URL or storage object).

        As :meth:`TransferTPESampler.from_storage`: each (storage, study) pair is read once per
        process, and errors name the study and the storage with any password redacted. Unlike
        it, the studies must be named: the grid is ranked from its sources when the sampler is
        built, before the target study is known, so it could not leave the target out.
        """
        if study_names is None:
            raise TypeError(
                "`study_names` must name the source studies (a name or a list of names), got "
                "None. To use every study of a storage, list them with "
                "optuna.get_all_study_names(storage) and leave the target study out."
            )
        check_max_source_trials(max_source_trials)
        return cls(
            load_sources_from_storage(storage, study_names, max_source_trials),
            search_space,
            seed=seed,
            n_zero_shot=n_zero_shot,
            n_startup_trials=n_startup_trials,
            max_source_trials=max_source_trials,
        )

    def is_exhausted(self, study: Study) -> bool:
        """Return True if every grid point has been evaluated by a finished trial."""
        return self._claims.n_evaluated(study) >= self._space.n_points

    def ranked_grid(self, study: Study | None = None) -> list[dict[str, Any]]:
        """The whole grid in the order the sampler ranks it now (from the sources, and
        ``study``'s results): the next trial takes the first point no trial has taken yet.

        Points already tried keep their place in it (the sources' first picks stay first
        whatever they scored), so this is the visiting order, not a verdict on tried points:
        ``study.best_trial`` is the best point found."""
        if study is None:
            score = self._ranker.portfolio_first(self._ranker.prior_score())
        else:
            score = self._ranking_score(study, _finished(study.get_trials(deepcopy=False))).score
        return [self._space.params_of(int(i)) for i in self._ranker.order(score)]

    def reseed_rng(self) -> None:
        # The order must be the same in every worker, so it does not depend on process state.
        pass

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_rank_cache"] = None  # holds a weak reference, which cannot be pickled
        return state

    def _same_search_space(self, search_space: Mapping[str, Sequence[GridValueType]]) -> bool:
        return self._space.same_as(search_space)

    def _values_of(self, grid_id: int) -> list[Any]:
        return self._space.values_of(grid_id)

    def _ranking_score(self, study: Study, finished: list[FrozenTrial]) -> Ranking:
        """The ranking given the target's ``finished`` trials, computed once per state of the
        study (several workers, or ``ranked_grid``, may ask for the same one)."""
        key = (study_key(study), tuple(t.number for t in finished))
        cached = self._rank_cache
        if cached is not None and cached.key == key:
            return cached.ranking
        ranking = self._ranker.rank(finished, trial_losses(study, finished))
        self._rank_cache = _RankCache(key, ranking)
        return ranking

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        # Retried (heartbeat) trials keep their point; enqueued trials keep their params.
        if claimed_id(trial) is not None or is_enqueued(trial):
            return
        self._claims.announce(study, trial)
        claims = self._claims.read(study)
        finished = _finished(claims.trials)
        score, max_trust, recent = self._ranking_score(study, finished)
        rng = np.random.default_rng([self._seed, trial.number])
        # Read only in the start-up, so later trials skip the pass over the losses.
        leads = len(finished) < self._n_startup_trials and chance_leads(
            study, finished, is_random_point, self._is_pick
        )
        ahead = self._claims.claimers_ahead(claims.trials, trial.number)[0]
        probed = self._claims.probed(claims)
        args = (len(finished), max_trust, recent, leads, rng)
        probe, walk = self._schedule(claims, ahead, probed, *args)
        if probe and not self._claims.claim_probe(study, trial):
            # Another worker took the probe a moment ago (or both gave it up, and a later trial
            # takes it): this trial goes on as the one after the probe.
            probe, walk = self._schedule(claims, ahead, True, *args)
        if walk and not probe:
            self._claims.mark_walk(study, trial)
        if walk:
            # At random, but the grid neighbours of failed trials last: a failing region (out
            # of memory above a batch size, divergence above a learning rate) tends to extend
            # past its first failures.
            score = rng.random(self._space.n_points)
            if probe:
                # The probe tests the sources away from their region: far from every claimed
                # point and from the portfolio (slower workers may not have claimed their
                # points yet), where the sources predict the worst, random only among ties. A
                # random probe often landed in the portfolio's region and confirmed misleading
                # sources.
                near = sorted(set(claims.by_id) | set(self._ranker.portfolio))
                score = self._ranker.probe_score(near, score)
            score -= self._ranker.near_failures(claims.failed_ids())
        self._claims.claim(study, trial, score, rng, claims, shared=not walk)

    def _is_pick(self, trial: FrozenTrial) -> bool:
        """Whether ``trial`` holds a point of the zero-shot portfolio."""
        return claimed_id(trial) in self._ranker.portfolio

    def _schedule(
        self,
        claims: Claims,
        n_ahead: int,
        probed: bool,
        n_finished: int,
        max_trust: float,
        recent: bool,
        chance_leads: bool,
        rng: np.random.Generator,
    ) -> tuple[bool, bool]:
        """Whether this trial takes the probe, and whether it walks the grid at random (the
        probe, a start-up or a stale random walk); see "Order of the trials" in the class
        docstring. ``chance_leads``: the best finished trial took its point at random
        (``optuna_transfer._schedule.chance_leads``); ``n_ahead``: earlier trials still looking
        for a point, which take the best free points first; ``probed``: a trial holds the probe.
        Without the probe a grid-misleading run spent its whole budget on a diverging plateau of
        the naval table; without the stale walk the target's own model keeps proposing the flat
        region it is stuck in.

        The phase follows what the study holds, not trial numbers: trials the user enqueued or
        added take numbers too, and would otherwise push the portfolio and the probe out.
        """
        portfolio = self._ranker.portfolio
        # Portfolio points the earlier trials still looking will take are not this trial's:
        # with slow workers ahead, every later trial would otherwise wait for a portfolio
        # point it never gets, and none would take the probe.
        n_free = sum(not claims.is_claimed(gid) for gid in portfolio)
        in_portfolio = n_free > n_ahead
        probe = bool(portfolio) and not in_portfolio and not probed
        walks = not in_portfolio and not probe
        startup = (
            walks
            and MIN_TARGET_TRIALS <= n_finished < self._n_startup_trials
            and (chance_leads or rng.uniform() < startup_explore_probability(max_trust))
        )
        # The stale walk's draw is made only when neither of the others walks.
        return probe, probe or startup or (walks and not recent and rng.uniform() > max_trust)

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return {}

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        grid_id = claimed_id(trial)
        if grid_id is None:
            names = ", ".join(repr(n) for n in self._space.param_names)
            raise ValueError(
                "All parameters must be specified when using WarmStartGridSampler with "
                f"enqueue_trial: the enqueued trial has no value for {param_name!r}. Enqueue "
                f"a value for each of the grid's parameters ({names})."
            )
        if param_name not in self._space.values:
            raise ValueError(f"The parameter name, {param_name}, is not found in the given grid.")
        value = self._space.values_of(grid_id)[self._space.param_names.index(param_name)]
        if not distribution_contains(param_distribution, value):
            warnings.warn(
                f"The value `{value}` is out of range of the parameter `{param_name}`. The value "
                f"will be used but the actual distribution is: `{param_distribution}`.",
                UserWarning,
                stacklevel=2,
            )
        return value

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        # Stop once every point is evaluated or held by a settled claim. Only an optimize loop
        # can be stopped: with ask-and-tell, Study.stop raises (as GridSampler's last tell
        # does, optuna#5141), and the caller's loop decides when to stop.
        if self._claims.n_held(study) >= self._space.n_points:
            with contextlib.suppress(RuntimeError):
                study.stop()


def _finished(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    # FAIL trials are evidence too (a diverging learning rate, an out-of-memory batch size):
    # the ranking counts them as the worst observations.
    return [t for t in trials if t.state.is_finished()]
