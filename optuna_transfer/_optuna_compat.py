"""The one place that leans on Optuna internals.

Samplers write to trials through the study's storage (``study._storage``, ``trial._trial_id``):
Optuna has no public API for it, and its own samplers do the same. Optuna's samplers read a
study's history through ``Study._get_trials`` (private; its signature is that of Optuna 5.x,
which ``pyproject.toml`` pins). :class:`StudyWithoutTrials` wraps a
study so that some trials are invisible to a sampler, which is how the transfer sampler hands
cold TPE a history without the zero-shot trials of sources it no longer trusts; the same view
can list failed trials as pruned ones that reported nothing, which Optuna's TPE ranks below
every other trial (it ignores failed trials).
``tests/test_optuna_compat.py`` checks that a sampler given the view behaves exactly as on a
study holding only the visible trials, so an Optuna change that breaks this fails a test.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Container
from collections.abc import Sequence
import copy
import threading
from typing import Any
from typing import Generic
from typing import TypeVar
import weakref

from optuna.distributions import BaseDistribution
from optuna.samplers import TPESampler
from optuna.study import Study

# What ``BaseStorage.get_all_studies`` (public) returns; the class itself is not exported.
from optuna.study._frozen import FrozenStudy  # noqa: F401
from optuna.trial import FrozenTrial
from optuna.trial import TrialState


T = TypeVar("T")


class StudyWithoutTrials:
    """Read-through view of ``study`` in which trials for which ``hide(trial)`` holds do not
    exist. Everything else (storage, directions, writes to the sampled trial) passes through to
    ``study``; only the trial listings are filtered.

    With ``failed_as_pruned``, every FAIL trial is listed as a PRUNED trial without intermediate
    values (a request for pruned trials returns them; one for failed trials does not). Optuna's
    TPE ignores failed trials, so next to a region that fails it keeps proposing configurations
    there; a pruned trial that reported nothing it ranks below every complete and pruned trial,
    as the transfer sampler ranks a failure (``optuna.samplers._tpe.sampler``:
    ``_get_pruned_trial_score``, ``_split_trials``).
    """

    def __init__(
        self,
        study: Study,
        hide: Callable[[FrozenTrial], bool],
        failed_as_pruned: bool = False,
    ) -> None:
        self._study = study
        self._hide = hide
        self._failed_as_pruned = failed_as_pruned

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _get_trials(
        self,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
        use_cache: bool = False,
    ) -> list[FrozenTrial]:
        trials = self._study._get_trials(
            deepcopy=deepcopy, states=self._stored_states(states), use_cache=use_cache
        )
        return self._visible(trials)

    def get_trials(
        self, deepcopy: bool = True, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        return self._visible(
            self._study.get_trials(deepcopy=deepcopy, states=self._stored_states(states))
        )

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.get_trials()

    def _stored_states(self, states: Container[TrialState] | None) -> Container[TrialState] | None:
        """The states to read from ``study`` for a listing of ``states`` in this view."""
        if not self._failed_as_pruned or states is None:
            return states
        wanted = tuple(s for s in TrialState if s in states and s != TrialState.FAIL)
        return wanted + (TrialState.FAIL,) if TrialState.PRUNED in wanted else wanted

    def _visible(self, trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
        if not self._failed_as_pruned:
            return [t for t in trials if not self._hide(t)]
        fail = TrialState.FAIL
        return [_as_pruned(t) if t.state == fail else t for t in trials if not self._hide(t)]


def _as_pruned(trial: FrozenTrial) -> FrozenTrial:
    """A copy of the failed ``trial`` as a PRUNED trial that reported nothing (the listed
    trials may be the storage's cached objects, never changed in place)."""
    pruned = copy.copy(trial)
    pruned.state = TrialState.PRUNED
    pruned.intermediate_values = {}
    return pruned


# Optuna's own TPE splits long system attributes into chunks of this many characters, for RDB
# backends whose columns are limited (see ``optuna/samplers/_tpe/sampler.py``).
SYSTEM_ATTR_MAX_LENGTH = 2045


def set_trial_system_attr(study: Study, trial: FrozenTrial, key: str, value: Any) -> None:
    """Record ``value`` on ``trial``: samplers have no public way to write system attrs."""
    study._storage.set_trial_system_attr(trial._trial_id, key, value)


def set_trial_user_attr(study: Study, trial: FrozenTrial, key: str, value: Any) -> None:
    """Record a user attribute from a sampler hook, which has no live ``optuna.Trial``."""
    study._storage.set_trial_user_attr(trial._trial_id, key, value)


def set_chunked_system_attr(study: Study, trial: FrozenTrial, key: str, text: str) -> None:
    """Write ``text`` as ``key:0``, ``key:1``, ... chunks short enough for every RDB backend,
    then an empty chunk that ends it (a shorter rewrite then never reads an older tail)."""
    n = SYSTEM_ATTR_MAX_LENGTH
    chunks = [text[i : i + n] for i in range(0, len(text), n)]
    for i, chunk in enumerate([*chunks, ""]):
        set_trial_system_attr(study, trial, f"{key}:{i}", chunk)


def get_chunked_system_attr(trial: FrozenTrial, key: str) -> str | None:
    """The text :func:`set_chunked_system_attr` wrote, or None if there is none."""
    chunks: list[str] = []
    while chunk := trial.system_attrs.get(f"{key}:{len(chunks)}"):
        chunks.append(chunk)
    return "".join(chunks) if chunks else None


def fail_trial(study: Study, trial: FrozenTrial) -> None:
    """Mark a RUNNING trial FAIL, so a sampler that must refuse it leaves nothing running."""
    study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)


def store_constraints(
    constraints_func: Callable[[FrozenTrial], Sequence[float]],
    study: Study,
    trial: FrozenTrial,
    state: TrialState,
) -> None:
    """What ``TPESampler(constraints_func=...)`` does after a trial: evaluate the function on a
    COMPLETE or PRUNED ``trial`` and store its constraints where ``FrozenTrial.constraints``
    (and so every sampler) reads them. Optuna's own helper, so the record is the same."""
    from optuna.samplers._base import _process_constraints_after_trial

    _process_constraints_after_trial(constraints_func, study, trial, state)


def is_multi_objective(study: Study) -> bool:
    return len(study.directions) > 1


class PerStudy(Generic[T]):
    """A sampler's state for each study it samples, so one sampler can serve several studies.

    Keyed by the storage *object* (held weakly) and the study's id in it: two in-memory studies
    both have id 0, and an ``id()`` can be reused once an object is garbage-collected.
    """

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._by_storage: weakref.WeakKeyDictionary[Any, dict[int, T]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def __call__(self, study: Study) -> T:
        with self._lock:
            by_id = self._by_storage.setdefault(study._storage, {})
            if study._study_id not in by_id:
                by_id[study._study_id] = self._factory()
            return by_id[study._study_id]


def search_space_groups(study: Study) -> list[dict[str, BaseDistribution]]:
    """Optuna's decomposition of the study's search space into groups of parameters that
    always appear together (what ``TPESampler(group=True)`` samples jointly), pruned trials
    included; each group's parameters sorted by name, as TPESampler sorts them: Optuna
    builds the groups from sets, whose order changes with the process's hash seed, and a
    seeded sampler must draw the same values in every process."""
    from optuna.search_space import _GroupDecomposedSearchSpace

    groups = _GroupDecomposedSearchSpace(include_pruned=True).calculate(study).search_spaces
    return [dict(sorted(group.items())) for group in groups]


def get_all_trials(study: Study) -> list[FrozenTrial]:
    """Every trial of ``study``, read from its storage now (not copied): what a sampler that
    coordinates workers through the storage must see, including other workers' new trials."""
    return study._storage.get_all_trials(study._study_id, deepcopy=False)


def whole_study(study: Study) -> Study:
    """``study`` itself where Optuna hands a sampler a view of part of it: under
    ``HyperbandPruner`` every sampler call of a trial gets a study that lists only the trials
    of that trial's bracket (Optuna's ``_BracketStudy``, which keeps the study as ``_study``)."""
    inner = getattr(study, "_study", None)
    return inner if isinstance(inner, Study) else study


def study_key(study: Study) -> tuple[weakref.ref[Any], int]:
    """What tells ``study`` apart from every other study a sampler may see: its storage object
    (held weakly, so it compares equal only while alive) and its id there. Not the id alone
    (every in-memory study has id 0), nor ``id(storage)``, which a new storage can reuse."""
    return weakref.ref(study._storage), study._study_id


def distribution_contains(dist: BaseDistribution, value: Any) -> bool:
    """Whether ``value`` (external representation) is inside ``dist``, as Optuna checks it;
    a ValueError for a categorical choice ``dist`` does not list."""
    return bool(dist._contains(dist.to_internal_repr(value)))


def seed_tpe_sampler(sampler: TPESampler, seed: int) -> None:
    """Put ``sampler`` in the random state of ``TPESampler(seed=seed)``: its own generator and
    its start-up RandomSampler's (``reseed_rng``, the public way, draws a fresh seed)."""
    sampler._rng.rng.seed(seed)
    sampler._random_sampler._rng.rng.seed(seed)
