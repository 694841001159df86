"""The private-API adapter (``optuna_transfer._optuna_compat``) against the installed Optuna.

If a new Optuna release changes how samplers read a study's history, these fail rather than the
transfer sampler silently handing cold TPE the wrong trials.
"""

from __future__ import annotations

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.study import Study
from optuna.trial import TrialState
import pytest

from optuna_transfer._optuna_compat import StudyWithoutTrials


optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = {
    "x": FloatDistribution(-5, 5),
    "n": IntDistribution(1, 64, log=True),
    "c": CategoricalDistribution(["a", "b", "c"]),
}


def _objective(trial: optuna.trial.BaseTrial) -> float:
    x = trial.suggest_float("x", -5, 5)
    n = trial.suggest_int("n", 1, 64, log=True)
    c = trial.suggest_categorical("c", ["a", "b", "c"])
    return (x - 1) ** 2 + abs(n - 8) / 8 + (c != "b")


def _history() -> tuple[Study, Study]:
    """A study of 20 trials of which 5 are marked hidden, and one holding only the other 15."""
    full = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    visible = optuna.create_study()
    for i in range(20):
        trial = full.ask(SPACE)
        value = _objective(optuna.trial.FixedTrial(trial.params))
        if i % 4 == 1:
            full._storage.set_trial_system_attr(trial._trial_id, "hide", True)
        full.tell(trial, value)
        if i % 4 != 1:
            visible.add_trial(full.trials[-1])
    return full, visible


def _hidden(t: optuna.trial.FrozenTrial) -> bool:
    return bool(t.system_attrs.get("hide"))


def test_view_lists_only_visible_trials() -> None:
    full, visible = _history()
    view = StudyWithoutTrials(full, _hidden)
    assert [t.params for t in view.trials] == [t.params for t in visible.trials]
    assert len(view.get_trials(states=(TrialState.COMPLETE,))) == 15
    assert len(view._get_trials(deepcopy=False, states=None, use_cache=True)) == 15
    # Everything else passes through.
    assert view.directions == full.directions and view._study_id == full._study_id


@pytest.mark.parametrize("multivariate", [True, False])
def test_tpe_on_the_view_samples_as_on_a_study_of_the_visible_trials(multivariate: bool) -> None:
    full, visible = _history()
    # The same new trial in both studies, sampled by two identically seeded TPE samplers:
    # on the view it must see exactly what it sees on the study of the visible trials.
    suggestions = []
    for study in (StudyWithoutTrials(full, _hidden), visible):
        sampler = optuna.samplers.TPESampler(seed=11, n_startup_trials=5,
                                             multivariate=multivariate)
        real = full if isinstance(study, StudyWithoutTrials) else visible
        trial = real._storage.get_trial(real.ask()._trial_id)
        space = sampler.infer_relative_search_space(study, trial)  # type: ignore[arg-type]
        params = sampler.sample_relative(study, trial, space)  # type: ignore[arg-type]
        for name, dist in SPACE.items():
            if name not in params:
                params[name] = sampler.sample_independent(
                    study, trial, name, dist  # type: ignore[arg-type]
                )
        suggestions.append(params)
    assert suggestions[0] == suggestions[1]
    # And the hidden trials matter: TPE on the full study suggests something else.
    sampler = optuna.samplers.TPESampler(seed=11, n_startup_trials=5, multivariate=multivariate)
    trial = full._storage.get_trial(full.ask()._trial_id)
    space = sampler.infer_relative_search_space(full, trial)
    params = sampler.sample_relative(full, trial, space)
    for name, dist in SPACE.items():
        params.setdefault(name, sampler.sample_independent(full, trial, name, dist))
    assert params != suggestions[0]
