"""Workers that share one script and seed, in a study's first wave (no trial finished yet).

Found with ``benchmarks/workers.py`` through Optuna's gRPC storage proxy: TransferTPE repeated
configurations of the first 16 trials. Until a trial finishes, the relative search space is
empty, so each parameter is sampled on its own (``sample_independent``), and only a joint
sample is claimed (written, re-read, drawn again on a collision). Workers built with the same
seed hold the same random state, so two that sample a parameter at the same moment, before
either has stored its value, draw the same one. Every storage has this window; the proxy,
slower per call, lets most of the first wave sample in it.
"""

from __future__ import annotations

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import Trial

from optuna_transfer import TransferTPESampler


optuna.logging.set_verbosity(optuna.logging.WARNING)


def _objective(trial: Trial) -> float:
    return (trial.suggest_float("x", 0, 1) - 0.3) ** 2 + trial.suggest_float("y", 0, 1)


def test_same_seed_workers_sampling_one_parameter_at_once_draw_different_values() -> None:
    storage = optuna.storages.InMemoryStorage()
    source = optuna.create_study(storage=storage, study_name="source")
    source.optimize(_objective, n_trials=20)
    optuna.create_study(storage=storage, study_name="target")
    # One script on two workers: the same sampler, the same seed.
    workers = [
        optuna.load_study(
            study_name="target",
            storage=storage,
            sampler=TransferTPESampler(source, seed=0, n_zero_shot=0),
        )
        for _ in range(2)
    ]
    workers[0].ask()  # the probe, still running
    a, b = workers[0].ask(), workers[1].ask()
    trials = {t.number: t for t in workers[0].get_trials(deepcopy=False)}
    # Nothing has finished: no relative search space, each parameter on its own.
    assert workers[0].sampler.infer_relative_search_space(workers[0], trials[a.number]) == {}
    dist = FloatDistribution(0, 1)
    # Both sample "x" before either stores its value (the race of two processes).
    x_a = workers[0].sampler.sample_independent(workers[0], trials[a.number], "x", dist)
    x_b = workers[1].sampler.sample_independent(workers[1], trials[b.number], "x", dist)
    assert x_a != x_b
