"""What TransferTPESampler records in the study, and its claims on shared work.

Everything the sampler writes to or reads from trials' system attributes is here: the
zero-shot portfolio and probe claims (parallel workers must not evaluate one entry twice),
the running params other workers read (constant liar), and the per-trial weights and roles
that :mod:`optuna_transfer.visualization` reads back. Nothing here ranks configurations.
"""

from __future__ import annotations

from collections.abc import Callable
import copy
from dataclasses import dataclass
import functools
import json
from typing import Any
from typing import NamedTuple

from optuna.distributions import BaseDistribution
from optuna.study import Study
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_transfer._encoding import project_config
from optuna_transfer._optuna_compat import get_chunked_system_attr
from optuna_transfer._optuna_compat import set_chunked_system_attr
from optuna_transfer._optuna_compat import set_trial_system_attr
from optuna_transfer._schedule import portfolio_size


WEIGHTS_ATTR_KEY = "transfer_tpe:weights"
# The portfolio entry (its params as JSON) a zero-shot trial evaluates; "null" once withdrawn.
ZERO_SHOT_ATTR_KEY = "transfer_tpe:zero_shot"
PROBE_ATTR_KEY = "transfer_tpe:probe"
# On a start-up trial sampled at random (the probe excepted).
RANDOM_ATTR_KEY = "transfer_tpe:random"
# On a trial the internal cold TPE sampled, every source having lost its vote.
COLD_ATTR_KEY = "transfer_tpe:cold"
RELATIVE_PARAMS_KEY = "transfer_tpe:relative_params"
WITHDRAWN = "null"
# Claims a trial may lose to other workers before it gives up on the portfolio.
MAX_CLAIMS = 10


@dataclass(frozen=True)
class Portfolio:
    """The zero-shot configurations, best first, with the source each came from: ``size`` of
    them, and after those the candidates that take the place of an entry which is an earlier
    one's configuration for the target (see :func:`entries_in_play`)."""

    entries: list[dict[str, Any]]
    sources: list[int]
    size: int
    # The size is the default, one per source: once the target's parameters are known, it
    # counts only the sources with an entry that is a configuration of the target's.
    per_source: bool = False

    @property
    def keys(self) -> list[str]:
        return [config_key(e) for e in self.entries]


def config_key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=repr)


def claim_role(
    study: Study,
    trial: FrozenTrial,
    portfolio: Portfolio,
    unfit: Callable[[list[FrozenTrial]], set[int]],
) -> Role:
    """Claim the first portfolio entry no other trial has taken, else the probe if it has
    not run yet (see :class:`Role` for what it returns).

    Entries are claimed, not indexed by trial number, so trials the user enqueued or added
    do not push them out. An entry is taken by a trial that claims it (whatever its state:
    a failed zero-shot trial is not retried), unless that trial took another branch of a
    conditional space (:func:`_took_another_branch`), or by one that evaluates the same
    params; ``unfit(trials)`` names entries not to evaluate now (in a conditional space
    they wait for a trial in their branch). Two workers may claim one entry at the same moment:
    each re-reads after writing its claim, and whichever wrote second sees the other and
    withdraws (both may; the entry is then claimed by a later trial), so no entry is evaluated
    twice. The probe is claimed the same way.
    """
    keys = portfolio.keys
    lost: set[int] = set()
    for _ in range(len(keys) + MAX_CLAIMS):
        others = [t for t in study.get_trials(deepcopy=False) if t.number != trial.number]
        taken = taken_entries(others, portfolio)
        unfitting = unfit(others)
        in_play = entries_in_play(others, portfolio)
        free = [i for i in in_play if i not in taken | lost | unfitting]
        if not free:
            break
        i = free[0]
        if _claim_entry(study, trial, portfolio, i, _target_space(others)):
            return Role(i, False, False, False)
        lost.add(i)
    else:
        return Role(None, False, False, False)
    if any(is_probe_trial(t) for t in others):
        # Nothing is left to claim once no trial that claimed can still withdraw; later
        # trials then skip reading the study. An entry that shares no parameter with the
        # target's trials yet may belong to a branch of a conditional space no trial has
        # taken: it waits for one.
        settled = all(
            t.state.is_finished()
            for t in others
            if ZERO_SHOT_ATTR_KEY in t.system_attrs or PROBE_ATTR_KEY in t.system_attrs
        )
        # Whether the space is conditional cannot be told from the trials so far (the first
        # ones may all have taken one branch), so such an entry waits in any space; in a
        # flat one it waits for ever, at the cost of one read of the study per trial.
        waiting = any(i in unfitting and i not in taken for i in in_play)
        return Role(None, False, settled and not waiting, settled)
    return Role(None, _claim(study, trial, PROBE_ATTR_KEY, True, False), False, False)


def switch_claim(
    study: Study,
    trial: FrozenTrial,
    portfolio: Portfolio,
    held: int,
    space: dict[str, BaseDistribution],
    so_far: dict[str, Any],
) -> int | None:
    """The entry ``trial`` evaluates once its held entry (index ``held``) turned out to set
    none of the parameters it suggests: the first trial of a study knows no parameter of the
    target, and may hold a source's entry of another model or another branch. ``space``: the
    parameters the trial suggests now; ``so_far``: its params so far. The first free entry
    in play that sets one of them and agrees with ``so_far`` is claimed in place of ``held``
    (which is then free again), as :func:`claim_role` claims; ``held`` is kept where none
    is, and None returned where other workers took each one first (the trial then holds
    no entry)."""
    lost: set[int] = set()
    for _ in range(MAX_CLAIMS):
        others = [t for t in study.get_trials(deepcopy=False) if t.number != trial.number]
        target = {**_target_space(others), **space}
        entries = _configurations(target, portfolio)
        taken = taken_entries(others, portfolio) | lost
        free = [
            i
            for i in entries_in_play(others, portfolio, target)
            if i not in taken
            and i != held
            and not space.keys().isdisjoint(entries[i])
            and all(entries[i].get(n, v) == v for n, v in so_far.items())
        ]
        if not free:
            # The held entry may still run once the trial takes its branch; if it does not,
            # the claim is withdrawn as the trial ends (withdraw_missed_entry).
            return held if not lost else None
        i = free[0]
        if _claim_entry(study, trial, portfolio, i, target):
            return i
        lost.add(i)
    return None


class Role(NamedTuple):
    """What :func:`claim_role` gave a trial: the portfolio entry it evaluates (or None),
    whether it is the probe, whether nothing is left to claim for any later trial, and
    whether every entry that can run now and the probe have run (``settled``)."""

    entry: int | None
    is_probe: bool
    done: bool
    settled: bool


def held_role(trial: FrozenTrial, portfolio: Portfolio) -> tuple[int | None, bool] | None:
    """The portfolio entry (or the probe) ``trial`` holds before it has claimed anything, or
    None. A trial Optuna retries (``RetryFailedTrialCallback``, after its worker died) is
    created with the failed trial's system attributes and params: it holds that trial's
    claim, and evaluates what that trial was evaluating, not the next free entry."""
    claim = trial.system_attrs.get(ZERO_SHOT_ATTR_KEY)
    if claim is not None and claim in portfolio.keys:
        return portfolio.keys.index(claim), False
    if trial.system_attrs.get(PROBE_ATTR_KEY):
        return None, True
    return None


def _claim_entry(
    study: Study,
    trial: FrozenTrial,
    portfolio: Portfolio,
    i: int,
    space: dict[str, BaseDistribution],
) -> bool:
    """Claim entry ``i`` for ``trial`` (``space``: the target's parameters): a rival that
    took another branch than the entry's (:func:`_took_another_branch`) has released it."""
    names = _branch_names(space, portfolio)[i]
    released = functools.partial(_took_another_branch, names=names)
    return _claim(study, trial, ZERO_SHOT_ATTR_KEY, portfolio.keys[i], WITHDRAWN, released)


def _claim(
    study: Study,
    trial: FrozenTrial,
    key: str,
    value: Any,
    withdrawn: Any,
    released: Callable[[FrozenTrial], bool] = lambda t: False,
) -> bool:
    """Write ``key = value`` on ``trial``; keep it only if no other trial holds the same (a
    trial that ``released`` it aside)."""
    set_trial_system_attr(study, trial, key, value)
    rivals = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.number != trial.number and t.system_attrs.get(key) == value and not released(t)
    ]
    if rivals:
        set_trial_system_attr(study, trial, key, withdrawn)
    return not rivals


def _projected_entries(
    space: dict[str, BaseDistribution], portfolio: Portfolio
) -> list[dict[str, Any]]:
    """The portfolio's entries as the target runs them: projected onto its parameters
    (``space``: :func:`_target_space`), once it has any. Two sources' best configurations may
    differ only in a parameter the target dropped, or in values clipped into a shrunk range,
    and are then one configuration."""
    return [project_config(e, space) if space else e for e in portfolio.entries]


def _branch_names(space: dict[str, BaseDistribution], portfolio: Portfolio) -> list[set[str]]:
    """Per entry, the parameters that place it in a branch of the target's space: those the
    target runs (see :func:`_projected_entries`) and those no trial has suggested yet (a
    branch not taken so far); not those whose value fits no more (a renamed choice)."""
    return [set(project_config(e, space)) | (set(e) - set(space)) for e in portfolio.entries]


def _target_space(trials: list[FrozenTrial]) -> dict[str, BaseDistribution]:
    """The latest distribution of each parameter among ``trials``."""
    return {n: d for t in trials for n, d in t.distributions.items()}


def entries_in_play(
    trials: list[FrozenTrial],
    portfolio: Portfolio,
    space: dict[str, BaseDistribution] | None = None,
) -> list[int]:
    """The indices of the portfolio's first ``size`` entries that are distinct configurations
    for the target (given its ``trials``): an entry that is an earlier one's configuration is
    passed over and the next candidate runs in its place. An entry that sets none of the
    target's parameters (:func:`_configurations`) is no configuration yet: it stays in play,
    waiting for a trial of its branch (``claim_role``'s ``unfit``), but takes no slot, and
    with the default size its source is not counted, so a source of another model leaves
    the others their zero-shot trials. ``space``: the target's parameters, by default those
    of ``trials``."""
    if space is None:
        space = _target_space(trials)
    # Before any trial every entry is a configuration, as far as can be told.
    counts = [bool(c) or not space for c in _configurations(space, portfolio)]
    size = portfolio.size
    if portfolio.per_source and space:
        n_sources = len({s for s, c in zip(portfolio.sources, counts) if c})
        size = min(size, portfolio_size(None, n_sources))
    # With the default size, a source none of whose entries is a configuration yet still
    # has its best waiting (for a trial of its branch), however few slots the others fill.
    unplaced = {s for s, c in zip(portfolio.sources, counts) if not c} - {
        s for s, c in zip(portfolio.sources, counts) if c
    }
    in_play: list[int] = []
    n_slots = 0
    seen: set[str] = set()
    for i, entry in enumerate(_projected_entries(space, portfolio)):
        source = portfolio.sources[i]
        if n_slots == size and not (portfolio.per_source and source in unplaced):
            continue
        unplaced.discard(source)
        key = config_key(entry)
        if entry and key in seen:
            continue
        seen.add(key)
        in_play.append(i)
        n_slots += counts[i]
    return in_play


def sets_nothing(trials: list[FrozenTrial], portfolio: Portfolio) -> set[int]:
    """The entries that are no configuration of the target's so far (see
    :func:`_configurations`), once its ``trials`` have parameters: a source of another model,
    of a branch no trial has taken yet, or whose values no longer fit."""
    space = _target_space(trials)
    if not space:
        return set()
    return {i for i, c in enumerate(_configurations(space, portfolio)) if not c}


def _configurations(
    space: dict[str, BaseDistribution], portfolio: Portfolio
) -> list[dict[str, Any]]:
    """The entries projected onto ``space`` without its single-valued parameters: what is left
    is what a zero-shot trial would choose (Optuna records a one-value parameter without
    asking the sampler, so sharing only such a parameter sets nothing)."""
    return [
        {n: v for n, v in project_config(e, space).items() if not space[n].single()}
        for e in portfolio.entries
    ]


def taken_entries(trials: list[FrozenTrial], portfolio: Portfolio) -> set[int]:
    keys = portfolio.keys
    space = _target_space(trials)
    entries = _projected_entries(space, portfolio)
    names = _branch_names(space, portfolio)
    taken = set()
    for t in trials:
        claim = t.system_attrs.get(ZERO_SHOT_ATTR_KEY)
        if claim is not None and claim in keys:
            i = keys.index(claim)
            if not _took_another_branch(t, names[i]):
                taken.add(i)
        params = t.params or t.system_attrs.get("fixed_params") or {}
        for i, entry in enumerate(entries):
            # An entry with no parameter of the target's (yet) is no configuration to match.
            if entry and all(n in params and params[n] == v for n, v in entry.items()):
                taken.add(i)
    return taken


def withdraw_missed_entry(study: Study, trial: FrozenTrial, portfolio: Portfolio) -> FrozenTrial:
    """``trial``, ending, with its zero-shot claim withdrawn if it evaluated nothing of the
    entry (see :func:`_took_another_branch`; it took another branch, or the entry's values no
    longer fit): it is no zero-shot trial, in its role or anywhere the sampler counts them."""
    claim = trial.system_attrs.get(ZERO_SHOT_ATTR_KEY)
    if claim is None or claim not in portfolio.keys:
        return trial
    names = _branch_names(trial.distributions, portfolio)[portfolio.keys.index(claim)]
    if not _evaluated_none(trial, names):
        return trial
    set_trial_system_attr(study, trial, ZERO_SHOT_ATTR_KEY, WITHDRAWN)
    ended = copy.copy(trial)
    ended.system_attrs = {**trial.system_attrs, ZERO_SHOT_ATTR_KEY: WITHDRAWN}
    return ended


def _took_another_branch(trial: FrozenTrial, names: set[str]) -> bool:
    """Whether ``trial``, claiming an entry (its ``names``: :func:`_branch_names`), finished
    having suggested parameters but none of the entry's: in a conditional space it took a
    branch where they do not exist, and the entry was not evaluated (its branch is known once
    a trial has taken it; see ``TransferTPESampler._branch_of``). A claimer that failed
    before it suggested anything keeps the entry, as a failed zero-shot trial does."""
    return trial.state.is_finished() and _evaluated_none(trial, names)


def _evaluated_none(trial: FrozenTrial, names: set[str]) -> bool:
    """Whether ``trial`` has suggested parameters, none of them an entry's ``names``."""
    return bool(names) and bool(trial.params) and names.isdisjoint(trial.params)


def record(study: Study, trial: FrozenTrial, key: str, value: Any) -> None:
    """Record a value of the sampler's on ``trial`` (weights as JSON, role flags)."""
    set_trial_system_attr(study, trial, key, value)


def write_running_params(study: Study, trial: FrozenTrial, params: dict[str, Any]) -> None:
    """Publish a running trial's relative params, which other workers read (constant liar);
    chunked as Optuna's TPE does, for RDB backends with limited columns."""
    set_chunked_system_attr(study, trial, RELATIVE_PARAMS_KEY, json.dumps(params))


def is_taken(study: Study, trial: FrozenTrial, params: dict[str, Any]) -> bool:
    """Whether another trial (finished, or running with known params) has ``params``."""
    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)
    for t in study.get_trials(deepcopy=False, states=states):
        if t.number == trial.number:
            continue
        other = params_with_running(t)
        if all(n in other and other[n] == v for n, v in params.items()):
            return True
    return False


def is_zero_shot_trial(trial: FrozenTrial) -> bool:
    return trial.system_attrs.get(ZERO_SHOT_ATTR_KEY, WITHDRAWN) != WITHDRAWN


def is_probe_trial(trial: FrozenTrial) -> bool:
    return bool(trial.system_attrs.get(PROBE_ATTR_KEY))


def is_startup_random(trial: FrozenTrial) -> bool:
    """Whether ``trial`` is a random start-up trial (the probe is not one)."""
    return bool(trial.system_attrs.get(RANDOM_ATTR_KEY))


def is_random_trial(trial: FrozenTrial) -> bool:
    """Whether ``trial`` was sampled at random: the probe, or a random start-up trial."""
    return is_probe_trial(trial) or is_startup_random(trial)


def is_cold_trial(trial: FrozenTrial) -> bool:
    """Whether ``trial`` was sampled by the internal cold TPE."""
    return bool(trial.system_attrs.get(COLD_ATTR_KEY))


def chosen_params(t: FrozenTrial) -> dict[str, Any]:
    """:func:`params_with_running` without the single-valued parameters, which Optuna records
    without asking a sampler: two trials with the same chosen parameters are the same
    configuration, whatever fixed values were recorded between them."""
    dists = t.distributions
    return {
        name: value
        for name, value in params_with_running(t).items()
        if name not in dists or not dists[name].single()
    }


def params_with_running(t: FrozenTrial) -> dict[str, Any]:
    if t.state != TrialState.RUNNING:
        return t.params
    raw = get_chunked_system_attr(t, RELATIVE_PARAMS_KEY)
    try:
        params = dict(json.loads(raw)) if raw else {}
    except json.JSONDecodeError:
        # Read while its worker was rewriting the chunks: only the suggested params are known.
        params = {}
    params.update(t.params)
    return params
