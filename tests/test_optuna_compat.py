"""The private-API adapter (``optuna_transfer._optuna_compat``) against the installed Optuna.

If a new Optuna release changes how samplers read a study's history, these fail rather than the
transfer sampler silently handing cold TPE the wrong trials.
"""

from __future__ import annotations

import gc
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.study import Study
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import pytest

from optuna_transfer._optuna_compat import distribution_contains
from optuna_transfer._optuna_compat import get_all_trials
from optuna_transfer._optuna_compat import study_key
from optuna_transfer._optuna_compat import StudyWithoutTrials
from optuna_transfer._optuna_compat import whole_study


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


def _tpe_suggestion(study: Any, real: Study, multivariate: bool = True) -> dict[str, Any]:
    """What a seeded TPE suggests for a new trial of ``real`` reading ``study`` (``real``
    itself or a view of it)."""
    sampler = optuna.samplers.TPESampler(seed=11, n_startup_trials=5, multivariate=multivariate)
    trial = real._storage.get_trial(real.ask()._trial_id)
    space = sampler.infer_relative_search_space(study, trial)
    params = sampler.sample_relative(study, trial, space)
    for name, dist in SPACE.items():
        params.setdefault(name, sampler.sample_independent(study, trial, name, dist))
    return params


@pytest.mark.parametrize("multivariate", [True, False])
def test_tpe_on_the_view_samples_as_on_a_study_of_the_visible_trials(multivariate: bool) -> None:
    full, visible = _history()
    # The same new trial in both studies, sampled by two identically seeded TPE samplers:
    # on the view it must see exactly what it sees on the study of the visible trials.
    on_view = _tpe_suggestion(StudyWithoutTrials(full, _hidden), full, multivariate)
    assert on_view == _tpe_suggestion(visible, visible, multivariate)
    # And the hidden trials matter: TPE on the full study suggests something else.
    assert on_view != _tpe_suggestion(full, full, multivariate)


def test_failed_trials_are_listed_as_pruned_ones_that_reported_nothing() -> None:
    # Optuna's TPE ignores failed trials. The cold fallback hands it a view in which they are
    # pruned trials without intermediate values, which it ranks below every other trial.
    full = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    pruned = optuna.create_study()
    for i in range(20):
        trial = full.ask(SPACE)
        if i % 4 == 1:
            trial.report(-100.0, step=0)  # a good value reported before it failed
            full.tell(trial, state=TrialState.FAIL)
            pruned.add_trial(
                optuna.trial.create_trial(
                    params=trial.params, distributions=SPACE, state=TrialState.PRUNED
                )
            )
        else:
            full.tell(trial, _objective(optuna.trial.FixedTrial(trial.params)))
            pruned.add_trial(full.trials[-1])
    view = StudyWithoutTrials(full, lambda t: False, failed_as_pruned=True)
    states = (TrialState.COMPLETE, TrialState.PRUNED)
    listed = view._get_trials(deepcopy=False, states=states, use_cache=True)
    assert [t.state for t in listed] == [t.state for t in pruned.trials]
    assert all(t.intermediate_values == {} for t in listed if t.state == TrialState.PRUNED)
    assert view.get_trials(states=(TrialState.FAIL,)) == []
    assert [t.state for t in view.trials] == [t.state for t in pruned.trials]
    # The study itself is unchanged.
    assert [t.number for t in full.trials if t.state == TrialState.FAIL] == [1, 5, 9, 13, 17]
    assert full.trials[1].intermediate_values == {0: -100.0}
    # TPE samples on the view as on the study whose failures were pruned without a report,
    # and on the study itself (failures ignored) it samples something else.
    on_view = _tpe_suggestion(view, full)
    assert on_view == _tpe_suggestion(pruned, pruned)
    assert on_view != _tpe_suggestion(full, full)


def test_search_space_groups_are_optunas_decomposition() -> None:
    from optuna_transfer._optuna_compat import search_space_groups

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial: optuna.Trial) -> float:
        if trial.suggest_categorical("branch", ["a", "b"]) == "a":
            return trial.suggest_float("a1", 0, 1) + trial.suggest_float("a2", 0, 1)
        return trial.suggest_float("b1", 0, 1)

    study.optimize(objective, n_trials=20)
    groups = sorted(sorted(g) for g in search_space_groups(study))
    assert groups == [["a1", "a2"], ["b1"], ["branch"]]


def test_search_space_groups_list_each_groups_parameters_by_name() -> None:
    # Optuna builds the groups from sets, whose order follows the process's hash seed; the
    # sampler encodes and draws parameters in this order, so it must not depend on it.
    from optuna_transfer._optuna_compat import search_space_groups

    names = ["w", "b", "q", "a", "m", "z", "c", "k", "e", "t"]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: sum(t.suggest_float(n, 0, 1) for n in names), n_trials=3)
    assert [list(g) for g in search_space_groups(study)] == [sorted(names)]


def test_chunked_system_attr_round_trips_and_respects_the_column_limit() -> None:
    from optuna_transfer._optuna_compat import get_chunked_system_attr
    from optuna_transfer._optuna_compat import set_chunked_system_attr
    from optuna_transfer._optuna_compat import SYSTEM_ATTR_MAX_LENGTH

    study = optuna.create_study()
    trial = study.ask()
    frozen = study._storage.get_trial(trial._trial_id)
    text = "x" * (2 * SYSTEM_ATTR_MAX_LENGTH + 7)
    set_chunked_system_attr(study, frozen, "k", text)
    frozen = study._storage.get_trial(trial._trial_id)
    assert [len(frozen.system_attrs[f"k:{i}"]) for i in range(3)] == [
        SYSTEM_ATTR_MAX_LENGTH, SYSTEM_ATTR_MAX_LENGTH, 7
    ]
    assert get_chunked_system_attr(frozen, "k") == text
    assert get_chunked_system_attr(frozen, "other") is None


def test_fail_trial_leaves_nothing_running() -> None:
    from optuna_transfer._optuna_compat import fail_trial

    study = optuna.create_study()
    trial = study.ask()
    fail_trial(study, study._storage.get_trial(trial._trial_id))
    assert [t.state for t in study.trials] == [TrialState.FAIL]


def test_store_constraints_records_what_tpe_samplers_constraints_func_records() -> None:
    from optuna_transfer._optuna_compat import store_constraints

    def constraints(t: optuna.trial.FrozenTrial) -> tuple[float, float]:
        return (t.params["x"] - 1.0, -t.params["x"])

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -2, 2)
        if x > 1.5:
            raise optuna.TrialPruned()
        return x**2

    with pytest.warns(FutureWarning):
        tpe = optuna.samplers.TPESampler(seed=0, constraints_func=constraints)
    reference = optuna.create_study(sampler=tpe)
    reference.optimize(objective, n_trials=12)
    ours = optuna.create_study()
    for t in reference.trials:
        trial = ours.ask({"x": t.distributions["x"]})
        ours._storage.set_trial_param(
            trial._trial_id, "x", t.distributions["x"].to_internal_repr(t.params["x"]),
            t.distributions["x"],
        )
        frozen = ours._storage.get_trial(trial._trial_id)
        store_constraints(constraints, ours, frozen, t.state)
        ours.tell(trial, t.value, state=t.state)
    assert {t.state for t in reference.trials} == {TrialState.COMPLETE, TrialState.PRUNED}
    assert [t.constraints for t in ours.trials] == [t.constraints for t in reference.trials]
    assert all(len(t.constraints) == 2 for t in ours.trials)


def test_per_study_state_tells_in_memory_studies_apart() -> None:
    from optuna_transfer._optuna_compat import PerStudy

    state: PerStudy[list[int]] = PerStudy(list)
    first, second = optuna.create_study(), optuna.create_study()
    assert first._study_id == second._study_id  # both 0: an id alone cannot key the state
    state(first).append(1)
    assert state(second) == []
    assert state(first) == [1]


def test_get_all_trials_sees_every_state_and_other_handles_new_trials() -> None:
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, study_name="s")
    study.optimize(_objective, n_trials=3)
    study.ask()
    other = optuna.load_study(study_name="s", storage=storage)
    other.ask()
    trials = get_all_trials(study)
    assert [t.number for t in trials] == [0, 1, 2, 3, 4]
    assert [t.state for t in trials[3:]] == [TrialState.RUNNING] * 2


def test_whole_study_sees_every_bracket_of_a_hyperband_study() -> None:
    seen: list[tuple[int, int]] = []

    class Recording(optuna.samplers.RandomSampler):
        def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
            seen.append((len(study.get_trials()), len(whole_study(study).get_trials())))

    study = optuna.create_study(
        sampler=Recording(seed=0), pruner=optuna.pruners.HyperbandPruner(max_resource=9)
    )

    def reported(trial: optuna.Trial) -> float:
        # The pruner sets up its brackets when it is first asked.
        trial.report(_objective(trial), 0)
        trial.should_prune()
        return _objective(trial)

    study.optimize(reported, n_trials=20)
    # The sampler's view lists one bracket's trials; the whole study every trial so far.
    assert [whole for _, whole in seen] == list(range(1, 21))
    assert any(part < whole for part, whole in seen)
    plain = optuna.create_study()
    assert whole_study(plain) is plain


def test_study_key_tells_studies_and_storages_apart() -> None:
    storage = optuna.storages.InMemoryStorage()
    a = optuna.create_study(storage=storage, study_name="a")
    b = optuna.create_study(storage=storage, study_name="b")
    assert study_key(a) == study_key(optuna.load_study(study_name="a", storage=storage))
    assert study_key(a) != study_key(b)
    # Two in-memory studies both have id 0 in their own storages.
    first, second = optuna.create_study(), optuna.create_study()
    assert study_key(first)[1] == study_key(second)[1] == 0
    assert study_key(first) != study_key(second)
    # A key of a storage that is gone never equals a live study's.
    gone = study_key(optuna.create_study())
    gc.collect()
    assert gone[0]() is None
    assert gone != study_key(optuna.create_study())


def test_distribution_contains_takes_external_values() -> None:
    assert distribution_contains(CategoricalDistribution(["a", "b"]), "b")
    # Optuna has no internal representation of a choice it does not list.
    with pytest.raises(ValueError, match="not in"):
        distribution_contains(CategoricalDistribution(["a", "b"]), "c")
    assert distribution_contains(FloatDistribution(0.0, 1.0), 0.5)
    assert not distribution_contains(FloatDistribution(0.0, 1.0), 1.5)
    assert distribution_contains(IntDistribution(1, 64, log=True), 8)
    assert not distribution_contains(IntDistribution(1, 64, log=True), 65)


def test_seed_tpe_sampler_gives_the_draws_of_a_fresh_sampler_with_that_seed() -> None:
    from optuna_transfer._optuna_compat import seed_tpe_sampler

    def draws(sampler: optuna.samplers.TPESampler) -> list[float]:
        study = optuna.create_study(sampler=sampler)
        study.optimize(lambda t: t.suggest_float("x", 0, 1) ** 2, n_trials=12)
        return [t.params["x"] for t in study.trials]

    used = optuna.samplers.TPESampler(seed=1, n_startup_trials=5)
    draws(used)  # advance its random state
    seed_tpe_sampler(used, 7)
    assert draws(used) == draws(optuna.samplers.TPESampler(seed=7, n_startup_trials=5))
