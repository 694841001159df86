"""On a categorical search space TransferTPE ranks every configuration as the grid does.

TPE's few random candidates leave most of a small space unscored; where the space can be
listed, a model-based trial takes the best untried configuration of WarmStartGridSampler's
ranking.
"""

from __future__ import annotations

import json
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.trial import Trial
from optuna.trial import TrialState
import pytest

from optuna_transfer import TransferTPESampler
from optuna_transfer import WarmStartGridSampler
from optuna_transfer._grid._claims import PROBE_ATTR_KEY as GRID_PROBE_ATTR_KEY
from optuna_transfer._grid._space import GridSpace
from optuna_transfer._sources import load_sources
from optuna_transfer._tpe import PROBE_ATTR_KEY
from optuna_transfer._tpe import RANDOM_ATTR_KEY
from optuna_transfer._tpe import WEIGHTS_ATTR_KEY
from optuna_transfer._tpe._claims import COLD_ATTR_KEY
from optuna_transfer._tpe._finite import finite_values
from optuna_transfer._tpe._finite import FiniteSpaceRanker
from optuna_transfer._tpe._finite import MAX_FINITE_CONFIGS


optuna.logging.set_verbosity(optuna.logging.WARNING)

OPTS = ["a", "b", "c"]
STEPS = list(range(10))
GRID: dict[str, list[Any]] = {"x": STEPS, "y": STEPS, "opt": OPTS}
PENALTY = {"a": 0.0, "b": 4.0, "c": 9.0}


def _objective(best_x: int) -> Any:
    def objective(trial: Trial) -> float:
        x = trial.suggest_categorical("x", STEPS)
        y = trial.suggest_categorical("y", STEPS)
        opt = trial.suggest_categorical("opt", OPTS)
        return float((x - best_x) ** 2 + (y - 3) ** 2 + PENALTY[opt])

    return objective


def _source() -> optuna.Study:
    source = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    source.optimize(_objective(6), n_trials=60)
    return source


def _key(params: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(params[name] for name in sorted(GRID))


def _best_untried(source: optuna.Study, study: optuna.Study, seed: int) -> dict[str, Any]:
    """The grid sampler's best configuration (built on the same source) that ``study`` lacks."""
    ranked = WarmStartGridSampler(source, GRID, seed=seed).ranked_grid(study)
    tried = {_key(t.params) for t in study.trials}
    return next(p for p in ranked if _key(p) not in tried)


def test_finite_values_lists_the_choices_of_a_categorical_space() -> None:
    space = {
        "opt": CategoricalDistribution(["sgd", "adam"]),
        "units": CategoricalDistribution([16, 32, 64]),
    }
    assert finite_values(space) == {"opt": ["sgd", "adam"], "units": [16, 32, 64]}


@pytest.mark.parametrize(
    "space",
    [
        {},
        {"lr": FloatDistribution(1e-5, 1e-1, log=True), "opt": CategoricalDistribution([0, 1])},
        {"layers": IntDistribution(1, 4), "opt": CategoricalDistribution([0, 1])},
        {"dropout": FloatDistribution(0.0, 0.5, step=0.25)},
        {
            "a": CategoricalDistribution(list(range(MAX_FINITE_CONFIGS // 2))),
            "b": CategoricalDistribution([0, 1, 2]),
        },
    ],
    ids=["empty", "continuous", "integer range", "stepped range", "too many"],
)
def test_finite_values_is_none_unless_every_parameter_is_categorical_and_few(
    space: dict[str, Any],
) -> None:
    assert finite_values(space) is None


def test_a_model_based_trial_takes_the_grid_rankings_best_untried_configuration() -> None:
    source = _source()
    target = _objective(7)
    sampler = TransferTPESampler(source, seed=3, n_startup_trials=0)
    study = optuna.create_study(sampler=sampler)
    # Two zero-shot picks and the probe, then model-based trials.
    study.optimize(target, n_trials=5)
    for _ in range(4):
        expected = _best_untried(source, study, seed=3)
        study.optimize(target, n_trials=1)
        last = study.trials[-1]
        assert COLD_ATTR_KEY not in last.system_attrs
        assert RANDOM_ATTR_KEY not in last.system_attrs
        assert last.params == expected


@pytest.mark.parametrize("seed", range(4))
def test_the_probe_is_the_configuration_the_grid_sampler_probes(seed: int) -> None:
    # Both samplers evaluate the source's two best configurations, then probe where it
    # predicts the worst, far from them; TransferTPE now looks among every configuration as
    # the grid does, not among a few random draws.
    source = _source()
    target = _objective(7)
    transfer = optuna.create_study(sampler=TransferTPESampler(source, seed=seed))
    transfer.optimize(target, n_trials=3)
    grid = optuna.create_study(sampler=WarmStartGridSampler(source, GRID, seed=seed))
    grid.optimize(target, n_trials=3)
    assert [t.params for t in transfer.trials[:2]] == [t.params for t in grid.trials[:2]]
    probe = transfer.trials[2]
    assert probe.system_attrs.get(PROBE_ATTR_KEY)
    assert grid.trials[2].system_attrs.get(GRID_PROBE_ATTR_KEY)
    assert probe.params == grid.trials[2].params


def test_the_probe_leaves_out_a_configuration_a_running_trial_holds() -> None:
    source = _source()
    target = _objective(7)
    study = optuna.create_study(sampler=TransferTPESampler(source, seed=0))
    study.optimize(target, n_trials=2)
    grid = optuna.create_study(sampler=WarmStartGridSampler(source, GRID, seed=0))
    grid.optimize(target, n_trials=3)
    # The configuration the probe would take, held by a running (enqueued) trial.
    study.enqueue_trial(grid.trials[2].params)
    held = study.ask()
    for name, values in GRID.items():
        held.suggest_categorical(name, values)
    probe = study.ask()
    for name, values in GRID.items():
        probe.suggest_categorical(name, values)
    frozen = study.trials[probe.number]
    assert frozen.system_attrs.get(PROBE_ATTR_KEY)
    assert _key(frozen.params) not in {_key(t.params) for t in study.trials[:3]}


def test_with_every_source_refuted_the_ranking_goes_on_after_cold_tpes_start_up() -> None:
    # A misleading source (it minimised the negated objective): the target refutes it, cold
    # TPE's random start-up comes first, and then the grid ranking of the target's own trials
    # goes on where cold TPE's model would take over.
    def misleading(trial: Trial) -> float:
        return -_objective(6)(trial)

    source = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    source.optimize(misleading, n_trials=60)
    target = _objective(6)
    study = optuna.create_study(sampler=TransferTPESampler(source, seed=3, n_startup_trials=5))
    study.optimize(target, n_trials=10)
    # Two zero-shot picks and the probe, then cold TPE's start-up: random draws.
    assert any(COLD_ATTR_KEY in t.system_attrs for t in study.trials[3:8])
    for _ in range(4):
        expected = _best_untried(source, study, seed=3)
        study.optimize(target, n_trials=1)
        last = study.trials[-1]
        weights = dict(json.loads(last.system_attrs[WEIGHTS_ATTR_KEY]))
        assert [w for label, w in weights.items() if label != "target"] == [0.0]
        assert COLD_ATTR_KEY not in last.system_attrs
        assert last.params == expected


def test_a_configuration_a_running_trial_holds_is_not_proposed_again() -> None:
    source = _source()
    target = _objective(7)
    study = optuna.create_study(sampler=TransferTPESampler(source, seed=3, n_startup_trials=0))
    study.optimize(target, n_trials=6)
    best = _best_untried(source, study, seed=3)
    study.enqueue_trial(best)
    held = study.ask()
    held.suggest_categorical("x", STEPS), held.suggest_categorical("y", STEPS)
    held.suggest_categorical("opt", OPTS)
    assert held.params == best
    # The ranking is unchanged while ``held`` runs: the next trial takes the runner-up.
    runner_up = _best_untried(source, study, seed=3)
    assert runner_up != best
    nxt = study.ask()
    nxt.suggest_categorical("x", STEPS), nxt.suggest_categorical("y", STEPS)
    nxt.suggest_categorical("opt", OPTS)
    assert nxt.params == runner_up


def test_every_configuration_of_a_small_space_is_tried_once_before_any_repeats() -> None:
    def objective(trial: Trial) -> float:
        a = trial.suggest_categorical("a", ["p", "q"])
        b = trial.suggest_categorical("b", [0, 1, 2])
        return float(b) + (0.5 if a == "q" else 0.0)

    source = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    source.optimize(objective, n_trials=20)
    study = optuna.create_study(sampler=TransferTPESampler(source, seed=0))
    study.optimize(objective, n_trials=8)
    configs = [(t.params["a"], t.params["b"]) for t in study.trials]
    assert len(set(configs[:6])) == 6
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert study.best_value == 0.0


def test_the_groups_of_a_conditional_space_are_not_ranked_as_a_grid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # With ``group``, each group of a conditional space is sampled apart; a group alone is not
    # a trial's configuration, so "untried" would be judged on part of it.
    calls: list[int] = []
    choose = FiniteSpaceRanker.choose

    def counted(self: FiniteSpaceRanker, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return choose(self, *args, **kwargs)

    monkeypatch.setattr(FiniteSpaceRanker, "choose", counted)

    def conditional(trial: Trial) -> float:
        kind = trial.suggest_categorical("kind", ["p", "q"])
        size = trial.suggest_categorical(f"size_{kind}", [1, 2, 3, 4])
        return float(size) + (0.5 if kind == "q" else 0.0)

    source = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    source.optimize(conditional, n_trials=30)
    sampler = TransferTPESampler(source, seed=0, group=True, multivariate=True)
    optuna.create_study(sampler=sampler).optimize(conditional, n_trials=12)
    assert calls == []
    # The same space without branches is one group, and is ranked.
    study = optuna.create_study(sampler=TransferTPESampler(_source(), seed=0, group=True))
    study.optimize(_objective(7), n_trials=8)
    assert calls


def test_a_finished_trials_point_is_looked_up_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every model-based trial reads every trial's point; a finished trial's cannot change.
    source = _source()
    study = optuna.create_study(sampler=TransferTPESampler(source, seed=3))
    study.optimize(_objective(7), n_trials=6)
    dists: dict[str, BaseDistribution] = {
        name: CategoricalDistribution(values) for name, values in GRID.items()
    }
    running = study.ask(dists)
    frozen = study._storage.get_trial(study.ask()._trial_id)
    ranker = FiniteSpaceRanker(GRID, load_sources(source), 3)
    space = GridSpace(GRID)
    ids: dict[int, int | None] = {}
    first = ranker.choose(study, frozen, 0, None, ids)
    finished = [t for t in study.trials if t.state.is_finished()]
    assert ids == {t.number: space.id_of(t.params) for t in finished}
    looked_up: list[dict[str, Any]] = []
    id_of = GridSpace.id_of

    def counted(self: GridSpace, params: Any, **kwargs: Any) -> int | None:
        looked_up.append(dict(params))
        return id_of(self, params, **kwargs)

    monkeypatch.setattr(GridSpace, "id_of", counted)
    assert ranker.choose(study, frozen, 0, None, ids) == first
    # Only the running trial, whose published params may still change, is looked up again.
    assert looked_up == [running.params]
    assert ranker.choose(study, frozen, 0, None) == first
