"""The per-process cache behind ``from_storage`` saves reads but never changes what is read,
whatever the storage (URL, in-memory, journal, the gRPC proxy).

Issue 13, item 3: the cache was keyed by ``id(storage)`` (a new storage at a dead one's address
got its study), it served a deleted-and-recreated study from before, and it ignored
``max_source_trials`` (a rejected call left a subsample behind).
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import gc
import multiprocessing
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import FloatDistribution
from optuna.storages.journal import JournalFileBackend
from optuna.trial import create_trial
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import pytest

from benchmarks import workers
from optuna_transfer import TransferTPESampler
from optuna_transfer._sources import load_sources_from_storage


@pytest.fixture(autouse=True)
def _quiet() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _add(study: optuna.Study, x: float, value: float | None = None) -> None:
    study.add_trial(
        create_trial(
            params={"x": x},
            distributions={"x": FloatDistribution(-1e3, 1e3)},
            value=x if value is None else value,
        )
    )


def _xs(url_or_storage: Any, name: str = "s", max_trials: int = 2000) -> list[float]:
    (task,) = load_sources_from_storage(url_or_storage, name, max_trials)
    return [t.params["x"] for t in task.trials]


def test_a_new_storage_object_never_gets_a_dead_ones_study() -> None:
    # CPython reuses the address of a freed object, so the id() of a fresh storage often equals
    # the id() of the one from the previous iteration.
    for i in range(20):
        storage = optuna.storages.InMemoryStorage()
        study = optuna.create_study(study_name="s", storage=storage)
        _add(study, float(i))
        assert _xs(storage) == [float(i)], f"iteration {i}"
        del storage, study
        gc.collect()


def test_recreated_study_under_the_same_url_is_read_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'src.db'}"
    old = optuna.create_study(study_name="s", storage=url)
    for x in (1.0, 2.0, 3.0):
        _add(old, x)
    assert _xs(url) == [1.0, 2.0, 3.0]
    optuna.delete_study(study_name="s", storage=url)
    # SQLite hands the new study and its trials the ids the deleted ones had; same trial count.
    new = optuna.create_study(study_name="s", storage=url, direction="maximize")
    for x in (1.0, 2.0, 3.0):
        _add(new, x)
    assert new._study_id == old._study_id  # the case that fools an id-based key
    assert _xs(url) == [3.0, 2.0, 1.0]  # now maximised: ranked the other way


def test_recreated_study_in_the_same_storage_object_is_read_again() -> None:
    storage = optuna.storages.InMemoryStorage()
    old = optuna.create_study(study_name="s", storage=storage)
    _add(old, 1.0)
    assert _xs(storage) == [1.0]
    optuna.delete_study(study_name="s", storage=storage)
    _add(optuna.create_study(study_name="s", storage=storage), 5.0)
    assert _xs(storage) == [5.0]


def _study_of_30(url: str) -> None:
    study = optuna.create_study(study_name="s", storage=url)
    for i in range(30):
        _add(study, float(i))


def test_cache_is_keyed_by_max_source_trials(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'src.db'}"
    _study_of_30(url)
    assert len(_xs(url, max_trials=10)) == 10
    assert len(_xs(url)) == 30
    assert len(_xs(url, max_trials=10)) == 10


def test_rejected_max_source_trials_leaves_nothing_behind(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'src.db'}"
    _study_of_30(url)
    with pytest.raises(ValueError, match="max_source_trials"):
        TransferTPESampler.from_storage(url, ["s"], max_source_trials=5)
    with pytest.raises(ValueError, match="max_source_trials"):
        load_sources_from_storage(url, "s", 5)
    assert len(_xs(url)) == 30
    sampler = TransferTPESampler.from_storage(url, ["s"], seed=0)
    assert sampler.source_names == ["s"]


class _CountingStorage(optuna.storages.InMemoryStorage):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get_all_trials(self, *args: Any, **kwargs: Any) -> list[FrozenTrial]:
        self.reads += 1
        return super().get_all_trials(*args, **kwargs)


def test_unchanged_study_is_read_once() -> None:
    storage = _CountingStorage()
    _add(optuna.create_study(study_name="s", storage=storage), 1.0)
    reads = storage.reads
    (first,) = load_sources_from_storage(storage, "s")
    assert storage.reads == reads + 1
    (second,) = load_sources_from_storage(storage, "s")
    assert second is first
    assert storage.reads == reads + 1


def test_study_that_gained_or_finished_trials_is_read_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'src.db'}"
    study = optuna.create_study(study_name="s", storage=url)
    _add(study, 1.0)
    running = study.ask({"x": FloatDistribution(-1e3, 1e3)})
    assert _xs(url) == [1.0]
    assert load_sources_from_storage(url, "s")[0] is load_sources_from_storage(url, "s")[0]
    study.tell(running, 0.5)  # a RUNNING trial finished: no new trial, but a new observation
    assert _xs(url) == [running.params["x"], 1.0]  # value 0.5 beats 1.0
    _add(study, -3.0, value=-3.0)  # a new trial
    assert _xs(url)[0] == -3.0 and len(_xs(url)) == 3
    pruned = study.ask({"x": FloatDistribution(-1e3, 1e3)})
    study.tell(pruned, state=TrialState.PRUNED)
    assert len(load_sources_from_storage(url, "s")[0].trials) == 4


@contextlib.contextmanager
def _storage(kind: str, tmp_path: Path) -> Iterator[optuna.storages.BaseStorage]:
    if kind == "journal":
        yield optuna.storages.JournalStorage(JournalFileBackend(str(tmp_path / "journal.log")))
        return
    # The gRPC proxy in front of SQLite, as a team shares one database across machines.
    ctx = multiprocessing.get_context("spawn")
    with workers.grpc_proxy(ctx, f"sqlite:///{tmp_path / 'src.db'}") as spec:
        storage = spec.open()
        try:
            yield storage
        finally:
            assert isinstance(storage, optuna.storages.GrpcStorageProxy)
            storage.close()


@pytest.mark.parametrize("kind", ["journal", "grpc"])
def test_the_cache_follows_a_study_in_other_storages(kind: str, tmp_path: Path) -> None:
    # The cache's checks ask the storage for a trial number that does not exist yet; every
    # storage must answer with KeyError, or an unchanged study would be read again (or a
    # changed one served from before).
    with _storage(kind, tmp_path) as storage:
        study = optuna.create_study(study_name="s", storage=storage)
        _add(study, 1.0)
        running = study.ask({"x": FloatDistribution(-1e3, 1e3)})
        (first,) = load_sources_from_storage(storage, "s")
        assert [t.params["x"] for t in first.trials] == [1.0]
        assert load_sources_from_storage(storage, "s")[0] is first  # unchanged: not re-read
        study.tell(running, 0.5)
        assert _xs(storage) == [running.params["x"], 1.0]
        _add(study, -3.0, value=-3.0)
        assert _xs(storage)[0] == -3.0 and len(_xs(storage)) == 3
        optuna.delete_study(study_name="s", storage=storage)
        _add(optuna.create_study(study_name="s", storage=storage), 5.0)
        assert _xs(storage) == [5.0]
