"""Worker process for the concurrency, crash and PostgreSQL tests.

Run as ``python tests/_workers.py --storage SPEC ...``. ``SPEC`` is ``journal:PATH`` or an RDB
URL. Each worker writes one JSON line per trial it completed to ``--out`` (number, value) so
the parent can check that no finished trial was lost. ``--victim MARKER`` makes the worker
write ``MARKER`` from inside its first objective call and then block forever (to be killed).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
import json
import math
from pathlib import Path
import sys
import threading
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend
from optuna.trial import BaseTrial
from optuna.trial import Trial
from optuna.trial import TrialState


sys.path.insert(0, str(Path(__file__).parent))
import _support  # noqa: E402


SOURCE_STUDY = "source"
# The grid of the grid-sampler workers: 5 x 2 x 2 = 20 points over ``objective``'s parameters.
GRID: dict[str, list[Any]] = {"x": [-4.0, -1.0, 1.0, 2.0, 4.0], "k": [1, 4], "c": ["a", "b"]}
N_GRID_POINTS = 20
# A 40-point grid over the same parameters, for runs of more trials than points.
GRID_40: dict[str, list[Any]] = {
    "x": [-4.5, -3.5, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 4.5], "k": [1, 4], "c": ["a", "b"]
}
GRIDS = {"20": GRID, "40": GRID_40}


def objective(trial: BaseTrial) -> float:
    x = trial.suggest_float("x", -5, 5)
    k = trial.suggest_int("k", 1, 8)
    c = trial.suggest_categorical("c", ["a", "b"])
    return (x - 1) ** 2 + math.log(k) + (c == "b")


def open_storage(spec: str, heartbeat: bool = False) -> optuna.storages.BaseStorage:
    if spec.startswith("journal:"):
        backend = JournalFileBackend(spec[len("journal:") :])
        return optuna.storages.JournalStorage(backend)
    kwargs: dict[str, Any] = {}
    if spec.startswith("sqlite"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    if heartbeat:
        kwargs.update(
            heartbeat_interval=1,
            # Generous: with four processes writing to one SQLite file, a live worker's
            # heartbeat can be held up behind the write lock; a shorter grace would reap it.
            grace_period=5,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
        )
    return optuna.storages.RDBStorage(spec, **kwargs)


def make_source(spec: str) -> None:
    """Write the finished source study into the storage ``spec``."""
    _support.finished_study(objective, 25, seed=7, storage=open_storage(spec),
                            study_name=SOURCE_STUDY)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--storage", required=True)
    p.add_argument("--study", required=True)
    p.add_argument("--sampler", required=True)
    p.add_argument("--n-trials", type=int, default=5, help="0: until the sampler stops")
    p.add_argument("--out", required=True)
    p.add_argument("--heartbeat", action="store_true")
    p.add_argument("--victim")
    p.add_argument("--reap-trial", type=int, help="keep working until this trial is FAIL")
    p.add_argument("--deadline", type=float, default=60.0)
    p.add_argument("--grid", choices=sorted(GRIDS), default="20", help="grid samplers' grid")
    p.add_argument("--seed", type=int, help="sampler seed (the same in every worker)")
    args = p.parse_args(argv)
    _support.quiet()
    storage = open_storage(args.storage, args.heartbeat)
    grid = args.sampler in _support.GRID_SAMPLERS
    if grid:
        sampler = _support.grid_from_storage(
            args.sampler, storage, [SOURCE_STUDY], GRIDS[args.grid], seed=args.seed
        )
    else:
        sampler = _support.FROM_STORAGE[args.sampler](storage, [SOURCE_STUDY], seed=args.seed)
    n_trials = args.n_trials or None
    study = optuna.load_study(study_name=args.study, storage=storage, sampler=sampler)
    out = open(args.out, "a")
    completed = 0

    def record(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        nonlocal completed
        if trial.state == TrialState.COMPLETE:
            out.write(json.dumps({"number": trial.number, "value": trial.value}) + "\n")
            out.flush()
            completed += 1

    def optimize(n_trials: int | None) -> None:
        """``study.optimize(objective, n_trials)``, riding out one known Optuna/SQLite race.

        On SQLite, Optuna's ``SELECT ... FOR UPDATE`` is a no-op, so two processes can both
        pop the same WAITING trial (a heartbeat retry): both run it, the first ``tell`` wins
        and the second raises ``ValueError: Cannot tell a COMPLETE trial`` (or, when the two
        tells overlap, ``UpdateFinishedTrialError``). That is not the sampler's doing; on
        SQLite the worker counts it as no trial done and goes on. On any other storage the
        error propagates and fails the test.
        """
        while True:
            before = completed
            try:
                study.optimize(objective, n_trials=n_trials, callbacks=[record])
                return
            except (ValueError, UpdateFinishedTrialError) as e:
                double_pop = isinstance(e, UpdateFinishedTrialError) or (
                    "Cannot tell a COMPLETE trial" in str(e)
                )
                if not (args.storage.startswith("sqlite") and double_pop):
                    raise
            if n_trials is not None:
                n_trials -= completed - before
                if n_trials <= 0:
                    return

    if args.victim:
        def victim(trial: Trial) -> float:
            objective(trial)
            Path(args.victim).write_text(str(trial.number))
            threading.Event().wait()  # blocks until SIGKILL
            raise AssertionError("unreachable")

        study.optimize(victim, n_trials=1)
        return 1
    optimize(n_trials)
    if args.reap_trial is not None and grid:
        _reap_grid(study, args.reap_trial, args.deadline, optimize)
    elif args.reap_trial is not None:
        # Stale-trial detection is time based (grace_period); keep doing real trials, which
        # reap stale ones, until the killed trial is FAIL. Bounded by --deadline.
        import time

        end = time.monotonic() + args.deadline
        while time.monotonic() < end:
            if study.trials[args.reap_trial].state == TrialState.FAIL and not any(
                t.state == TrialState.WAITING for t in study.trials
            ):
                break
            optimize(1)
    out.close()
    return 0


def _reap_grid(
    study: optuna.Study, number: int, deadline: float, optimize: Callable[[int], None]
) -> None:
    """After the grid is exhausted (the killed trial's point still claimed by it), wait until
    the killed trial is stale, fail it (the retry callback re-queues its point) and run the
    retries. Further trials would only repeat points, so nothing else runs meanwhile.

    Staleness is time based (``grace_period`` after the last heartbeat): this polls the storage
    for that state, bounded by ``deadline``; it does not stand in for synchronisation.
    """
    import time

    end = time.monotonic() + deadline
    while time.monotonic() < end:
        states = [t.state for t in study.get_trials(deepcopy=False)]
        if TrialState.WAITING in states:
            optimize(1)
        elif states[number] == TrialState.FAIL:
            return
        else:
            optuna.storages.fail_stale_trials(study)
            time.sleep(0.1)  # bounded poll of the heartbeat clock
    raise TimeoutError(f"trial {number} was not reaped within {deadline} s")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
