"""The methods under comparison, registered by name in ``METHODS``.

A factory gets a :class:`MethodContext` (search space, source studies, seed) and returns the
sampler plus the configurations to enqueue before the run. Samplers of this package are imported
inside their factories so the baselines run on a checkout that does not have them yet; a
factory that raises (missing sampler, unsupported search space) is reported in the tables with
its error text rather than dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_transfer._ranking import violation


def _as_given(params: dict[str, Any]) -> dict[str, Any]:
    return params


@dataclass(frozen=True)
class MethodContext:
    search_space: dict[str, BaseDistribution]
    grid: dict[str, list[Any]] | None
    sources: list[optuna.Study]
    seed: int
    top_k: int
    # How a grid method enqueues a source configuration: moved onto ``grid`` where the
    # objective would not snap it there itself (see Problem.onto_grid).
    onto_grid: Callable[[dict[str, Any]], dict[str, Any]] = _as_given


@dataclass
class MethodSetup:
    sampler: optuna.samplers.BaseSampler
    # Enqueued as given, repeats included: a method that wants them distinct makes them so
    # (top_k_configs does), as a user enqueueing them would.
    enqueue: list[dict[str, Any]] = field(default_factory=list)
    # Whether the method searches ``MethodContext.grid``: its regret is then measured against
    # the grid's best point.
    on_grid: bool = False


MethodFactory = Callable[[MethodContext], MethodSetup]


def _ranked_trials(study: optuna.Study) -> list[FrozenTrial]:
    """COMPLETE trials of ``study``, best first in the study's own direction; trials that
    violate a constraint after every feasible one, least violation first (the order of
    ``study.best_trial``: a user replaying a constrained study replays its feasible best)."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    sign = -1.0 if study.direction == StudyDirection.MAXIMIZE else 1.0

    def key(t: FrozenTrial) -> tuple[float, float]:
        return violation(t), sign * float(t.value)  # type: ignore[arg-type]

    return sorted(trials, key=key)


def top_k_configs(sources: list[optuna.Study], k: int) -> list[dict[str, Any]]:
    """The best ``k`` distinct source configurations, pooled by per-source rank.

    Round-robin over sources (every source's best, then every source's second best, ...):
    ranks are comparable across sources whose losses live on different scales; raw values
    are not.
    """
    ranked = [_ranked_trials(s) for s in sources]
    picked: list[dict[str, Any]] = []
    seen: set[tuple[tuple[str, str], ...]] = set()
    for rank in range(max((len(r) for r in ranked), default=0)):
        for trials in ranked:
            if rank >= len(trials) or len(picked) >= k:
                continue
            params = dict(trials[rank].params)
            key = tuple(sorted((n, repr(v)) for n, v in params.items()))
            if key not in seen:
                seen.add(key)
                picked.append(params)
    return picked


def _pooled_rank_trials(
    sources: list[optuna.Study], search_space: dict[str, BaseDistribution]
) -> list[FrozenTrial]:
    # CmaEsSampler takes one list of trials and keeps the best by raw value; pooling raw values
    # of sources with different loss scales would let the lowest-scale source win outright.
    # Replace each value by its per-source rank quantile (0 = best) so every source counts.
    # CmaEsSampler searches only the float/int parameters (categorical ones go to its
    # independent sampler) and accepts a source trial only if its parameters are exactly those,
    # so categorical parameters are dropped from the source trials, as a user warm-starting a
    # mixed space would have to.
    numeric = {
        name for name, d in search_space.items()
        if not isinstance(d, CategoricalDistribution) and not d.single()
    }
    pooled: list[FrozenTrial] = []
    for study in sources:
        ranked = _ranked_trials(study)
        sign = -1.0 if study.direction == StudyDirection.MAXIMIZE else 1.0
        for i, t in enumerate(ranked):
            q = i / max(len(ranked) - 1, 1)
            pooled.append(
                optuna.trial.create_trial(
                    params={k: v for k, v in t.params.items() if k in numeric},
                    distributions={k: v for k, v in t.distributions.items() if k in numeric},
                    # Target studies of a maximised problem maximise, so flip back.
                    value=sign * q,
                    state=TrialState.COMPLETE,
                )
            )
    return pooled


def _random(ctx: MethodContext) -> MethodSetup:
    return MethodSetup(optuna.samplers.RandomSampler(seed=ctx.seed))


def _tpe(ctx: MethodContext) -> MethodSetup:
    return MethodSetup(optuna.samplers.TPESampler(seed=ctx.seed))


def _reseeded(ctx: MethodContext) -> int:
    # Another stream than the cold baseline's own, also where a problem's target seed does not
    # depend on the method's name.
    return int(np.random.SeedSequence([ctx.seed, 1]).generate_state(1)[0])


def _tpe_reseeded(ctx: MethodContext) -> MethodSetup:
    return MethodSetup(optuna.samplers.TPESampler(seed=_reseeded(ctx)))


def _tpe_enqueue(ctx: MethodContext) -> MethodSetup:
    return MethodSetup(
        optuna.samplers.TPESampler(seed=ctx.seed), top_k_configs(ctx.sources, ctx.top_k)
    )


def _wscmaes(ctx: MethodContext) -> MethodSetup:
    if all(isinstance(d, CategoricalDistribution) for d in ctx.search_space.values()):
        # CmaEsSampler would silently sample every parameter with its independent (random)
        # sampler and ignore the sources; a column of plain random search labelled "wscmaes"
        # would mislead, so refuse instead.
        raise ValueError(
            "CmaEsSampler supports only float/int parameters and every parameter of this search "
            "space is categorical: it would run as random search, ignoring source_trials."
        )
    sampler = optuna.samplers.CmaEsSampler(
        seed=ctx.seed, source_trials=_pooled_rank_trials(ctx.sources, ctx.search_space)
    )
    return MethodSetup(sampler)


def _transfer_tpe(ctx: MethodContext) -> MethodSetup:
    from optuna_transfer import TransferTPESampler

    return MethodSetup(TransferTPESampler(ctx.sources, seed=ctx.seed))


def _require_grid(ctx: MethodContext) -> dict[str, list[Any]]:
    if ctx.grid is None:
        raise ValueError("This problem has no finite grid; grid methods cannot run on it.")
    return ctx.grid


def _grid(ctx: MethodContext) -> MethodSetup:
    return MethodSetup(
        optuna.samplers.GridSampler(_require_grid(ctx), seed=ctx.seed), on_grid=True
    )


def _grid_reseeded(ctx: MethodContext) -> MethodSetup:
    return MethodSetup(
        optuna.samplers.GridSampler(_require_grid(ctx), seed=_reseeded(ctx)), on_grid=True
    )


def _grid_enqueue(ctx: MethodContext) -> MethodSetup:
    return MethodSetup(
        optuna.samplers.GridSampler(_require_grid(ctx), seed=ctx.seed),
        [ctx.onto_grid(p) for p in top_k_configs(ctx.sources, ctx.top_k)],
        on_grid=True,
    )


def _warm_grid(ctx: MethodContext) -> MethodSetup:
    from optuna_transfer import WarmStartGridSampler

    return MethodSetup(
        WarmStartGridSampler(ctx.sources, _require_grid(ctx), seed=ctx.seed), on_grid=True
    )


METHODS: dict[str, MethodFactory] = {
    "random": _random,
    "tpe": _tpe,
    # The cold baseline again with another seed: how far two runs of the same method differ on
    # these seeds (the scorecard's noise reference). Run it by naming it in --methods.
    "tpe-reseeded": _tpe_reseeded,
    "tpe+enqueue": _tpe_enqueue,
    "wscmaes": _wscmaes,
    "transfer-tpe": _transfer_tpe,
    "grid": _grid,
    "grid-reseeded": _grid_reseeded,
    "grid+enqueue": _grid_enqueue,
    "warm-grid": _warm_grid,
}
