"""TransferTPESampler: TPE whose priors come from finished source studies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
import json
from typing import Any
from typing import cast

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.samplers import BaseSampler
from optuna.search_space import IntersectionSearchSpace
from optuna.study import Study
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_transfer._encoding import aligned_matrix
from optuna_transfer._encoding import decode
from optuna_transfer._encoding import encode
from optuna_transfer._encoding import project
from optuna_transfer._local_search import incumbent_is_recent
from optuna_transfer._local_search import is_seen
from optuna_transfer._local_search import LOCAL_STARTS
from optuna_transfer._local_search import neighbours
from optuna_transfer._optuna_compat import fail_trial
from optuna_transfer._optuna_compat import get_chunked_system_attr
from optuna_transfer._optuna_compat import is_multi_objective
from optuna_transfer._optuna_compat import PerStudy
from optuna_transfer._optuna_compat import search_space_groups
from optuna_transfer._optuna_compat import set_chunked_system_attr
from optuna_transfer._optuna_compat import set_trial_system_attr
from optuna_transfer._optuna_compat import set_trial_user_attr
from optuna_transfer._optuna_compat import StudyWithoutTrials
from optuna_transfer._ranking import trial_losses
from optuna_transfer._schedule import check_n_zero_shot
from optuna_transfer._schedule import one_of_best
from optuna_transfer._schedule import portfolio_size
from optuna_transfer._schedule import round_robin_portfolio
from optuna_transfer._schedule import startup_explore_probability
from optuna_transfer._similarity import source_trusts
from optuna_transfer._similarity import trust
from optuna_transfer._similarity import vote
from optuna_transfer._similarity import vote_weight
from optuna_transfer._sources import check_max_source_trials
from optuna_transfer._sources import DEFAULT_MAX_SOURCE_TRIALS
from optuna_transfer._sources import load_sources
from optuna_transfer._sources import load_sources_from_storage
from optuna_transfer._sources import StudyFilter
from optuna_transfer._task_model import choice_counts
from optuna_transfer._task_model import SourceEnsemble
from optuna_transfer._task_model import SourceModel
from optuna_transfer._task_model import TargetModel


_logger = optuna.logging.get_logger(__name__)

WEIGHTS_ATTR_KEY = "transfer_tpe:weights"
# The portfolio entry (its params as JSON) a zero-shot trial evaluates; "null" once withdrawn.
ZERO_SHOT_ATTR_KEY = "transfer_tpe:zero_shot"
PROBE_ATTR_KEY = "transfer_tpe:probe"
# On a start-up trial sampled at random (the probe excepted).
RANDOM_ATTR_KEY = "transfer_tpe:random"
_RELATIVE_PARAMS_KEY = "transfer_tpe:relative_params"
_WITHDRAWN = "null"
_TARGET = "target"
# Scale of the random tie-break added to candidates' votes (votes are ranks in [0, n]).
_TIE_JITTER = 1e-9
# Re-samples after finding another worker's running trial at the chosen configuration.
_MAX_CLAIMS = 10
# Uniform draws tried for an exploration step before accepting a configuration already tried.
_MAX_RANDOM_DRAWS = 100
# The per-trial weights are needed several times while one trial samples (relative, each
# independent parameter): a few entries per study cover every trial in flight.
_MAX_CACHED_TRIALS = 64


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
    # Set once every portfolio entry has been evaluated and the probe has run.
    schedule_done: bool = False
    # Per source, whether it may be used for this study (see TransferTPESampler.from_storage).
    active: list[bool] | None = None
    # trial number -> the cold TPE that samples it once every source is refuted.
    cold: dict[int, optuna.samplers.TPESampler] = field(default_factory=dict)


def _space_key(space: dict[str, BaseDistribution]) -> str:
    return json.dumps(
        [[n, optuna.distributions.distribution_to_json(d)] for n, d in space.items()]
    )


class TransferTPESampler(BaseSampler):
    """TPE sampler that starts from what finished source studies learned.

    The first trials evaluate a small portfolio of the sources' best configurations (the best of
    each source in turn, deduplicated and projected into the target's search space), followed by
    one random probe that gives the target a reference point; there is no random start-up
    phase while the sources are trusted. From then on each trial is chosen among candidates by a
    weighted vote: the target (weight 1) with its TPE density ratio ``l(x) / g(x)``, every
    trusted source with its own ranking, smoothed over the space. Each source splits and ranks
    its own trials, so objective scales and directions may differ between tasks. A source's
    weight is its *trust*: the confidence that its predictions rank the target's finished
    trials in agreement with the target (see ``optuna_transfer._similarity``), counted only
    above 1/2. A misleading source loses its vote within a few target trials; a related one
    keeps helping. While the target's incumbent keeps improving (it is among the last 8
    finished trials), the candidates are *local steps*: the configurations one parameter away
    from the best of the target's top trials (``optuna_transfer._local_search``); otherwise they
    are drawn from each task's good density, as in TPE. A configuration the target already has
    is never proposed again. When no source keeps a
    vote, the trial is sampled by an internal :class:`~optuna.samplers.TPESampler` with the same
    options, so the search is then exactly cold TPE on the same history, less the zero-shot
    trials of the refuted sources.

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
            a storage. How changed search spaces are aligned is documented in the README.
        seed:
            Seed for the random number generator.
        n_ei_candidates:
            Number of candidates drawn from the good-density mixture for a TPE step (a local
            step scores every one-parameter move instead). The best by the vote is chosen.
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
            source, at least 2 and at most 5.
        n_startup_trials:
            As in TPESampler, but only as a fallback: while the target has fewer finished
            trials than this (zero-shot trials not counted), each trial is sampled at random
            with probability (1 - largest source trust)², so with sources the target
            contradicts the search starts like cold TPE. With trusted sources there is almost
            no random phase (trust 0.8: 4% of those trials).
        max_source_trials:
            Usable trials kept per source; larger sources are subsampled (their best trials are
            always kept) with a logged warning, bounding memory and time per trial.
        record_user_attrs:
            Also record each trial's role (``"zero-shot"``, ``"probe"``, ``"random"``,
            ``"transfer"``, ``"cold"``, ``"enqueued"``) and weights as user attributes
            (``"transfer:role"``, ``"transfer:weight:<label>"``, ``"transfer:voters"``), where
            optuna-dashboard and ``study.trials_dataframe()`` show them. ``False`` leaves the
            user attributes to the user; the system attributes are recorded either way.
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
    ) -> None:
        if n_ei_candidates < 1:
            raise ValueError(f"`n_ei_candidates` must be >= 1, got {n_ei_candidates}.")
        check_n_zero_shot(n_zero_shot)
        if n_startup_trials < 0:
            raise ValueError(f"`n_startup_trials` must be >= 0, got {n_startup_trials}.")
        check_max_source_trials(max_source_trials)
        if group and multivariate is False:
            raise ValueError("`group=True` needs the multivariate TPE: drop multivariate=False.")
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
        portfolio = round_robin_portfolio(
            tasks, portfolio_size(n_zero_shot, len(tasks)), lambda t: _config_key(t.params)
        )
        self._portfolio = [dict(t.params) for _, t in portfolio]
        # Which source each entry comes from: a source left out for a study gives no entry.
        self._portfolio_sources = [i for i, _ in portfolio]
        # Set by from_storage when it found the sources itself: the target may be among them.
        self._discovered = False
        self._portfolio_keys = [_config_key(p) for p in self._portfolio]
        self._search_space = IntersectionSearchSpace(include_pruned=True)
        self._models: dict[str, SourceEnsemble] = {}
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
        trial is a source, or those that pass ``study_filter``: a shell-style name pattern
        (``"resnet-*"``), a mapping of user attributes they must have (``{"model":
        "resnet"}``), or a callable taking the :class:`~optuna.study.FrozenStudy`. A target
        study in the same storage is then left out of its own sources (found by its name), and
        so are studies with another number of objectives; a study that shares no parameter
        with the target gets no zero-shot trial once the target has one, and never a vote.

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
        if len(state.roles) > _MAX_CACHED_TRIALS:
            # Entries of trials that ended in another worker's process are never removed there.
            state.roles.clear()
        if "fixed_params" in trial.system_attrs or state.schedule_done:
            # Enqueued and retried trials keep their params; they take no portfolio entry.
            state.roles[trial.number] = (None, False)
            return
        state.roles[trial.number] = self._claim_role(study, trial, state)

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        if not self._is_multivariate(study):
            return {}
        if self._group:
            # The union of the groups: conditional parameters are sampled jointly within theirs.
            space = {n: d for group in search_space_groups(study) for n, d in group.items()}
        else:
            space = self._search_space.calculate(study)
        return {n: d for n, d in space.items() if not d.single()}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        params: dict[str, Any] = {}
        zero_shot = self._zero_shot_config(study, trial)
        if zero_shot is not None:
            params = _project_config(zero_shot, search_space)
            # Parameters the source config cannot fill come from the model, so a relative
            # sample always covers the whole relative search space.
            missing = {n: d for n, d in search_space.items() if n not in params}
            if missing:
                params.update(self._sample(study, trial, missing))
            return params
        if self._is_cold(study, trial):
            # Every source is distrusted: this trial is exactly cold TPE's (see _cold_history).
            cold_study = self._cold_history(study)
            cold = self._cold(study, trial)
            cold.infer_relative_search_space(cold_study, trial)
            return cold.sample_relative(cold_study, trial, search_space)
        for attempt in range(_MAX_CLAIMS + 1):
            params = {}
            exhausted = False
            for sub in self._groups(study, search_space):
                sub_params, sub_exhausted = self._choose(study, trial, sub, True, attempt)
                params.update(sub_params)
                exhausted |= sub_exhausted
            if not (params and self._constant_liar):
                break
            # Other workers read these to see where this running trial is; chunked as Optuna's
            # TPE does, for RDB backends with limited columns.
            set_chunked_system_attr(study, trial, _RELATIVE_PARAMS_KEY, json.dumps(params))
            # Local steps choose from a few discrete moves, so two workers sampling at the
            # same moment would often pick the same one. Whichever of them wrote second sees
            # the other here and chooses again (as WarmStartGridSampler claims points).
            if exhausted or not _is_taken(study, trial, params):
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
        if zero_shot is not None:
            projected = _project_config(zero_shot, {param_name: param_distribution})
            if param_name in projected:
                return projected[param_name]
        elif self._is_cold(study, trial):
            return self._cold(study, trial).sample_independent(
                self._cold_history(study), trial, param_name, param_distribution
            )
        return self._sample(study, trial, {param_name: param_distribution})[param_name]

    def _cold(self, study: Study, trial: FrozenTrial) -> optuna.samplers.TPESampler:
        """This trial's cold TPE (see ``_cold_seed``)."""
        cold = self._state(study).cold
        if trial.number not in cold:
            if len(cold) > _MAX_CACHED_TRIALS:
                cold.clear()  # entries of trials that ended in another process are never popped
            seed = _derived_seed(self._cold_seed, trial.number)
            cold[trial.number] = optuna.samplers.TPESampler(seed=seed, **self._cold_options)
        return cold[trial.number]

    def _is_cold(self, study: Study, trial: FrozenTrial) -> bool:
        """Whether every source has lost its vote for this trial (the probe excepted)."""
        if self._role(study, trial)[1]:
            return False
        weights, _ = self._trial_weights(study, trial)
        return all(weights[label] == 0.0 for label in self._labels)

    @staticmethod
    def _cold_history(study: Study) -> Study:
        """``study`` without its zero-shot trials, for the internal cold TPE.

        Cold TPE takes over only once every source is distrusted, i.e. the target refuted the
        region the portfolio came from. Those trials then sit far from where the search goes,
        and keeping them measurably slows TPE down (on the ``misleading`` benchmark). A
        study's own startup trials are what TPE expects, so it gets exactly those.
        """
        return cast(Study, StudyWithoutTrials(study, _is_zero_shot_trial))

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
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
        study_state.cold.pop(trial.number, None)

    # -------------------------------------------------------------------------------------
    # Zero-shot portfolio and probe
    # -------------------------------------------------------------------------------------

    def _role(self, study: Study, trial: FrozenTrial) -> tuple[dict[str, Any] | None, bool]:
        """The portfolio entry ``trial`` evaluates (or None) and whether it is the probe."""
        return self._state(study).roles.get(trial.number, (None, False))

    def _zero_shot_config(self, study: Study, trial: FrozenTrial) -> dict[str, Any] | None:
        return self._role(study, trial)[0]

    def _claim_role(
        self, study: Study, trial: FrozenTrial, state: _StudyState
    ) -> tuple[dict[str, Any] | None, bool]:
        """Claim the first portfolio entry no other trial has taken, else the probe if it has
        not run yet.

        Entries are claimed, not indexed by trial number, so trials the user enqueued or added
        do not push them out. An entry is taken by a trial that claims it (whatever its state:
        a failed zero-shot trial is not retried) or that evaluates the same params. Two workers
        may claim one entry at the same moment: each re-reads after writing its claim, and
        whichever wrote second sees the other and withdraws (both may; the entry is then
        claimed by a later trial), so no entry is evaluated twice.
        """
        lost: set[int] = set()
        for _ in range(len(self._portfolio) + _MAX_CLAIMS):
            trials = study.get_trials(deepcopy=False)
            others = [t for t in trials if t.number != trial.number]
            taken = self._taken_entries(others) | lost | self._unfit_entries(study, others)
            free = [i for i in range(len(self._portfolio)) if i not in taken]
            if not free:
                break
            i = free[0]
            set_trial_system_attr(study, trial, ZERO_SHOT_ATTR_KEY, self._portfolio_keys[i])
            rivals = [
                t
                for t in study.get_trials(deepcopy=False)
                if t.number != trial.number
                and t.system_attrs.get(ZERO_SHOT_ATTR_KEY) == self._portfolio_keys[i]
            ]
            if not rivals:
                return self._portfolio[i], False
            set_trial_system_attr(study, trial, ZERO_SHOT_ATTR_KEY, _WITHDRAWN)
            lost.add(i)
        else:
            return None, False
        # The probe runs once, after the portfolio (see _trial_weights), claimed like an entry.
        if any(t.system_attrs.get(PROBE_ATTR_KEY) for t in others):
            # Nothing is left to claim once no trial that claimed can still withdraw; later
            # trials then skip reading the study here.
            state.schedule_done = all(
                t.state.is_finished()
                for t in others
                if ZERO_SHOT_ATTR_KEY in t.system_attrs or PROBE_ATTR_KEY in t.system_attrs
            )
            return None, False
        set_trial_system_attr(study, trial, PROBE_ATTR_KEY, True)
        rivals = [
            t
            for t in study.get_trials(deepcopy=False)
            if t.number != trial.number and t.system_attrs.get(PROBE_ATTR_KEY)
        ]
        if rivals:
            set_trial_system_attr(study, trial, PROBE_ATTR_KEY, False)
            return None, False
        return None, True

    def _active(self, study: Study) -> list[bool]:
        """Per source, whether it is used for ``study``: a source that from_storage found is
        left out when it is the target itself or has another number of objectives."""
        state = self._state(study)
        if state.active is None:
            n_obj = len(study.directions)
            state.active = [
                not self._discovered
                or (task.name != study.study_name and len(task.directions) == n_obj)
                for task in self._tasks
            ]
            left_out = [label for label, a in zip(self._labels, state.active) if not a]
            if left_out:
                _logger.info(
                    f"Sources not used for study {study.study_name!r} (the study itself, or "
                    f"another number of objectives): {left_out}."
                )
        return state.active

    def _unfit_entries(self, study: Study, trials: list[FrozenTrial]) -> set[int]:
        """Portfolio entries not to evaluate in ``study``: from a source left out for it, or
        sharing no parameter with the target's trials so far (once there are any)."""
        active = self._active(study)
        names = {n for t in trials for n in t.params}
        return {
            i
            for i, (source, entry) in enumerate(zip(self._portfolio_sources, self._portfolio))
            if not active[source] or (names and not names.intersection(entry))
        }

    def _taken_entries(self, trials: list[FrozenTrial]) -> set[int]:
        taken = set()
        for t in trials:
            claim = t.system_attrs.get(ZERO_SHOT_ATTR_KEY)
            if claim is not None and claim in self._portfolio_keys:
                taken.add(self._portfolio_keys.index(claim))
            params = t.params or t.system_attrs.get("fixed_params") or {}
            for i, entry in enumerate(self._portfolio):
                if all(n in params and params[n] == v for n, v in entry.items()):
                    taken.add(i)
        return taken

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
    ) -> tuple[dict[str, Any], bool]:
        """One configuration of ``space``: a local step around the target's best trials while
        they keep improving (``joint`` spaces only), else a TPE step over the whole space.
        After ``attempt`` lost claims, one of the ``attempt + 1`` best candidates at random.
        Also returns whether every candidate was one the target already has."""
        weights, explore = self._trial_weights(study, trial)
        # After a lost collision, a generator of this trial's own: workers built with the same
        # seed share their sampler's random state, and would otherwise collide again in step.
        rng = self._random if attempt == 0 else self._retry_rng(trial, attempt)
        trials = self._target_trials(study, trial)
        x, losses, numbers = _target_observations(study, trials, space)
        if explore:
            return _decode_row(_uniform_unseen(rng, space, x), space), False

        target = TargetModel(x, losses, choice_counts(space))
        ensemble = self._sources(space)
        voting = [
            i
            for i, (label, model) in enumerate(zip(self._labels, ensemble.models))
            if model.usable and weights[label] > 0
        ]
        sources = [(weights[self._labels[i]], ensemble.models[i]) for i in voting]
        cand, start = None, None
        if joint and incumbent_is_recent(losses, numbers):
            cand, start = _local_step_candidates(x, losses, target.order, space)
        if cand is None:
            cand = self._tpe_candidates(target, sources, space, rng)
        # A source votes with its smoothed ranking rather than its own l/g: between
        # neighbouring configurations, which all lie in its good region, the ranking still
        # tells them apart.
        quantiles = ensemble.predicted_quantiles(cand, voting)
        acq = vote(target.score(cand), [(w, -quantiles[:, k]) for k, (w, _) in enumerate(sources)])
        # Ties (common among a few discrete candidates) go to a random one, not the first.
        acq += _TIE_JITTER * rng.uniform(size=len(cand))
        # Re-evaluating a configuration the target already has (or is running) teaches nothing
        # new; in discrete spaces TPE would otherwise keep proposing its incumbent.
        seen = is_seen(cand, x)
        if seen.all():
            # In a small discrete space every candidate may be a configuration already tried;
            # an untried one, if there is any, teaches more than a repeat.
            u = _uniform_unseen(rng, space, x)
            if not is_seen(u[None, :], x)[0]:
                return _decode_row(u, space), False
        else:
            acq[seen] = -np.inf
        best = cand[int(np.argmax(acq)) if attempt == 0 else one_of_best(acq, attempt, rng)]
        params = _decode_row(best, space)
        if start is not None:
            # A local step keeps the other parameters exactly as the start trial had them
            # (decoding its unit coordinates could differ in the last bits). The start is a
            # finished trial (finite loss), so its params are all recorded.
            start_params = next(t for t in trials if t.number == numbers[start]).params
            for j, name in enumerate(space):
                if best[j] == x[start, j] and name in start_params:
                    params[name] = start_params[name]
        return params, bool(seen.all())

    def _tpe_candidates(
        self,
        target: TargetModel,
        sources: list[tuple[float, SourceModel]],
        space: dict[str, BaseDistribution],
        rng: np.random.RandomState,
    ) -> np.ndarray:
        """``n_ei_candidates`` draws from each task's good density in proportion to its
        weight (the target's is 1)."""
        mix = np.array([1.0] + [w for w, _ in sources])
        below = [target.below] + [m.below for _, m in sources]
        counts = rng.multinomial(self._n_ei_candidates, mix / mix.sum())
        draws = [b.sample(rng, k) for b, k in zip(below, counts) if k > 0]
        return _canonical(np.vstack(draws), space)

    def _retry_rng(self, trial: FrozenTrial, attempt: int) -> np.random.RandomState:
        entropy = self._seed if self._seed is not None else self._random.randint(2**31)
        state = np.random.SeedSequence([entropy, trial.number, attempt]).generate_state(1)
        return np.random.RandomState(int(state[0]))

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
        losses = trial_losses(study, finished)
        keep = ~np.isnan(predictions).any(axis=1)
        return predictions[keep], losses[keep]

    def _trial_weights(self, study: Study, trial: FrozenTrial) -> tuple[dict[str, float], bool]:
        """Per-source weights for this trial, and whether it explores at random instead.

        The trial after the zero-shot portfolio is always a random probe. While the target
        has fewer than ``n_startup_trials`` finished trials, a trial is sampled at random with
        probability (1 - largest source trust)²: with sources the target contradicts, the
        search starts like cold TPE rather than refining a bad region.

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
        # Zero-shot trials do not count towards the start-up phase: they explore nothing.
        n_explored = sum(not _is_zero_shot_trial(t) for t in finished)
        explore = is_probe or bool(
            n_explored < self._n_startup_trials
            and self._random.uniform()
            < startup_explore_probability(max(trusts.values(), default=0.0))
        )
        if len(cache) > _MAX_CACHED_TRIALS:
            cache.clear()  # entries of trials that ended in another process are never popped
        cache[trial.number] = (weights, explore)
        if explore and not is_probe:
            set_trial_system_attr(study, trial, RANDOM_ATTR_KEY, True)
        set_trial_system_attr(study, trial, WEIGHTS_ATTR_KEY, json.dumps(list(weights.items())))
        return weights, explore

    def _trusts(self, study: Study, finished: list[FrozenTrial]) -> dict[str, float]:
        """Each source's trust (``optuna_transfer._similarity``) given the target's ``finished``
        trials; the prior's trust before two of them."""
        space = {n: d for n, d in self._search_space.calculate(study).items() if not d.single()}
        if len(finished) < 2 or not space:
            trusts = [trust(0.0, 0)] * len(self._labels)
        else:
            predictions, losses = self._predictions(study, finished, space)
            # Higher predicted quantile = worse, so the sources' scores are its negation.
            trusts = source_trusts(-predictions, losses)
        active = self._active(study)
        return {label: t if a else 0.0 for label, t, a in zip(self._labels, trusts, active)}


def _is_taken(study: Study, trial: FrozenTrial, params: dict[str, Any]) -> bool:
    """Whether another trial (finished, or running with known params) has ``params``."""
    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)
    for t in study.get_trials(deepcopy=False, states=states):
        if t.number == trial.number:
            continue
        other = _params_with_running(t)
        if all(n in other and other[n] == v for n, v in params.items()):
            return True
    return False


def _is_zero_shot_trial(trial: FrozenTrial) -> bool:
    return trial.system_attrs.get(ZERO_SHOT_ATTR_KEY, _WITHDRAWN) != _WITHDRAWN


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


def _config_key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=repr)


def _project_config(config: dict[str, Any], space: dict[str, BaseDistribution]) -> dict[str, Any]:
    out = {}
    for name, dist in space.items():
        if name in config:
            value = project(dist, config[name])
            if value is not None:
                out[name] = value
    return out


def _decode_row(u: np.ndarray, space: dict[str, BaseDistribution]) -> dict[str, Any]:
    return {name: decode(dist, float(v)) for (name, dist), v in zip(space.items(), u)}


def _canonical(cand: np.ndarray, space: dict[str, BaseDistribution]) -> np.ndarray:
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


def _local_step_candidates(
    x: np.ndarray, losses: np.ndarray, order: np.ndarray, space: dict[str, BaseDistribution]
) -> tuple[np.ndarray | None, int | None]:
    """Unseen one-parameter moves from the best of the target's top trials that has any, and
    the row of ``x`` they start from; ``(None, None)`` if none has."""
    for i in order[:LOCAL_STARTS]:
        if not np.isfinite(losses[i]):
            break
        moves = neighbours(x[i], space, x)
        if len(moves):
            return moves, int(i)
    return None, None


def _target_observations(
    study: Study, trials: list[FrozenTrial], space: dict[str, BaseDistribution]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Aligned target params, a loss per trial (lower is better; running trials = inf) and
    the trial numbers."""
    x = np.full((len(trials), len(space)), np.nan)
    for i, t in enumerate(trials):
        params = _params_with_running(t)
        for j, (name, dist) in enumerate(space.items()):
            if name in params:
                x[i, j] = encode(dist, params[name])
    losses = trial_losses(study, trials)
    keep = ~np.all(np.isnan(x), axis=1)
    numbers = np.array([t.number for t in trials], dtype=int)
    return x[keep], losses[keep], numbers[keep]


def _params_with_running(t: FrozenTrial) -> dict[str, Any]:
    if t.state != TrialState.RUNNING:
        return t.params
    raw = get_chunked_system_attr(t, _RELATIVE_PARAMS_KEY)
    try:
        params = dict(json.loads(raw)) if raw else {}
    except json.JSONDecodeError:
        # Read while its worker was rewriting the chunks: only the suggested params are known.
        params = {}
    params.update(t.params)
    return params


def _uniform_unseen(
    rng: np.random.RandomState, space: dict[str, BaseDistribution], seen: np.ndarray
) -> np.ndarray:
    """A uniform draw over ``space`` (choice indices for categoricals, unit coordinates else)
    that is not a row of ``seen`` if a few draws find one; else the last draw."""
    n_choices = choice_counts(space)
    for _ in range(_MAX_RANDOM_DRAWS):
        u = _canonical(
            np.array([[rng.randint(c) if c > 0 else rng.uniform() for c in n_choices]]), space
        )[0]
        if not is_seen(u[None, :], seen)[0]:
            break
    return u


def _derived_seed(seed: int, number: int) -> int:
    # Not ``seed`` itself: cold TPE's random start-up draws would repeat this sampler's own.
    return int(np.random.SeedSequence([seed, 1, number]).generate_state(1)[0])
