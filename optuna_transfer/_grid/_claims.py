"""The claim protocol: how parallel workers share out the grid's points through the storage.

The only code of the grid sampler that reads or writes the study's trials, through
``optuna_transfer._optuna_compat``. A trial claims a point by recording its id in its system
attributes (:data:`GRID_ID_ATTR_KEY`), then re-reads the study: of two trials claiming a point,
the one that wrote second always sees the other, so at most one keeps it (on any storage that
is sequentially consistent: journal file, RDB). The protocol in words is in
:class:`~optuna_transfer.WarmStartGridSampler`'s docstring ("Parallel workers").
"""

from __future__ import annotations

from dataclasses import dataclass
import time

import numpy as np
import optuna
from optuna.study import Study
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_transfer._grid._ranking import GridRanker
from optuna_transfer._grid._space import GridSpace
from optuna_transfer._optuna_compat import get_all_trials
from optuna_transfer._optuna_compat import set_trial_system_attr


_logger = optuna.logging.get_logger(__name__)

GRID_ID_ATTR_KEY = "warm_start_grid:grid_id"
SEARCH_SPACE_ATTR_KEY = "warm_start_grid:search_space"
# Set on a trial that repeats a point because every point was already claimed.
REPEAT_ATTR_KEY = "warm_start_grid:repeat"
# Written once a trial's claim is final (it won its point, or fell back after exhaustion).
# A claim without it may still be given up in a collision, so it never ends the study.
SETTLED_ATTR_KEY = "warm_start_grid:settled"
# Set on the trial that took the probe (the random point after the zero-shot portfolio).
PROBE_ATTR_KEY = "warm_start_grid:probe"
# Set on a trial that walked the grid at random (the probe excepted).
WALK_ATTR_KEY = "warm_start_grid:walk"
# Where Optuna records the params of an enqueued trial.
_FIXED_PARAMS_KEY = "fixed_params"

# Claims a trial may lose in a row before it evaluates its last pick anyway.
_MAX_CLAIM_RETRIES = 50
# How long to keep re-reading the claims while some are unsettled, before falling back to a
# repeat. A collision settles within a few storage round trips, but a claimer can be held up
# for a while behind a busy database's write lock; a crashed claimer never settles.
_SETTLE_TIMEOUT_S = 10.0
_SETTLE_POLL_S = (0.001, 0.05)  # first and largest pause between re-reads
# Written as the grid id by a trial that lost a collision: its claim is withdrawn at once, so
# that a rival waiting for claims to settle does not wait for it.
_NO_CLAIM = -1
# After a lost collision, a trial waits a random time below a window that doubles with each
# loss (first and largest window), so that two workers that keep colliding drift apart.
_BACKOFF_S = (0.002, 0.1)


def claimed_id(trial: FrozenTrial) -> int | None:
    """The grid id a trial holds, or ``None`` before its claim or after it withdrew one."""
    gid = trial.system_attrs.get(GRID_ID_ATTR_KEY)
    if gid is None or int(gid) == _NO_CLAIM:
        return None
    return int(gid)


def is_random_point(trial: FrozenTrial) -> bool:
    """Whether ``trial`` took its point at random: the probe, or a random walk."""
    return bool(trial.system_attrs.get(PROBE_ATTR_KEY) or trial.system_attrs.get(WALK_ATTR_KEY))


def is_enqueued(trial: FrozenTrial) -> bool:
    """Whether the user fixed the trial's params (``enqueue_trial``): it keeps them."""
    return _FIXED_PARAMS_KEY in trial.system_attrs


@dataclass(frozen=True)
class Claims:
    """The study's trials as read once, and grid id -> the trials that claim (or evaluated) it."""

    trials: list[FrozenTrial]
    by_id: dict[int, list[FrozenTrial]]

    def is_claimed(self, grid_id: int) -> bool:
        return grid_id in self.by_id

    def failed_ids(self) -> list[int]:
        """The points a FAIL trial evaluated."""
        return [
            gid for gid, ts in self.by_id.items() if any(t.state == TrialState.FAIL for t in ts)
        ]


class ClaimProtocol:
    """Reads the claims of one grid's trials and makes a trial's claim; ``ranker`` picks the
    point to claim from a score."""

    def __init__(self, space: GridSpace, ranker: GridRanker) -> None:
        self._space = space
        self._ranker = ranker

    # -- reading ------------------------------------------------------------------------------

    def read(self, study: Study) -> Claims:
        trials = get_all_trials(study)
        by_id: dict[int, list[FrozenTrial]] = {}
        for t in trials:
            gid = self._trial_grid_id(t)
            if gid is not None:
                by_id.setdefault(gid, []).append(t)
        return Claims(trials, by_id)

    def _trial_grid_id(self, t: FrozenTrial) -> int | None:
        attrs = t.system_attrs
        if GRID_ID_ATTR_KEY in attrs:
            if self._space.same_as(attrs.get(SEARCH_SPACE_ATTR_KEY, {})):
                return claimed_id(t)
            return None
        # Enqueued trials that hit a grid point count as evaluating it.
        if t.state.is_finished():
            return self._space.id_of(t.params)
        fixed = attrs.get(_FIXED_PARAMS_KEY)
        return self._space.id_of(fixed) if fixed else None

    def probed(self, claims: Claims, excluding: int | None = None) -> bool:
        """Whether a trial of this grid (other than number ``excluding``) took the probe."""
        return any(
            t.system_attrs.get(PROBE_ATTR_KEY)
            and t.number != excluding
            and self._space.same_as(t.system_attrs.get(SEARCH_SPACE_ATTR_KEY, {}))
            for t in claims.trials
        )

    def n_evaluated(self, study: Study) -> int:
        """How many points a finished trial has evaluated."""
        by_id = self.read(study).by_id
        return sum(any(t.state.is_finished() for t in ts) for ts in by_id.values())

    def n_held(self, study: Study) -> int:
        """How many points are evaluated or held by a settled claim (a claim in the middle of
        a collision may be given up, and its point left unvisited)."""
        by_id = self.read(study).by_id
        return sum(
            any(t.state.is_finished() or t.system_attrs.get(SETTLED_ATTR_KEY) for t in ts)
            for ts in by_id.values()
        )

    # -- writing ------------------------------------------------------------------------------

    def announce(self, study: Study, trial: FrozenTrial) -> None:
        """Record the grid on the trial, so other workers' samplers count its claim as theirs
        only when they share the grid."""
        set_trial_system_attr(study, trial, SEARCH_SPACE_ATTR_KEY, self._space.values)

    def claim_probe(self, study: Study, trial: FrozenTrial) -> bool:
        """Mark ``trial`` as the probe; keep the mark only if no other trial of this grid holds
        it. Two workers may decide on the probe at the same moment: each re-reads after
        writing, and whichever wrote second sees the other and withdraws (both may; a later
        trial then takes the probe), so at most one trial is the probe."""
        set_trial_system_attr(study, trial, PROBE_ATTR_KEY, True)
        if self.probed(self.read(study), excluding=trial.number):
            set_trial_system_attr(study, trial, PROBE_ATTR_KEY, False)
            return False
        return True

    def mark_walk(self, study: Study, trial: FrozenTrial) -> None:
        set_trial_system_attr(study, trial, WALK_ATTR_KEY, True)

    def claim(
        self,
        study: Study,
        trial: FrozenTrial,
        score: np.ndarray,
        rng: np.random.Generator,
        claims: Claims,
        shared: bool = True,
    ) -> None:
        """Claim the best point by ``score`` that no other trial holds, for ``trial``; once
        every point is held, the best one not yet finished, else the best (a repeat).
        ``shared``: the score is the ranking every worker computes alike, so earlier trials
        still looking will take its best free points; a score of the trial's own (a random
        walk, the probe) leaves them nothing."""
        n_points = self._space.n_points
        lost = np.zeros(n_points, dtype=bool)
        for attempt in range(_MAX_CLAIM_RETRIES + 1):
            if attempt > 0:
                # The last claim was lost. Withdraw it before anything else: the rival may be
                # waiting for it to settle (both lose when both wrote before either read).
                set_trial_system_attr(study, trial, GRID_ID_ATTR_KEY, _NO_CLAIM)
                window = min(_BACKOFF_S[0] * 2 ** (attempt - 1), _BACKOFF_S[1])
                time.sleep(rng.uniform(0.0, window))
                claims = self.read(study)
            taken = self._taken(claims, trial.number)
            # Earlier trials still looking for a point come first: this one leaves them the
            # best free points (one each) and takes the next. Without that, a trial that lost
            # a claim was overtaken by newer trials of faster workers until every point was
            # taken, and repeated one while a newer trial had a fresh point; with it, workers
            # that rank alike (the same seed) also spread over the best points at once.
            ahead, unsettled = self.claimers_ahead(claims.trials, trial.number)
            # Wait while the free points may all be needed by earlier claimers (those still
            # looking, and those whose claim may yet be given up in a collision), or while
            # every point is taken but some claim is not settled and may be given up in a
            # moment: falling back now could repeat a point while another is still unvisited.
            # An earlier claimer that never settles (its worker died) is waited for only until
            # the deadline.
            deadline = time.monotonic() + _SETTLE_TIMEOUT_S
            pause = _SETTLE_POLL_S[0]
            while time.monotonic() < deadline and (
                (ahead + unsettled > 0 and int((~taken).sum()) <= ahead + unsettled)
                or (taken.all() and self._has_unsettled(claims, trial.number))
            ):
                # No storage offers a change notification, so this polls, backing off.
                time.sleep(pause)
                pause = min(2 * pause, _SETTLE_POLL_S[1])
                claims = self.read(study)
                taken = self._taken(claims, trial.number)
                ahead, unsettled = self.claimers_ahead(claims.trials, trial.number)
            if taken.all():
                gid = self._fallback(claims, score, trial.number)
                set_trial_system_attr(study, trial, GRID_ID_ATTR_KEY, gid)
                # A claim seen a moment ago may have been transient (two workers that collided
                # both give the point up), so this is a repeat only if another trial still
                # holds or has evaluated the point now.
                holders = self.read(study).by_id.get(gid, [])
                if any(t.number != trial.number for t in holders):
                    set_trial_system_attr(study, trial, REPEAT_ATTR_KEY, True)
                set_trial_system_attr(study, trial, SETTLED_ATTR_KEY, True)
                return
            # Points given up in a collision are avoided, unless they are all that is left
            # (both claimants may have given one up; nobody holds it now).
            if not (taken | lost).all():
                taken |= lost
            skip = ahead if shared else 0
            gid = self._ranker.pick(score, taken, trial.number, attempt, skip=skip)
            set_trial_system_attr(study, trial, GRID_ID_ATTR_KEY, gid)
            # Whichever of two claimants wrote second sees the other here, so at most one keeps
            # the point (both may give it up; it is then claimed again later).
            claims = self.read(study)
            if all(t.number == trial.number for t in claims.by_id.get(gid, [])):
                set_trial_system_attr(study, trial, SETTLED_ATTR_KEY, True)
                return
            lost[gid] = True
        # The last pick stands: nothing more will be given up, so no rival waits for it.
        set_trial_system_attr(study, trial, SETTLED_ATTR_KEY, True)
        _logger.warning(
            f"Trial {trial.number} lost {_MAX_CLAIM_RETRIES} claims in a row to other workers; "
            "it evaluates its last pick, which may duplicate another trial."
        )

    def claimers_ahead(self, trials: list[FrozenTrial], number: int) -> tuple[int, int]:
        """How many running trials numbered below ``number`` are still looking for a point of
        this grid (no claim, not enqueued, with this grid's search space or just created: no
        system attributes or params yet, so their sampler has not run), and how many hold a
        claim that is not settled yet."""
        looking = unsettled = 0
        for t in trials:
            if t.number >= number or t.state != TrialState.RUNNING:
                continue
            attrs = t.system_attrs
            if attrs.get(SETTLED_ATTR_KEY) or _FIXED_PARAMS_KEY in attrs:
                continue
            if SEARCH_SPACE_ATTR_KEY in attrs:
                if self._space.same_as(attrs[SEARCH_SPACE_ATTR_KEY]):
                    if claimed_id(t) is None:
                        looking += 1
                    else:
                        unsettled += 1
            elif not attrs and not t.params:
                looking += 1
        return looking, unsettled

    def _taken(self, claims: Claims, number: int) -> np.ndarray:
        taken = np.zeros(self._space.n_points, dtype=bool)
        for gid, ts in claims.by_id.items():
            if any(t.number != number for t in ts):
                taken[gid] = True
        return taken

    @staticmethod
    def _has_unsettled(claims: Claims, number: int) -> bool:
        return any(
            t.number != number
            and t.state == TrialState.RUNNING
            and GRID_ID_ATTR_KEY in t.system_attrs
            and not t.system_attrs.get(SETTLED_ATTR_KEY)
            for ts in claims.by_id.values()
            for t in ts
        )

    def _fallback(self, claims: Claims, score: np.ndarray, number: int) -> int:
        # Every point is claimed. As GridSampler does, evaluate a point that has not finished
        # yet (a crashed worker's), else re-evaluate one.
        unfinished = np.ones(self._space.n_points, dtype=bool)
        for gid, ts in claims.by_id.items():
            if any(t.state.is_finished() for t in ts if t.number != number):
                unfinished[gid] = False
        if not unfinished.any():
            _logger.warning(
                "`WarmStartGridSampler` is re-evaluating a configuration because the grid has "
                "been exhausted. This may happen when re-running optimizations on already "
                "finished studies."
            )
            unfinished[:] = True
        return self._ranker.pick(score, ~unfinished, number, 0)
