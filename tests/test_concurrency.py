"""Several worker processes (and threads) on one storage; a worker killed mid-trial.

Workers are ``tests/_workers.py`` subprocesses; each writes the trials it completed to its own
file so the parent can check that every finished trial is stored with its value. The crash test
synchronises on a marker file written from inside the victim's objective, never on sleeps.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
import signal
import subprocess
import sys
import time
from typing import cast

import _pg
import _support
import _workers
import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState
import pytest

from optuna_transfer import WarmStartGridSampler
from optuna_transfer._grid import GRID_ID_ATTR_KEY
from optuna_transfer._grid import REPEAT_ATTR_KEY


WORKER = str(Path(__file__).with_name("_workers.py"))
N_WORKERS = 4
N_TRIALS = 5
TIMEOUT = 240


def _spec(kind: str, tmp_path: Path, pg: _pg.Server | None) -> str:
    if kind == "journal":
        return f"journal:{tmp_path / 'journal.log'}"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    assert pg is not None
    return pg.url()


def _setup(spec: str, study_name: str, heartbeat: bool = False) -> optuna.Study:
    _support.quiet()
    if not _is_setup(spec):
        _workers.make_source(spec)
    return optuna.create_study(
        study_name=study_name, storage=_workers.open_storage(spec, heartbeat)
    )


def _is_setup(spec: str) -> bool:
    storage = _workers.open_storage(spec)
    return any(s.study_name == _workers.SOURCE_STUDY for s in storage.get_all_studies())


def _start(spec: str, study: str, sampler: str, out: Path, *extra: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, WORKER, "--storage", spec, "--study", study, "--sampler", sampler,
           "--out", str(out), *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(procs: list[subprocess.Popen[str]]) -> None:
    for p in procs:
        try:
            output, _ = p.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            output, _ = p.communicate()
            pytest.fail(f"worker {p.pid} hung:\n{output[-3000:]}")
        assert p.returncode == 0, output[-3000:]


def _records(outs: list[Path]) -> list[tuple[int, float]]:
    """(number, value) of every trial a worker reported COMPLETE, in report order."""
    return [
        (rec["number"], rec["value"])
        for out in outs
        if out.exists()
        for rec in map(json.loads, out.read_text().splitlines())
    ]


def _reported(outs: list[Path], may_repeat: frozenset[int] = frozenset()) -> dict[int, float]:
    """Trial number -> value of every trial a worker reported COMPLETE. Only the trials in
    ``may_repeat`` may be reported by two workers, and then with the same value."""
    done: dict[int, float] = {}
    for number, value in _records(outs):
        if number in done:
            assert number in may_repeat, "two workers completed the same trial"
            assert value == done[number]
        done[number] = value
    return done


def _check_stored(study: optuna.Study, reported: dict[int, float]) -> None:
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    for number, value in reported.items():
        t = trials[number]
        assert t.state == TrialState.COMPLETE
        assert t.value == value
        # The stored value is the objective of the stored params: nothing mixed up.
        assert math.isclose(value, _workers.objective(optuna.trial.FixedTrial(t.params)))
    completes = {n for n, t in trials.items() if t.state == TrialState.COMPLETE}
    assert completes == set(reported)


def _storage_kinds() -> list[pytest.ParameterSet]:
    return [
        pytest.param("journal", id="journal"),
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.slow),
    ]


@pytest.fixture
def pg(request: pytest.FixtureRequest) -> _pg.Server | None:
    kind = request.node.callspec.params.get("kind")
    return request.getfixturevalue("pg_server") if kind == "postgres" else None


@pytest.mark.parametrize("name", _support.SAMPLER_NAMES)
@pytest.mark.parametrize("kind", [p.values[0] for p in _storage_kinds()])
def test_processes_share_one_storage(
    name: str, kind: str, tmp_path: Path, pg: _pg.Server | None
) -> None:
    spec = _spec(kind, tmp_path, pg)
    study_name = f"procs-{name}-{tmp_path.name}"
    study = _setup(spec, study_name)
    outs = [tmp_path / f"w{i}.jsonl" for i in range(N_WORKERS)]
    _finish([_start(spec, study_name, name, o, "--n-trials", str(N_TRIALS)) for o in outs])
    reported = _reported(outs)
    assert len(reported) == N_WORKERS * N_TRIALS
    _check_stored(study, reported)
    assert len(study.trials) == N_WORKERS * N_TRIALS


@pytest.mark.parametrize("name", _support.SAMPLER_NAMES)
@pytest.mark.parametrize("kind", ["inmemory", "journal", "sqlite"])
def test_threads_n_jobs(name: str, kind: str, tmp_path: Path) -> None:
    _support.quiet()
    source = _support.finished_study(_workers.objective, 25, seed=7)
    if kind == "inmemory":
        storage: optuna.storages.BaseStorage = optuna.storages.InMemoryStorage()
    else:
        storage = _workers.open_storage(_spec(kind, tmp_path, None))
    study = optuna.create_study(storage=storage, sampler=_support.SAMPLERS[name](source))
    reported: dict[int, float] = {}

    def record(_: optuna.Study, t: optuna.trial.FrozenTrial) -> None:
        if t.state == TrialState.COMPLETE:
            assert t.value is not None  # a complete single-objective trial has a value
            reported[t.number] = t.value  # dict assignment is atomic under the GIL

    study.optimize(_workers.objective, n_trials=20, n_jobs=4, callbacks=[record], catch=())
    assert len(reported) == 20
    _check_stored(study, reported)


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"victim exited early:\n{proc.communicate()[0][-3000:]}")
        if time.monotonic() > end:
            proc.kill()
            pytest.fail("victim never reached its objective")
        time.sleep(0.05)  # bounded poll for the marker, not a stand-in for synchronisation


@pytest.mark.parametrize("name", _support.SAMPLER_NAMES)
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
def test_killed_worker_is_reaped_and_others_finish(
    name: str, kind: str, tmp_path: Path, pg: _pg.Server | None
) -> None:
    spec = _spec(kind, tmp_path, pg)
    study_name = f"crash-{name}-{tmp_path.name}"
    study = _setup(spec, study_name, heartbeat=True)
    marker = tmp_path / "inside-objective"
    victim = _start(spec, study_name, name, tmp_path / "victim.jsonl", "--heartbeat",
                    "--victim", str(marker))
    _wait_for(marker, victim)
    victim_number = int(marker.read_text())
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    assert study.trials[victim_number].state == TrialState.RUNNING

    outs = [tmp_path / f"w{i}.jsonl" for i in range(N_WORKERS - 1)]
    _finish(
        [
            _start(spec, study_name, name, o, "--heartbeat", "--n-trials", str(N_TRIALS),
                   "--reap-trial", str(victim_number))
            for o in outs
        ]
    )
    trials = study.trials
    assert trials[victim_number].state == TrialState.FAIL
    assert not [t.number for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    retried = [
        t
        for t in trials
        if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == victim_number
    ]
    # PostgreSQL locks the trial row, so exactly one reaper retries it. SQLite ignores
    # SELECT ... FOR UPDATE: two workers reaping at once may both retry, and two workers may
    # both pop one retry and both run it; when their tells interleave, both succeed (an
    # Optuna/SQLite limitation, not the sampler's). Every retry must still complete with the
    # killed trial's params, and a retry two workers ran must have one value.
    if kind == "postgres":
        assert len(retried) == 1
    assert 1 <= len(retried) <= N_WORKERS - 1
    for t in retried:
        assert t.state == TrialState.COMPLETE
        assert t.params == trials[victim_number].params
    shared = frozenset(t.number for t in retried) if kind == "sqlite" else frozenset()
    reported = _reported(outs, may_repeat=shared)
    # Every worker completed its trials (a retry it shared counts for each worker that ran it).
    assert len(_records(outs)) >= (N_WORKERS - 1) * N_TRIALS
    _check_stored(study, reported)


# ---------------------------------------------------------------------------------------------
# Grid samplers: the same, plus the claim guarantee. A grid has N_GRID_POINTS points and the
# workers run exactly that many trials in all, so "no point evaluated twice while unvisited
# points remain" is exact: every point once, no repeat.
# ---------------------------------------------------------------------------------------------

def _grid_ids(trials: list[optuna.trial.FrozenTrial]) -> list[int]:
    return sorted(int(t.system_attrs[GRID_ID_ATTR_KEY]) for t in trials)


def _check_grid_params(study: optuna.Study) -> None:
    # Each trial's params are its grid point's values (nothing mixed up between workers).
    sampler = WarmStartGridSampler(_support.finished_study(_workers.objective, 3), _workers.GRID)
    for t in study.get_trials(deepcopy=False):
        gid = int(t.system_attrs[GRID_ID_ATTR_KEY])
        assert t.params == dict(zip(sampler._param_names, sampler._values_of(gid)))


@pytest.mark.parametrize("name", _support.GRID_SAMPLER_NAMES)
@pytest.mark.parametrize("kind", [p.values[0] for p in _storage_kinds()])
def test_grid_processes_share_one_storage(
    name: str, kind: str, tmp_path: Path, pg: _pg.Server | None
) -> None:
    spec = _spec(kind, tmp_path, pg)
    study_name = f"gprocs-{name}-{tmp_path.name}"
    study = _setup(spec, study_name)
    n_each = _workers.N_GRID_POINTS // N_WORKERS
    outs = [tmp_path / f"w{i}.jsonl" for i in range(N_WORKERS)]
    _finish([_start(spec, study_name, name, o, "--n-trials", str(n_each)) for o in outs])
    reported = _reported(outs)
    assert len(reported) == _workers.N_GRID_POINTS
    _check_stored(study, reported)
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == _workers.N_GRID_POINTS
    assert not [t.number for t in trials if REPEAT_ATTR_KEY in t.system_attrs]
    assert _grid_ids(trials) == list(range(_workers.N_GRID_POINTS))
    _check_grid_params(study)


@pytest.mark.parametrize("name", _support.GRID_SAMPLER_NAMES)
def test_grid_same_seed_workers_cover_the_grid_before_any_repeat(
    name: str, tmp_path: Path
) -> None:
    # Users copy one script, seed included, to every worker. Four workers of 12 trials on a
    # 40-point grid: the first 40 trials (by number) must take the 40 points, each once. A
    # trial that lost a claim used to be overtaken by the other workers' newer trials until
    # every point was taken, and then repeated one: 3 of 7 runs held a repeat among the first
    # 40 trials.
    spec = _spec("journal", tmp_path, None)
    study_name = f"gseed-{name}-{tmp_path.name}"
    study = _setup(spec, study_name)
    outs = [tmp_path / f"w{i}.jsonl" for i in range(N_WORKERS)]
    _finish(
        [
            _start(spec, study_name, name, o, "--n-trials", "12", "--grid", "40", "--seed", "0")
            for o in outs
        ]
    )
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    first = trials[:40]
    assert [t.number for t in first if REPEAT_ATTR_KEY in t.system_attrs] == []
    assert _grid_ids(first) == list(range(40)), [
        (t.number, t.system_attrs.get(GRID_ID_ATTR_KEY)) for t in trials
    ]
    assert all(t.state == TrialState.COMPLETE for t in first)
    # Past the grid's end only a worker's last trial repeats a point (the study then stops).
    assert len(trials) - 40 <= N_WORKERS - 1
    _check_stored(study, _reported(outs))


@pytest.mark.parametrize("name", _support.GRID_SAMPLER_NAMES)
@pytest.mark.parametrize("kind", ["inmemory", "journal", "sqlite"])
def test_grid_threads_n_jobs(name: str, kind: str, tmp_path: Path) -> None:
    _support.quiet()
    source = _support.finished_study(_workers.objective, 25, seed=7)
    if kind == "inmemory":
        storage: optuna.storages.BaseStorage = optuna.storages.InMemoryStorage()
    else:
        storage = _workers.open_storage(_spec(kind, tmp_path, None))
    sampler = _support.GRID_SAMPLERS[name](source, _workers.GRID)
    study = optuna.create_study(storage=storage, sampler=sampler)
    reported: dict[int, float] = {}

    def record(_: optuna.Study, t: optuna.trial.FrozenTrial) -> None:
        if t.state == TrialState.COMPLETE:
            assert t.value is not None  # a complete single-objective trial has a value
            reported[t.number] = t.value  # dict assignment is atomic under the GIL

    study.optimize(
        _workers.objective, n_trials=_workers.N_GRID_POINTS, n_jobs=4, callbacks=[record],
        catch=(),
    )
    assert len(reported) == _workers.N_GRID_POINTS
    _check_stored(study, reported)
    trials = study.get_trials(deepcopy=False)
    assert not [t.number for t in trials if REPEAT_ATTR_KEY in t.system_attrs]
    assert _grid_ids(trials) == list(range(_workers.N_GRID_POINTS))
    assert cast(WarmStartGridSampler, sampler).is_exhausted(study)


@pytest.mark.parametrize("name", _support.GRID_SAMPLER_NAMES)
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
def test_grid_killed_worker_point_is_retried_and_grid_completes(
    name: str, kind: str, tmp_path: Path, pg: _pg.Server | None
) -> None:
    spec = _spec(kind, tmp_path, pg)
    study_name = f"gcrash-{name}-{tmp_path.name}"
    study = _setup(spec, study_name, heartbeat=True)
    marker = tmp_path / "inside-objective"
    victim = _start(spec, study_name, name, tmp_path / "victim.jsonl", "--heartbeat",
                    "--victim", str(marker))
    _wait_for(marker, victim)
    victim_number = int(marker.read_text())
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    killed = study.trials[victim_number]
    assert killed.state == TrialState.RUNNING
    killed_point = int(killed.system_attrs[GRID_ID_ATTR_KEY])

    # The others run until the sampler stops the study (every point claimed, the killed one
    # by the dead trial), then reap the killed trial and run its retry.
    outs = [tmp_path / f"w{i}.jsonl" for i in range(N_WORKERS - 1)]
    _finish(
        [
            _start(spec, study_name, name, o, "--heartbeat", "--n-trials", "0",
                   "--reap-trial", str(victim_number))
            for o in outs
        ]
    )
    trials = study.trials
    assert trials[victim_number].state == TrialState.FAIL
    assert not [t.number for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    retried = [
        t
        for t in trials
        if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == victim_number
    ]
    # As in the TransferTPESampler test: exactly one retry on PostgreSQL, possibly one per
    # reaping worker on SQLite (which ignores SELECT ... FOR UPDATE).
    if kind == "postgres":
        assert len(retried) == 1
    assert 1 <= len(retried) <= N_WORKERS - 1
    for t in retried:
        assert t.state == TrialState.COMPLETE
        assert t.params == killed.params
        assert int(t.system_attrs[GRID_ID_ATTR_KEY]) == killed_point
    # First claims (neither retries nor repeats after exhaustion) cover the grid exactly once:
    # no point was taken twice while another was unclaimed; the killed trial holds its point.
    # (Any heartbeat retry is set aside, not only the victim's: a live worker held up past
    # the grace period is reaped and retried by Optuna's design, on its own point.)
    retried_numbers = {
        t.number for t in trials
        if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) is not None
    }
    first = [
        t for t in trials
        if t.number not in retried_numbers and REPEAT_ATTR_KEY not in t.system_attrs
    ]
    assert _grid_ids(first) == list(range(_workers.N_GRID_POINTS)), [
        (t.number, t.state.name, t.system_attrs.get(GRID_ID_ATTR_KEY), sorted(t.system_attrs))
        for t in trials
    ]
    repeats = [t for t in trials if REPEAT_ATTR_KEY in t.system_attrs]
    # Each reaping worker repeats a point at most twice: once when it finds every point held
    # (the sampler then stops the study), and once when it saw the killed trial's retry
    # WAITING but another worker popped it first, so its optimize(1) created a fresh trial.
    assert len(repeats) <= 2 * (N_WORKERS - 1)
    # The grid ends complete: every point, the killed one included, has a COMPLETE trial.
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert set(_grid_ids(complete)) == set(range(_workers.N_GRID_POINTS))
    # As in the TransferTPESampler test: on SQLite two workers may both pop one retry of the
    # killed trial and both run it (an Optuna/SQLite limitation; a CI run at c7c252d hit it
    # here), then with one value.
    shared = frozenset(t.number for t in retried) if kind == "sqlite" else frozenset()
    reported = _reported(outs, may_repeat=shared)
    _check_stored(study, reported)
    assert len(reported) == len(complete)
