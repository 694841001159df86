"""Parzen-estimator models of a task's trials, shared by both samplers.

A task (the target or a source) splits its own trials into good and bad by its own ranking
(``optuna_transfer._ranking``) and scores a configuration by TPE's density ratio
``l(x) / g(x)`` of the two. :class:`TargetModel` is the target's, refitted as trials finish;
:class:`SourceModel` a source's over a target search space, built once, plus its smoothed
quantiles (how the source would rank any configuration).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution

from optuna_transfer._encoding import aligned_matrix
from optuna_transfer._parzen import ParzenEstimator
from optuna_transfer._parzen import StackedSmoother
from optuna_transfer._sources import SourceTask


# Equal prior shares in a source's good and bad densities make their ratio neutral where the
# source never looked.
SOURCE_PRIOR_SHARE = 0.1
# Kernels per source density: scoring candidates then costs the same for a 1,000- or a
# 10,000-trial source (smaller sources are used whole).
MAX_GOOD_KERNELS = 100
MAX_BAD_KERNELS = 400
# Kernels of the smoothed ranking (predicted quantile), evenly spread by rank.
MAX_RANKING_KERNELS = 500


def default_gamma(n: int) -> int:
    # Optuna's TPE default: the best 10% (at most 25) of the trials are "good".
    return min(math.ceil(0.1 * n), 25)


def source_gamma(n: int) -> int:
    # A finished source is a fixed sample, so no cap: its best 10% describe where it was good.
    return max(1, math.ceil(0.1 * n))


class TargetModel:
    """Good/bad Parzen estimators of the target's observations ``x`` (rows aligned to a space
    with ``n_choices``), split by ``losses`` (lower better; ``inf`` for running trials, which are
    never good): the best ``default_gamma`` are good, as in Optuna's TPE.

    ``prior_share`` as in :class:`~optuna_transfer._parzen.ParzenEstimator`: ``None`` keeps
    TPE's optimistic prior, a share makes unexplored regions neutral. Rows where ``never_good``
    holds are bad even when they rank among the best ``default_gamma`` (a failed trial among
    too few others), and leave their good place empty.
    """

    def __init__(
        self,
        x: np.ndarray,
        losses: np.ndarray,
        n_choices: list[int],
        prior_share: float | None = None,
        never_good: np.ndarray | None = None,
    ) -> None:
        n_good = default_gamma(int(np.sum(np.isfinite(losses))))
        self.order = np.argsort(losses, kind="stable")
        self.is_good = np.zeros(len(x), dtype=bool)
        self.is_good[self.order[:n_good]] = True
        if never_good is not None:
            self.is_good &= ~never_good
        self.below = ParzenEstimator(x[self.is_good], n_choices, prior_share=prior_share)
        self.above = ParzenEstimator(x[~self.is_good], n_choices, prior_share=prior_share)

    def score(self, x: np.ndarray) -> np.ndarray:
        """TPE's log density ratio at each row of ``x``: high where the target was good."""
        return self.below.log_pdf(x) - self.above.log_pdf(x)

    def score_grid(self, columns: list[np.ndarray]) -> np.ndarray:
        """:meth:`score` at every point of the Cartesian grid of ``columns`` (C order)."""
        return _ratio_grid(self.below, self.above, columns)


class SourceModel:
    """Good/bad Parzen estimators of one source in one target (sub)space, built once."""

    def __init__(
        self,
        task: SourceTask,
        space: dict[str, BaseDistribution],
        x: np.ndarray | None = None,
    ) -> None:
        # ``x``: the task's trials already aligned onto ``space`` (SourceEnsemble aligns every
        # source's trials in one pass).
        x = aligned_matrix(task.trials, space) if x is None else x
        # A trial that says nothing about this space would only add a uniform kernel.
        informative = ~np.all(np.isnan(x), axis=1)
        n_good = source_gamma(task.n_complete)
        is_good = np.zeros(len(x), dtype=bool)
        is_good[:n_good] = True  # trials are stored best first, PRUNED last
        n_choices = choice_counts(space)
        self._n_choices = n_choices
        self._good = spread(x[is_good & informative], MAX_GOOD_KERNELS)
        self._bad = spread(x[~is_good & informative], MAX_BAD_KERNELS)
        # A source that ranks nothing would vote with noise that can still win trust by chance.
        self.usable = len(self._good) > 0 and len(self._bad) > 0 and not task.ranks_nothing
        # Quantile of each trial within the source (0 best, 1 worst; PRUNED count as worst),
        # smoothed over the space to predict how the source would rank any configuration.
        ranks = np.minimum(task.ranks, task.n_complete) / max(task.n_complete, 1)
        keep = spread(np.flatnonzero(informative), MAX_RANKING_KERNELS)
        self._ranked = x[keep]
        self._quantiles = ranks[keep]
        # The source's best COMPLETE trial that has any of these parameters (unit coordinates).
        complete = np.flatnonzero(informative[: task.n_complete])
        self.best: np.ndarray | None = x[complete[0]] if len(complete) else None

    @functools.cached_property
    def _all(self) -> ParzenEstimator:
        """The kernels of the smoothed ranking (SourceEnsemble builds all sources' at once)."""
        return ParzenEstimator(self._ranked, self._n_choices)

    # Built on first use: only sources that vote need them, and with many sources most never do.
    @functools.cached_property
    def below(self) -> ParzenEstimator:
        """The source's good density; equal prior shares with :attr:`above` make the ratio
        neutral where the source never looked."""
        return ParzenEstimator(self._good, self._n_choices, prior_share=SOURCE_PRIOR_SHARE)

    @functools.cached_property
    def above(self) -> ParzenEstimator:
        return ParzenEstimator(self._bad, self._n_choices, prior_share=SOURCE_PRIOR_SHARE)

    def score(self, x: np.ndarray) -> np.ndarray:
        """TPE's log density ratio: high where the source was good and rarely bad."""
        return self.below.log_pdf(x) - self.above.log_pdf(x)

    def score_grid(self, columns: list[np.ndarray]) -> np.ndarray:
        """:meth:`score` at every point of the Cartesian grid of ``columns`` (C order)."""
        return _ratio_grid(self.below, self.above, columns)

    def predicted_quantile(self, x: np.ndarray) -> np.ndarray:
        """The source's quantile near each row of ``x``: its guess at how good ``x`` is."""
        return self._all.smooth(x, self._quantiles)

    def predicted_quantile_grid(self, columns: list[np.ndarray]) -> np.ndarray:
        """:meth:`predicted_quantile` at every point of the Cartesian grid of ``columns``."""
        return self._all.smooth_grid(columns, self._quantiles)


class SourceEnsemble:
    """The :class:`SourceModel` of every source in one target (sub)space, built once, with
    their predicted quantiles evaluated for all sources together."""

    def __init__(self, tasks: list[SourceTask], space: dict[str, BaseDistribution]) -> None:
        x = aligned_matrix([t for task in tasks for t in task.trials], space)
        bounds = np.cumsum([0] + [len(task.trials) for task in tasks])
        self.models = [
            SourceModel(task, space, x[lo:hi]) for task, lo, hi in zip(tasks, bounds, bounds[1:])
        ]
        self._usable = np.flatnonzero([m.usable for m in self.models])
        # Source index -> its position among the usable ones (the smoother's estimators).
        self._position = {int(s): k for k, s in enumerate(self._usable)}
        self._smoother = StackedSmoother.from_observations(
            [self.models[i]._ranked for i in self._usable],
            choice_counts(space),
            [self.models[i]._quantiles for i in self._usable],
        )

    def predicted_quantiles(self, x: np.ndarray, which: list[int] | None = None) -> np.ndarray:
        """(len(x), len(which)): the :meth:`SourceModel.predicted_quantile` of sources ``which``
        (all by default); 0.5 (no opinion) for a source without a usable model."""
        if which is None:
            out = np.full((len(x), len(self.models)), 0.5)
            if len(self._usable):
                out[:, self._usable] = self._smoother.smooth(x)
            return out
        out = np.full((len(x), len(which)), 0.5)
        cols = [i for i, s in enumerate(which) if s in self._position]
        if cols:
            out[:, cols] = self._smoother.smooth(x, [self._position[which[i]] for i in cols])
        return out


def _ratio_grid(
    below: ParzenEstimator, above: ParzenEstimator, columns: list[np.ndarray]
) -> np.ndarray:
    """``below.log_pdf_grid(columns) - above.log_pdf_grid(columns)``, subtracted in place: one
    array of the grid's size fewer."""
    ratio = below.log_pdf_grid(columns)
    ratio -= above.log_pdf_grid(columns)
    return ratio


def spread(rows: np.ndarray, cap: int) -> np.ndarray:
    """At most ``cap`` rows, evenly spread over ``rows`` (which are ordered best first), so a
    density of a huge source keeps its shape at a bounded cost per candidate."""
    if len(rows) <= cap:
        return rows
    return rows[np.round(np.linspace(0, len(rows) - 1, cap)).astype(int)]


def choice_counts(space: dict[str, BaseDistribution]) -> list[int]:
    return [
        len(d.choices) if isinstance(d, CategoricalDistribution) else 0 for d in space.values()
    ]
