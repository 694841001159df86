"""Source trials -> aligned observations.

Everything a sampler needs to know about finished source studies lives here: which trials are
usable, how each source ranks its own trials, and how a source parameter value maps onto a
parameter of the *target* search space (which may have changed since the source ran).

How a source value maps onto the target's search space is in ``optuna_transfer._encoding``.

Trial hygiene: COMPLETE trials with finite values are used; PRUNED trials are used as *bad*
observations (a pruner stopped them for underperforming; they never count as good); FAIL,
RUNNING and WAITING trials are ignored. COMPLETE trials with NaN/inf values are skipped with a
single warning per source that counts them. A source whose trials all tie ranks nothing
(:attr:`SourceTask.ranks_nothing`): it is kept, named in a warning, and the samplers give it no
zero-shot trial and no vote.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
import fnmatch
import functools
import logging
import math
import threading
import traceback
from typing import Any
from typing import Union
import weakref

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.study import StudyDirection
from optuna.study import StudySummary
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_transfer._arguments import is_integer
from optuna_transfer._encoding import encode
from optuna_transfer._encoding import is_number
from optuna_transfer._optuna_compat import FrozenStudy
from optuna_transfer._ranking import feasible_first
from optuna_transfer._ranking import violation
from optuna_transfer._redact import redact_text
from optuna_transfer._redact import redact_url


_logger = optuna.logging.get_logger(__name__)

# Beyond this many usable trials a source is subsampled (its best trials are always kept), so a
# huge study costs bounded memory and time per trial. See ``SourceTask.from_trials``.
DEFAULT_MAX_SOURCE_TRIALS = 2000


@dataclass(frozen=True)
class SourceTask:
    """The usable trials of one source study, ranked by that source's own objective(s).

    ``ranks[i]`` orders ``trials[i]`` within the source: 0 is the best. COMPLETE trials are ranked
    by value (by non-domination rank for several objectives), those that violate a constraint
    after every feasible one (least violation first), and PRUNED trials after all of them.
    Ranks make sources with different objective scales, and even opposite directions,
    comparable.
    """

    name: str
    directions: tuple[StudyDirection, ...]
    trials: tuple[FrozenTrial, ...]
    ranks: np.ndarray = field(repr=False)
    # The COMPLETE trials' values, rows in the order of ``best_trials`` (n x objectives).
    values: np.ndarray = field(repr=False)
    n_complete: int

    @classmethod
    def from_trials(
        cls,
        name: str,
        trials: Sequence[FrozenTrial],
        directions: Sequence[StudyDirection],
        max_trials: int = DEFAULT_MAX_SOURCE_TRIALS,
        seed: int = 0,
    ) -> SourceTask:
        directions = tuple(directions)
        complete: list[FrozenTrial] = []
        complete_values: list[list[float]] = []
        pruned: list[FrozenTrial] = []
        n_wrong_arity = 0
        # One pass over the trials, finiteness checked on all values at once: a thousand
        # sources of a hundred trials are read when the sampler is built.
        for t in trials:
            state = t.state
            if state == TrialState.COMPLETE:
                values = t.values
                if values is None or len(values) != len(directions):
                    n_wrong_arity += 1
                else:
                    complete.append(t)
                    complete_values.append(values)
            elif state == TrialState.PRUNED:
                pruned.append(t)
        all_values = np.array(complete_values, dtype=float).reshape(-1, len(directions))
        finite = np.isfinite(all_values).all(axis=1)
        n_nonfinite = len(complete) - int(finite.sum())
        if n_nonfinite:
            complete = [t for t, ok in zip(complete, finite) if ok]
            all_values = all_values[finite]
        if n_nonfinite:
            _logger.warning(
                f"Source {name!r}: skipped {n_nonfinite} COMPLETE trial(s) whose value is NaN or "
                "infinite; the other trials are used."
            )
        if n_wrong_arity:
            _logger.warning(
                f"Source {name!r}: skipped {n_wrong_arity} trial(s) whose number of values does "
                f"not match the study's {len(directions)} objective(s)."
            )
        if not complete:
            raise ValueError(
                f"Source {name!r} has no usable trials: it needs at least one COMPLETE trial with "
                f"a finite value (it has {len(trials)} trial(s): "
                f"{_state_counts(trials)}). Finish some trials in it or leave it out of `source`."
            )

        signs = np.array([-1.0 if d == StudyDirection.MAXIMIZE else 1.0 for d in directions])
        order = feasible_first(all_values * signs, np.array([violation(t) for t in complete]))
        complete = [complete[i] for i in order]
        all_values = all_values[order]
        pruned = sorted(pruned, key=lambda t: t.number)
        if len(complete) + len(pruned) > max_trials:
            complete, pruned, kept_complete = _subsample(
                name, complete, pruned, max_trials, seed
            )
            all_values = all_values[kept_complete]
        kept = tuple(complete + pruned)
        return cls(
            name=name,
            directions=directions,
            trials=kept,
            ranks=np.arange(len(kept), dtype=float),
            values=all_values,
            n_complete=len(complete),
        )

    @property
    def best_trials(self) -> tuple[FrozenTrial, ...]:
        """COMPLETE trials, best first."""
        return self.trials[: self.n_complete]

    @functools.cached_property
    def ranks_nothing(self) -> bool:
        """Whether the trials rank no configuration above another: COMPLETE trials of two or
        more configurations, all with the same values and constraint violation, and no PRUNED
        trial (an objective that returned a constant, or a failure value for every run). One
        configuration, however often evaluated, is still one to try."""
        complete = self.best_trials
        return (
            len(complete) >= 2
            and len(self.trials) == len(complete)
            and bool(np.all(self.values == self.values[0]))
            and len({violation(t) for t in complete}) == 1
            and len({tuple(sorted(t.params.items())) for t in complete}) >= 2
        )

    # Cached: TransferTPE asks on every trial, and the kept trials never change.
    @functools.cached_property
    def param_names(self) -> frozenset[str]:
        """Every parameter name of the kept trials."""
        return frozenset(n for t in self.trials for n in t.params)


def report_disjoint_sources(
    tasks: Sequence[SourceTask],
    labels: Sequence[str],
    target_names: Collection[str],
    target: str,
    expected: bool = False,
    note: str = "",
) -> None:
    """Log each source of ``tasks`` (named by ``labels``) that shares no parameter name with
    ``target_names``, the target's (described by ``target``): it cannot rank any of the
    target's configurations, so it has no say. Usually a parameter was renamed since the source
    ran, and the search is colder than the user thinks: a warning. INFO where such sources are
    ``expected`` (found by ``from_storage`` among other models' studies), unless no source
    shares a parameter. ``note`` ends the message.
    """
    names = set(target_names)
    disjoint = [
        (label, task)
        for label, task in zip(labels, tasks)
        # Stops at the first shared name: a related source's first trial has one.
        if not any(n in names for t in task.trials for n in t.params)
    ]
    if not disjoint:
        return
    level = logging.INFO if expected and len(disjoint) < len(tasks) else logging.WARNING
    for label, task in disjoint:
        _logger.log(
            level,
            f"Source {label!r} shares no parameter with {target} (its parameters: "
            f"{_some(names)}; the source's: {_some(task.param_names)}), so it cannot rank any "
            "configuration. If parameters were renamed since the source ran, suggest them "
            f"under the source's names; else leave the source out.{note}",
        )


def report_unfitting_values(
    tasks: Sequence[SourceTask],
    labels: Sequence[str],
    dists: Mapping[str, BaseDistribution],
    target: str,
    expected: bool = False,
) -> None:
    """Log each source of ``tasks`` (named by ``labels``) with a parameter of ``dists`` (the
    target's distributions) none of whose values fits there: a categorical whose choices were
    renamed, or a range moved past every value the source tried. For that parameter its trials
    count as missing (the README's table of search-space changes), which may not be what the
    user meant: a warning, INFO for ``expected`` sources (found by ``from_storage``)."""
    for label, task in zip(labels, tasks):
        unfitting = [
            f"{name!r} (tried: {_describe_values(tried)}; now: {_describe_distribution(dist)})"
            for name, dist in dists.items()
            # A parameter the target fixed (one value) has nothing to rank: no loss to report.
            if not dist.single() and (tried := _values_if_none_fits(task, name, dist))
        ]
        if unfitting:
            _logger.log(
                logging.INFO if expected else logging.WARNING,
                f"Source {label!r}: no value it tried fits {target} for "
                + ", ".join(unfitting)
                + ". For these parameters its trials count as missing, so it says nothing "
                "about them. If choices were renamed or a range moved, that may not be what "
                "you meant.",
            )


def _values_if_none_fits(task: SourceTask, name: str, dist: BaseDistribution) -> list[Any]:
    """The values of ``name`` in ``task``'s trials if none of them fits ``dist``, else (or if
    it has none) an empty list. Stops at the first value that fits: nearly always the first."""
    tried = []
    for t in task.trials:
        params = t.params
        if name not in params:
            continue
        if not math.isnan(encode(dist, params[name])):
            return []
        tried.append(params[name])
    return tried


def _describe_values(values: Sequence[Any]) -> str:
    if all(is_number(v) for v in values):
        return f"values {min(values):g} to {max(values):g}"
    distinct = sorted({repr(v) for v in values})
    return f"values [{', '.join(distinct[:8])}{', ...' if len(distinct) > 8 else ''}]"


def _describe_distribution(dist: BaseDistribution) -> str:
    if isinstance(dist, CategoricalDistribution):
        return f"choices {list(dist.choices)}"
    assert isinstance(dist, (FloatDistribution, IntDistribution))
    return f"range [{dist.low:g}, {dist.high:g}]"


def _some(names: Collection[str], limit: int = 8) -> str:
    shown = sorted(names)
    return str(shown) if len(shown) <= limit else f"{shown[:limit]} and {len(shown) - limit} more"


def _state_counts(trials: Sequence[FrozenTrial]) -> str:
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"


def _subsample(
    name: str,
    complete: list[FrozenTrial],
    pruned: list[FrozenTrial],
    max_trials: int,
    seed: int,
) -> tuple[list[FrozenTrial], list[FrozenTrial], np.ndarray]:
    # Keep the best 10% intact (they define the promising region) and a uniform random subset
    # of the rest, so the bad-region density keeps its shape. Also returns the kept complete
    # trials' positions in ``complete``.
    n_total = len(complete) + len(pruned)
    n_head = max(1, min(len(complete), max_trials // 10))
    rng = np.random.default_rng(seed)
    rest = complete[n_head:] + pruned
    keep = np.sort(rng.choice(len(rest), size=max_trials - n_head, replace=False))
    n_rest_complete = len(complete) - n_head
    kept_index = np.concatenate([np.arange(n_head), n_head + keep[keep < n_rest_complete]])
    kept_complete = [complete[i] for i in kept_index]
    kept_pruned = [rest[i] for i in keep if i >= n_rest_complete]
    _logger.warning(
        f"Source {name!r} has {n_total} usable trials; using its best {n_head} and a random "
        f"{max_trials - n_head} of the rest (max_source_trials={max_trials}) to bound memory "
        "and time per trial."
    )
    return kept_complete, kept_pruned, kept_index


def load_sources(source: Any, max_trials: int = DEFAULT_MAX_SOURCE_TRIALS) -> list[SourceTask]:
    """Normalise the ``source`` argument of the samplers into a list of :class:`SourceTask`.

    ``source`` is a :class:`~optuna.study.Study`, a sequence of studies, or a sequence of
    :class:`~optuna.trial.FrozenTrial` (which counts as one source; its directions are inferred
    as minimisation, so pass a study when the source maximised).
    """
    return _report_rankless(_without_repeats(_load(source, max_trials)))


def _load(source: Any, max_trials: int) -> list[SourceTask]:
    if isinstance(source, optuna.Study):
        return [_from_study(source, max_trials)]
    if isinstance(source, list) and source and all(isinstance(s, SourceTask) for s in source):
        return list(source)  # already loaded, e.g. by ``load_sources_from_storage``
    if isinstance(source, (str, bytes)) or not isinstance(source, Sequence):
        raise TypeError(
            "`source` must be an optuna.Study, a sequence of studies or a sequence of "
            f"FrozenTrial, got {type(source).__name__}. To name studies in a storage, use "
            "`from_storage(storage, study_names)`."
        )
    items = list(source)
    if not items:
        raise ValueError(
            "`source` is empty: pass at least one finished study (or its trials). For a cold "
            "start use optuna.samplers.TPESampler instead."
        )
    if all(isinstance(s, FrozenTrial) for s in items):
        return [_from_trials(items, max_trials)]
    if all(isinstance(s, optuna.Study) for s in items):
        return [_from_study(s, max_trials) for s in items]
    raise TypeError(_wrong_items(items))


def _wrong_items(items: list[Any]) -> str:
    """What is wrong with a ``source`` sequence that is neither studies nor FrozenTrials, and
    what to pass instead."""
    kinds = sorted({type(s).__name__ for s in items})
    if all(isinstance(s, (optuna.Study, FrozenTrial)) for s in items):
        return f"`source` mixes {kinds}: give either studies or FrozenTrial objects, not both."
    message = (
        "`source` items must be optuna.Study or FrozenTrial objects, got "
        f"{', '.join(kinds)}."
    )
    if all(isinstance(s, str) for s in items):
        return (
            f"{message} To use study names, build the sampler with "
            "`from_storage(storage, study_names)`."
        )
    if all(isinstance(s, (StudySummary, FrozenStudy)) for s in items):
        return (
            f"{message} Load each study with `optuna.load_study(study_name=..., "
            "storage=...)`, or name them with `from_storage(storage, study_names)`."
        )
    return message


def _without_repeats(tasks: list[SourceTask]) -> list[SourceTask]:
    """``tasks`` with each source counted once: the same study given twice would vote twice
    and take two of the portfolio's picks. Same name, trial numbers and values is the same
    study (or a copy of it); a namesake with other trials, from another storage, stays."""
    kept: list[SourceTask] = []
    seen: set[tuple[Any, ...]] = set()
    for task in tasks:
        key = (
            task.name,
            tuple(task.directions),
            tuple((t.number, t.state) for t in task.trials),
            task.values.tobytes(),
        )
        if key in seen:
            _logger.warning(
                f"Source {task.name!r} is given twice (the same trials); it counts once."
            )
            continue
        seen.add(key)
        kept.append(task)
    return kept


def _report_rankless(tasks: list[SourceTask]) -> list[SourceTask]:
    """``tasks``, with a warning for each that ranks nothing (:attr:`SourceTask.ranks_nothing`):
    the samplers give it no zero-shot trial and no vote."""
    for task in tasks:
        if task.ranks_nothing:
            _logger.warning(
                f"Source {task.name!r} ranks no configuration above another: its "
                f"{task.n_complete} COMPLETE trials all have the value(s) "
                f"{task.values[0].tolist()} (an objective that returned a constant, or a "
                "failure value for every run?). It gets no zero-shot trial and no vote; fix "
                "its values or leave it out."
            )
    return tasks


def _from_study(study: optuna.Study, max_trials: int) -> SourceTask:
    trials = study.get_trials(deepcopy=False)
    return _task_from_study_trials(study.study_name, trials, study.directions, max_trials)


def _task_from_study_trials(
    name: str,
    trials: Sequence[FrozenTrial],
    directions: Sequence[StudyDirection],
    max_trials: int,
) -> SourceTask:
    n_running = sum(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials)
    if n_running:
        _logger.info(
            f"Source {name!r} still has {n_running} running/waiting trial(s); the "
            "finished trials present now are used, later ones are not seen."
        )
    return SourceTask.from_trials(name, trials, directions, max_trials)


def _from_trials(trials: list[FrozenTrial], max_trials: int) -> SourceTask:
    n_objectives = {len(t.values) for t in trials if t.values is not None}
    if len(n_objectives) > 1:
        raise ValueError(
            "The source trials have different numbers of objective values "
            f"{sorted(n_objectives)}; pass trials of one study per source."
        )
    m = n_objectives.pop() if n_objectives else 1
    return SourceTask.from_trials("trials", trials, [StudyDirection.MINIMIZE] * m, max_trials)


# Below this many the subsample could not keep a sensible "best" head and bad-region sample.
MIN_MAX_SOURCE_TRIALS = 10


def check_max_source_trials(max_trials: Any) -> int:
    """``max_trials`` if it is a valid ``max_source_trials``, else a ValueError saying why."""
    if not is_integer(max_trials) or max_trials < MIN_MAX_SOURCE_TRIALS:
        raise ValueError(
            f"`max_source_trials` must be an integer >= {MIN_MAX_SOURCE_TRIALS}, got "
            f"{max_trials!r}. It caps how many trials of each source are used (default "
            f"{DEFAULT_MAX_SOURCE_TRIALS})."
        )
    return int(max_trials)


@dataclass(frozen=True)
class _Snapshot:
    """A source as read from a storage, with what it takes to tell cheaply that it is current.

    In Optuna a finished trial never changes and trials are never deleted, so a study whose
    id, trial count, best trial and unfinished trials are as they were still has exactly the
    COMPLETE and PRUNED trials it had. The best trial is compared in full (ids and times
    included) because a study deleted and created again may get the old study and trial ids
    (SQLite reuses them).
    """

    study_id: int
    n_trials: int
    anchor: FrozenTrial
    unfinished: tuple[int, ...]  # numbers of the trials RUNNING or WAITING when read
    task: SourceTask


# More unfinished trials than this and checking them one by one costs more than a re-read.
_MAX_UNFINISHED_TO_CHECK = 16

# URL -> snapshots, and storage object -> snapshots. Objects are held weakly: the cache must not
# keep a storage alive, and an id() can be reused by a new object once the old one is gone.
_URL_CACHE: dict[tuple[str, str, int], _Snapshot] = {}
_OBJECT_CACHE: weakref.WeakKeyDictionary[Any, dict[tuple[str, int], _Snapshot]] = (
    weakref.WeakKeyDictionary()
)
_STORAGE_CACHE_LOCK = threading.Lock()


StudyFilter = Union[str, Mapping[str, Any], Callable[[FrozenStudy], bool], None]  # noqa: UP007


def load_sources_from_storage(
    storage: str | optuna.storages.BaseStorage,
    study_names: str | Sequence[str] | None,
    max_trials: int = DEFAULT_MAX_SOURCE_TRIALS,
    study_filter: StudyFilter = None,
) -> list[SourceTask]:
    """Load named source studies from a storage; with ``study_names=None``, every study in it
    that has a COMPLETE trial of finite values and passes ``study_filter`` (see
    :func:`discover_study_names`).

    Snapshots are cached per process by (storage, study name, ``max_trials``), so building many
    samplers (one per worker thread, or one per study in a loop) does not re-read an unchanged
    source. The cache never changes the result: before a snapshot is reused a few cheap
    queries check that the study is the same one (not deleted and created again) and has no new
    or newly finished trials; otherwise it is read again.
    """
    max_trials = check_max_source_trials(max_trials)
    if study_names is not None and study_filter is not None:
        raise ValueError(
            "Give either `study_names` or `study_filter`, not both: the filter selects among "
            "all studies of the storage when no names are given."
        )
    shown = redact_url(storage)
    names = None
    if study_names is not None:
        names = [study_names] if isinstance(study_names, str) else list(study_names)
        if not names:
            raise ValueError("`study_names` is empty: name at least one source study.")
    what = "source studies" if names is None else (
        f"source study {names[0]!r}" if len(names) == 1 else f"source studies {names}"
    )
    # Checked first: a filter of the wrong type is no storage error.
    match = _study_predicate(study_filter)
    try:
        backend = (
            optuna.storages.RDBStorage(storage) if isinstance(storage, str) else storage
        )
        studies = backend.get_all_studies() if names is None else []
    except ValueError:
        raise
    except Exception as e:
        raise _storage_error(
            f"Could not open storage {shown} to load {what}", e, storage
        ) from _safe_cause(e, storage)
    if names is None:
        # The user's filter runs outside the storage's error handling: what it raises is its.
        matching = [frozen.study_name for frozen in studies if match(frozen)]
        try:
            names = _with_finite_trials(backend, matching)
        except Exception as e:
            raise _storage_error(
                f"Could not read storage {shown} to load {what}", e, storage
            ) from _safe_cause(e, storage)
    if not names:
        raise ValueError(
            f"Storage {shown} has no study with a COMPLETE trial of finite values"
            + ("" if study_filter is None else " that passes `study_filter`")
            + ": finish a source study there first, or name the studies to use."
        )
    return [_load_one(storage, backend, name, max_trials) for name in names]


def discover_study_names(
    backend: optuna.storages.BaseStorage, study_filter: StudyFilter = None
) -> list[str]:
    """Names of the studies in ``backend`` with at least one COMPLETE trial of finite values
    that pass ``study_filter``, in creation order.

    ``study_filter`` is a shell-style pattern on the name (``"resnet-*"``), a mapping of user
    attributes a study must have with those values (``{"model": "resnet"}``), or a callable
    taking the :class:`~optuna.study.FrozenStudy` and returning whether to use it.
    """
    match = _study_predicate(study_filter)
    return _with_finite_trials(
        backend, [frozen.study_name for frozen in backend.get_all_studies() if match(frozen)]
    )


def _with_finite_trials(backend: optuna.storages.BaseStorage, names: list[str]) -> list[str]:
    """Those of ``names`` whose study has a COMPLETE trial of finite values."""
    kept = []
    for name in names:
        study_id = backend.get_study_id_from_name(name)
        complete = backend.get_all_trials(study_id, deepcopy=False, states=(TrialState.COMPLETE,))
        # Optuna stores an infinite value as COMPLETE; a study of only those ranks nothing.
        if any(t.values is not None and np.isfinite(t.values).all() for t in complete):
            kept.append(name)
    return kept


def _study_predicate(study_filter: StudyFilter) -> Callable[[FrozenStudy], bool]:
    if study_filter is None:
        return lambda frozen: True
    if isinstance(study_filter, str):
        pattern = study_filter
        return lambda frozen: fnmatch.fnmatchcase(frozen.study_name, pattern)
    if isinstance(study_filter, Mapping):
        wanted = dict(study_filter)
        return lambda frozen: all(
            k in frozen.user_attrs and frozen.user_attrs[k] == v for k, v in wanted.items()
        )
    if callable(study_filter):
        return study_filter
    raise TypeError(
        "`study_filter` must be a name pattern (str), a mapping of user attributes, or a "
        f"callable taking a FrozenStudy; got {type(study_filter).__name__}."
    )


def _load_one(
    storage: str | optuna.storages.BaseStorage,
    backend: optuna.storages.BaseStorage,
    name: str,
    max_trials: int,
) -> SourceTask:
    shown = redact_url(storage)
    try:
        study_id = backend.get_study_id_from_name(name)
    except KeyError as e:
        raise _no_such_study(backend, name, shown) from e
    except Exception as e:
        raise _storage_error(
            f"Could not open storage {shown} to load source study {name!r}", e, storage
        ) from _safe_cause(e, storage)

    cached = _cache_get(storage, name, max_trials)
    try:
        if cached is not None and _is_current(backend, study_id, cached):
            return cached.task
        trials = backend.get_all_trials(study_id, deepcopy=False)
        directions = backend.get_study_directions(study_id)
    except KeyError as e:  # deleted while being read
        raise _no_such_study(backend, name, shown) from e
    except Exception as e:
        raise _storage_error(
            f"Could not read source study {name!r} from storage {shown}", e, storage
        ) from _safe_cause(e, storage)
    task = _task_from_study_trials(name, trials, directions, max_trials)
    snapshot = _snapshot(study_id, trials, task)
    if snapshot is not None:
        _cache_put(storage, name, max_trials, snapshot)
    return task


def _no_such_study(backend: optuna.storages.BaseStorage, name: str, shown: str) -> ValueError:
    try:
        available = [s.study_name for s in optuna.get_all_study_summaries(backend)]
    except Exception:
        available = []
    return ValueError(
        f"No study named {name!r} in storage {shown}. Studies there: "
        f"{available or 'none'}. Check the name or the storage URL."
    )


def _snapshot(
    study_id: int, trials: Sequence[FrozenTrial], task: SourceTask
) -> _Snapshot | None:
    if [t.number for t in trials] != list(range(len(trials))):
        return None  # read while a trial was being numbered: do not vouch for it
    unfinished = tuple(
        t.number for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)
    )
    if len(unfinished) > _MAX_UNFINISHED_TO_CHECK:
        return None
    return _Snapshot(study_id, len(trials), task.best_trials[0], unfinished, task)


def _is_current(
    backend: optuna.storages.BaseStorage, study_id: int, snap: _Snapshot
) -> bool:
    if study_id != snap.study_id:
        return False
    try:
        backend.get_trial_id_from_study_id_trial_number(study_id, snap.n_trials)
        return False  # a trial was added
    except KeyError:
        pass
    try:
        anchor_id = backend.get_trial_id_from_study_id_trial_number(
            study_id, snap.anchor.number
        )
        if backend.get_trial(anchor_id) != snap.anchor:
            return False
        unfinished = (TrialState.RUNNING, TrialState.WAITING)
        return all(
            backend.get_trial(backend.get_trial_id_from_study_id_trial_number(study_id, n)).state
            in unfinished
            for n in snap.unfinished
        )
    except KeyError:
        return False


def _cache_get(storage: Any, name: str, max_trials: int) -> _Snapshot | None:
    with _STORAGE_CACHE_LOCK:
        if isinstance(storage, str):
            return _URL_CACHE.get((storage, name, max_trials))
        try:
            per_storage = _OBJECT_CACHE.get(storage)
        except TypeError:  # not weakly referenceable or not hashable: no caching
            return None
        return None if per_storage is None else per_storage.get((name, max_trials))


def _cache_put(storage: Any, name: str, max_trials: int, snapshot: _Snapshot) -> None:
    with _STORAGE_CACHE_LOCK:
        if isinstance(storage, str):
            _URL_CACHE[(storage, name, max_trials)] = snapshot
            return
        try:
            _OBJECT_CACHE.setdefault(storage, {})[(name, max_trials)] = snapshot
        except TypeError:
            pass


def _storage_error(prefix: str, exc: BaseException, storage: Any) -> ValueError:
    """A ValueError naming what failed and why (the cause's message), the URL's secrets hidden."""
    cause = redact_text(_describe(exc), storage)
    stop = "" if cause.endswith(("?", "!")) else "."
    return ValueError(
        f"{prefix}: {cause}{stop} Check the URL, the driver and that the database is reachable."
    )


def _safe_cause(exc: BaseException, storage: Any) -> BaseException:
    """``exc`` to chain as the cause, or a copy of its traceback with the URL's secrets hidden
    when it shows one (some drivers echo the URL or password they were given)."""
    formatted = "".join(traceback.format_exception(exc))
    redacted = redact_text(formatted, storage)
    return exc if redacted == formatted else RedactedStorageError(redacted)


class RedactedStorageError(Exception):
    """A storage error whose text held a credential, kept as its traceback with it hidden."""


def _describe(exc: BaseException) -> str:
    """``Type: message`` of ``exc`` and of the causes under it that add something."""
    parts: list[str] = []
    said = ""
    current: BaseException | None = exc
    for _ in range(4):
        if current is None:
            break
        text = _one_line(str(current))
        if not parts or (text and text not in said):
            parts.append(f"{type(current).__name__}: {text}" if text else type(current).__name__)
            said += " " + text
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return parts[0] + "".join(f" (caused by {p})" for p in parts[1:])


def _one_line(text: str, limit: int = 400) -> str:
    # SQLAlchemy appends a documentation link on a line of its own; it says nothing here.
    lines = [ln for ln in text.splitlines() if not ln.strip().startswith("(Background on")]
    line = " ".join(" ".join(lines).split()).rstrip(". ")
    return line if len(line) <= limit else line[: limit - 3] + "..."
