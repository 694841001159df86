"""``from_storage`` without study names: every finished study of a team storage is a source."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

from _support import finished_study
import optuna
from optuna.trial import Trial
import pytest

from optuna_transfer import TransferTPESampler
from optuna_transfer._sources import discover_study_names
from optuna_transfer._tpe import ZERO_SHOT_ATTR_KEY


optuna.logging.set_verbosity(optuna.logging.ERROR)


def _lr_wd(trial: Trial) -> float:
    lr = trial.suggest_float("lr", 1e-5, 1.0, log=True)
    wd = trial.suggest_float("wd", 1e-6, 1e-2, log=True)
    return (math.log10(lr) + 2) ** 2 + (math.log10(wd) + 4) ** 2


def _other_model(trial: Trial) -> float:
    return trial.suggest_float("depth", 1, 10) + trial.suggest_float("leaves", 1, 100)


def _team_storage(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'team.db'}"
    for i, name in enumerate(["resnet-a", "resnet-b"]):
        study = finished_study(_lr_wd, 20, seed=i, storage=url, study_name=name)
        study.set_user_attr("model", "resnet")
    finished_study(_other_model, 20, storage=url, study_name="xgboost")
    finished_study(lambda t: (_lr_wd(t), 1.0), 10, directions=("minimize", "minimize"),
                   storage=url, study_name="resnet-two-objectives")
    optuna.create_study(storage=url, study_name="empty")
    return url


def test_discovery_finds_finished_studies_and_applies_the_filter(tmp_path: Path) -> None:
    url = _team_storage(tmp_path)
    storage = optuna.storages.RDBStorage(url)
    everything = ["resnet-a", "resnet-b", "xgboost", "resnet-two-objectives"]
    assert discover_study_names(storage) == everything  # "empty" has no COMPLETE trial
    assert discover_study_names(storage, "resnet-?") == ["resnet-a", "resnet-b"]
    assert discover_study_names(storage, {"model": "resnet"}) == ["resnet-a", "resnet-b"]
    assert discover_study_names(storage, lambda s: s.study_name.startswith("x")) == ["xgboost"]
    with pytest.raises(TypeError, match="study_filter"):
        discover_study_names(storage, 3)  # type: ignore[arg-type]


def test_target_in_the_same_storage_is_not_its_own_source(tmp_path: Path) -> None:
    url = _team_storage(tmp_path)
    target = optuna.create_study(storage=url, study_name="resnet-c")
    target.optimize(_lr_wd, n_trials=3)
    sampler = TransferTPESampler.from_storage(url, study_filter="resnet-*", seed=0)
    assert "resnet-c" in sampler.source_names  # found, since it has COMPLETE trials
    study = optuna.load_study(study_name="resnet-c", storage=url, sampler=sampler)
    study.optimize(_lr_wd, n_trials=12)
    weights = sampler.get_source_weights(study)
    assert weights
    # The target and the two-objective study never vote; the related sources may.
    for w in weights.values():
        assert w["resnet-c"] == 0.0
        assert w["resnet-two-objectives"] == 0.0
    claimed = {t.system_attrs.get(ZERO_SHOT_ATTR_KEY) for t in study.trials[3:]}
    assert not any(c and "resnet-c" in c for c in claimed)


def test_a_source_of_another_model_gets_no_zero_shot_trial(tmp_path: Path) -> None:
    url = _team_storage(tmp_path)
    sampler = TransferTPESampler.from_storage(url, n_zero_shot=3, seed=0)
    study = optuna.create_study(sampler=sampler)
    study.enqueue_trial({"lr": 1e-3, "wd": 1e-4})  # the target's space is known from here on
    study.optimize(_lr_wd, n_trials=8)
    portfolio_params = [
        t.params for t in study.trials if t.system_attrs.get(ZERO_SHOT_ATTR_KEY, "null") != "null"
    ]
    assert portfolio_params  # the related sources' entries ran
    assert all(set(p) == {"lr", "wd"} for p in portfolio_params)
    # xgboost's best config (depth, leaves) was in the portfolio but never evaluated.
    assert any("depth" in entry for entry in sampler._portfolio.entries[: sampler._portfolio.size])


def test_discovered_sources_of_other_models_are_logged_at_info_not_warned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A team storage holds studies of other models by design: only a source the user named,
    # or a storage where nothing shares a parameter, is worth a warning.
    url = _team_storage(tmp_path)
    optuna.logging.enable_propagation()
    caplog.set_level(logging.INFO, logger="optuna_transfer")
    try:
        study = optuna.create_study(sampler=TransferTPESampler.from_storage(url, seed=0))
        # Judged once the zero-shot trials (one per resnet source: xgboost's sets nothing
        # of the target's) and the probe have run.
        study.optimize(_lr_wd, n_trials=4)
        overlap = [r for r in caplog.records if "shares no parameter" in r.getMessage()]
        assert [r.levelno for r in overlap] == [logging.INFO]
        assert "'xgboost'" in overlap[0].getMessage()
        caplog.clear()
        study = optuna.create_study(sampler=TransferTPESampler.from_storage(url, ["xgboost"]))
        study.optimize(_lr_wd, n_trials=4)
        overlap = [r for r in caplog.records if "shares no parameter" in r.getMessage()]
        assert [r.levelno for r in overlap] == [logging.WARNING]
    finally:
        optuna.logging.disable_propagation()


def test_empty_storage_is_a_clear_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    optuna.create_study(storage=url, study_name="nothing-finished")
    with pytest.raises(ValueError, match="no study with a COMPLETE trial"):
        TransferTPESampler.from_storage(url)
    with pytest.raises(ValueError, match="either `study_names` or `study_filter`"):
        TransferTPESampler.from_storage(url, ["a"], study_filter="a*")


def test_a_study_without_a_finite_value_is_not_discovered(tmp_path: Path) -> None:
    # Optuna stores an infinite value as a COMPLETE trial; such a study ranks nothing and,
    # found rather than named, must not stop the sampler from being built.
    url = _team_storage(tmp_path)
    diverged = optuna.create_study(storage=url, study_name="resnet-diverged")
    diverged.optimize(lambda t: math.inf * (1 + t.suggest_float("lr", 1e-5, 1.0, log=True)), 3)
    assert [t.state for t in diverged.trials] == [optuna.trial.TrialState.COMPLETE] * 3
    assert discover_study_names(optuna.storages.RDBStorage(url), "resnet-*") == [
        "resnet-a", "resnet-b", "resnet-two-objectives"
    ]
    built = TransferTPESampler.from_storage(url, study_filter="resnet-*", seed=0)
    assert built.source_names == ["resnet-a", "resnet-b", "resnet-two-objectives"]
    # Named, it is refused as before: the user asked for it.
    with pytest.raises(ValueError, match="'resnet-diverged' has no usable trials"):
        TransferTPESampler.from_storage(url, ["resnet-diverged"])


def test_source_summary_says_who_voted_until_when(tmp_path: Path) -> None:
    from optuna_transfer.visualization import source_summary

    url = _team_storage(tmp_path)
    sampler = TransferTPESampler.from_storage(url, seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_lr_wd, n_trials=15)
    weights = sampler.get_source_weights(study)
    text = source_summary(study, top=2)
    lines = text.splitlines()
    votes = {
        label: [n for n, w in sorted(weights.items()) if w[label] > 0]
        for label in sampler.source_names
    }
    most = max(votes, key=lambda label: len(votes[label]))
    assert lines[0].startswith(f"* **{most}** ")
    if votes[most]:
        assert f"voted in {len(votes[most])} of {len(weights)} trials" in lines[0]
        assert f"last in trial {votes[most][-1]}" in lines[0]
    assert lines[2].startswith(f"* {len(sampler.source_names) - 2} more sources")
    # A study of another model shares no parameter: it never votes.
    assert votes["xgboost"] == []


def test_source_summary_during_the_zero_shot_trials_says_none_voted_yet(tmp_path: Path) -> None:
    # On main it said "not run with TransferTPESampler" for a study that was, two trials in.
    from optuna_transfer.visualization import source_summary

    url = _team_storage(tmp_path)
    study = optuna.create_study(sampler=TransferTPESampler.from_storage(url, seed=0))
    study.optimize(_lr_wd, n_trials=2)
    text = source_summary(study)
    assert "not run with TransferTPESampler" not in text
    assert text.splitlines()[0].startswith("No trial records transfer weights yet")
    assert "* Zero-shot trials: 0, 1." in text.splitlines()
    assert "* Probe trial: none." in text.splitlines()
    # A study another sampler ran still says so.
    other = optuna.create_study()
    other.optimize(_lr_wd, n_trials=2)
    assert "not run with TransferTPESampler" in source_summary(other)


def test_a_restart_that_finds_the_target_among_the_sources_runs_no_new_zero_shot_trial(
    tmp_path: Path,
) -> None:
    # On main the restarted sampler counted the target, which now had trials, as a source: the
    # portfolio grew by one, and since the target's best was an entry already run, another
    # source's second best ran as a zero-shot trial after the probe.
    url = _team_storage(tmp_path)

    def run(n_trials: int) -> optuna.Study:
        sampler = TransferTPESampler.from_storage(url, study_filter="resnet-?", seed=0)
        study = optuna.create_study(
            storage=url, study_name="resnet-c", sampler=sampler, load_if_exists=True
        )
        study.optimize(_lr_wd, n_trials=n_trials)
        return study

    run(3)
    study = run(6)
    roles = [t.user_attrs["transfer:role"] for t in study.trials]
    assert roles[:3] == ["zero-shot", "zero-shot", "probe"]
    assert "zero-shot" not in roles[3:]


def test_a_namesake_of_the_target_in_another_storage_is_a_source(tmp_path: Path) -> None:
    # The model re-tuned in a new database under its old name: the old study is the best
    # source there is. On main it was left out as if it were the target itself.
    old = _team_storage(tmp_path)
    sampler = TransferTPESampler.from_storage(old, study_filter="resnet-?", seed=0)
    new = f"sqlite:///{tmp_path / 'new.db'}"
    study = optuna.create_study(storage=new, study_name="resnet-a", sampler=sampler)
    study.optimize(_lr_wd, n_trials=6)
    assert sampler.source_names == ["resnet-a", "resnet-b"]
    zero_shot = [t for t in study.trials if t.user_attrs["transfer:role"] == "zero-shot"]
    assert [t.system_attrs[ZERO_SHOT_ATTR_KEY] for t in zero_shot] == [
        json.dumps(e, sort_keys=True) for e in sampler._portfolio.entries[:2]
    ]
    assert sampler._portfolio.sources[:2] == [0, 1]
    assert any(w["resnet-a"] > 0 for w in sampler.get_source_weights(study).values())


def test_a_study_filter_error_is_not_reported_as_a_storage_error(tmp_path: Path) -> None:
    # On main both came out as "Could not open storage ...: check the URL, the driver and
    # that the database is reachable", a wrong lead for a filter's own mistake.
    url = _team_storage(tmp_path)
    with pytest.raises(KeyError, match="model"):  # "xgboost" has no "model" attribute
        TransferTPESampler.from_storage(url, study_filter=lambda s: s.user_attrs["model"] > "")
    with pytest.raises(TypeError, match="`study_filter` must be a name pattern"):
        TransferTPESampler.from_storage(url, study_filter=3)  # type: ignore[arg-type]
