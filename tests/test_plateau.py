"""A search stalled on a plateau: TransferTPE's sources step aside for cold TPE (issue #17)."""

from __future__ import annotations

from typing import Any
from typing import Literal

import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial
from optuna.trial import FrozenTrial
from optuna.trial import Trial
from optuna.trial import TrialState
import pytest

from optuna_transfer import TransferTPESampler
from optuna_transfer._schedule import PLATEAU_PATIENCE
from optuna_transfer._schedule import stalled_on_plateau


optuna.logging.set_verbosity(optuna.logging.WARNING)

_X: dict[str, BaseDistribution] = {"x": FloatDistribution(0.0, 1.0)}


def _study(
    values: list[float],
    xs: list[float],
    direction: Literal["minimize", "maximize"] = "minimize",
) -> optuna.Study:
    study = optuna.create_study(direction=direction)
    for x, v in zip(xs, values, strict=True):
        study.add_trial(create_trial(params={"x": x}, distributions=_X, value=v))
    return study


def _finished(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False)


def test_stalled_once_the_tied_best_is_patience_trials_old() -> None:
    # The best is the first trial with the best value; the tie (trial 1) came after it.
    n_worse = PLATEAU_PATIENCE - 1
    xs = [0.1, 0.2] + [0.3 + 0.01 * i for i in range(n_worse)]
    study = _study([1.0, 1.0] + [2.0] * n_worse, xs)
    assert stalled_on_plateau(study, _finished(study))
    # One trial fewer after the best: not yet.
    short = _study([1.0, 1.0] + [2.0] * (n_worse - 1), xs[:-1])
    assert not stalled_on_plateau(short, _finished(short))


def test_not_stalled_without_a_tie_or_with_a_repeat_of_the_same_params() -> None:
    n_after = PLATEAU_PATIENCE + 3
    later = [0.3 + 0.01 * i for i in range(n_after)]
    unique = _study([1.0, 1.5] + [2.0] * n_after, [0.1, 0.2] + later)
    assert not stalled_on_plateau(unique, _finished(unique))
    # The same configuration evaluated twice is not a plateau: nothing else scores as well.
    repeat = _study([1.0, 1.0] + [2.0] * n_after, [0.1, 0.1] + later)
    assert not stalled_on_plateau(repeat, _finished(repeat))


def test_an_improvement_ends_the_stall_and_direction_is_respected() -> None:
    n_after = PLATEAU_PATIENCE + 2
    xs = [0.1, 0.2] + [0.3 + 0.01 * i for i in range(n_after)]
    improved = _study([1.0, 1.0] + [2.0] * (n_after - 1) + [0.5], xs)
    assert not stalled_on_plateau(improved, _finished(improved))
    # Maximising: the tied 1.0s are the best, the 0.5s below them.
    values = [1.0, 1.0] + [0.5 + 0.01 * i for i in range(n_after)]
    maximised = _study(values, xs, direction="maximize")
    assert stalled_on_plateau(maximised, _finished(maximised))
    minimised = _study(values, xs)  # the best, 0.5, has no tie
    assert not stalled_on_plateau(minimised, _finished(minimised))


def test_failed_trials_do_not_count_and_several_objectives_never_stall() -> None:
    study = _study([1.0, 1.0], [0.1, 0.2])
    for i in range(PLATEAU_PATIENCE + 3):
        study.add_trial(
            create_trial(params={"x": 0.5 + 0.01 * i}, distributions=_X, state=TrialState.FAIL)
        )
    assert not stalled_on_plateau(study, _finished(study))
    mo = optuna.create_study(directions=["minimize", "minimize"])
    for i in range(PLATEAU_PATIENCE + 3):
        values = [1.0, 1.0] if i < 2 else [2.0, 2.0]
        mo.add_trial(create_trial(params={"x": 0.01 * i}, distributions=_X, values=values))
    assert not stalled_on_plateau(mo, _finished(mo))


def _plateau_objective(trial: Trial) -> float:
    # The source's objective, flat (exactly 0.02) around its optimum, as an accuracy that
    # saturates: the source ranks the target's trials right, and many configurations tie.
    x = trial.suggest_float("x", 0.0, 1.0)
    y = trial.suggest_float("y", 0.0, 1.0)
    return max(0.02, (x - 0.3) ** 2 + (y - 0.3) ** 2)


def _source_objective(trial: Trial) -> float:
    x = trial.suggest_float("x", 0.0, 1.0)
    y = trial.suggest_float("y", 0.0, 1.0)
    return (x - 0.3) ** 2 + (y - 0.3) ** 2


def test_cold_tpe_on_the_whole_history_exactly_while_stalled_on_a_plateau(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = optuna.create_study(study_name="near", sampler=optuna.samplers.TPESampler(seed=0))
    source.optimize(_source_objective, n_trials=60)
    sampler = TransferTPESampler(source, seed=0)
    cold_calls: dict[int, list[int]] = {}
    cold_sample_relative = optuna.samplers.TPESampler.sample_relative

    def spy(self: Any, study: Any, trial: Any, search_space: Any) -> Any:
        cold_calls[trial.number] = [t.number for t in study.get_trials(deepcopy=False)]
        return cold_sample_relative(self, study, trial, search_space)

    # The only TPESamplers here are the transfer sampler's internal cold ones.
    monkeypatch.setattr(optuna.samplers.TPESampler, "sample_relative", spy)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_plateau_objective, n_trials=45)

    trials = study.get_trials(deepcopy=False)
    weights = sampler.get_source_weights(study)
    stalled = [
        n for n in range(len(trials)) if stalled_on_plateau(study, trials[:n]) and n in weights
    ]
    assert len(stalled) >= 5, "the scenario must reach a plateau for the test to mean anything"
    # Every stalled trial, and no other once the source had a vote, was cold TPE's.
    voted = {n for n, w in weights.items() if w["near"] > 0.0}
    assert set(stalled) <= set(cold_calls)
    assert not (voted & set(cold_calls))
    for n in stalled:
        assert weights[n]["near"] == 0.0
        # The whole history, the source's pick (trial 0) included.
        assert cold_calls[n] == list(range(n + 1))
