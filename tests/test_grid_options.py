"""WarmStartGridSampler's ``n_startup_trials`` and ``max_source_trials``, as TransferTPE's."""

from __future__ import annotations

from collections.abc import Iterator
import logging

import _support
import optuna
import pytest

from optuna_transfer import WarmStartGridSampler


GRID = {"x": [float(v) for v in range(-10, 11)], "y": [float(v) for v in range(-10, 11)]}


@pytest.fixture(autouse=True)
def _logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    _support.quiet()
    optuna.logging.enable_propagation()
    caplog.set_level(logging.INFO, logger=_support.LOGGER_NAME)
    yield
    optuna.logging.disable_propagation()


def _target(t: optuna.Trial) -> float:
    return (t.suggest_float("x", -10, 10) - 3) ** 2 + (t.suggest_float("y", -10, 10) + 3) ** 2


def _misleading_source() -> optuna.Study:
    # It optimised the negated target: the target refutes it within its first trials.
    source = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    source.optimize(lambda t: -_target(t), n_trials=60)
    return source


def _off_ranking_trials(sampler: WarmStartGridSampler, n_trials: int) -> list[int]:
    """Numbers of the trials after the probe that did not take the best free point of the
    ranking as it stood before them (random walks)."""
    study = optuna.create_study(sampler=sampler)
    off = []
    for number in range(n_trials):
        taken = [t.params for t in study.trials]
        best_free = next(p for p in sampler.ranked_grid(study) if p not in taken)
        trial = study.ask()
        study.tell(trial, _target(trial))
        if number >= 3 and trial.params != best_free:  # after the portfolio (2) and the probe
            off.append(number)
    return off


def test_n_startup_trials_bounds_the_start_up_random_walk() -> None:
    source = _misleading_source()
    walked = [
        _off_ranking_trials(WarmStartGridSampler(source, GRID, seed=s), 10) for s in range(3)
    ]
    # With the source refuted, start-up trials walk at random (trust near 0: almost always).
    assert all(len(w) >= 4 for w in walked), walked
    # Without a start-up phase every trial after the probe follows the ranking (the incumbent
    # is recent throughout, so there is no stale walk either).
    for s in range(3):
        sampler = WarmStartGridSampler(source, GRID, seed=s, n_startup_trials=0)
        assert _off_ranking_trials(sampler, 10) == []


def test_bad_n_startup_trials_is_refused() -> None:
    with pytest.raises(ValueError, match="n_startup_trials"):
        WarmStartGridSampler(_misleading_source(), GRID, n_startup_trials=-1)


@pytest.mark.parametrize("bad", [5, 2.5, True, "100"])
def test_bad_max_source_trials_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="max_source_trials"):
        WarmStartGridSampler(_misleading_source(), GRID, max_source_trials=bad)  # type: ignore[arg-type]


def test_max_source_trials_subsamples_keeping_the_best(caplog: pytest.LogCaptureFixture) -> None:
    source = _misleading_source()
    sampler = WarmStartGridSampler(source, GRID, max_source_trials=20, n_zero_shot=1)
    assert any(
        "has 60 usable trials" in m and "max_source_trials=20" in m
        for m in _support.records(caplog)
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(_target, n_trials=1)
    # The best source trial survives: its nearest grid point is the zero-shot trial.
    best = source.best_params
    assert study.trials[0].params == {"x": round(best["x"]), "y": round(best["y"])}
    # from_storage takes the option too.
    storage = optuna.storages.InMemoryStorage()
    stored = optuna.create_study(storage=storage, study_name="src")
    stored.add_trials(source.trials)
    caplog.clear()
    WarmStartGridSampler.from_storage(storage, "src", GRID, max_source_trials=20)
    assert any("max_source_trials=20" in m for m in _support.records(caplog))
