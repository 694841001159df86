"""WarmStartGridSampler's zero-shot portfolio and probe with trials the user enqueued or added
(issue 13, item 4)."""

from __future__ import annotations

from _grid_support import added
from _grid_support import distance_to
from _grid_support import grid_source
from _grid_support import GRID_X
import optuna

from optuna_transfer import WarmStartGridSampler
from optuna_transfer._grid import PROBE_ATTR_KEY
from optuna_transfer._grid import REPEAT_ATTR_KEY


optuna.logging.set_verbosity(optuna.logging.ERROR)


def _portfolio(source: optuna.Study | list[optuna.Study]) -> list[float]:
    sampler = WarmStartGridSampler(source, {"x": GRID_X}, seed=0)
    return [sampler._values_of(gid)[0] for gid in sampler._portfolio]


def test_added_trials_do_not_push_out_the_portfolio_or_the_probe() -> None:
    source = grid_source(4.0)
    portfolio = _portfolio(source)
    assert portfolio == [4.0, 5.0] or portfolio == [4.0, 3.0]
    study = optuna.create_study(sampler=WarmStartGridSampler(source, {"x": GRID_X}, seed=0))
    # The user's own earlier results, which disagree with the source.
    for x, value in ((-10.0, 0.0), (-9.0, 1.0), (-8.0, 2.0)):
        study.add_trial(added(x, value))
    study.optimize(distance_to(-10.0), n_trials=3)
    sampled = study.trials[3:]
    assert [t.params["x"] for t in sampled[:2]] == portfolio
    assert [bool(t.system_attrs.get(PROBE_ATTR_KEY)) for t in sampled] == [False, False, True]


def test_enqueued_default_does_not_push_out_the_portfolio() -> None:
    source = grid_source(4.0)
    portfolio = _portfolio(source)
    study = optuna.create_study(sampler=WarmStartGridSampler(source, {"x": GRID_X}, seed=0))
    study.enqueue_trial({"x": -10.0})  # the user's default configuration
    study.optimize(distance_to(4.0), n_trials=4)
    xs = [t.params["x"] for t in study.trials]
    assert xs[:3] == [-10.0, *portfolio]
    assert [bool(t.system_attrs.get(PROBE_ATTR_KEY)) for t in study.trials] == [
        False, False, False, True
    ]


def test_enqueued_portfolio_point_is_evaluated_once() -> None:
    sources = [grid_source(4.0), grid_source(-6.0)]
    portfolio = _portfolio(sources)
    assert portfolio == [4.0, -6.0]
    study = optuna.create_study(sampler=WarmStartGridSampler(sources, {"x": GRID_X}, seed=0))
    study.enqueue_trial({"x": -6.0})  # trial 0, run first
    study.add_trial(added(-10.0, 14.0))  # trial 1
    study.optimize(distance_to(4.0), n_trials=3)
    xs = [t.params["x"] for t in study.trials]
    assert xs[:3] == [-6.0, -10.0, 4.0]
    assert len(set(xs)) == len(xs)
    assert [bool(t.system_attrs.get(PROBE_ATTR_KEY)) for t in study.trials] == [
        False, False, False, True
    ]


def test_portfolio_is_unique_across_threads_after_added_trials() -> None:
    sources = [grid_source(4.0), grid_source(-6.0), grid_source(8.0)]
    portfolio = _portfolio(sources)
    assert len(portfolio) == 3
    study = optuna.create_study(sampler=WarmStartGridSampler(sources, {"x": GRID_X}, seed=0))
    for x in (-10.0, -9.0, 10.0):
        study.add_trial(added(x, 1.0))
    study.enqueue_trial({"x": 0.0})
    study.optimize(distance_to(4.0), n_trials=10, n_jobs=4)
    xs = [t.params["x"] for t in study.trials]
    assert len(set(xs)) == len(xs), xs
    # Every portfolio point ran (the added and enqueued trials did not push one out), once.
    # Not necessarily as the first three sampled trials: a thread held up between creating its
    # trial and sampling it finds the portfolio and the probe taken by later trials.
    sampled = [t for t in study.trials[3:] if "fixed_params" not in t.system_attrs]
    assert set(portfolio) <= {t.params["x"] for t in sampled}, xs
    assert sum(bool(t.system_attrs.get(PROBE_ATTR_KEY)) for t in study.trials) == 1
    assert not any(REPEAT_ATTR_KEY in t.system_attrs for t in study.trials)


def test_the_trial_behind_slow_workers_takes_the_probe() -> None:
    sources = [grid_source(4.0), grid_source(-6.0), grid_source(8.0)]
    portfolio = _portfolio(sources)
    assert sorted(portfolio) == [-6.0, 4.0, 8.0]
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(
        storage=storage, study_name="s", sampler=WarmStartGridSampler(sources, {"x": GRID_X})
    )
    # Three other workers have started their trials, but their samplers have not run yet:
    # the three portfolio points are theirs.
    other = optuna.load_study(
        storage=storage, study_name="s", sampler=optuna.samplers.RandomSampler(seed=0)
    )
    for _ in range(3):
        other.ask()
    trial = study.ask()
    x = trial.suggest_float("x", -10, 10)
    assert study.trials[-1].system_attrs.get(PROBE_ATTR_KEY) is True
    # Far from the portfolio and where the sources predict the worst (see the probe's test in
    # test_grid_sampler.py): -10, 4 from -6 and the farthest point from both 4 and 8.
    assert x == -10.0


def test_threads_take_the_probe_exactly_once() -> None:
    sources = [grid_source(4.0), grid_source(-6.0), grid_source(8.0)]
    for _ in range(20):
        study = optuna.create_study(sampler=WarmStartGridSampler(sources, {"x": GRID_X}))
        study.optimize(distance_to(4.0), n_trials=8, n_jobs=4)
        probes = [t.number for t in study.trials if t.system_attrs.get(PROBE_ATTR_KEY)]
        assert len(probes) == 1, probes


def test_a_grid_parameter_the_sources_never_had_leaves_the_portfolio_and_the_probe() -> None:
    # A column added since the sources ran: on main no source configuration had a nearest
    # point, so there was no zero-shot trial and no probe (the probe needs a portfolio).
    # The new column is free: of the points nearest the source's best in the others, the
    # one the sources score best.
    source = grid_source(4.0)
    space = {"x": GRID_X, "wd": [0.0, 1e-4]}
    sampler = WarmStartGridSampler(source, space, seed=0)
    portfolio = [sampler._space.params_of(gid) for gid in sampler._portfolio]
    assert [p["x"] for p in portfolio] == _portfolio(source)

    study = optuna.create_study(sampler=sampler)
    study.optimize(
        lambda t: distance_to(4.0)(t) + t.suggest_categorical("wd", [0.0, 1e-4]), n_trials=3
    )
    assert [t.params for t in study.trials[:2]] == portfolio
    assert [bool(t.system_attrs.get(PROBE_ATTR_KEY)) for t in study.trials] == [
        False, False, True
    ]
