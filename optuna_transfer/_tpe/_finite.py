"""TransferTPE on a finite search space: every configuration ranked as the grid ranks it.

Where every parameter of the joint search space is categorical and there are few enough
configurations to list, a model-based trial takes the best configuration the target has not
tried by WarmStartGridSampler's ranking (``optuna_transfer._grid._ranking``): local steps around
the target's best trials while they improve, then the sources' scores, weighted by how well
each ranks the target's trials, plus the target's own density ratio, over every configuration.
TPE's few random candidates and the vote among them leave most of a small space unscored; the
grid's ranking, measured on the same tables, found better configurations from 25 trials on.

Integer and stepped ranges keep TPE's steps: the grid's local step moves a number to the
adjacent value, one unit in an integer range, where TransferTPE's steps scale with the range.
The zero-shot portfolio and the random start-up are TransferTPE's own, before any of this. The
probe is chosen as the grid chooses its own, over every configuration no trial has: far from
them and where the sources predict the worst (TransferTPE's own probe weighs the same two
criteria over a few random draws). Measured on the categorical tables, the runs that follow
found better configurations (benchmarks/README.md). Once every source is refuted, cold TPE
takes its random start-up and then this ranking goes on
(``TransferTPESampler._ranking_after_startup``), not cold TPE's model.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import math
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.study import Study
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_transfer._grid._ranking import GridRanker
from optuna_transfer._grid._space import GridSpace
from optuna_transfer._ranking import trial_losses
from optuna_transfer._sources import SourceTask
from optuna_transfer._tpe._claims import params_with_running


# Spaces with more configurations are searched by TPE's candidates: ranking every
# configuration costs time in proportion to their number on every trial.
MAX_FINITE_CONFIGS = 100_000

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def finite_values(space: Mapping[str, BaseDistribution]) -> dict[str, list[Any]] | None:
    """The choices of each parameter of ``space``, if every one is categorical and there are
    at most :data:`MAX_FINITE_CONFIGS` configurations; else None."""
    values: dict[str, list[Any]] = {}
    for name, dist in space.items():
        if not isinstance(dist, CategoricalDistribution):
            return None
        values[name] = list(dist.choices)
    if not values or math.prod(len(v) for v in values.values()) > MAX_FINITE_CONFIGS:
        return None
    return values


class FiniteSpaceRanker:
    """The grid ranking of one finite space (see the module docstring), the sources' part
    computed once. ``seed`` draws the tie-break order of equally ranked configurations."""

    def __init__(
        self, values: dict[str, list[Any]], tasks: Sequence[SourceTask], seed: int
    ) -> None:
        self._space = GridSpace(values)
        # No portfolio of its own: TransferTPE's zero-shot trials have evaluated the sources'
        # best configurations before any model-based trial.
        self._ranker = GridRanker(self._space, tasks, 0, seed)

    def choose(
        self,
        study: Study,
        trial: FrozenTrial,
        attempt: int,
        violations: dict[int, float] | None = None,
        ids: dict[int, int | None] | None = None,
    ) -> dict[str, Any] | None:
        """The best-ranked configuration that no other trial of ``study`` has (running ones by
        the params they published), ranked on its finished trials; after ``attempt`` lost
        claims, one of the next best at random. None once every one is taken. ``ids``: the
        caller's cache of finished trials' points, by trial number, kept up to date here."""
        finished, finished_ids, taken = self._read(study, trial, ids)
        if taken.all():
            return None
        losses = trial_losses(study, finished, violations)
        score = self._ranker.rank(finished, losses, finished_ids).score
        return self._space.params_of(self._ranker.pick(score, taken, trial.number, attempt))

    def probe(
        self,
        study: Study,
        trial: FrozenTrial,
        rng: np.random.RandomState,
        ids: dict[int, int | None] | None = None,
    ) -> dict[str, Any] | None:
        """The probe, chosen over every configuration no other trial has, as
        WarmStartGridSampler chooses its own (``GridRanker.probe_score``): the best by the sum
        of two ranks, its distance from those trials and how badly the sources predict it to
        do; ``rng`` breaks ties. None once every one is taken."""
        _, _, taken = self._read(study, trial, ids)
        if taken.all():
            return None
        score = self._ranker.probe_score(
            np.flatnonzero(taken).tolist(), rng.random_sample(len(taken))
        )
        score[taken] = -np.inf
        return self._space.params_of(int(np.argmax(score)))

    def _read(
        self, study: Study, trial: FrozenTrial, ids: dict[int, int | None] | None
    ) -> tuple[list[FrozenTrial], list[int | None], np.ndarray]:
        """The finished trials that rank (on the space, or FAIL), their points, and which
        points a trial other than ``trial`` has; ``ids`` as in :meth:`choose`."""
        space = self._space
        ids = {} if ids is None else ids
        finished: list[FrozenTrial] = []
        finished_ids: list[int | None] = []
        taken = np.zeros(space.n_points, dtype=bool)
        # One read of the study serves both: the trials that rank and the points taken.
        for t in study.get_trials(deepcopy=False):
            if t.number == trial.number:
                continue
            if t.number in ids:
                gid = ids[t.number]
            else:
                gid = space.id_of(params_with_running(t))
                if t.state.is_finished():  # its params can no longer change
                    ids[t.number] = gid
            if gid is not None:
                taken[gid] = True
            if t.state in _FINISHED and (gid is not None or t.state == TrialState.FAIL):
                finished.append(t)
                finished_ids.append(gid)
        return finished, finished_ids, taken
