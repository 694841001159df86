"""Local steps around the target's best trials (optuna_transfer._local_search) in both samplers."""

from __future__ import annotations

from collections.abc import Callable
import math

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.trial import Trial
import pytest

from optuna_transfer import TransferTPESampler
from optuna_transfer import WarmStartGridSampler
from optuna_transfer._encoding import decode
from optuna_transfer._encoding import encode
from optuna_transfer._local_search import confirmed_by_target
from optuna_transfer._local_search import consensus_move
from optuna_transfer._local_search import grid_neighbours
from optuna_transfer._local_search import incumbent_is_recent
from optuna_transfer._local_search import is_seen
from optuna_transfer._local_search import joint_columns
from optuna_transfer._local_search import JOINT_FIRST_STEP
from optuna_transfer._local_search import joint_first_step
from optuna_transfer._local_search import JOINT_GROWTH
from optuna_transfer._local_search import JOINT_HALVING_TRIALS
from optuna_transfer._local_search import joint_moves
from optuna_transfer._local_search import LOCAL_PATIENCE
from optuna_transfer._local_search import local_patience
from optuna_transfer._local_search import MIN_CONSENSUS_SOURCES
from optuna_transfer._local_search import neighbours
from optuna_transfer._local_search import resolves_short_moves
from optuna_transfer._local_search import tied_fraction
from optuna_transfer._sources import load_sources
from optuna_transfer._task_model import SourceEnsemble
from optuna_transfer._task_model import SourceModel
from optuna_transfer._tpe._search import choose
from optuna_transfer._tpe._search import uniform_unseen


optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = {
    "act": CategoricalDistribution(["relu", "tanh", "gelu"]),
    "lin": FloatDistribution(0.0, 1.0),
    "drop": FloatDistribution(0.0, 0.6, step=0.3),
    "units": IntDistribution(16, 512, log=True),
    "absent": FloatDistribution(0.0, 1.0),
}


def _decoded(rows: np.ndarray) -> list[dict[str, object]]:
    return [{n: decode(d, float(u)) for (n, d), u in zip(SPACE.items(), r)} for r in rows]


def _moves(u: np.ndarray, evaluated: np.ndarray) -> dict[str, set[object]]:
    rows = neighbours(u, SPACE, evaluated)
    moved: dict[str, set[object]] = {n: set() for n in SPACE}
    for row, params in zip(rows, _decoded(rows)):
        same = (row == u) | (np.isnan(row) & np.isnan(u))
        changed = [n for n, s in zip(SPACE, same) if not s]
        assert len(changed) == 1, changed
        moved[changed[0]].add(params[changed[0]])
    return moved


def _row(config: dict[str, object]) -> np.ndarray:
    return np.array([encode(SPACE[n], config[n]) if n in config else np.nan for n in SPACE])


def test_neighbours_move_exactly_one_parameter_by_its_kind() -> None:
    config = {"act": "relu", "lin": 0.5, "drop": 0.3, "units": 64}
    u = _row(config)
    moved = _moves(u, u[None, :])
    assert moved["act"] == {"tanh", "gelu"}  # every other choice
    assert moved["lin"] == {0.25, 0.75}  # a quarter of the range, both ways
    assert moved["drop"] == {0.0, 0.6}  # a short move would decode to 0.3: one grid step
    # units is log-scaled over 16..512 (a factor 32): a quarter of that range is a factor 2.38.
    down, up = sorted(moved["units"])  # type: ignore[type-var]
    assert abs(down - 64 / 32**0.25) <= 1 and abs(up - 64 * 32**0.25) <= 1
    assert moved["absent"] == set()  # the trial did not have it: left alone (NaN)


def test_neighbours_halve_a_parameters_step_once_both_moves_are_evaluated() -> None:
    config = {"act": "relu", "lin": 0.5, "drop": 0.3, "units": 64}
    u = _row(config)
    evaluated = [u] + [_row({**config, "lin": v}) for v in (0.25, 0.75)]
    moved = _moves(u, np.array(evaluated))
    assert moved["lin"] == {0.375, 0.625}
    assert moved["units"] == _moves(u, u[None, :])["units"]  # the others keep their step
    # One evaluated side is not enough to halve: only the other side is left at that step.
    moved = _moves(u, np.array([u, _row({**config, "lin": 0.25})]))
    assert moved["lin"] == {0.75}
    # Discrete steps cannot shrink below one grid step: once both are evaluated, no move.
    evaluated = [u] + [_row({**config, "drop": v}) for v in (0.0, 0.6)]
    assert _moves(u, np.array(evaluated))["drop"] == set()
    # An evaluated categorical choice is not proposed again.
    moved = _moves(u, np.array([u, _row({**config, "act": "tanh"})]))
    assert moved["act"] == {"gelu"}


def test_neighbours_leave_fixed_columns_alone() -> None:
    config = {"act": "relu", "lin": 0.5, "drop": 0.3, "units": 64}
    u = _row(config)
    rows = neighbours(u, SPACE, u[None, :], fixed=[1, 3])  # lin and units
    assert len(rows) == len(neighbours(u, SPACE, u[None, :])) - 4
    assert np.all(rows[:, [1, 3]] == u[[1, 3]])


def test_joint_columns_are_the_unstepped_floats_when_there_are_several() -> None:
    # lin and absent: unstepped floats; drop is stepped, units an int, act categorical.
    assert joint_columns(SPACE) == [1, 4]
    # One continuous parameter alone keeps the compass: a random direction is down or up.
    assert joint_columns({k: SPACE[k] for k in ("act", "lin", "drop", "units")}) == []
    log_float = FloatDistribution(1e-5, 1e-1, log=True)
    assert joint_columns({"lr": log_float, "lin": SPACE["lin"]}) == [0, 1]


def test_joint_moves_move_every_continuous_column_and_halve_their_length() -> None:
    n = 60
    u = np.full(n + 1, 0.5)
    u[-1] = 0.25  # a column that is not continuous: it stays
    cols = list(range(n))
    rng = np.random.RandomState(0)
    rows = joint_moves(u, cols, 0, rng)
    assert rows.shape == (2 * n, n + 1)
    assert np.all(rows[:, -1] == 0.25)
    assert np.all(rows[:, :n] != 0.5)  # every continuous column moves at once
    assert np.all((rows >= 0.0) & (rows <= 1.0))

    def mean_length(n_failed: int) -> float:
        moved = joint_moves(u, cols, n_failed, rng)
        return float(np.mean(np.linalg.norm(moved[:, :n] - 0.5, axis=1)))

    # Far enough from the bounds not to clip: the mean length is the documented one, and it
    # halves with every JOINT_HALVING_TRIALS trials since the incumbent.
    short = mean_length(3 * JOINT_HALVING_TRIALS)
    assert abs(short - JOINT_FIRST_STEP / 8) < 0.05 * JOINT_FIRST_STEP / 8
    shorter = mean_length(4 * JOINT_HALVING_TRIALS)
    assert abs(short / shorter - 2.0) < 0.1
    # A column the incumbent lacks (NaN) stays NaN.
    u[0] = np.nan
    assert np.all(np.isnan(joint_moves(u, cols, 0, rng)[:, 0]))


def test_incumbent_is_recent_counts_finished_trials_since_the_best() -> None:
    losses = np.array([5.0, 1.0] + [2.0] * (LOCAL_PATIENCE - 1) + [np.inf])
    numbers = np.arange(len(losses))
    assert incumbent_is_recent(losses, numbers)  # running (inf) trials do not count
    stale = np.append(losses[:-1], 3.0)
    assert not incumbent_is_recent(stale, np.arange(len(stale)))
    assert not incumbent_is_recent(np.array([np.inf]), np.array([0]))


def test_ties_between_configurations_tell_a_table_from_a_smooth_objective() -> None:
    def study(configs: str, values: list[float]) -> tuple[np.ndarray, Callable[[int], str]]:
        return np.array(values)[:, None], lambda i: configs[i]

    # The same configuration twice is no tie; two configurations with one value are.
    assert tied_fraction(*study("abca", [1.0, 2.0, 3.0, 1.0])) == 0.0
    assert tied_fraction(*study("abcd", [1.0, 1.0, 3.0, 4.0])) == 0.5
    assert tied_fraction(*study("aabc", [1.0, 1.0, 1.0, 4.0])) == 0.75
    assert resolves_short_moves([study("abc", [1.0, 2.0, 3.0])])
    assert not resolves_short_moves([study("abcd", [1.0, 1.0, 1.0, 2.0])])
    # Ties count within a study: two studies may share a value.
    assert resolves_short_moves([study("a", [1.0]), study("b", [1.0])])
    # Pooled over studies: one smooth study of 30 trials outweighs 2 tied ones.
    smooth = study("abcdefghijklmnopqrstuvwxyz0123", [float(i) for i in range(30)])
    assert resolves_short_moves([smooth, study("ab", [0.5, 0.5])])
    assert not resolves_short_moves([])


def test_the_sampler_judges_the_objective_on_its_sources() -> None:
    smooth = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    smooth.optimize(_rotated, n_trials=30)
    # The same objective read off a coarse table: nearby configurations share a value.
    table = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    table.optimize(lambda t: round(_rotated(t) / 100.0), n_trials=30)
    assert TransferTPESampler(smooth)._fine
    assert not TransferTPESampler(table)._fine


def test_joint_moves_start_at_twice_the_move_that_made_the_incumbent_or_as_long_as_then(
) -> None:
    cols = [0, 1]
    # Trial 0 leads; trials 1-6 fail to beat it, so the moves' length halves three times.
    x = np.full((10, 2), 0.5)
    x[1:7] = 0.9
    losses = np.array([2.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 1.0, 5.0, 0.5])
    numbers = np.arange(10)
    made = JOINT_FIRST_STEP * 2.0 ** (-6 / JOINT_HALVING_TRIALS)
    # Trial 7 beats it by a move of 0.01, shorter than half the moves' length then: the moves
    # keep that length (the vote may have picked the shortest of several moves).
    x[7] = [0.5, 0.51]
    assert joint_first_step(x, losses, numbers, 7, cols) == pytest.approx(made)
    # Trial 9 beats trial 7 by a move of 0.2, longer than the moves' length then.
    x[9] = [0.7, 0.51]
    assert joint_first_step(x, losses, numbers, 9, cols) == pytest.approx(JOINT_GROWTH * 0.2)
    # The first trial has no move behind it, and a far move is capped.
    assert joint_first_step(x, losses, numbers, 0, cols) == JOINT_FIRST_STEP
    x[9] = [0.0, 0.0]
    assert joint_first_step(x, losses, numbers, 9, cols) == JOINT_FIRST_STEP
    # Running trials (inf) are neither the best before it nor failures.
    losses[1:7] = np.inf
    assert joint_first_step(x, losses, numbers, 7, cols) == JOINT_FIRST_STEP


def test_a_search_whose_optimum_moved_far_from_the_sources_does_not_stall() -> None:
    # The sources' best learning rate is two decades below the target's. On 0934978 the
    # joint moves, started from the distance of the move the vote picked (the shortest that
    # improved), shrank with every success: best 1.7 and 3.8 after 40 trials where cold TPE
    # reaches 0.001.
    def loss(trial: optuna.Trial, shift: float) -> float:
        lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
        dropout = trial.suggest_float("dropout", 0.0, 0.5)
        opt = trial.suggest_categorical("opt", ["sgd", "adam", "adamw"])
        return (
            (math.log10(lr) + 3 - shift) ** 2
            + 4 * (dropout - 0.2 - shift / 10) ** 2
            + {"sgd": 1.0, "adam": 0.3, "adamw": 0.0}[opt]
        )

    sources = []
    for i in range(2):
        source = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=i))
        source.optimize(lambda t: loss(t, 0.0), n_trials=60)
        sources.append(source)
    for seed in (1, 3):
        study = optuna.create_study(sampler=TransferTPESampler(sources, seed=seed))
        study.optimize(lambda t: loss(t, 2.0), n_trials=40)
        assert study.best_value < 0.1, seed


def test_local_steps_are_more_patient_where_the_objective_resolves_short_moves() -> None:
    space: dict[str, BaseDistribution] = {f"x{i}": FloatDistribution(-10, 10) for i in range(4)}
    assert local_patience(space, fine=True) == LOCAL_PATIENCE + 4
    assert local_patience(space, fine=False) == LOCAL_PATIENCE
    # One continuous parameter keeps the compass and its patience.
    one: dict[str, BaseDistribution] = {"x0": space["x0"]}
    one["c"] = CategoricalDistribution(["a", "b"])
    assert local_patience(one, fine=True) == LOCAL_PATIENCE
    source = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    source.optimize(_rotated, n_trials=30)
    ensemble = SourceEnsemble(load_sources(source, 100), space)
    # The incumbent (trial 0) has not improved for LOCAL_PATIENCE + 1 finished trials.
    rng = np.random.RandomState(0)
    x = rng.uniform(size=(LOCAL_PATIENCE + 2, 4))
    losses = np.arange(LOCAL_PATIENCE + 2, dtype=float)
    numbers = np.arange(len(x))
    starts = {
        fine: choose(x, losses, numbers, space, ensemble, [1.0], 24, True, 0, rng, fine)[1]
        for fine in (True, False)
    }
    assert starts == {True: 0, False: None}


def test_grid_neighbours_follow_value_order_not_list_order() -> None:
    # Column 0 numeric, listed unsorted: 0.1, 0.001, 0.01. Column 1 unordered (3 strings).
    sizes = [3, 3]
    orders = [np.argsort([0.1, 0.001, 0.01]), None]
    ids = set(grid_neighbours([2, 0], sizes, orders).tolist())  # 0.01 with the first string
    assert ids == {
        int(np.ravel_multi_index((0, 0), sizes)),  # 0.1
        int(np.ravel_multi_index((1, 0), sizes)),  # 0.001
        int(np.ravel_multi_index((2, 1), sizes)),
        int(np.ravel_multi_index((2, 2), sizes)),
    }
    ids = set(grid_neighbours([1, 0], sizes, orders).tolist())  # 0.001: only 0.01 above it
    assert int(np.ravel_multi_index((2, 0), sizes)) in ids
    assert int(np.ravel_multi_index((0, 0), sizes)) not in ids


def _objective(trial: Trial) -> float:
    x = trial.suggest_float("x", -10, 10)
    y = trial.suggest_float("y", -10, 10)
    return (x - 2) ** 2 + 3 * (y + 1) ** 2


def _one_continuous(trial: Trial) -> float:
    x = trial.suggest_float("x", -10, 10)
    y = trial.suggest_int("y", -10, 10)
    return (x - 2) ** 2 + 3 * (y + 1) ** 2


def _rotated(trial: Trial) -> float:
    x = np.array([trial.suggest_float(f"x{i}", -10, 10) for i in range(4)])
    z = x - np.array([2.0, -1.0, 3.0, 0.5])
    # A narrow valley along the diagonal of x0 and x1, not along any axis.
    return float(0.5 * (z[0] + z[1]) ** 2 + 20.0 * (z[0] - z[1]) ** 2 + z[2] ** 2 + z[3] ** 2)


def _moved_params(study: optuna.Study, start: int) -> list[int]:
    """For each trial from ``start`` on, how many parameters differ from the best trial before
    it."""
    counts = []
    for t in study.trials[start:]:
        before = [p for p in study.trials[: t.number] if p.value is not None]
        best = min(before, key=lambda p: float(p.value)).params  # type: ignore[arg-type]
        counts.append(sum(t.params[k] != best[k] for k in best))
    return counts


def test_transfer_tpe_takes_local_steps_from_its_incumbent() -> None:
    source = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    source.optimize(_one_continuous, n_trials=40)
    one_param_moves = {}
    for name, sampler in [
        ("transfer", TransferTPESampler(source, seed=0)),
        ("cold", optuna.samplers.TPESampler(seed=0)),
    ]:
        study = optuna.create_study(sampler=sampler)
        study.optimize(_one_continuous, n_trials=20)
        # After the 2-config portfolio and the probe.
        one_param_moves[name] = _moved_params(study, 3).count(1)
    # Cold TPE keeps the continuous x only by chance; local steps move one parameter at a
    # time, at least until the incumbent has not improved for LOCAL_PATIENCE trials.
    assert one_param_moves["cold"] <= 1
    assert one_param_moves["transfer"] >= 5, one_param_moves


def test_transfer_tpe_moves_several_continuous_parameters_together() -> None:
    source = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    source.optimize(_rotated, n_trials=40)
    study = optuna.create_study(sampler=TransferTPESampler(source, seed=0, record_user_attrs=True))
    study.optimize(_rotated, n_trials=20)
    local = [
        t.number for t in study.trials[3:] if t.user_attrs.get("transfer:role") == "transfer"
    ]
    moved = dict(zip(range(3, 20), _moved_params(study, 3)))
    # No compass step along one axis: every local step moves all four coordinates at once.
    assert 1 not in moved.values()
    assert sum(moved[n] == 4 for n in local) >= 8, moved
    values = [float(t.value) for t in study.trials]  # type: ignore[arg-type]
    assert min(values) < min(values[:3])


def test_warm_grid_visits_the_neighbours_of_its_best_points_first() -> None:
    grid = [float(v) for v in np.linspace(-10, 10, 21)]
    source = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    source.optimize(_objective, n_trials=40)
    study = optuna.create_study(sampler=WarmStartGridSampler(source, {"x": grid, "y": grid}))
    study.optimize(_objective, n_trials=14)
    local = 0
    for t in study.trials[2:]:
        top = sorted(
            study.trials[: t.number], key=lambda p: float("inf") if p.value is None else p.value
        )[:3]
        local += any(
            sorted(abs(grid.index(t.params[k]) - grid.index(p.params[k])) for k in "xy") == [0, 1]
            for p in top
        )
    assert local >= 8, local
    assert study.best_value <= 1.0


def test_source_ranking_over_a_grid_matches_pointwise_prediction() -> None:
    source = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    source.optimize(
        lambda t: t.suggest_float("a", 0, 1) + len(t.suggest_categorical("c", ["x", "yy"])),
        n_trials=30,
    )
    space = {"a": FloatDistribution(0, 1), "c": CategoricalDistribution(["x", "yy"])}
    model = SourceModel(load_sources(source, 100)[0], space)
    columns = [np.linspace(0, 1, 7), np.array([0.0, 1.0])]
    points = np.array(np.meshgrid(*columns, indexing="ij")).reshape(2, -1).T
    np.testing.assert_allclose(
        model.predicted_quantile_grid(columns), model.predicted_quantile(points), atol=1e-12
    )


def test_consensus_move_sets_the_continuous_parameters_to_the_sources_weighted_mean() -> None:
    u = np.array([0.1, 0.2, 0.3, 1.0])  # the last column is a categorical's choice index
    cols = [0, 1, 2]
    bests: list[np.ndarray | None] = [
        np.array([0.4, 0.4, 0.4, 0.0]),
        np.array([0.7, 0.1, np.nan, 2.0]),  # lacks column 2: does not count
        np.array([0.6, 0.8, 0.2, 1.0]),
        None,  # a source without a best configuration in this space
    ]
    row = consensus_move(u, bests, [1.0, 5.0, 3.0, 2.0], cols)
    assert row is not None
    expected = (1.0 * np.array([0.4, 0.4, 0.4]) + 3.0 * np.array([0.6, 0.8, 0.2])) / 4.0
    np.testing.assert_allclose(row[cols], expected)
    # The other parameters stay as the start has them; the start itself is not changed.
    assert row[3] == 1.0
    np.testing.assert_array_equal(u, [0.1, 0.2, 0.3, 1.0])
    # A source without a vote does not count, and one source alone makes no consensus.
    assert MIN_CONSENSUS_SOURCES == 2
    assert consensus_move(u, bests, [0.0, 5.0, 3.0, 2.0], cols) is None
    assert consensus_move(u, bests, [1.0, 5.0, 3.0, 2.0], []) is None


def _bowl(centre: np.ndarray) -> Callable[[Trial], float]:
    def objective(trial: Trial) -> float:
        x = np.array([trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(len(centre))])
        return float(np.sum((x - centre) ** 2))

    return objective


def test_a_source_counts_towards_the_consensus_once_the_target_found_its_best_good() -> None:
    x = np.array([[0.1, 0.1], [0.9, 0.9], [0.5, 0.5], [0.3, 0.3]])
    losses = np.array([1.0, 9.0, 2.0, np.inf])  # the last trial is still running
    rows: list[np.ndarray | None] = [
        np.array([0.1, 0.1]),  # evaluated, the best: confirmed
        np.array([0.9, 0.9]),  # evaluated, above the median (2.0): not
        np.array([0.2, 0.2]),  # never evaluated: not
        np.array([0.3, 0.3]),  # running, no loss yet: not
        None,
    ]
    assert confirmed_by_target(rows, x, losses) == [True, False, False, False, False]
    assert confirmed_by_target(rows, x, np.full(4, np.inf)) == [False] * 5


def test_transfer_tpe_tries_the_mean_of_its_sources_best_configurations() -> None:
    # Three related sources whose optima lie 0.15 from the target's, in directions that cancel:
    # each source's best configuration (its optimum, enqueued) is a zero-shot pick, and their
    # mean is the target's optimum.
    centre = np.array([0.5, 0.4, 0.6, 0.5])
    angles = 2.0 * np.pi * np.arange(3) / 3.0
    shifts = 0.15 * np.stack([np.cos(angles), np.sin(angles), 0 * angles, 0 * angles], axis=1)
    sources = []
    for k, shift in enumerate(shifts):
        study = optuna.create_study(
            study_name=f"source{k}", sampler=optuna.samplers.RandomSampler(seed=k)
        )
        study.enqueue_trial({f"x{i}": float(v) for i, v in enumerate(centre + shift)})
        study.optimize(_bowl(centre + shift), n_trials=40)
        sources.append(study)
    sampler = TransferTPESampler(sources, seed=0)
    assert sampler._fine  # no ties between the sources' trials: a smooth objective
    study = optuna.create_study(sampler=sampler)
    study.optimize(_bowl(centre), n_trials=8)
    weights = sampler.get_source_weights(study)
    bests = np.array([centre + shift for shift in shifts])
    consensus = []
    for t in study.trials[4:]:  # after the three picks and the probe
        w = np.array([weights[t.number][label] for label in sampler.source_names])
        if w.sum() > 0:
            consensus.append((w[:, None] * bests).sum(axis=0) / w.sum())
    x = np.array([[t.params[f"x{i}"] for i in range(4)] for t in study.trials])
    # One of the local steps is that weighted mean of the sources' best configurations, and
    # it is closer to the target's optimum than every pick.
    hits = [
        n for n in range(4, len(x))
        if any(np.allclose(x[n], c, atol=1e-9) for c in consensus)
    ]
    assert hits, x
    pick_distance = np.linalg.norm(x[:3] - centre, axis=1).min()
    assert np.linalg.norm(x[hits[0]] - centre) < pick_distance


def test_uniform_unseen_finds_the_one_configuration_left() -> None:
    # 400 configurations, all but one tried: 100 uniform draws miss it 78% of the time.
    space = {
        "n": IntDistribution(0, 99),
        "opt": CategoricalDistribution(["sgd", "adam", "rmsprop", None]),
    }
    rows = np.array([[encode(space["n"], n), float(c)] for n in range(100) for c in range(4)])
    left = 137
    seen = np.delete(rows, left, axis=0)
    for seed in range(10):
        u = uniform_unseen(np.random.RandomState(seed), space, seen)
        np.testing.assert_allclose(u, rows[left])
    # Nothing left: a tried configuration, as before; an empty space has only the empty one.
    assert is_seen(uniform_unseen(np.random.RandomState(0), space, rows)[None, :], rows)[0]
    assert uniform_unseen(np.random.RandomState(0), {}, np.empty((1, 0))).shape == (0,)
