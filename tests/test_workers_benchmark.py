"""benchmarks/workers.py: worker processes sharing one storage (PostgreSQL, the gRPC proxy)."""

from __future__ import annotations

from datetime import datetime
import os
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import pytest

from benchmarks import workers
from optuna_transfer._tpe._claims import RELATIVE_PARAMS_KEY
from optuna_transfer._tpe._claims import ZERO_SHOT_ATTR_KEY


# 3 x 2 x 2 = 12 points: 4 workers x 6 trials run out of grid, so the claims are contested up
# to the last point and past it.
SMALL_GRID: dict[str, list[Any]] = {"x": [0.0, 0.5, 1.0], "y": [0.001, 0.1], "c": ["a", "b"]}
N_WORKERS, TRIALS_PER_WORKER = 4, 6


def _small(backend: str, pg_url: str | None = None) -> workers.Config:
    return workers.Config(
        workers=N_WORKERS,
        trials_per_worker=TRIALS_PER_WORKER,
        backends=(backend,),
        n_sources=2,
        source_trials=15,
        pg_url=pg_url,
        timeout_s=300.0,
        grid=SMALL_GRID,
    )


def _check(rows: list[workers.Row], config: workers.Config) -> None:
    assert [(r.backend, r.sampler) for r in rows] == [
        (config.backends[0], "transfer-tpe"), (config.backends[0], "warm-grid")
    ]
    tpe, grid = rows
    for row in rows:
        assert row.errors == []
        assert row.workers == N_WORKERS
        assert row.lost == 0
        assert row.failed == 0
        assert 0.0 < row.sampler_share <= 1.0
        assert row.sampler_cpu_ms_per_trial > 0.0
        assert row.wall_s > 0.0
    # TransferTPE runs every trial it is given.
    assert tpe.trials_done == N_WORKERS * TRIALS_PER_WORKER
    assert tpe.repeats_while_unvisited is None
    assert tpe.repeats_unclaimed is not None and 0 <= tpe.repeats_unclaimed <= tpe.repeats
    assert grid.repeats_unclaimed is None
    # The grid: every point evaluated, none twice while another was free; the study stops
    # once every point is claimed, so only trials already started then run past the grid.
    assert grid.distinct == config.n_grid_points == 12
    assert grid.repeats_while_unvisited == 0
    assert grid.trials_done == config.n_grid_points + grid.repeats
    assert grid.trials_done <= N_WORKERS * TRIALS_PER_WORKER
    assert grid.ok and tpe.ok
    text = workers.table(rows, config, "python -m benchmarks.workers", {})
    assert "| backend | sampler | workers | trials done |" in text
    assert text.count(f"| {config.backends[0]} |") == 2
    assert "grid 12 points (3 x 2 x 2)" in text


@pytest.mark.slow
def test_workers_on_postgresql(pg_server: Any) -> None:
    config = _small("postgresql", pg_server.url())
    rows, info = workers.run(config, log=lambda _line: None)
    _check(rows, config)
    assert info["postgresql"]
    assert all(r.proxy_cpu_ms_per_trial is None for r in rows)


@pytest.mark.slow
def test_workers_through_the_grpc_proxy_on_sqlite() -> None:
    config = _small("grpc+sqlite")
    rows, info = workers.run(config, log=lambda _line: None)
    _check(rows, config)
    assert "postgresql" not in info
    # The proxy process did the storage work, so its CPU time is measured (Linux: /proc).
    assert all(r.proxy_cpu_ms_per_trial is not None and r.proxy_cpu_ms_per_trial > 0 for r in rows)


def _trial(number: int, params: dict[str, Any], grid: dict[str, list[Any]]) -> FrozenTrial:
    return FrozenTrial(
        number=number,
        state=TrialState.COMPLETE,
        value=0.0,
        datetime_start=datetime.now(),
        datetime_complete=datetime.now(),
        params=params,
        distributions={n: CategoricalDistribution(grid[n]) for n in params},
        user_attrs={},
        system_attrs={},
        intermediate_values={},
        trial_id=number,
    )


def test_repeats_while_unvisited_counts_only_repeats_with_a_free_point() -> None:
    grid: dict[str, list[Any]] = {"x": [0, 1], "c": ["a", "b"]}  # 4 points
    p = [{"x": x, "c": c} for x in grid["x"] for c in grid["c"]]
    # Claims (start, end): #1 repeats #0's point at t=2.5, while p[3] is first approached at
    # t=5 (free then); #5 repeats p[2] at t=9, after every point was approached.
    trials = [_trial(n, p[i], grid) for n, i in enumerate([0, 0, 1, 2, 3, 2])]
    claims = {0: (0.0, 1.0), 1: (2.0, 2.5), 2: (1.5, 3.0), 3: (3.0, 4.0), 4: (5.0, 6.0),
              5: (8.0, 9.0)}
    assert workers.repeats_while_unvisited(trials, claims, grid) == (4, 2, 1)
    # A point no trial ever took is free whenever a repeat happens.
    assert workers.repeats_while_unvisited(trials[:2], claims, grid) == (1, 1, 1)
    # Points being claimed (their claimants started before the repeat settled) are not free.
    claims[3], claims[4] = (2.4, 4.0), (2.2, 6.0)
    assert workers.repeats_while_unvisited(trials, claims, grid) == (4, 2, 0)


def test_tpe_repeats_counts_later_copies_and_those_sampled_without_a_claim() -> None:
    space: dict[str, BaseDistribution] = {"c": CategoricalDistribution(["a", "b"])}
    claimed = {f"{RELATIVE_PARAMS_KEY}:0": '{"c": "a"}', f"{RELATIVE_PARAMS_KEY}:1": ""}
    zero_shot = {ZERO_SHOT_ATTR_KEY: '{"c": "b"}'}
    trials = [
        optuna.trial.create_trial(params={"c": c}, distributions=space, value=0.0,
                                  system_attrs=attrs)
        for c, attrs in [
            ("a", {}), ("a", claimed), ("b", {}), ("a", {}), ("b", claimed), ("b", zero_shot)
        ]
    ]
    for number, t in enumerate(trials):
        t.number = number
    # #1, #3 repeat #0; #4, #5 repeat #2. Only #3 was sampled without a claim (#1 and #4
    # claimed their joint sample, #5 its zero-shot entry).
    assert workers.tpe_repeats(trials) == (2, 4, 1)
    # Numbers, not list order, say which trial came first.
    assert workers.tpe_repeats(trials[::-1]) == (2, 4, 1)


def test_timed_sampler_delegates_and_times_every_call() -> None:
    inner = optuna.samplers.RandomSampler(seed=0)
    timed = workers.TimedSampler(inner)
    study = optuna.create_study(sampler=timed)
    study.optimize(workers.objective, n_trials=3)
    reference = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    reference.optimize(workers.objective, n_trials=3)
    assert [t.params for t in study.trials] == [t.params for t in reference.trials]
    assert sorted(timed.claims) == [0, 1, 2]
    assert all(start <= end for start, end in timed.claims.values())
    assert timed.seconds > 0.0 and timed.cpu_seconds > 0.0


def test_cpu_seconds_of_a_process() -> None:
    sum(i * i for i in range(200_000))  # some CPU time of this process
    mine = workers.cpu_seconds(os.getpid())
    assert mine is not None and mine > 0.0
    assert workers.cpu_seconds(None) is None


def test_bad_backend_is_named() -> None:
    with pytest.raises(ValueError, match="Unknown backend 'mysql' in `backends`"):
        workers.run(workers.Config(backends=("mysql",)))
