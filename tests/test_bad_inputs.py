"""Bad-input matrix: one test per case. Each asserts a clear error that names the problem, or
the documented fallback (see ``optuna_transfer/_sources.py``) with actual values."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
import logging
import math
from pathlib import Path
from typing import Any

import _support
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.trial import FrozenTrial
from optuna.trial import Trial
from optuna.trial import TrialState
import pytest


pytestmark = pytest.mark.parametrize("name", _support.SAMPLER_NAMES)

X01 = FloatDistribution(0, 1)


@pytest.fixture(autouse=True)
def _logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    _support.quiet()
    optuna.logging.enable_propagation()
    caplog.set_level(logging.INFO, logger=_support.LOGGER_NAME)
    yield
    optuna.logging.disable_propagation()


def _trial(
    params: dict[str, Any],
    dists: dict[str, BaseDistribution],
    value: float | None = None,
    state: TrialState = TrialState.COMPLETE,
) -> FrozenTrial:
    return optuna.trial.create_trial(params=params, distributions=dists, value=value, state=state)


def _source(points: list[tuple[dict[str, Any], dict[str, BaseDistribution], float]]) -> Any:
    study = optuna.create_study()
    for params, dists, value in points:
        study.add_trial(_trial(params, dists, value))
    return study


def _run(
    name: str, source: Any, objective: Callable[[Trial], float], n_trials: int = 6
) -> optuna.Study:
    study = optuna.create_study(sampler=_support.SAMPLERS[name](source, seed=0))
    study.optimize(objective, n_trials=n_trials)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    return study


def _inside(study: optuna.Study) -> None:
    for t in study.trials:
        for p, d in t.distributions.items():
            assert d._contains(d.to_internal_repr(t.params[p])), (p, t.params[p], d)


def test_source_empty(name: str) -> None:
    study = optuna.create_study(study_name="empty-src")
    with pytest.raises(ValueError, match=r"'empty-src' has no usable trials.*0 trial\(s\)"):
        _support.SAMPLERS[name](study)


def test_source_list_empty(name: str) -> None:
    with pytest.raises(ValueError, match="`source` is empty"):
        _support.SAMPLERS[name]([])


def test_source_only_fail_running_pruned(name: str) -> None:
    study = optuna.create_study(study_name="unfinished")
    for state in (TrialState.FAIL, TrialState.RUNNING, TrialState.PRUNED, TrialState.WAITING):
        study.add_trial(_trial({"x": 0.5}, {"x": X01}, state=state))
    with pytest.raises(ValueError) as info:
        _support.SAMPLERS[name](study)
    msg = str(info.value)
    assert "'unfinished' has no usable trials" in msg
    assert "COMPLETE" in msg
    for part in ("1 FAIL", "1 PRUNED", "1 RUNNING", "1 WAITING"):
        assert part in msg


def _constant(study_name: str, n: int = 6, pruned: bool = False) -> optuna.Study:
    """A source whose objective returned one value for every configuration."""
    study = optuna.create_study(study_name=study_name)
    for i in range(n):
        study.add_trial(_trial({"x": (i + 0.5) / n}, {"x": X01}, 1.0))
    if pruned:
        study.add_trial(_trial({"x": 0.99}, {"x": X01}, state=TrialState.PRUNED))
    return study


def test_source_with_one_value_for_every_trial_gets_no_pick_and_no_vote(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Its trials rank no configuration above another: its "best" would be whichever ran
    # first, and its smoothed ranking noise that could still win trust by chance.
    flat = _constant("flat")
    related = _source([({"x": 0.3}, {"x": X01}, 0.0), ({"x": 0.9}, {"x": X01}, 1.0)])
    sampler: Any = _support.SAMPLERS[name]([flat, related], seed=0)
    warned = [m for m in _support.records(caplog) if "'flat'" in m]
    assert len(warned) == 1 and "[1.0]" in warned[0] and "6 COMPLETE" in warned[0]
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: abs(t.suggest_float("x", 0, 1) - 0.3), n_trials=8)
    flat_xs = {t.params["x"] for t in flat.trials}
    assert study.trials[0].params == {"x": 0.3}
    assert not flat_xs & {t.params["x"] for t in study.trials}
    assert all(w["flat"] == 0.0 for w in sampler.get_source_weights(study).values())


def test_only_sources_with_one_value_start_cold(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The documented fallback, not an error: a search without usable sources.
    flat = _constant("flat")
    sampler: Any = _support.SAMPLERS[name](flat, seed=0)
    assert any("'flat'" in m for m in _support.records(caplog))
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=6)
    assert not {t.params["x"] for t in flat.trials} & {t.params["x"] for t in study.trials}
    assert all(w["flat"] == 0.0 for w in sampler.get_source_weights(study).values())


def test_source_with_one_value_still_ranks_by_its_pruned_and_single_trials(name: str) -> None:
    # A PRUNED trial ranks below every COMPLETE one, and a lone configuration (however often
    # it ran) is one to try: each is a zero-shot trial.
    repeated = optuna.create_study(study_name="repeated")
    for _ in range(3):
        repeated.add_trial(_trial({"x": 0.4}, {"x": X01}, 1.0))
    for source in (_constant("flat-pruned", pruned=True), _constant("single", n=1), repeated):
        study = optuna.create_study(sampler=_support.SAMPLERS[name](source, seed=0))
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
        best = source.trials[0].params  # all tie; the first is ranked best
        assert study.trials[0].params == best


def test_the_same_source_given_twice_counts_once(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Passed twice (a list built from two places), it would vote twice and take two of the
    # portfolio's picks; the same name with other trials (another storage) is another source.
    old = _source([({"x": 0.3}, {"x": X01}, 0.0), ({"x": 0.9}, {"x": X01}, 1.0)])
    namesake = optuna.create_study(study_name=old.study_name)
    namesake.add_trial(_trial({"x": 0.6}, {"x": X01}, 0.0))
    sampler: Any = _support.SAMPLERS[name]([old, namesake, old], seed=0)
    warned = [m for m in _support.records(caplog) if "twice" in m]
    assert len(warned) == 1 and repr(old.study_name) in warned[0]
    assert len(sampler.source_names) == 2
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    assert [t.params["x"] for t in study.trials[:2]] == [0.3, 0.6]


def _nonfinite_trials(bad: float) -> list[FrozenTrial]:
    good = [_trial({"x": x}, {"x": X01}, value=v) for x, v in ((0.3, 1.0), (0.8, 2.0))]
    # create_trial/add_trial refuse NaN, but FrozenTrial objects from elsewhere may hold it.
    weird = FrozenTrial(
        number=2, state=TrialState.COMPLETE, value=bad, datetime_start=None,
        datetime_complete=None, params={"x": 0.9}, distributions={"x": X01}, user_attrs={},
        system_attrs={}, intermediate_values={}, trial_id=2,
    )
    return [*good, weird]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_source_nan_inf_values_skipped_with_warning(
    name: str, bad: float, caplog: pytest.LogCaptureFixture
) -> None:
    sampler = _support.SAMPLERS[name](_nonfinite_trials(bad), seed=0)
    warnings = _support.records(caplog)
    assert any("skipped 1 COMPLETE trial(s)" in m and "NaN or infinite" in m for m in warnings)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=4)
    # The zero-shot portfolio is the finite trials, best first; x=0.9 (non-finite) never comes.
    assert [t.params["x"] for t in study.trials[:2]] == [0.3, 0.8]


def test_source_huge_finite_value_is_kept_as_worst(name: str) -> None:
    source = _source([({"x": 0.1}, {"x": X01}, 1e300), ({"x": 0.6}, {"x": X01}, 1.0)])
    study = _run(name, source, lambda t: t.suggest_float("x", 0, 1), n_trials=4)
    assert [t.params["x"] for t in study.trials[:2]] == [0.6, 0.1]


def test_source_still_running_is_snapshot_at_construction(
    name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = f"sqlite:///{tmp_path / 'src.db'}"
    source = optuna.create_study(study_name="live", storage=storage)
    source.add_trial(_trial({"x": 0.7}, {"x": X01}, value=5.0))
    running = source.ask({"x": X01})
    sampler = _support.SAMPLERS[name](source, seed=0)
    assert any("1 running/waiting trial(s)" in m for m in _support.records(caplog, logging.INFO))
    # Trials that finish after construction (one better than everything) are not seen.
    source.tell(running, 100.0)
    source.add_trial(_trial({"x": 0.2}, {"x": X01}, value=-1.0))
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    assert study.trials[0].params["x"] == 0.7
    assert 0.2 not in [t.params["x"] for t in study.trials[:2]]


def test_objective_count_mismatch_single_source_multi_target(name: str) -> None:
    source = _support.finished_study(_support.xy_objective, 5)
    study = optuna.create_study(
        directions=["minimize", "minimize"], sampler=_support.SAMPLERS[name](source)
    )
    with pytest.raises(ValueError, match=r"has 1 objective\(s\) but the target study has 2"):
        study.optimize(_support.xy_objective2, n_trials=1)


def test_objective_count_mismatch_multi_source_single_target(name: str) -> None:
    source = _support.finished_study(_support.xy_objective2, 5, directions=("minimize",) * 2)
    study = optuna.create_study(sampler=_support.SAMPLERS[name](source))
    with pytest.raises(ValueError, match=r"has 2 objective\(s\) but the target study has 1"):
        study.optimize(_support.xy_objective, n_trials=1)


def test_type_changed_float_to_categorical(name: str) -> None:
    # Source x was a float; a numeric value fills a categorical target only if it equals a
    # choice. 2.0 equals choice 2, 0.37 matches nothing (missing -> sampled normally).
    dist = FloatDistribution(0, 5)
    source = _source([({"x": 2.0}, {"x": dist}, 0.0), ({"x": 0.37}, {"x": dist}, 1.0)])
    study = _run(name, source, lambda t: float(t.suggest_categorical("x", [1, 2, 3])))
    assert study.trials[0].params["x"] == 2
    _inside(study)


def test_type_changed_float_to_string_categorical(name: str) -> None:
    dist = FloatDistribution(0, 5)
    source = _source([({"x": 2.0}, {"x": dist}, 0.0), ({"x": 0.37}, {"x": dist}, 1.0)])
    study = _run(name, source, lambda t: len(t.suggest_categorical("x", ["lo", "high"])))
    _inside(study)


def test_type_changed_int_to_float(name: str) -> None:
    dist = IntDistribution(0, 10)
    source = _source([({"x": 3}, {"x": dist}, 0.0), ({"x": 8}, {"x": dist}, 1.0)])
    study = _run(name, source, lambda t: t.suggest_float("x", 0, 10))
    x0 = study.trials[0].params["x"]
    assert x0 == 3.0 and isinstance(x0, float)
    _inside(study)


def test_type_changed_float_to_int(name: str) -> None:
    dist = FloatDistribution(0, 10)
    source = _source([({"x": 3.4}, {"x": dist}, 0.0), ({"x": 8.0}, {"x": dist}, 1.0)])
    study = _run(name, source, lambda t: t.suggest_int("x", 0, 10))
    x0 = study.trials[0].params["x"]
    assert x0 == 3 and isinstance(x0, int)
    _inside(study)


def test_range_shrunk_clips_zero_shot(name: str, caplog: pytest.LogCaptureFixture) -> None:
    dist = FloatDistribution(-10, 10)
    source = _source([({"x": 7.5}, {"x": dist}, 0.0), ({"x": -9.0}, {"x": dist}, 1.0)])
    study = _run(name, source, lambda t: t.suggest_float("x", -1, 1))
    assert [t.params["x"] for t in study.trials[:2]] == [1.0, -1.0]
    _inside(study)
    # Every value the source tried lies outside the new range: one warning says so.
    warned = [m for m in _support.records(caplog) if "fits" in m]
    assert len(warned) == 1 and "'x'" in warned[0]
    assert "-9 to 7.5" in warned[0] and "[-1, 1]" in warned[0]


def test_a_parameter_the_target_fixed_is_not_reported_as_unfitting(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A single-valued distribution fixes the parameter: there is nothing for a source to rank
    # there, and nothing lost. On main a warning said no value the source tried fits it.
    dist = FloatDistribution(-5, 5)
    source = _source(
        [({"x": v, "y": 0.5}, {"x": dist, "y": X01}, v**2) for v in (-4.0, 2.0, 3.5)]
    )
    study = _run(
        name, source, lambda t: t.suggest_float("x", 1.0, 1.0) + t.suggest_float("y", 0, 1)
    )
    assert {t.params["x"] for t in study.trials} == {1.0}
    assert not [m for m in _support.records(caplog) if "fits" in m]


def test_range_grown(name: str) -> None:
    dist = FloatDistribution(0, 1)
    source = _source([({"x": 0.25}, {"x": dist}, 0.0), ({"x": 0.75}, {"x": dist}, 1.0)])
    study = _run(name, source, lambda t: t.suggest_float("x", -100, 100), n_trials=8)
    assert study.trials[0].params["x"] == 0.25
    _inside(study)


def test_int_range_with_step_changed(name: str) -> None:
    dist = IntDistribution(0, 20)
    source = _source([({"x": 7}, {"x": dist}, 0.0), ({"x": 13}, {"x": dist}, 1.0)])
    study = _run(name, source, lambda t: t.suggest_int("x", 0, 12, step=4))
    # 7 snaps to the nearest grid value 8; 13 is clipped to 12.
    assert [t.params["x"] for t in study.trials[:2]] == [8, 12]
    _inside(study)


@pytest.mark.parametrize("source_log", [True, False])
def test_log_flag_changed(name: str, source_log: bool) -> None:
    dist = FloatDistribution(1e-3, 10, log=source_log)
    source = _source([({"x": 0.01}, {"x": dist}, 0.0), ({"x": 5.0}, {"x": dist}, 1.0)])
    study = _run(name, source, lambda t: t.suggest_float("x", 1e-3, 10, log=not source_log))
    assert study.trials[0].params["x"] == pytest.approx(0.01)
    _inside(study)


def test_categorical_choices_renamed(name: str, caplog: pytest.LogCaptureFixture) -> None:
    old = CategoricalDistribution(["adam", "sgd"])
    source = _source(
        [({"opt": v, "x": 0.5}, {"opt": old, "x": X01}, i) for i, v in enumerate(old.choices)]
    )
    choices = ["Adam", "SGD", "rmsprop"]

    def objective(t: Trial) -> float:
        return float(choices.index(t.suggest_categorical("opt", choices))) + t.suggest_float(
            "x", 0, 1
        )

    # A renamed choice is missing for the source (case matters): no error, and the zero-shot
    # trials fall back to ordinary sampling inside the new choices.
    study = _run(name, source, objective)
    _inside(study)
    # No value of "opt" fits any more, so the source says nothing about it: worth one warning
    # that names the parameter and both sets of choices ("x" still fits: not named).
    warned = [m for m in _support.records(caplog) if "fits" in m]
    assert len(warned) == 1 and repr(source.study_name) in warned[0]
    assert "'opt'" in warned[0] and "'x'" not in warned[0]
    assert "['adam', 'sgd']" in warned[0] and "['Adam', 'SGD', 'rmsprop']" in warned[0]


def test_source_sharing_no_parameter_is_named_in_one_warning(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A parameter renamed since the old study (learning_rate -> lr) leaves that study unable to
    # rank any configuration: the user should hear so once, not infer it from the results.
    renamed = _source([({"learning_rate": v}, {"learning_rate": X01}, v) for v in (0.1, 0.5, 0.9)])
    related = _source([({"lr": v}, {"lr": X01}, v) for v in (0.2, 0.6, 0.8)])
    _run(name, [renamed, related], lambda t: t.suggest_float("lr", 0, 1), n_trials=6)
    warned = [m for m in _support.records(caplog) if "shares no parameter" in m]
    assert len(warned) == 1
    assert repr(renamed.study_name) in warned[0]
    assert repr(related.study_name) not in warned[0]
    assert "['lr']" in warned[0] and "['learning_rate']" in warned[0]


def test_sources_sharing_parameters_raise_no_overlap_warning(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A source with one of the target's parameters (and others it lacks) is informative.
    both: dict[str, BaseDistribution] = {"lr": X01, "depth": X01}
    source = _source([({"lr": v, "depth": v}, both, v) for v in (0.1, 0.5, 0.9)])

    def objective(t: Trial) -> float:
        return t.suggest_float("lr", 0, 1) + t.suggest_float("width", 0, 1)

    _run(name, source, objective, n_trials=6)
    assert not [m for m in _support.records(caplog, logging.INFO) if "shares no parameter" in m]


def test_conditional_params_in_some_trials(name: str) -> None:
    kind = CategoricalDistribution(["svm", "rf"])
    c_dist = FloatDistribution(1e-3, 1e3, log=True)
    d_dist = IntDistribution(1, 32)
    source = _source(
        [
            ({"kind": "svm", "C": 0.5}, {"kind": kind, "C": c_dist}, 0.1),
            ({"kind": "rf", "depth": 4}, {"kind": kind, "depth": d_dist}, 0.2),
            ({"kind": "svm", "C": 300.0}, {"kind": kind, "C": c_dist}, 0.9),
            ({"kind": "rf", "depth": 30}, {"kind": kind, "depth": d_dist}, 0.8),
        ]
    )

    def objective(t: Trial) -> float:
        if t.suggest_categorical("kind", ["svm", "rf"]) == "svm":
            return math.log(t.suggest_float("C", 1e-3, 1e3, log=True)) ** 2
        return float(t.suggest_int("depth", 1, 32))

    study = _run(name, source, objective, n_trials=10)
    assert study.trials[0].params == {"kind": "svm", "C": 0.5}
    assert study.trials[1].params == {"kind": "rf", "depth": 4}
    _inside(study)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    "options", [{}, {"multivariate": False}, {"group": True}], ids=["joint", "one", "group"]
)
def test_a_source_of_one_branch_of_a_conditional_target(
    name: str, seed: int, options: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    # The source tuned C alone; the target chooses a model first, and only the SVM suggests
    # C. On main a zero-shot trial whose model was drawn otherwise never evaluated its entry
    # and the entry counted as run (in 15 of these 18 runs the source's best C never ran
    # within 20 trials), and a warning judged on the first trial said the source was
    # ignored. Now each entry runs once, in the SVM branch, once a trial has taken it.
    c_dist = FloatDistribution(1e-3, 1e3, log=True)
    source = _source(
        [({"C": c}, {"C": c_dist}, abs(math.log10(c) - 1)) for c in (9.0, 0.5, 300.0)]
    )

    def objective(t: Trial) -> float:
        model = t.suggest_categorical("model", ["svm", "rf", "knn"])
        if model == "svm":
            return abs(math.log10(t.suggest_float("C", 1e-3, 1e3, log=True)) - 1)
        if model == "rf":
            return 0.5 + abs(t.suggest_int("depth", 1, 20) - 7) / 10
        return 0.6 + abs(t.suggest_int("k", 1, 20) - 5) / 10

    sampler = _support.SAMPLERS[name](source, seed=seed, **options)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=20)
    evaluated = [t.params.get("C") for t in study.trials]
    assert evaluated.count(9.0) == 1 and evaluated.count(0.5) == 1
    first_svm = min(i for i, c in enumerate(evaluated) if c is not None)
    assert max(evaluated.index(9.0), evaluated.index(0.5)) <= first_svm + 2
    for message in _support.records(caplog):
        if "shares no parameter" in message:
            assert "conditional search space" in message


@pytest.mark.parametrize("seed", [0, 2, 4])
def test_sources_of_different_branches_of_a_conditional_target(name: str, seed: int) -> None:
    # One source per model. A first trial that claimed the SVM's entry and drew "rf" before
    # any trial had suggested C kept the entry as run (its projection onto the parameters
    # seen so far was empty): in these seeds the source's best C never ran in 30 trials,
    # although later trials took the SVM branch.
    c_dist = FloatDistribution(1e-3, 1e3, log=True)
    depth_dist = IntDistribution(1, 20)
    k_dist = IntDistribution(1, 50)
    svm = _source([({"C": c}, {"C": c_dist}, abs(math.log10(c) - 1.2)) for c in (14.0, 0.5)])
    rf = _source([({"depth": d}, {"depth": depth_dist}, abs(d - 8)) for d in (8, 2)])
    knn = _source([({"k": k}, {"k": k_dist}, abs(k - 12)) for k in (12, 40)])

    def objective(t: Trial) -> float:
        model = t.suggest_categorical("model", ["svm", "rf", "knn"])
        if model == "svm":
            return (math.log10(t.suggest_float("C", 1e-3, 1e3, log=True)) - 1) ** 2 + 0.5
        if model == "rf":
            return (t.suggest_int("depth", 1, 20) - 7) ** 2 / 20 + 0.3
        return (t.suggest_int("k", 1, 50) - 10) ** 2 / 100 + 0.4

    study = optuna.create_study(sampler=_support.SAMPLERS[name]([svm, rf, knn], seed=seed))
    study.optimize(objective, n_trials=30)
    ran = [t.params for t in study.trials]
    if any("C" in p for p in ran):
        assert {"model": "svm", "C": 14.0} in ran
    if any("depth" in p for p in ran):
        assert {"model": "rf", "depth": 8} in ran
    if any("k" in p for p in ran):
        assert {"model": "knn", "k": 12} in ran


def test_from_storage_unknown_study_name(name: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'named.db'}"
    _support.finished_study(_support.xy_objective, 3, storage=url, study_name="real")
    with pytest.raises(ValueError) as info:
        _support.FROM_STORAGE[name](url, ["nope"])
    msg = str(info.value)
    assert "No study named 'nope'" in msg
    assert "'real'" in msg  # lists what is there


def test_from_storage_unopenable_url(name: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'x.db'}"
    with pytest.raises(ValueError, match="Could not open storage sqlite:///") as info:
        _support.FROM_STORAGE[name](url, ["a"])
    assert "'a'" in str(info.value)


def test_from_storage_empty_names(name: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="`study_names` is empty"):
        _support.FROM_STORAGE[name](f"sqlite:///{tmp_path / 'x.db'}", [])


@pytest.mark.parametrize(
    ("argument", "value", "allowed"),
    [
        ("multivariate", "yes", "True or False or None"),
        ("group", "no", "True or False"),
        ("constant_liar", None, "True or False"),
        ("record_user_attrs", 0, "True or False"),
        ("constraints_func", 5, "a callable or None"),
    ],
)
def test_a_flag_or_callable_of_the_wrong_type_is_named_up_front(
    name: str, argument: str, value: Any, allowed: str
) -> None:
    # On main a string flag counted as True ("no" for group switched grouping on) and a
    # non-callable constraints_func failed at the first trial.
    source = _source([({"x": 0.5}, {"x": X01}, 1.0)])
    with pytest.raises(ValueError, match=rf"`{argument}` must be {allowed}, got {value!r}"):
        _support.SAMPLERS[name](source, **{argument: value})


@pytest.mark.parametrize(
    ("argument", "value"),
    [*_support.BAD_INTEGER_ARGUMENTS, ("n_ei_candidates", 2.5), ("n_ei_candidates", True)],
)
def test_a_non_integer_argument_is_named_up_front(name: str, argument: str, value: Any) -> None:
    source = _source([({"x": 0.5}, {"x": X01}, 1.0)])
    with pytest.raises(ValueError, match=rf"`{argument}` must be an integer >= \d.*got {value!r}"):
        _support.SAMPLERS[name](source, **{argument: value})
