"""Source hygiene and search-space alignment (issue 2, points 3 and 4)."""

from __future__ import annotations

import logging
import math
from pathlib import Path
import sys
import traceback
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.trial import create_trial
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import pytest

from optuna_transfer._encoding import aligned_matrix
from optuna_transfer._encoding import decode
from optuna_transfer._encoding import encode
from optuna_transfer._encoding import project
from optuna_transfer._encoding import UNFIT
from optuna_transfer._sources import load_sources
from optuna_transfer._sources import load_sources_from_storage
from optuna_transfer._sources import SourceTask


@pytest.fixture(autouse=True)
def _propagate_optuna_logs() -> None:
    optuna.logging.enable_propagation()


def _trial(
    value: float | None, state: TrialState = TrialState.COMPLETE, **params: object
) -> FrozenTrial:
    dists: dict[str, BaseDistribution] = {
        k: CategoricalDistribution([v]) if isinstance(v, str) else FloatDistribution(-1e9, 1e9)
        for k, v in params.items()
    }
    return create_trial(
        state=state, value=value if state == TrialState.COMPLETE else None,
        params=params, distributions=dists,
    )


def test_ranks_follow_each_source_direction() -> None:
    study = optuna.create_study(direction="maximize")
    for v in [1.0, 3.0, 2.0]:
        study.add_trial(_trial(v, x=v))
    (task,) = load_sources(study)
    assert [t.value for t in task.best_trials] == [3.0, 2.0, 1.0]


def test_hygiene_states_and_nonfinite_values(caplog: pytest.LogCaptureFixture) -> None:
    trials = [
        _trial(1.0, x=1.0),
        _trial(None, TrialState.PRUNED, x=2.0),
        _trial(None, TrialState.FAIL, x=3.0),
        _trial(None, TrialState.RUNNING, x=4.0),
        _trial(None, TrialState.WAITING, x=5.0),
        _trial(math.inf, x=6.0),
        _trial(-math.inf, x=7.0),
        _trial(0.5, x=8.0),
    ]
    with caplog.at_level(logging.WARNING):
        task = SourceTask.from_trials("s", trials, [optuna.study.StudyDirection.MINIMIZE])
    assert [t.params["x"] for t in task.trials] == [8.0, 1.0, 2.0]  # complete best-first, pruned
    assert task.n_complete == 2
    assert task.values.tolist() == [[0.5], [1.0]]  # the complete trials' values, in that order
    warnings = [r.getMessage() for r in caplog.records if "NaN or infinite" in r.getMessage()]
    assert len(warnings) == 1 and "skipped 2" in warnings[0]


def test_source_without_usable_trials_names_the_study() -> None:
    study = optuna.create_study(study_name="old-run")
    study.add_trial(_trial(None, TrialState.FAIL, x=1.0))
    study.add_trial(_trial(None, TrialState.PRUNED, x=1.0))
    with pytest.raises(ValueError, match="'old-run' has no usable trials.*1 FAIL, 1 PRUNED"):
        load_sources(study)


def test_empty_and_mixed_sources_are_rejected() -> None:
    with pytest.raises(ValueError, match="empty"):
        load_sources([])
    study = optuna.create_study()
    study.add_trial(_trial(1.0, x=1.0))
    with pytest.raises(TypeError, match="mixes"):
        load_sources([study, study.trials[0]])
    with pytest.raises(TypeError, match="from_storage"):
        load_sources("sqlite:///x.db")


def test_a_list_of_names_or_summaries_is_refused_with_what_to_pass_instead(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'team.db'}"
    study = optuna.create_study(storage=url, study_name="old-run")
    study.add_trial(_trial(1.0, x=1.0))
    with pytest.raises(TypeError, match=r"study names.*from_storage\(storage, study_names\)"):
        load_sources(optuna.get_all_study_names(url))
    with pytest.raises(TypeError, match=r"StudySummary.*optuna.load_study"):
        load_sources(optuna.get_all_study_summaries(url))
    with pytest.raises(TypeError, match=r"optuna.Study or FrozenTrial.*got float"):
        load_sources([1.0, 2.0])


def test_few_trials_work_and_frozen_trials_are_one_source() -> None:
    tasks = load_sources([_trial(2.0, x=1.0), _trial(1.0, x=2.0)])
    assert len(tasks) == 1 and tasks[0].best_trials[0].params == {"x": 2.0}


def test_large_source_is_subsampled_keeping_the_best(caplog: pytest.LogCaptureFixture) -> None:
    trials = [_trial(float(i), x=float(i)) for i in range(500)]
    trials += [_trial(None, TrialState.PRUNED, x=float(i)) for i in range(500, 700)]
    with caplog.at_level(logging.WARNING):
        task = SourceTask.from_trials(
            "big", trials, [optuna.study.StudyDirection.MINIMIZE], max_trials=100
        )
    assert len(task.trials) == 100
    assert [t.value for t in task.trials[:10]] == [float(i) for i in range(10)]
    # The values follow the kept complete trials, whatever the subsample dropped.
    assert 10 < task.n_complete < 100
    assert task.values[:, 0].tolist() == [t.value for t in task.best_trials]
    assert any("max_source_trials=100" in r.getMessage() for r in caplog.records)


def test_from_storage_unknown_study_and_bad_url() -> None:
    storage = optuna.storages.InMemoryStorage()
    optuna.create_study(study_name="exists", storage=storage).add_trial(_trial(1.0, x=1.0))
    with pytest.raises(ValueError, match="No study named 'nope'.*exists"):
        load_sources_from_storage(storage, ["nope"])
    with pytest.raises(ValueError, match=r"Could not open storage postgresql://u:\*\*\*@"):
        load_sources_from_storage("postgresql://u:pw@127.0.0.1:1/db", ["x"])


def test_from_storage_reads_each_study_once_until_it_changes(tmp_path: Path) -> None:
    # More cache cases: tests/test_sources_cache.py.
    url = f"sqlite:///{tmp_path / 'src.db'}"
    study = optuna.create_study(study_name="s", storage=url)
    study.add_trial(_trial(1.0, x=1.0))
    first = load_sources_from_storage(url, "s")
    assert load_sources_from_storage(url, "s")[0] is first[0]
    study.add_trial(_trial(0.0, x=0.0))  # seen: the cache never serves an outdated study
    assert load_sources_from_storage(url, "s")[0].best_trials[0].params == {"x": 0.0}


def test_from_storage_error_keeps_its_cause(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'x.db'}"
    with pytest.raises(ValueError, match="Could not open storage sqlite:///") as info:
        load_sources_from_storage(url, ["a"])
    assert "OperationalError" in str(info.value)
    assert "unable to open database file" in str(info.value)
    assert info.value.__cause__ is not None


class _NoPg8000:
    """An import finder under which pg8000 is not installed, whatever this machine has."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "pg8000" or name.startswith("pg8000."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def test_from_storage_missing_driver_names_the_module(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "pg8000" or m.startswith("pg8000.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_NoPg8000(), *sys.meta_path])
    url = "postgresql+pg8000://u:s3cret@127.0.0.1:1/db"
    with pytest.raises(ValueError, match="Could not open storage") as info:
        load_sources_from_storage(url, ["a"])  # the traceback shows this line, not the URL
    assert "No module named 'pg8000'" in str(info.value)
    assert "postgresql+pg8000://u:***@127.0.0.1:1/db" in str(info.value)
    assert isinstance(info.value.__cause__, ImportError)
    assert "s3cret" not in "".join(traceback.format_exception(info.value))


# --- alignment --------------------------------------------------------------------------------


def test_numeric_range_changes_missing_outside_clipped_for_projection() -> None:
    shrunk = FloatDistribution(0.0, 1.0)
    assert encode(shrunk, 0.25) == pytest.approx(0.25)
    assert math.isnan(encode(shrunk, 5.0))  # says nothing about the new range
    assert project(shrunk, 5.0) == 1.0  # a zero-shot config is clipped into it
    grown = FloatDistribution(-10.0, 10.0)
    assert encode(grown, 5.0) == pytest.approx(0.75)


def test_tiny_ranges_use_a_tolerance_relative_to_the_range() -> None:
    # An absolute tolerance (1e-12) dwarfed these ranges: values far outside were clipped to an
    # edge instead of being missing.
    tiny_log = FloatDistribution(1e-15, 1e-14, log=True)
    assert math.isnan(encode(tiny_log, 5e-13))
    assert math.isnan(encode(tiny_log, 1e-16))
    assert encode(tiny_log, 1e-14) == pytest.approx(1.0)
    tiny = FloatDistribution(1e-15, 1e-14)
    assert math.isnan(encode(tiny, 2e-14))
    assert math.isnan(encode(tiny, 0.0))
    assert encode(tiny, 5.5e-15) == pytest.approx(0.5)
    # Rounding noise at an edge still counts as inside, whatever the scale.
    assert encode(FloatDistribution(0.0, 0.3), 0.1 * 3) == 1.0
    assert encode(tiny_log, 1e-14 * (1 + 2e-16)) == pytest.approx(1.0)
    assert encode(FloatDistribution(1e6, 1e6 + 1e-3), 1e6 + 1e-3) == pytest.approx(1.0)
    assert math.isnan(encode(FloatDistribution(1e6, 1e6 + 1e-3), 1e6 + 2e-3))
    assert encode(FloatDistribution(2.0, 2.0), 2.0) == 0.5
    assert math.isnan(encode(FloatDistribution(2.0, 2.0), 2.0 + 1e-9))


def test_log_linear_and_int_float_changes_go_through_external_values() -> None:
    log = FloatDistribution(1e-4, 1.0, log=True)
    assert encode(log, 1e-2) == pytest.approx(0.5)
    assert decode(log, 0.5) == pytest.approx(1e-2)
    as_int = IntDistribution(0, 10)
    assert project(as_int, 3.7) == 4 and isinstance(project(as_int, 3.7), int)
    stepped = FloatDistribution(0.0, 1.0, step=0.25)
    assert project(stepped, 0.3) == 0.25
    assert encode(FloatDistribution(0.0, 10.0), 4) == pytest.approx(0.4)


def test_categorical_choices_renamed_or_mismatched() -> None:
    cat = CategoricalDistribution(["adam", "sgd", None, True])
    assert encode(cat, "sgd") == 1.0
    assert math.isnan(encode(cat, "rmsprop"))  # a choice that no longer exists
    assert project(cat, "rmsprop") is UNFIT
    assert encode(cat, None) == 2.0
    assert project(cat, None) is None  # the choice None, not "does not fit"
    assert encode(cat, True) == 3.0 and math.isnan(encode(cat, 1))  # True is not 1
    assert math.isnan(encode(FloatDistribution(0, 1), "adam"))
    assert encode(CategoricalDistribution([1, 2, 4]), 2.0) == 1.0  # numbers match by value


def test_aligned_matrix_marks_missing_and_conditional_params() -> None:
    space = {"x": FloatDistribution(0, 1), "new": IntDistribution(0, 3)}
    trials = [_trial(1.0, x=0.5, old=3.0), _trial(2.0, gone="a")]
    x = aligned_matrix(trials, space)
    assert x[0, 0] == pytest.approx(0.5)
    assert np.isnan(x[0, 1]) and np.isnan(x[1]).all()
