"""TransferTPESampler: TPE whose priors come from finished source studies."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
import functools
import json
import math
from typing import Any
from typing import cast
import warnings
import zlib

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.samplers import BaseSampler
from optuna.search_space import IntersectionSearchSpace
from optuna.study import Study
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_transfer._arguments import check_callable
from optuna_transfer._arguments import check_flag
from optuna_transfer._arguments import check_integer
from optuna_transfer._arguments import check_study
from optuna_transfer._arguments import MAX_SEED
from optuna_transfer._encoding import aligned_matrix
from optuna_transfer._encoding import conflated_choices
from optuna_transfer._encoding import encode
from optuna_transfer._encoding import n_values
from optuna_transfer._encoding import project_config
from optuna_transfer._local_search import incumbent_is_recent
from optuna_transfer._local_search import is_seen
from optuna_transfer._local_search import local_patience
from optuna_transfer._local_search import resolves_short_moves
from optuna_transfer._optuna_compat import fail_trial
from optuna_transfer._optuna_compat import is_multi_objective
from optuna_transfer._optuna_compat import PerStudy
from optuna_transfer._optuna_compat import search_space_groups
from optuna_transfer._optuna_compat import seed_tpe_sampler
from optuna_transfer._optuna_compat import set_trial_user_attr
from optuna_transfer._optuna_compat import store_constraints
from optuna_transfer._optuna_compat import StudyWithoutTrials
from optuna_transfer._optuna_compat import whole_study
from optuna_transfer._ranking import trial_losses
from optuna_transfer._schedule import chance_leads
from optuna_transfer._schedule import portfolio_size
from optuna_transfer._schedule import probe_beat_a_pick
from optuna_transfer._schedule import round_robin_portfolio
from optuna_transfer._schedule import startup_explore_probability
from optuna_transfer._similarity import MIN_JUDGED_TRIALS
from optuna_transfer._similarity import source_trusts
from optuna_transfer._similarity import trust
from optuna_transfer._similarity import vote_weight
from optuna_transfer._sources import check_max_source_trials
from optuna_transfer._sources import DEFAULT_MAX_SOURCE_TRIALS
from optuna_transfer._sources import load_sources
from optuna_transfer._sources import load_sources_from_storage
from optuna_transfer._sources import report_disjoint_sources
from optuna_transfer._sources import report_unfitting_values
from optuna_transfer._sources import SourceTask
from optuna_transfer._sources import StudyFilter
from optuna_transfer._task_model import SourceEnsemble
from optuna_transfer._tpe._claims import chosen_params
from optuna_transfer._tpe._claims import claim_role
from optuna_transfer._tpe._claims import COLD_ATTR_KEY
from optuna_transfer._tpe._claims import config_key
from optuna_transfer._tpe._claims import held_role
from optuna_transfer._tpe._claims import is_cold_trial
from optuna_transfer._tpe._claims import is_probe_trial
from optuna_transfer._tpe._claims import is_random_trial
from optuna_transfer._tpe._claims import is_startup_random
from optuna_transfer._tpe._claims import is_taken
from optuna_transfer._tpe._claims import is_zero_shot_trial
from optuna_transfer._tpe._claims import MAX_CLAIMS
from optuna_transfer._tpe._claims import params_with_running
from optuna_transfer._tpe._claims import Portfolio
from optuna_transfer._tpe._claims import RANDOM_ATTR_KEY
from optuna_transfer._tpe._claims import record
from optuna_transfer._tpe._claims import sets_nothing
from optuna_transfer._tpe._claims import switch_claim
from optuna_transfer._tpe._claims import WEIGHTS_ATTR_KEY
from optuna_transfer._tpe._claims import withdraw_missed_entry
from optuna_transfer._tpe._claims import write_running_params
from optuna_transfer._tpe._finite import finite_values
from optuna_transfer._tpe._finite import FiniteSpaceRanker
from optuna_transfer._tpe._search import choose
from optuna_transfer._tpe._search import decode_row
from optuna_transfer._tpe._search import encode_row
from optuna_transfer._tpe._search import probe_row
from optuna_transfer._tpe._search import target_observations
from optuna_transfer._tpe._search import uniform_unseen


_logger = optuna.logging.get_logger(__name__)

_TARGET = "target"
# The per-trial roles and weights are needed several times while one trial samples (relative,
# each independent parameter). Above this many entries per study, those of trials no longer
# running are dropped.
_MAX_CACHED_TRIALS = 64
# Draws (cold TPE's, each seeded anew, or the model's) before a configuration the target
# already has gives way to an untried one at random.
_MAX_DRAWS = 3
# Zero-shot candidates per portfolio entry: enough for each entry to be replaced a few times
# where sources' best configurations turn out to be one for the target.
_PORTFOLIO_CANDIDATES = 4


@dataclass
class _StudyState:
    """What the sampler remembers about one study (see :class:`PerStudy`)."""

    # trial number -> the portfolio entry it evaluates (None: not zero-shot) and whether it is
    # the probe; decided in ``before_trial``, read while the trial samples.
    roles: dict[int, tuple[dict[str, Any] | None, bool]] = field(default_factory=dict)
    # trial number -> (weights, explore) for that trial.
    weights: dict[int, tuple[dict[str, float], bool]] = field(default_factory=dict)
    # space key -> trial number -> each source's predicted quantile at that finished trial.
    predictions: dict[str, dict[int, np.ndarray]] = field(default_factory=dict)
    # The zero-shot portfolio of the sources used for this study (``_study_portfolio``).
    portfolio: Portfolio | None = None
    # Set once every portfolio entry has been evaluated and the probe has run.
    schedule_done: bool = False
    # Per source, whether it may be used for this study (see TransferTPESampler.from_storage).
    active: list[bool] | None = None
    # Set once the sources' parameters have been compared with the study's.
    overlap_reported: bool = False
    # (name, distribution) of the categorical parameters checked for choices Optuna conflates.
    choices_checked: set[tuple[str, BaseDistribution]] = field(default_factory=set)
    # trial number -> the cold TPE that samples it once every source is refuted.
    cold: optuna.samplers.TPESampler | None = None
    # The trial whose seed the cold TPE holds now.
    cold_trial: int | None = None
    # The study's intersection search space, kept incrementally: one per study, as Optuna's
    # IntersectionSearchSpace requires.
    search_space: IntersectionSearchSpace = field(
        default_factory=lambda: IntersectionSearchSpace(include_pruned=True)
    )
    # trial number -> chosen_params of that finished trial, which can no longer change: a
    # parameter sampled on its own (several objectives, ``multivariate=False``) reads them all.
    chosen: dict[int, dict[str, Any]] = field(default_factory=dict)
    # trial number -> the constraint violation of that COMPLETE trial (``trial_losses``).
    violations: dict[int, float] = field(default_factory=dict)
    # space key -> trial number -> that finished trial's point of the space's grid ranking
    # (``_tpe._finite``), or None: every trial is looked up on every model-based trial.
    grid_ids: dict[str, dict[int, int | None]] = field(default_factory=dict)


def _space_key(space: dict[str, BaseDistribution]) -> str:
    return json.dumps(
        [[n, optuna.distributions.distribution_to_json(d)] for n, d in space.items()]
    )


class TransferTPESampler(BaseSampler):
    """TPE sampler that starts from what finished source studies learned.

    The first trials evaluate a small portfolio of the sources' best configurations (the best of
    each source in turn, projected into the target's search space; one that the target would run as
    a configuration it already has is skipped), followed by one probe that tests the sources' claim
    away from their region: of ``n_ei_candidates`` random configurations, the best by rank on both
    distance from the target's trials and how badly the sources predict it to do
    (``optuna_transfer._tpe._search.probe_row``; a misleading source predicts the worst where the
    target is good); on an all-categorical space, the best by the same two ranks among every
    configuration, as WarmStartGridSampler's probe. There is no random start-up phase while the
    sources are trusted and the probe has not beaten all they chose (if it has, the start-up is
    random, as cold TPE's). From then on each trial is chosen among candidates by a weighted vote:
    the target (weight 1) with its TPE density ratio ``l(x) / g(x)``, every trusted source with its
    own ranking, smoothed over the space. Each source splits and ranks its own trials, so objective
    scales and directions may differ between tasks. A source's weight is its *trust*: the
    confidence that its predictions rank the target's finished trials in agreement with the target
    (see ``optuna_transfer._similarity``), counted only above 1/2. A misleading source loses its
    vote within a few target trials; a related one keeps helping. While the target's incumbent
    keeps improving (it is among the last ``LOCAL_PATIENCE`` finished trials; more with several
    continuous parameters where no two of the sources' configurations tie, see
    ``optuna_transfer._local_search``), the candidates are *local steps*: the configurations one
    parameter away from the best of the target's top trials, or, with several continuous
    parameters, moves of all of them together; otherwise they are drawn from each task's good
    density, as in TPE. Where every parameter is categorical (at most 100,000 configurations) every
    configuration is a candidate instead, ranked as :class:`~optuna_transfer.WarmStartGridSampler`
    ranks its grid (``optuna_transfer._tpe._finite``). A failed trial ranks as the target's worst
    observation, and a configuration the target already has (complete, pruned or failed) is never
    proposed again while an untried one exists (where parameters are sampled one at a time, each
    avoids the values that can only make one). When no source keeps a vote, local steps still go on
    while they improve on a smooth objective (the incumbent one of this sampler's own recent
    steps): related sources lose their votes there once the steps refine below what their trials
    resolve. Otherwise the trial is sampled by an internal :class:`~optuna.samplers.TPESampler`
    with the same options (seeded per trial from ``seed``), so the search is then cold TPE on the
    same history, less the zero-shot trials of the refuted sources, with two differences that keep
    it from repeating itself: it sees failed trials as its worst ones (pruned trials that reported
    nothing; plain TPE ignores them), and a configuration the target already has is drawn again, or
    replaced by an untried one at random (parameter by parameter in its random start-up). On an
    all-categorical space ranked as a grid, cold TPE takes only its random start-up: after it the
    grid ranking goes on, led by the target's own trials (it found better configurations than cold
    TPE's model there).

    The per-source weights used for each trial are stored in the trial's system attributes
    (key ``"transfer_tpe:weights"``) and returned by :meth:`get_source_weights`.

    Example:

        .. testcode::

            import optuna
            from optuna_transfer import TransferTPESampler

            optuna.logging.set_verbosity(optuna.logging.WARNING)


            def objective(trial):
                x = trial.suggest_float("x", -10, 10)
                return (x - 2) ** 2


            source = optuna.create_study()
            source.optimize(objective, n_trials=30)

            study = optuna.create_study(sampler=TransferTPESampler(source, seed=0))
            study.optimize(objective, n_trials=10)
            assert study.best_value < 1.0

    Args:
        source:
            The source(s): an :class:`~optuna.study.Study`, a sequence of studies, or a sequence
            of :class:`~optuna.trial.FrozenTrial` (one source, minimised). Source trials are
            read once, when the sampler is created. Use :meth:`from_storage` to name studies in
            a storage. How changed search spaces are aligned is documented in the README. A
            source given twice counts once, and one that ranks nothing (every trial the same
            value), shares no parameter with the study or tried no value that fits one of its
            parameters is named in a warning. The study being optimized, given as its own
            source, is named in a warning and not used.
        seed:
            Seed for the random number generator.
        n_ei_candidates:
            Number of candidates drawn from the good-density mixture for a TPE step (a local
            step scores every one-parameter move instead, and an all-categorical search space
            every configuration). The best by the vote is chosen.
        multivariate:
            Use joint (multivariate) kernels over the relative search space. ``None`` (default)
            follows :class:`~optuna.samplers.TPESampler`: on for single-objective studies, off
            for multi-objective ones.
        group:
            Sample jointly within each group of parameters that always appear together, and
            separately across groups (for conditional search spaces), as TPESampler's
            ``group``; requires ``multivariate``.
        constant_liar:
            Treat running trials as bad so parallel workers spread out, as in TPESampler.
        n_zero_shot:
            How many source-best configurations to evaluate first. ``None`` means one per
            source, at least 2 and at most 5, counting only the sources with a configuration
            of the target's parameters. A configuration that sets none of them (a source of
            another model, of a branch of a conditional space no trial has taken yet, or whose
            values no longer fit) takes no place: the next one runs instead, and it runs as
            well once a trial has taken its branch.
        n_startup_trials:
            As in TPESampler, but only as a fallback: while the target has fewer finished
            trials than this (COMPLETE or PRUNED, as TPESampler counts them; zero-shot trials
            not counted), each trial is sampled at random
            with probability (1 - largest source trust)², so with sources the target
            contradicts the search starts like cold TPE. With trusted sources there is almost
            no random phase (trust 0.8: 4% of those trials). If the probe beat one of the
            zero-shot trials, the first of them is random whatever the trust; while the best
            trial so far was itself sampled at random (the probe or such a trial), every such
            trial is random. ``0`` turns both off.
        max_source_trials:
            Usable trials kept per source; larger sources are subsampled (their best trials are
            always kept) with a logged warning, bounding memory and time per trial.
        record_user_attrs:
            Also record each trial's role (``"zero-shot"``, ``"probe"``, ``"random"``,
            ``"transfer"``, ``"cold"``, ``"enqueued"``) and weights as user attributes
            (``"transfer:role"``, ``"transfer:weight:<label>"``, ``"transfer:voters"``), where
            optuna-dashboard and ``study.trials_dataframe()`` show them. ``False`` leaves the
            user attributes to the user; the system attributes are recorded either way.
        constraints_func:
            As in TPESampler, for code written for it: computes a finished trial's constraints
            (a sequence of floats, feasible where all are <= 0), stored as TPESampler stores
            them. Deprecated in Optuna 5 (a ``FutureWarning``): prefer
            ``trial.set_constraint`` in the objective, which needs nothing from the sampler.
            Either way, trials that violate a constraint rank after every feasible one, in
            the target as in the sources.
    """

    def __init__(
        self,
        source: Any,
        *,
        seed: int | None = None,
        n_ei_candidates: int = 24,
        multivariate: bool | None = None,
        group: bool = False,
        constant_liar: bool = True,
        n_zero_shot: int | None = None,
        n_startup_trials: int = 10,
        max_source_trials: int = DEFAULT_MAX_SOURCE_TRIALS,
        record_user_attrs: bool = True,
        constraints_func: Callable[[FrozenTrial], Sequence[float]] | None = None,
    ) -> None:
        check_integer("seed", seed, 0, maximum=MAX_SEED, none_ok=True)
        check_integer("n_ei_candidates", n_ei_candidates, 1)
        check_integer("n_zero_shot", n_zero_shot, 0, none_ok=True)
        check_integer("n_startup_trials", n_startup_trials, 0)
        check_max_source_trials(max_source_trials)
        check_flag("multivariate", multivariate, none_ok=True)
        for flag, value in (
            ("group", group),
            ("constant_liar", constant_liar),
            ("record_user_attrs", record_user_attrs),
        ):
            check_flag(flag, value)
        check_callable("constraints_func", constraints_func)
        if group and multivariate is False:
            raise ValueError("`group=True` needs the multivariate TPE: drop multivariate=False.")
        if constraints_func is not None:
            warnings.warn(
                "`constraints_func` is deprecated in Optuna 5 (TPESampler's, removal planned "
                "for Optuna 7) and is supported here for code written for it. Use "
                "`optuna.trial.Trial.set_constraint` in the objective instead.",
                FutureWarning,
                stacklevel=2,
            )
        self._constraints_func = constraints_func
        tasks = load_sources(source, max_source_trials)
        self._tasks = tasks
        self._labels = _unique_labels([t.name for t in tasks])
        self._seed = seed
        self._rng = np.random.RandomState(seed) if seed is not None else None
        self._n_ei_candidates = n_ei_candidates
        self._multivariate = multivariate
        self._group = group
        self._constant_liar = constant_liar
        self._n_startup_trials = n_startup_trials
        self._record_user_attrs = record_user_attrs
        self._n_zero_shot = n_zero_shot
        self._portfolio = _build_portfolio(tasks, [True] * len(tasks), n_zero_shot)
        # Whether local steps may shorten and persist as on a smooth objective: judged on the
        # sources, where the target has too few trials to tell yet.
        self._fine = resolves_short_moves(
            (task.values, functools.partial(_params_of, task.best_trials))
            for task in tasks
            if not task.ranks_nothing
        )
        # Set by from_storage when it found the sources itself: the target may be among them.
        self._discovered = False
        self._models: dict[str, SourceEnsemble] = {}
        self._finite: dict[tuple[str, tuple[bool, ...]], FiniteSpaceRanker | None] = {}
        self._state = PerStudy(_StudyState)
        # Once every source is distrusted the sampler *is* cold TPE (public API, same options),
        # so a misleading source can cost the trials it took to detect, not convergence speed.
        self._cold_options: dict[str, Any] = dict(
            n_startup_trials=n_startup_trials,
            n_ei_candidates=n_ei_candidates,
            multivariate=multivariate,
            group=group,
            constant_liar=constant_liar,
        )
        # Each trial gets a cold TPE seeded from this and its number: reproducible, and workers
        # built with the same seed (one script copied to every worker) draw different points.
        self._cold_seed = seed if seed is not None else int(self._random.randint(2**31))

    @classmethod
    def from_storage(
        cls,
        storage: str | optuna.storages.BaseStorage,
        study_names: str | Sequence[str] | None = None,
        *,
        study_filter: StudyFilter = None,
        **kwargs: Any,
    ) -> TransferTPESampler:
        """Build the sampler from source studies in a storage (URL or storage object).

        ``study_names`` names them. Without it, every study in the storage that has a COMPLETE
        trial of finite values is a source, or those that pass ``study_filter``: a shell-style
        name pattern (``"resnet-*"``), a mapping of user attributes they must have
        (``{"model": "resnet"}``), or a callable taking the :class:`~optuna.study.FrozenStudy`.
        A target study in the same storage is then left out of its own sources (found by its
        name and trials: a namesake in another storage is a source), and so are studies with
        another number of objectives; a study that shares no
        parameter with the target gets no zero-shot trial once the target has one, and never a
        vote (logged at INFO, where a named source would get a warning).

        Each (storage, study) pair is read once per process and cached until the study changes
        (new, finished or recreated trials), so many samplers (or a sampler per worker) do not
        re-read the database. Keyword arguments are those of the constructor.

        Example:

            .. testcode::

                import optuna
                from optuna_transfer import TransferTPESampler

                optuna.logging.set_verbosity(optuna.logging.WARNING)
                storage = optuna.storages.InMemoryStorage()
                old = optuna.create_study(study_name="old", storage=storage)
                old.optimize(lambda t: t.suggest_float("x", 0, 1) ** 2, n_trials=5)

                sampler = TransferTPESampler.from_storage(storage, ["old"], seed=1)
                optuna.create_study(sampler=sampler).optimize(
                    lambda t: t.suggest_float("x", 0, 1) ** 2, n_trials=3
                )
        """
        max_trials = kwargs.get("max_source_trials", DEFAULT_MAX_SOURCE_TRIALS)
        tasks = load_sources_from_storage(storage, study_names, max_trials, study_filter)
        sampler = cls(tasks, **kwargs)
        sampler._discovered = study_names is None
        return sampler

    @property
    def source_names(self) -> list[str]:
        """Labels of the sources, as used in the recorded weights."""
        return list(self._labels)

    def get_source_weights(self, study: Study) -> dict[int, dict[str, float]]:
        """Mixture weights used for each trial of ``study``: trial number -> {label: weight}.

        Labels are :attr:`source_names` plus ``"target"``. Zero-shot trials, which follow the
        portfolio rather than the mixture, have no entry.
        """
        check_study("study", study)
        out = {}
        for t in study.get_trials(deepcopy=False):
            raw = t.system_attrs.get(WEIGHTS_ATTR_KEY)
            if raw is not None:
                out[t.number] = dict(json.loads(raw))
        return out

    def reseed_rng(self) -> None:
        self._rng = np.random.RandomState()
        self._cold_seed = int(self._rng.randint(2**31))

    @property
    def _random(self) -> np.random.RandomState:
        if self._rng is None:
            self._rng = np.random.RandomState()
        return self._rng

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        # Models and per-study state are caches of what the storage holds; a sampler sent to
        # another process rebuilds them there.
        state["_models"] = {}
        state["_finite"] = {}
        del state["_state"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._state = PerStudy(_StudyState)

    # -------------------------------------------------------------------------------------
    # BaseSampler interface
    # -------------------------------------------------------------------------------------

    def _is_multivariate(self, study: Study) -> bool:
        if self._multivariate is not None:
            return self._multivariate
        return self._group or not is_multi_objective(study)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        n_obj = len(study.directions)
        for task in self._tasks:
            if len(task.directions) != n_obj and not self._discovered:
                # Optuna has already created the trial: fail it, so no trial is left RUNNING.
                fail_trial(study, trial)
                raise ValueError(
                    f"Source {task.name!r} has {len(task.directions)} objective(s) but the "
                    f"target study has {n_obj}. Use sources with the same number of objectives."
                )
        self._cold(study, trial).before_trial(study, trial)
        state = self._state(study)
        _forget_finished(state.roles, study)
        # The portfolio and the probe are the whole study's, not a Hyperband bracket's: each
        # source configuration runs once.
        whole = whole_study(study)
        portfolio = self._study_portfolio(whole)
        held = held_role(trial, portfolio)
        if held is not None:
            entry, is_probe = held
            state.roles[trial.number] = (
                None if entry is None else portfolio.entries[entry],
                is_probe,
            )
            return
        if "fixed_params" in trial.system_attrs or trial.params or state.schedule_done:
            # Enqueued trials, and retried ones that held no entry (they carry the failed
            # trial's params), keep their params; they take no portfolio entry.
            state.roles[trial.number] = (None, False)
            return
        role = claim_role(
            whole, trial, portfolio, lambda others: self._unfit_entries(whole, others)
        )
        state.schedule_done = role.done
        if role.settled and not state.overlap_reported:
            self._report_source_mismatches(study, state)
        config = None if role.entry is None else portfolio.entries[role.entry]
        state.roles[trial.number] = (config, role.is_probe)

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        if not self._is_multivariate(study):
            return {}
        if self._group:
            # The union of the groups: conditional parameters are sampled jointly within theirs.
            space = {n: d for group in search_space_groups(study) for n, d in group.items()}
        else:
            space = self._state(study).search_space.calculate(study)
        return {n: d for n, d in space.items() if not d.single()}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        self._report_conflated_choices(study, search_space)
        params: dict[str, Any] = {}
        zero_shot = self._zero_shot_config(study, trial)
        if zero_shot is not None and set(zero_shot).isdisjoint(chosen_params(trial)):
            zero_shot = self._switch_entry(study, trial, zero_shot, search_space)
        if zero_shot is not None:
            params = project_config(zero_shot, search_space)
            params.update(self._branch_of(study, trial, zero_shot, search_space, params))
            # Parameters the source config cannot fill come from the model, so a relative
            # sample always covers the whole relative search space.
            missing = {n: d for n, d in search_space.items() if n not in params}
            if missing:
                params.update(self._sample(study, trial, missing))
            return params
        if self._is_cold(study, trial):
            # One read of the trials serves all: this runs on every trial cold TPE may take.
            trials = self._target_trials(study, trial)
            if not (
                self._refining(study, trials, search_space)
                or self._ranking_after_startup(study, trials, search_space)
            ):
                return self._sample_cold(study, trial, search_space, trials)
        for attempt in range(MAX_CLAIMS + 1):
            params = {}
            exhausted = False
            groups = self._groups(study, search_space)
            for sub in groups:
                sub_params, sub_exhausted = self._choose(
                    study, trial, sub, True, attempt, params, whole=len(groups) == 1
                )
                params.update(sub_params)
                exhausted |= sub_exhausted
            if not (params and self._constant_liar):
                break
            # Other workers read these to see where this running trial is; chunked as Optuna's
            # TPE does, for RDB backends with limited columns.
            write_running_params(study, trial, params)
            # Local steps choose from a few discrete moves, so two workers sampling at the
            # same moment would often pick the same one. Whichever of them wrote second sees
            # the other here and chooses again (as WarmStartGridSampler claims points).
            if exhausted or not is_taken(study, trial, params):
                break
        return params

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        zero_shot = self._zero_shot_config(study, trial)
        space = {param_name: param_distribution}
        self._report_conflated_choices(study, space)
        if zero_shot is not None and set(zero_shot).isdisjoint(chosen_params(trial)):
            zero_shot = self._switch_entry(study, trial, zero_shot, space)
        if zero_shot is not None:
            projected = project_config(zero_shot, space)
            projected.update(self._branch_of(study, trial, zero_shot, space, projected))
            if param_name in projected:
                return projected[param_name]
        cold = zero_shot is None and self._is_cold(study, trial)
        # Values that would make this trial a configuration the target already has: a
        # parameter sampled on its own cannot see the others, so the last one to be sampled
        # avoids them (the joint sample in ``sample_relative`` avoids repeats as a whole).
        completing = self._completing_values(study, trial, param_name, param_distribution)
        for draw in range(_MAX_DRAWS):
            if cold:
                sampler = self._cold(study, trial)
                if draw > 0:
                    seed_tpe_sampler(sampler, _derived_seed(self._cold_seed, trial.number, draw))
                history = self._cold_history(study, failed_as_pruned=True)
                value = sampler.sample_independent(history, trial, param_name, param_distribution)
            else:
                value = self._sample(study, trial, space)[param_name]
            if not is_seen(encode_row({param_name: value}, space)[None, :], completing)[0]:
                return value
        rng = self._trial_rng(trial, zlib.crc32(param_name.encode()))
        return decode_row(uniform_unseen(rng, space, completing), space)[param_name]

    def _switch_entry(
        self,
        study: Study,
        trial: FrozenTrial,
        entry: dict[str, Any],
        space: dict[str, BaseDistribution],
    ) -> dict[str, Any] | None:
        """The entry a zero-shot trial that has chosen none of ``entry``'s parameters
        evaluates, now that it suggests ``space``'s: ``entry`` if it has one of them, else
        another free entry that sets one (see ``switch_claim``), or None."""
        if not space.keys().isdisjoint(entry):
            # It has one (a value that no longer fits is the model's to replace).
            return entry
        portfolio = self._study_portfolio(study)
        held = portfolio.keys.index(config_key(entry))
        switched = switch_claim(
            whole_study(study), trial, portfolio, held, space, chosen_params(trial)
        )
        config = None if switched is None else portfolio.entries[switched]
        self._state(study).roles[trial.number] = (config, False)
        return config

    def _report_conflated_choices(
        self, study: Study, space: dict[str, BaseDistribution]
    ) -> None:
        """Warn, once per parameter and study, of choices Optuna stores as an earlier equal
        one (``1`` after ``True``): they can never be evaluated, and the sampler, which tells
        them apart, may propose one again and again as untried."""
        checked = self._state(study).choices_checked
        for name, dist in space.items():
            if not isinstance(dist, CategoricalDistribution) or (name, dist) in checked:
                continue
            checked.add((name, dist))
            pairs = conflated_choices(dist)
            if pairs:
                lost = ", ".join(f"{lost!r} as {kept!r}" for kept, lost in pairs)
                _logger.warning(
                    f"Parameter {name!r}: Optuna stores {lost} (it finds a choice by "
                    "equality), so those choices are never evaluated, and the sampler may "
                    "propose them again as untried. Make the choices distinct, e.g. strings."
                )

    def _branch_of(
        self,
        study: Study,
        trial: FrozenTrial,
        entry: dict[str, Any],
        space: dict[str, BaseDistribution],
        fixed: dict[str, Any],
    ) -> dict[str, Any]:
        """Values of ``space``'s parameters that ``entry`` does not fix (``fixed``) for a
        zero-shot trial in a conditional space: where the entry holds parameters that not
        every trial of the target suggests (those of one branch), the values of the best of
        the target's COMPLETE trials that suggested one of them, so that the trial takes
        their branch; else nothing, and the model samples them. Where no trial has taken that
        branch yet, the model's choice may miss it: the entry is then claimed again
        (``taken_entries``)."""
        always = self._state(study).search_space.calculate(study, use_cache=True)
        beyond = set(entry) - set(always)
        if not always or not beyond:
            return {}
        finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        in_branch = [t for t in finished if not beyond.isdisjoint(t.params)]
        if not in_branch:
            return {}
        best = in_branch[int(np.argmin(trial_losses(study, in_branch)))]
        return {
            n: best.params[n]
            for n, d in space.items()
            if n not in fixed and n in best.params and not math.isnan(encode(d, best.params[n]))
        }

    def _completing_values(
        self, study: Study, trial: FrozenTrial, name: str, dist: BaseDistribution
    ) -> np.ndarray:
        """The values of parameter ``name`` (encoded in ``dist``, one per row) that make this
        trial a configuration the target already has (single-valued parameters aside, see
        ``chosen_params``): those of the trials whose parameters are exactly ``trial``'s so far
        plus this one, and those with which the target has tried every combination of the
        parameters still to come (``_exhausted_values``)."""
        so_far = chosen_params(trial)
        trials = self._target_trials(study, trial)
        tried = self._chosen_params(study, trials)
        rows = [
            encode(dist, params[name])
            for params in tried
            if len(params) == len(so_far) + 1 and name in params and _holds(params, so_far)
        ]
        # The parameters every trial has had and this one has not yet: still to come. The
        # trials as this one's first read saw them (use_cache), not a storage read per parameter.
        space = self._state(study).search_space.calculate(study, use_cache=True)
        if not space:
            # No trial has completed (out of memory on every run, say), so that space is
            # empty: the failed trials' parameters are the ones to come.
            space = _shared_distributions(
                [t for t in trials if t.state == TrialState.FAIL and t.params]
            )
        rest = {n: d for n, d in space.items() if n != name and n not in so_far and not d.single()}
        if rest:
            rows += _exhausted_values(name, dist, so_far, rest, tried)
        return np.array(rows).reshape(-1, 1)

    def _chosen_params(self, study: Study, trials: list[FrozenTrial]) -> list[dict[str, Any]]:
        """``chosen_params`` of each of ``trials``, kept for the finished ones."""
        cache = self._state(study).chosen
        out = []
        for t in trials:
            if not t.state.is_finished():
                out.append(chosen_params(t))
                continue
            if t.number not in cache:
                cache[t.number] = chosen_params(t)
            out.append(cache[t.number])
        return out

    def _cold(self, study: Study, trial: FrozenTrial) -> optuna.samplers.TPESampler:
        """The study's cold TPE, seeded for this trial (see ``_cold_seed``). One sampler per
        study keeps Optuna's incremental search-space cache; reseeding it gives exactly the
        draws of a TPESampler created with this trial's seed."""
        state = self._state(study)
        seed = _derived_seed(self._cold_seed, trial.number)
        if state.cold is None:
            state.cold = optuna.samplers.TPESampler(seed=seed, **self._cold_options)
        elif state.cold_trial != trial.number:
            seed_tpe_sampler(state.cold, seed)
        state.cold_trial = trial.number
        return state.cold

    def _is_cold(self, study: Study, trial: FrozenTrial) -> bool:
        """Whether every source has lost its vote for this trial (the probe excepted)."""
        if self._role(study, trial)[1]:
            return False
        weights, _ = self._trial_weights(study, trial)
        return all(weights[label] == 0.0 for label in self._labels)

    def _refining(
        self, study: Study, trials: list[FrozenTrial], space: dict[str, BaseDistribution]
    ) -> bool:
        """Whether the target's local search goes on although no source keeps a vote: on an
        objective that resolves short moves, while the incumbent is recent (as local steps
        require) and was this sampler's own step, not a zero-shot pick, a random trial or cold
        TPE's.

        There sources lose their votes because the local steps refine below what their
        trials resolve, not because the target refuted them, and cold TPE's broad steps would
        leave a search that is still improving. On a table (ties among the sources' trials) a
        finer step than the sources resolve finds nothing new, so cold TPE takes over at once.
        """
        if not self._fine:
            return False
        # The finished trials with a parameter of this space, as local steps see them; read
        # without encoding their values, since this runs on every trial cold TPE may take.
        finished = [
            t
            for t in trials
            if t.state.is_finished() and any(name in t.params for name in space)
        ]
        losses = trial_losses(study, finished, self._state(study).violations)
        numbers = np.array([t.number for t in finished], dtype=int)
        if not incumbent_is_recent(losses, numbers, local_patience(space, self._fine)):
            return False
        incumbent = finished[int(np.argmin(losses))]
        return not (
            is_zero_shot_trial(incumbent) or is_random_trial(incumbent) or is_cold_trial(incumbent)
        )

    def _ranking_after_startup(
        self, study: Study, trials: list[FrozenTrial], space: dict[str, BaseDistribution]
    ) -> bool:
        """Whether the grid ranking of an all-categorical space (``optuna_transfer._tpe._finite``)
        goes on although no source keeps a vote: once cold TPE's random start-up is over, that
        is, once the target has ``n_startup_trials`` finished trials besides the zero-shot ones
        (``trials``: the target's, as ``_target_trials`` read them).

        With its sources refuted the ranking rests on the target's own density ratio and local
        steps (each source weighs what its own overall trust gives it, as in
        WarmStartGridSampler, which has no cold fallback). On the categorical tables it found
        better configurations than cold TPE's model at 50 trials, misleading sources included
        (benchmarks/README.md). During the start-up cold TPE's random trials come first: a
        ranking of a few trials commits too early.
        """
        explored = sum(t.state.is_finished() and not is_zero_shot_trial(t) for t in trials)
        if explored < self._n_startup_trials:
            return False  # counted first: the ranking is not built for a start-up trial
        if len(self._groups(study, space)) != 1:
            return False  # each group is sampled apart, none is ranked as a grid
        return self._finite_ranker(study, space, _space_key(space)) is not None

    def _sample_cold(
        self,
        study: Study,
        trial: FrozenTrial,
        search_space: dict[str, BaseDistribution],
        trials: list[FrozenTrial],
    ) -> dict[str, Any]:
        """Cold TPE's sample of ``search_space`` for this trial (``trials``: the target's, as
        ``_target_trials`` read them), on the target's history with failures as its worst
        trials (see ``_cold_history``), unless it is a configuration the target already has or
        another worker has just drawn (``_drawn_by_another``): then cold
        TPE reseeded, up to ``_MAX_DRAWS`` draws in all, and if every draw was one, a
        configuration the target does not have, drawn at random and claimed the same way.
        During cold TPE's random start-up this returns nothing and the parameters are its
        random draws (``sample_independent``), as they are.

        Optuna's TPE proposes its incumbent again in a discrete space; next to a region that
        fails it proposed the same failing configuration dozens of times in a long study.
        """
        cold = self._cold(study, trial)
        # Read by ``_refining``: an incumbent cold TPE found is no local search to go on with.
        record(study, trial, COLD_ATTR_KEY, True)
        # The search space from the trials as they are: a trial that failed part-way lacks
        # parameters, and listed as pruned it would shrink the space.
        cold.infer_relative_search_space(self._cold_history(study), trial)
        history = self._cold_history(study, failed_as_pruned=True)
        so_far = chosen_params(trial)
        for draw in range(_MAX_DRAWS):
            if draw > 0:
                seed_tpe_sampler(cold, _derived_seed(self._cold_seed, trial.number, draw))
            params = cold.sample_relative(history, trial, search_space)
            if not params:
                return params  # cold TPE's random start-up
            if not _repeats({**so_far, **params}, trials) and not self._drawn_by_another(
                study, trial, params
            ):
                return params
        # Near the end of a small space every worker draws from the same few untried
        # configurations, so a draw is claimed as cold TPE's are: of two workers with the same
        # draw, the one that published second sees the other and draws again.
        for attempt in range(MAX_CLAIMS + 1):
            x, _, numbers = target_observations(
                study, trials, search_space, self._state(study).violations
            )
            tried_rows = x[_completed_by(search_space, so_far, trials, numbers)]
            rng = self._trial_rng(trial, attempt) if attempt else self._trial_rng(trial)
            u = uniform_unseen(rng, search_space, tried_rows)
            params = decode_row(u, search_space)
            self._publish_cold(study, trial, params)
            if is_seen(u[None, :], tried_rows)[0]:
                break  # every configuration is tried or running: a repeat cannot be avoided
            # Taken since the trials were read: by a running trial's published draw, or by a
            # trial that has finished meanwhile. The next draw avoids it.
            trials = self._target_trials(study, trial)
            if not _repeats({**so_far, **params}, trials):
                break
        return params

    def _drawn_by_another(self, study: Study, trial: FrozenTrial, params: dict[str, Any]) -> bool:
        """Whether, once ``params`` are published as this trial's (``_publish_cold``), another
        running trial has them too: of two workers that drew the same configuration at the
        same moment, the one that wrote second sees the other, as with the transfer path's
        claims."""
        return self._publish_cold(study, trial, params) and is_taken(study, trial, params)

    def _publish_cold(self, study: Study, trial: FrozenTrial, params: dict[str, Any]) -> bool:
        """With constant liar and other trials running, write ``params`` as this running
        trial's, for the other workers to read; whether it did. Alone, nothing is written:
        every published attribute is one more that Optuna's TPE reads on every trial, every
        trial (its constraints)."""
        if not (self._constant_liar and self._others_running(study, trial)):
            return False
        write_running_params(study, trial, params)
        return True

    @staticmethod
    def _cold_history(study: Study, failed_as_pruned: bool = False) -> Study:
        """``study`` without its zero-shot trials, for the internal cold TPE; with
        ``failed_as_pruned``, its failed trials listed as pruned ones that reported nothing.

        Cold TPE takes over only once every source is distrusted, i.e. the target refuted the
        region the portfolio came from. Those trials then sit far from where the search goes,
        and keeping them measurably slows TPE down (on the ``misleading`` benchmark). A
        study's own startup trials are what TPE expects, so it gets exactly those. Optuna's
        TPE ignores failed trials; as pruned trials that reported nothing it ranks them below
        every other, as this sampler ranks a failure, and steers away from where they failed.
        """
        return cast(Study, StudyWithoutTrials(study, is_zero_shot_trial, failed_as_pruned))

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        if self._constraints_func is not None:
            store_constraints(self._constraints_func, study, trial, state)
        trial = withdraw_missed_entry(whole_study(study), trial, self._study_portfolio(study))
        self._cold(study, trial).after_trial(study, trial, state, values)
        if self._record_user_attrs:
            # The trial is still RUNNING here (Optuna finishes it after this call), so its
            # user attributes can still be written.
            from optuna_transfer.visualization._dashboard import trial_user_attrs

            for key, value in trial_user_attrs(trial).items():
                set_trial_user_attr(study, trial, key, value)
        study_state = self._state(study)
        study_state.roles.pop(trial.number, None)
        study_state.weights.pop(trial.number, None)

    # -------------------------------------------------------------------------------------
    # Zero-shot portfolio and probe
    # -------------------------------------------------------------------------------------

    def _role(self, study: Study, trial: FrozenTrial) -> tuple[dict[str, Any] | None, bool]:
        """The portfolio entry ``trial`` evaluates (or None) and whether it is the probe."""
        return self._state(study).roles.get(trial.number, (None, False))

    def _zero_shot_config(self, study: Study, trial: FrozenTrial) -> dict[str, Any] | None:
        return self._role(study, trial)[0]

    def _active(self, study: Study) -> list[bool]:
        """Per source, whether it is used for ``study``: not when it ranks nothing (a warning
        said so when it was loaded), nor when it is the target itself, nor when from_storage
        found it and it has another number of objectives."""
        state = self._state(study)
        if state.active is None:
            n_obj = len(study.directions)
            itself = [_is_the_study(task, study) for task in self._tasks]
            fits = [
                not s and (not self._discovered or len(task.directions) == n_obj)
                for s, task in zip(itself, self._tasks)
            ]
            state.active = [f and not t.ranks_nothing for f, t in zip(fits, self._tasks)]
            left_out = [label for label, f in zip(self._labels, fits) if not f]
            if self._discovered and left_out:
                _logger.info(
                    f"Sources not used for study {study.study_name!r} (the study itself, or "
                    f"another number of objectives): {left_out}."
                )
            elif any(itself):
                # Passed by hand, it is a mistake (resuming a study with itself as "the old
                # study"): its trials are the target's own, which would vote for themselves.
                named = ", ".join(repr(label) for label, s in zip(self._labels, itself) if s)
                _logger.warning(
                    f"Source {named} is the target study itself: it is not used as a source. "
                    "Pass the studies to transfer from, not the one being optimized."
                )
        return state.active

    def _report_source_mismatches(self, study: Study, state: _StudyState) -> None:
        """Once the study has a finished trial (its parameters known), log the sources that
        share none of them, or whose values of one never fit (``report_disjoint_sources``,
        ``report_unfitting_values``)."""
        finished = study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        )
        # The latest distribution of each parameter, as the next trials will suggest it.
        dists = {n: d for t in finished for n, d in t.distributions.items()}
        if not dists:
            return
        state.overlap_reported = True
        active = self._active(study)
        tasks = [t for t, a in zip(self._tasks, active) if a]
        labels = [label for label, a in zip(self._labels, active) if a]
        target = f"study {study.study_name!r}"
        report_disjoint_sources(
            tasks,
            labels,
            dists,
            f"the trials of {target} so far",
            expected=self._discovered,
            note=(
                " In a conditional search space, a source of a branch no trial has taken yet "
                "gets its zero-shot trial once one has."
            ),
        )
        report_unfitting_values(tasks, labels, dists, target, expected=self._discovered)

    def _unfit_entries(self, study: Study, trials: list[FrozenTrial]) -> set[int]:
        """Portfolio entries not to evaluate in ``study``: from a source left out for it, or
        no configuration of the target's trials so far (``sets_nothing``)."""
        active = self._active(study)
        portfolio = self._study_portfolio(study)
        left_out = {i for i, source in enumerate(portfolio.sources) if not active[source]}
        return left_out | sets_nothing(trials, portfolio)

    def _study_portfolio(self, study: Study) -> Portfolio:
        """The portfolio of the sources used for ``study``: a study ``from_storage`` found
        that is the target itself, restarted, or has another number of objectives neither
        adds an entry nor counts towards the default size."""
        state = self._state(study)
        if state.portfolio is None:
            active = self._active(study)
            unused = [not a and not t.ranks_nothing for a, t in zip(active, self._tasks)]
            state.portfolio = (
                _build_portfolio(self._tasks, active, self._n_zero_shot)
                if any(unused)
                else self._portfolio
            )
        return state.portfolio

    # -------------------------------------------------------------------------------------
    # Model-based sampling
    # -------------------------------------------------------------------------------------

    def _groups(
        self, study: Study, space: dict[str, BaseDistribution]
    ) -> list[dict[str, BaseDistribution]]:
        """``space`` split, with ``group``, into Optuna's groups of parameters that always
        appear together, each sampled jointly (as TPESampler's ``group``); else whole."""
        if not self._group:
            return [space]
        groups = [
            {n: space[n] for n in group if n in space} for group in search_space_groups(study)
        ]
        return [g for g in groups if g]

    def _target_trials(self, study: Study, trial: FrozenTrial) -> list[FrozenTrial]:
        # Failed trials count as bad observations (see trial_losses), and as tried.
        states: tuple[TrialState, ...] = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        if self._constant_liar:
            states += (TrialState.RUNNING,)
        trials = study.get_trials(deepcopy=False, states=states)
        return [t for t in trials if t.number != trial.number]

    def _sources(self, space: dict[str, BaseDistribution]) -> SourceEnsemble:
        key = _space_key(space)
        ensemble = self._models.get(key)
        if ensemble is None:
            ensemble = SourceEnsemble(self._tasks, space)
            self._models[key] = ensemble
        return ensemble

    def _finite_ranker(
        self, study: Study, space: dict[str, BaseDistribution], space_key: str
    ) -> FiniteSpaceRanker | None:
        """The grid ranking of ``space`` (``space_key``: its ``_space_key``) if it is
        categorical and small enough to list (``optuna_transfer._tpe._finite``), over the
        sources used for ``study``; else None."""
        active = self._active(study)
        key = (space_key, tuple(active))
        if key not in self._finite:
            values = finite_values(space)
            tasks = [t for t, a in zip(self._tasks, active) if a]
            # Seeded as WarmStartGridSampler's tie-break: workers without a seed agree on it.
            seed = 0 if self._seed is None else self._seed
            self._finite[key] = None if values is None else FiniteSpaceRanker(values, tasks, seed)
        return self._finite[key]

    def _sample(
        self, study: Study, trial: FrozenTrial, space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._choose(study, trial, space, False, 0)[0]

    def _choose(
        self,
        study: Study,
        trial: FrozenTrial,
        space: dict[str, BaseDistribution],
        joint: bool,
        attempt: int,
        chosen: dict[str, Any] | None = None,
        whole: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """One configuration of ``space``: a local step around the target's best trials while
        they keep improving (``joint`` spaces only), else a TPE step over the whole space.
        After ``attempt`` lost claims, one of the ``attempt + 1`` best candidates at random.
        Also returns whether every candidate was one the target already has. ``chosen``:
        parameters this trial has been given in the same joint sample (earlier groups);
        ``whole``: ``space`` is the trial's whole relative search space, not one of its groups."""
        weights, explore = self._trial_weights(study, trial)
        # Workers built with the same seed share their sampler's random state. A joint sample
        # is claimed, and after a lost claim gets a generator of this trial's own. A parameter
        # sampled on its own is never claimed, so while other trials run (a worker may be
        # drawing the same parameter this moment) it gets a generator of this trial and
        # parameter too. Alone, the study keeps the sampler's stream (seeded runs unchanged);
        # unseeded samplers draw from OS entropy, which workers do not share.
        if attempt > 0:
            rng = self._trial_rng(trial, attempt)
        elif not joint and self._seed is not None and self._others_running(study, trial):
            rng = self._trial_rng(trial, 0, *(zlib.crc32(n.encode()) for n in space))
        else:
            rng = self._random
        is_probe = self._role(study, trial)[1]
        # On a categorical space every configuration is ranked, as on a grid, and the probe is
        # chosen among them all. Not per group of a conditional space: a trial's configuration
        # is then more than one group's.
        if whole and (is_probe or not explore):
            space_key = _space_key(space)
            finite = self._finite_ranker(study, space, space_key)
            if finite is not None:
                state = self._state(study)
                ids = state.grid_ids.setdefault(space_key, {})
                if is_probe:
                    params = finite.probe(study, trial, rng, ids)
                else:
                    params = finite.choose(study, trial, attempt, state.violations, ids)
                if params is not None:
                    return params, False
        trials = self._target_trials(study, trial)
        x, losses, numbers = target_observations(
            study, trials, space, self._state(study).violations
        )
        # Configurations the target already has, as rows of this space: trials whose other
        # parameters are exactly this trial's so far (in a conditional space, a trial of a
        # branch with more parameters is not repeated by matching its row here).
        so_far = {**chosen_params(trial), **(chosen or {})}
        tried = x[_completed_by(space, so_far, trials, numbers)]
        if explore:
            if is_probe:
                # The probe tests the sources' claim where their portfolio is not, and where
                # they predict the worst: a random probe often landed in the portfolio's own
                # region (a misleading source's diverging learning rates) and confirmed
                # sources that were wrong.
                active = [i for i, a in enumerate(self._active(study)) if a]
                u = probe_row(
                    rng,
                    space,
                    x,
                    self._n_ei_candidates,
                    lambda rows: self._sources(space).predicted_quantiles(rows, active),
                )
            else:
                u = uniform_unseen(rng, space, tried)
            return decode_row(u, space), False
        best, start, exhausted = choose(
            x,
            losses,
            numbers,
            space,
            self._sources(space),
            [weights[label] for label in self._labels],
            self._n_ei_candidates,
            joint,
            attempt,
            rng,
            self._fine,
            tried,
        )
        params = decode_row(best, space)
        if start is not None:
            # A local step keeps the other parameters exactly as the start trial had them
            # (decoding its unit coordinates could differ in the last bits). The start is a
            # finished trial (finite loss), so its params are all recorded.
            start_params = next(t for t in trials if t.number == numbers[start]).params
            for j, name in enumerate(space):
                if best[j] == x[start, j] and name in start_params:
                    params[name] = start_params[name]
        return params, exhausted

    def _trial_rng(self, trial: FrozenTrial, *keys: int) -> np.random.RandomState:
        entropy = self._seed if self._seed is not None else self._random.randint(2**31)
        state = np.random.SeedSequence([entropy, trial.number, *keys]).generate_state(1)
        return np.random.RandomState(int(state[0]))

    @staticmethod
    def _others_running(study: Study, trial: FrozenTrial) -> bool:
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        return any(t.number != trial.number for t in running)

    def _predictions(
        self, study: Study, finished: list[FrozenTrial], space: dict[str, BaseDistribution]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each source's predicted quantile (n_trials x n_sources) at the target's finished
        trials, and the target's losses. Finished trials never change, so predictions are
        cached per trial and only new trials cost model evaluations."""
        cache = self._state(study).predictions.setdefault(_space_key(space), {})
        new = [t for t in finished if t.number not in cache]
        if new:
            x = aligned_matrix(new, space)
            quantiles = self._sources(space).predicted_quantiles(x)
            # A trial with none of these params says nothing: it is left out (NaN).
            quantiles[np.all(np.isnan(x), axis=1)] = np.nan
            for i, t in enumerate(new):
                cache[t.number] = quantiles[i]
        predictions = np.array([cache[t.number] for t in finished]).reshape(len(finished), -1)
        losses = trial_losses(study, finished, self._state(study).violations)
        keep = ~np.isnan(predictions).any(axis=1)
        return predictions[keep], losses[keep]

    def _trial_weights(self, study: Study, trial: FrozenTrial) -> tuple[dict[str, float], bool]:
        """Per-source weights for this trial, and whether it explores at random instead.

        The trial after the zero-shot portfolio is always the probe (see ``_choose``). While
        the target has fewer than ``n_startup_trials`` finished trials, a trial is sampled at
        random with probability (1 - largest source trust)²: with sources the target
        contradicts, the search starts like cold TPE rather than refining a bad region. It is
        random too while the best trial is a random one (``chance_leads``); with several
        objectives there is no single best trial, and trust alone decides. After a probe that
        beat a pick (``probe_beat_a_pick``), the first start-up trial is random whatever the
        trust: it tests the picks against a typical configuration.

        Sources are judged on the target's COMPLETE trials only. A failed trial says that its
        region fails on the target (out of memory, divergence), not that a source ranks the
        objective wrongly; the target's own model ranks it worst and steers away from it.
        Judging sources on failures too hands the search to cold TPE, which ignores them.
        """
        cache = self._state(study).weights
        cached = cache.get(trial.number)
        if cached is not None:
            return cached
        finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        trusts = self._trusts(study, finished)
        weights = {_TARGET: 1.0, **{k: vote_weight(v) for k, v in trusts.items()}}
        is_probe = self._role(study, trial)[1]
        # As TPESampler's start-up, COMPLETE and PRUNED trials count: under a pruner that prunes
        # most random trials, COMPLETE ones alone would keep the start-up going to the end.
        # Zero-shot trials do not count: they explore nothing.
        counted = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        n_explored = sum(not is_zero_shot_trial(t) for t in counted)
        explore = is_probe or (
            n_explored < self._n_startup_trials
            and (
                self._uniform_trial_due(study, trial, finished)
                or self._startup_explores(study, finished, max(trusts.values(), default=0.0))
            )
        )
        _forget_finished(cache, study)
        cache[trial.number] = (weights, explore)
        if explore and not is_probe:
            record(study, trial, RANDOM_ATTR_KEY, True)
        record(study, trial, WEIGHTS_ATTR_KEY, json.dumps(list(weights.items())))
        return weights, explore

    def _uniform_trial_due(
        self, study: Study, trial: FrozenTrial, finished: list[FrozenTrial]
    ) -> bool:
        """Whether this start-up trial must be random: the probe beat a pick
        (``probe_beat_a_pick``) and no other trial, running or finished, is random yet."""
        if not probe_beat_a_pick(study, finished, is_probe_trial, is_zero_shot_trial):
            return False
        if any(is_startup_random(t) for t in finished):
            return False
        # Only until the random trial has completed: one running elsewhere, or failed, is
        # not among ``finished``.
        others = study.get_trials(deepcopy=False)
        return not any(t.number != trial.number and is_startup_random(t) for t in others)

    def _startup_explores(
        self, study: Study, finished: list[FrozenTrial], max_trust: float
    ) -> bool:
        """Whether a start-up trial is sampled at random: always while a random trial leads
        (``chance_leads``), else with ``startup_explore_probability(max_trust)``."""
        if chance_leads(study, finished, is_random_trial, is_zero_shot_trial):
            return True
        return bool(self._random.uniform() < startup_explore_probability(max_trust))

    def _trusts(self, study: Study, finished: list[FrozenTrial]) -> dict[str, float]:
        """Each source's trust (``optuna_transfer._similarity``) given the target's ``finished``
        trials; the prior's trust before two of them. A source of one branch of a conditional
        space is judged on that branch's trials."""
        space = self._state(study).search_space.calculate(study)
        space = {n: d for n, d in space.items() if not d.single()}
        if len(finished) < 2 or not space:
            trusts = [trust(0.0, 0)] * len(self._labels)
        else:
            predictions, losses = self._predictions(study, finished, space)
            # Higher predicted quantile = worse, so the sources' scores are its negation.
            trusts = source_trusts(-predictions, losses)
        # A source that shares no parameter with the target's trials ranks every
        # configuration alike: its agreement is the prior's, but it has nothing to vote for.
        active = self._active(study)
        used = [
            a and (not space or not task.param_names.isdisjoint(space))
            for a, task in zip(active, self._tasks)
        ]
        if not all(used):
            # Beyond the joint space: a conditional space's branches. A source of one branch
            # (a model's own parameters) ranks every trial alike on the joint space (the
            # branch choice is none of its parameters), so it is judged on its parameters,
            # among the trials that took its branch.
            dists = {n: d for t in finished for n, d in t.distributions.items()}
            for i, task in enumerate(self._tasks):
                branch = {
                    n: d for n, d in dists.items() if n in task.param_names and not d.single()
                }
                if used[i] or not active[i] or not branch:
                    continue
                used[i] = True
                predictions, losses = self._predictions(study, finished, branch)
                # Until its branch has trials enough to judge it, it keeps what the joint
                # space gave it (nothing, once the prior has faded).
                if len(losses) >= MIN_JUDGED_TRIALS:
                    trusts[i] = source_trusts(-predictions, losses)[i]
        return {label: t if u else 0.0 for label, t, u in zip(self._labels, trusts, used)}


def _repeats(params: dict[str, Any], trials: list[FrozenTrial]) -> bool:
    """Whether a trial given ``params`` would repeat one of ``trials``: its chosen parameters
    are exactly ``params``, or, for a COMPLETE trial, all among them. A joint sample of a
    conditional space also holds values of branches the trial will not take; a COMPLETE
    trial whose parameters it contains took the same branches and suggested nothing else."""
    for t in trials:
        chosen = params_with_running(t)
        if chosen.keys() != params.keys():
            # Only where parameters differ can fixed ones be what differs (flat spaces skip it).
            chosen = chosen_params(t)
        if chosen == params:
            return True
        if chosen and t.state == TrialState.COMPLETE and _holds(params, chosen):
            return True
    return False


def _completed_by(
    space: dict[str, BaseDistribution],
    so_far: dict[str, Any],
    trials: list[FrozenTrial],
    numbers: np.ndarray,
) -> np.ndarray:
    """For each trial number of ``numbers`` (of ``trials``), whether a row of ``space`` equal
    to the trial's would make a trial with parameters ``so_far`` that configuration: its
    chosen parameters outside ``space`` are exactly ``so_far`` (values of the same type)."""
    done = set()
    for t in trials:
        if params_with_running(t).keys() <= space.keys():
            outside = {}  # the usual case, a flat space: no parameter outside it
        else:
            outside = {k: v for k, v in chosen_params(t).items() if k not in space}
        if outside.keys() == so_far.keys() and _holds(outside, so_far):
            done.add(t.number)
    return np.array([int(n) in done for n in numbers], dtype=bool)


def _holds(params: dict[str, Any], part: dict[str, Any]) -> bool:
    """Whether ``params`` has every parameter of ``part`` with the same value, of the same type
    (``True`` is not ``1``)."""
    return all(
        k in params and type(params[k]) is type(v) and params[k] == v for k, v in part.items()
    )


def _is_the_study(task: SourceTask, study: Study) -> bool:
    """Whether ``task`` is ``study`` itself, read as a source: the same name, and every trial
    it holds is one of the study's (a namesake in another storage, the model re-tuned in a
    new database, has trials of its own)."""
    if task.name != study.study_name:
        return False
    trials = {(t.number, t.datetime_start) for t in study.get_trials(deepcopy=False)}
    return all((t.number, t.datetime_start) in trials for t in task.trials)


def _build_portfolio(
    tasks: Sequence[SourceTask], active: Sequence[bool], n_zero_shot: int | None
) -> Portfolio:
    """The zero-shot portfolio of the ``active`` sources among ``tasks`` (``n_zero_shot``
    entries, by default one per source that ranks anything), with the candidates beyond its
    size that take the place of entries which turn out to be one configuration for the
    target (``entries_in_play``)."""
    used = [i for i, (t, a) in enumerate(zip(tasks, active)) if a and not t.ranks_nothing]
    size = portfolio_size(n_zero_shot, len(used))
    best = round_robin_portfolio(
        [tasks[i] for i in used], _PORTFOLIO_CANDIDATES * size, lambda t: config_key(t.params)
    )
    return Portfolio(
        [dict(t.params) for _, t in best],
        [used[i] for i, _ in best],
        min(size, len(best)),
        per_source=n_zero_shot is None,
    )


def _shared_distributions(trials: Sequence[FrozenTrial]) -> dict[str, BaseDistribution]:
    """The parameters every one of ``trials`` has had with one distribution, as Optuna's
    ``IntersectionSearchSpace`` finds them among COMPLETE and PRUNED trials."""
    if not trials:
        return {}
    shared = dict(trials[0].distributions)
    for t in trials[1:]:
        shared = {n: d for n, d in shared.items() if t.distributions.get(n) == d}
    return shared


def _exhausted_values(
    name: str,
    dist: BaseDistribution,
    so_far: dict[str, Any],
    rest: dict[str, BaseDistribution],
    tried: list[dict[str, Any]],
) -> list[float]:
    """The values of ``name`` (encoded in ``dist``) with which ``tried`` holds every
    combination of ``rest``'s values beside ``so_far``: whatever the later parameters draw,
    the configuration is one the target has. Empty while a parameter of ``rest`` is
    continuous. Parameters drawn one at a time (cold TPE's random start-up, or
    ``multivariate=False``) otherwise make a repeat certain in a small discrete space."""
    sizes = [n_values(d) for d in rest.values()]
    if any(size is None for size in sizes):
        return []
    combinations = math.prod(size for size in sizes if size is not None)
    if combinations > len(tried):
        return []
    names = {*so_far, name, *rest}
    seen: dict[float, set[tuple[float, ...]]] = {}
    for params in tried:
        if params.keys() != names or not _holds(params, so_far):
            continue
        u = encode(dist, params[name])
        combination = tuple(encode(d, params[n]) for n, d in rest.items())
        # A value outside today's distributions (a range since changed) is no combination.
        if not np.isnan(u) and not np.isnan(combination).any():
            seen.setdefault(u, set()).add(combination)
    return [u for u, combos in seen.items() if len(combos) == combinations]


def _derived_seed(seed: int, number: int, draw: int = 0) -> int:
    # Not ``seed`` itself: cold TPE's random start-up draws would repeat this sampler's own.
    keys = [seed, 1, number] + ([draw] if draw else [])
    return int(np.random.SeedSequence(keys).generate_state(1)[0])


def _params_of(trials: Sequence[FrozenTrial], i: int) -> tuple[tuple[str, Any], ...]:
    """Trial ``i``'s params as a hashable key."""
    return tuple(sorted(trials[i].params.items()))


def _unique_labels(names: list[str]) -> list[str]:
    """One label per source: its name, made unique (``name#i``) where names repeat or would
    read as the target's own label."""
    labels: list[str] = []
    for i, name in enumerate(names):
        label = name if names.count(name) == 1 and name != _TARGET else f"{name}#{i}"
        while label in labels or label == _TARGET:
            label += "'"
        labels.append(label)
    return labels


def _forget_finished(cache: dict[int, Any], study: Study) -> None:
    """Drop the entries of finished trials from a per-trial ``cache`` once it holds more than
    ``_MAX_CACHED_TRIALS``. ``after_trial`` drops a trial's own entry, but not that of a trial
    told in another process. Running trials keep theirs, however many: a batch asked at once
    samples after every trial of it has begun, and each must keep its role and its draw."""
    if len(cache) <= _MAX_CACHED_TRIALS:
        return
    states = (TrialState.RUNNING, TrialState.WAITING)
    running = {t.number for t in study.get_trials(deepcopy=False, states=states)}
    for number in [n for n in cache if n not in running]:
        del cache[number]
