"""Constrained studies (``Trial.set_constraint``): a trial whose constraint is violated ranks
after every feasible one, in each source as in the target, as Optuna's own samplers and
``Study.best_trial`` rank them."""

from __future__ import annotations

import numpy as np
import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import pytest

from optuna_transfer import TransferTPESampler
from optuna_transfer import WarmStartGridSampler
from optuna_transfer._ranking import trial_losses
from optuna_transfer._sources import load_sources


def _objective(trial: optuna.Trial) -> float:
    # The unconstrained optimum (2, 2) violates x + y <= 2; the feasible one is (1, 1).
    x = trial.suggest_float("x", -5, 5)
    y = trial.suggest_float("y", -5, 5)
    trial.set_constraint("sum", x + y - 2.0)
    return (x - 2.0) ** 2 + (y - 2.0) ** 2


def _value(t: FrozenTrial) -> float:
    assert t.value is not None
    return t.value


def _violation(t: FrozenTrial) -> float:
    return sum(v for v in t.constraints.values() if v > 0)


def _constrained_source(seed: int = 0) -> optuna.Study:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    study.optimize(_objective, n_trials=60)
    best_by_value = min(study.trials, key=_value)
    # The test means something only if the best value is infeasible.
    assert _violation(best_by_value) > 0
    assert _violation(study.best_trial) == 0
    return study


def test_a_source_ranks_infeasible_trials_after_feasible_ones_by_violation() -> None:
    source = _constrained_source()
    (task,) = load_sources(source)
    ranked = task.best_trials
    violations = [_violation(t) for t in ranked]
    n_feasible = sum(v == 0 for v in violations)
    assert 0 < n_feasible < len(ranked)
    assert all(v == 0 for v in violations[:n_feasible])
    assert all(v > 0 for v in violations[n_feasible:])
    feasible_values = [_value(t) for t in ranked[:n_feasible]]
    assert feasible_values == sorted(feasible_values)
    assert violations[n_feasible:] == sorted(violations[n_feasible:])
    assert ranked[0].number == source.best_trial.number
    # ``values`` follows the same order.
    assert task.values[:, 0].tolist() == [t.value for t in ranked]


def test_transfer_tpe_starts_from_the_sources_best_feasible_configuration() -> None:
    source = _constrained_source()
    study = optuna.create_study(sampler=TransferTPESampler(source, seed=0))
    study.optimize(_objective, n_trials=2)
    first, second = study.trials
    assert first.params == source.best_trial.params
    assert _violation(first) == 0 and _violation(second) == 0


def test_the_grid_starts_from_the_sources_best_feasible_configuration() -> None:
    source = _constrained_source()
    values = [-1.0, 0.0, 1.0, 2.0, 3.0]
    sampler = WarmStartGridSampler(source, {"x": values, "y": values}, seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_objective, n_trials=1)
    best = source.best_trial.params
    nearest = {k: min(values, key=lambda v: abs(v - best[k])) for k in ("x", "y")}
    assert study.trials[0].params == nearest
    assert _violation(study.trials[0]) == 0


def test_the_target_ranks_infeasible_trials_after_feasible_ones_by_violation() -> None:
    study = optuna.create_study()
    # (value, violation): the best values are the infeasible ones.
    for value, violation in [(5.0, 0.0), (0.1, 3.0), (0.2, 0.5), (4.0, 0.0), (0.3, 1.0)]:
        trial = study.ask()
        trial.set_constraint("c", violation)
        study.tell(trial, value)
    pruned = study.ask()
    study.tell(pruned, state=TrialState.PRUNED)
    trials = study.get_trials(deepcopy=False)
    losses = trial_losses(study, trials)
    order = [int(i) for i in np.argsort(losses, kind="stable")]
    # Feasible by value, then infeasible by violation, then the pruned one.
    assert order == [3, 0, 2, 4, 1, 5]


def test_cached_violations_rank_as_read_ones_and_are_read_once() -> None:
    study = optuna.create_study()
    for value, violation in [(5.0, 0.0), (0.1, 3.0), (0.2, 0.5), (4.0, 0.0)]:
        trial = study.ask()
        trial.set_constraint("c", violation)
        study.tell(trial, value)
    trials = study.get_trials(deepcopy=False)
    cache: dict[int, float] = {}
    losses = trial_losses(study, trials, cache)
    assert losses.tolist() == trial_losses(study, trials).tolist()
    assert cache == {0: 0.0, 1: 3.0, 2: 0.5, 3: 0.0}
    # A cached violation is not read again: a stale entry would change the ranking.
    cache[1] = 0.0
    assert int(np.argmin(trial_losses(study, trials, cache))) == 1


def test_the_weights_plots_incumbent_is_optunas_feasible_incumbent() -> None:
    from optuna_transfer.visualization import plot_source_weights

    source = _constrained_source()
    study = optuna.create_study(sampler=TransferTPESampler(source, seed=0))
    study.optimize(_objective, n_trials=15)
    assert any(_violation(t) > 0 for t in study.trials), "the run has infeasible trials"
    ours = {t.name: t for t in plot_source_weights(study).data}["Best Value"]
    optunas = {
        t.name: t for t in optuna.visualization.plot_optimization_history(study).data
    }["Best Value"]
    assert list(ours.x) == list(optunas.x)
    assert np.asarray(ours.y, dtype=float).tolist() == np.asarray(optunas.y, dtype=float).tolist()
    # An infeasible trial's lower value never becomes the incumbent.
    feasible = [_value(t) for t in study.trials if _violation(t) == 0]
    assert float(ours.y[-1]) == min(feasible)


def test_constraints_func_is_accepted_as_tpe_sampler_accepts_it() -> None:
    # Code written for TPESampler(constraints_func=...) switches samplers unchanged.
    def unconstrained(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -5, 5)
        y = trial.suggest_float("y", -5, 5)
        return (x - 2.0) ** 2 + (y - 2.0) ** 2

    def constraints(t: FrozenTrial) -> tuple[float]:
        return (t.params["x"] + t.params["y"] - 2.0,)

    source = _constrained_source()
    with pytest.warns(FutureWarning, match="set_constraint"):
        sampler = TransferTPESampler(source, seed=0, constraints_func=constraints)
    study = optuna.create_study(sampler=sampler)
    study.optimize(unconstrained, n_trials=12)
    for t in study.trials:
        assert t.constraints == {"0": t.params["x"] + t.params["y"] - 2.0}
    assert study.trials[0].params == source.best_trial.params
    assert any(_violation(t) > 0 for t in study.trials)
    losses = trial_losses(study, study.trials)
    feasible = np.array([_violation(t) == 0 for t in study.trials])
    assert losses[feasible].max() < losses[~feasible].min()


def test_a_multi_objective_source_ranks_its_feasible_front_first() -> None:
    def two_objectives(trial: optuna.Trial) -> tuple[float, float]:
        x = trial.suggest_float("x", 0, 1)
        trial.set_constraint("x", x - 0.5)  # feasible for x <= 0.5
        return x, 1.0 - x  # every trial is on the front

    source = optuna.create_study(
        directions=["minimize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=0)
    )
    source.optimize(two_objectives, n_trials=20)
    (task,) = load_sources(source)
    violations = [_violation(t) for t in task.best_trials]
    n_feasible = sum(v == 0 for v in violations)
    assert 0 < n_feasible < len(violations)
    assert violations[n_feasible:] == sorted(violations[n_feasible:])
    assert all(v == 0 for v in violations[:n_feasible])
    assert {t.number for t in task.best_trials[:n_feasible]} == {
        t.number for t in source.best_trials
    }
