"""Smoke test of the cold-vs-warm benchmark CLI on a tiny configuration."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import optuna
import pytest

from benchmarks import cold_vs_warm  # noqa: E402
from benchmarks import headroom
from benchmarks import provenance
from benchmarks.suites import suite_tasks
from benchmarks.tasks import load_table  # noqa: E402
from optuna_transfer._task_model import source_gamma


def test_cli_tiny_run_writes_sane_outputs(tmp_path: Path) -> None:
    out = tmp_path / "results"
    n_trials = 6
    argv = [
        "--suites", "hpolib",
        "--methods", "random,tpe+enqueue,wscmaes",
        "--seeds", "1",
        "--n-trials", str(n_trials),
        "--source-trials", "8",
        "--workers", "1",
        "--bootstrap", "20",
        "--out", str(out),
    ]
    assert cold_vs_warm.main(argv) == 0

    suite_dir = out / "hpolib"
    curves = json.loads((suite_dir / "curves.json").read_text())
    # Where the runs were made: they are reproducible on one kind of CPU, not across kinds.
    assert curves["machine"] == provenance.machine()
    assert curves["versions"] == provenance.versions()
    runs = curves["runs"]
    # 4 HPOLib targets x 3 methods x 1 seed.
    assert len(runs) == 12
    for run in runs:
        # wscmaes included: its source trials lose HPOLib's categorical parameters, which
        # CmaEsSampler samples independently.
        assert run["error"] is None
        regret = np.asarray(run["normalised_regret"])
        pct = np.asarray(run["pct_better"])
        best = np.asarray(run["best_loss"])
        assert len(regret) == len(pct) == len(best) == n_trials
        assert np.all(regret >= 0) and np.all(np.isfinite(regret))
        assert np.all((pct >= 0) & (pct <= 100))
        for curve in (regret, pct, best):
            assert np.all(np.diff(curve) <= 0), "best-so-far curves never get worse"
        assert len(run["source_studies"]) == 3

    table = (suite_dir / "table.md").read_text()
    assert "Mean normalised regret" in table and "Mean rank" in table
    assert "wscmaes" in table and "**failed**" not in table
    assert "Machine:" in table and "optuna 5" in table and "Command:" in table
    assert "Trials to a top-1% configuration" in table

    png = suite_dir / "regret.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "studies.db").exists()


def test_trials_to_top_percent() -> None:
    from benchmarks.report import trials_to_top

    assert trials_to_top(np.array([30.0, 5.0, 0.9, 0.2]), 1.0) == 3.0
    assert trials_to_top(np.array([0.5, 0.1]), 1.0) == 1.0
    assert trials_to_top(np.array([30.0, 2.0]), 1.0) == float("inf")


def test_grid_misleading_suite_negates_the_sources() -> None:
    from benchmarks.suites import cold_baseline
    from benchmarks.suites import default_methods
    from benchmarks.suites import suite_tasks

    tasks = suite_tasks("grid-misleading")
    assert len(tasks) == 4
    assert all(s.negate for t in tasks for s in t.sources)
    assert not any(t.target.negate for t in tasks)
    assert default_methods("grid-misleading") == ["grid", "grid+enqueue", "warm-grid"]
    assert cold_baseline("grid-misleading") == "grid"


def test_mixed_suites_give_each_target_one_related_source_among_negated_ones() -> None:
    from benchmarks.suites import default_methods
    from benchmarks.suites import suite_tasks

    for name, methods in (
        ("mixed", ["random", "tpe", "tpe+enqueue", "wscmaes", "transfer-tpe"]),
        ("grid-mixed", ["grid", "grid+enqueue", "warm-grid"]),
    ):
        tasks = suite_tasks(name)
        assert [t.target.dataset for t in tasks] == [
            "naval_propulsion", "parkinsons_telemonitoring", "protein_structure",
            "slice_localization",
        ]
        related = []
        for task in tasks:
            assert not task.target.negate and len(task.sources) == 3
            assert task.target.dataset not in [s.dataset for s in task.sources]
            plain = [i for i, s in enumerate(task.sources) if not s.negate]
            assert len(plain) == 1
            related.append((plain[0], task.sources[plain[0]].dataset))
        # The next table is the related one, so it sits at varying places among the sources.
        assert related == [
            (0, "parkinsons_telemonitoring"), (1, "protein_structure"),
            (2, "slice_localization"), (0, "naval_propulsion"),
        ]
        assert default_methods(name) == methods


def test_grid_nb201_suite_searches_the_whole_nb201_table_as_a_grid() -> None:
    from benchmarks.suites import cold_baseline
    from benchmarks.suites import default_methods
    from benchmarks.suites import suite_tasks

    tasks = suite_tasks("grid-nb201")
    assert [t.target.dataset for t in tasks] == ["cifar10", "cifar100", "imagenet"]
    assert all(len(t.sources) == 2 and not t.target.negate for t in tasks)
    grid = tasks[0].target.grid()
    assert math.prod(len(v) for v in grid.values()) == 15625  # every configuration of the table
    assert default_methods("grid-nb201") == ["grid", "grid+enqueue", "warm-grid"]
    assert cold_baseline("grid-nb201") == "grid"


def test_same_sources_for_every_method(tmp_path: Path) -> None:
    argv = [
        "--methods", "random,tpe", "--seeds", "2", "--n-trials", "2", "--source-trials", "3",
        "--workers", "1", "--bootstrap", "5", "--out", str(tmp_path),
    ]
    assert cold_vs_warm.main(argv) == 0
    runs = json.loads((tmp_path / "hpolib" / "curves.json").read_text())["runs"]
    by_seed_task: dict[tuple[int, str], set[tuple[str, ...]]] = {}
    for run in runs:
        by_seed_task.setdefault((run["seed"], run["task"]), set()).add(
            tuple(run["source_studies"])
        )
    assert all(len(v) == 1 for v in by_seed_task.values())
    # A second invocation reuses the stored source studies instead of regenerating them.
    assert cold_vs_warm.main(argv) == 0


def test_table_scores_are_noise_free_means() -> None:
    table = load_table("hpolib", "protein_structure")
    assert table.n_configs == 62208
    assert table.normalised_regret(table.best_loss) == 0.0
    assert table.normalised_regret(table.median_loss) == pytest.approx(1.0)
    assert table.pct_better(table.best_loss) == 0.0
    assert 49.0 < table.pct_better(table.median_loss) <= 50.0


@pytest.mark.parametrize(
    "argv",
    [
        ["--storage", "postgresql://bob:s3cret@db/hpo"],
        ["--storage=postgresql://bob:s3cret@db/hpo"],
    ],
)
def test_command_line_redacts_storage_password(argv: list[str]) -> None:
    line = cold_vs_warm.command_line(argv)
    assert "s3cret" not in line
    assert "bob:***@db/hpo" in line


def test_synthetic_family_targets_are_regrets_and_misleading_sources_negate() -> None:
    from benchmarks import synthetic

    related, target = synthetic.make_task(3, "related")
    misleading, target_again = synthetic.make_task(3, "misleading")
    params = {f"x{i}": 0.5 for i in range(synthetic.N_DIMS)} | {"lr": 1e-3, "opt": "b"}
    trial = optuna.trial.FixedTrial(params)
    assert target(trial) == target_again(trial) >= 0.0  # the target does not depend on kind
    for s_related, s_misleading in zip(related, misleading):
        assert s_misleading(trial) == -s_related(trial) != 0.0
    unrelated, target_unrelated = synthetic.make_task(3, "unrelated")
    assert target_unrelated(trial) == target(trial)
    # Another task of the family: the sources' optima move by more than the 0.08 jitter.
    xs = np.linspace(0.0, 1.0, 41)

    def best_x0(objective: synthetic.Objective) -> float:
        losses = [objective(optuna.trial.FixedTrial(params | {"x0": float(x)})) for x in xs]
        return float(xs[int(np.argmin(losses))])

    shifts = [abs(best_x0(a) - best_x0(b)) for a, b in zip(related, unrelated)]
    assert max(shifts) > 0.1
    kind, method, curve = synthetic.run((3, "related", "transfer-tpe", 8))
    assert (kind, method, len(curve)) == ("related", "transfer-tpe", 8)
    assert all(a >= b >= 0.0 for a, b in zip(curve, curve[1:]))


def test_synthetic_grid_methods_measure_regret_against_the_best_grid_point() -> None:
    from benchmarks import synthetic

    on_grid = synthetic.nearest_grid_point(
        {"x0": 0.1, "x1": 0.13, "x2": 0.9, "x3": 0.5, "lr": 3e-4, "opt": "c"}
    )
    # Numbers snap to the nearest value; the learning rate on a log scale (5e-3 -> 1e-2).
    assert on_grid == {"x0": 0.0, "x1": 0.25, "x2": 1.0, "x3": 0.5, "lr": 1e-4, "opt": "c"}
    assert synthetic.nearest_grid_point({**on_grid, "lr": 5e-3})["lr"] == 1e-2
    _, target = synthetic.make_task(3, "related")
    optimum = synthetic.grid_optimum(target)
    assert optimum > 0.0  # the bowl's centre is off the grid
    values = [target(optuna.trial.FixedTrial(dict(zip(synthetic.GRID, p))))
              for p in [(0.5,) * synthetic.N_DIMS + (1e-3, "a"), (0.0,) * 4 + (1e-5, "c")]]
    assert all(v >= optimum for v in values)
    final = {}
    for method in synthetic.GRID_METHODS:
        kind, name, curve = synthetic.run((3, "related", method, 6))
        assert (kind, name, len(curve)) == ("related", method, 6)
        assert all(a >= b >= -1e-12 for a, b in zip(curve, curve[1:]))
        final[method] = curve[-1]
    # Warm-started from related sources, the grid sampler's first trials beat random order.
    assert final["warm-grid"] < final["grid"]


def test_headroom_one_move_neighbours_differ_in_exactly_one_value() -> None:
    table = load_table("hpolib", "protein_structure")
    sizes = [len(v) for v in table.choices.values()]
    start = [1, 0, 0, 2, 1, 3, 0, 5, 2]  # tanh, relu, bs 8, dropout .6/.3, lr .01, cos, 512, 64
    moves = headroom.one_move(table, int(np.ravel_multi_index(start, sizes)))
    digits = np.array(np.unravel_index(moves, sizes)).T
    changed = digits != np.array(start)
    assert np.all(changed.sum(axis=1) == 1)
    # Numeric columns step to the next value (an end value has one side), strings to any other.
    per_column = changed.sum(axis=0).tolist()
    assert per_column == [1, 1, 1, 1, 2, 2, 1, 1, 2]
    numeric_steps = np.abs(digits - np.array(start))[:, [2, 3, 4, 5, 7, 8]].max()
    assert numeric_steps == 1


def test_headroom_round_robin_takes_each_ranking_in_turn_without_repeats() -> None:
    rankings = [np.array([3, 1, 2, 0]), np.array([3, 0, 1, 2])]
    assert headroom.round_robin(rankings, 3) == [3, 1, 0]
    assert headroom.round_robin(rankings, 10) == [3, 1, 0, 2]


def test_headroom_columns_keep_the_order_their_definitions_imply(tmp_path: Path) -> None:
    task = suite_tasks("grid")[2]  # protein_structure from the other three
    rows = []
    for seed in (0, 1):
        sources = headroom.load_sources(task, seed, 12, storage=None)
        rows.append(headroom.task_headroom(task, sources, 8, np.random.default_rng(seed)))
    for row in rows:
        assert set(row) == set(headroom.COLUMNS)
        assert all(v >= 0.0 for v in row.values())
        # Supersets of the zero-shot points can only be as good or better.
        for column in ("replay", "one move", "moves by tables", "random moves"):
            assert row[column] <= row["zero-shot"]
        # Every single move counted by "one move" is among its candidates.
        assert row["one move"] <= min(row["moves by tables"], row["random moves"])
    # The table columns use no source study, so no seed changes them.
    for column in ("tables: optima", "tables: consensus"):
        assert rows[0][column] == rows[1][column]
    out = tmp_path / "headroom.md"
    argv = ["--suites", "grid", "--seeds", "1", "--budget", "6", "--source-trials", "8",
            "--out", str(out)]
    assert headroom.main(argv) == 0
    text = out.read_text()
    assert "Command: `python -m benchmarks.headroom --suites grid --seeds 1" in text
    assert text.count("| **mean** |") == 1 and "protein_structure" in text


def test_headroom_studies_orders_rank_every_configuration_sources_best_first() -> None:
    task = suite_tasks("grid-nb201")[0]
    sources = headroom.load_sources(task, 0, 12, storage=None)
    table = task.target.table()
    by_consensus, by_score = headroom.studies_orders(task, sources, 0)
    n = len(table.losses)
    assert sorted(by_consensus) == list(range(n)) and sorted(by_score) == list(range(n))
    # The grid's prior score puts a source's evaluated good configurations above every
    # configuration no source evaluated: its first pick is among the sources' good trials.
    good = set()
    for source in sources:
        maximize = source.direction == optuna.study.StudyDirection.MAXIMIZE
        trials = sorted(source.trials, key=lambda t: float(t.value or 0.0), reverse=maximize)
        good |= {table.index(t.params) for t in trials[: source_gamma(len(trials))]}
    assert by_score[0] in good


def test_synthetic_samplers_do_not_draw_the_task_itself() -> None:
    """The benchmark's samplers must draw independently of the task. A sampler seeded with
    the task's own seed repeats the draws that placed the target's optimum, so its first
    random trial lands next to it: a head start no user has."""
    from benchmarks import synthetic
    from benchmarks.tasks import derive_seed

    def first_loss(draw: int, sampler_seed: int) -> float:
        _, target = synthetic.make_task(draw, "misleading")
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=sampler_seed))
        study.optimize(target, n_trials=1)
        return study.best_value

    draws = range(40)
    benchmark = []
    for draw in draws:
        task = synthetic.synthetic_task(draw, "misleading")
        seed = task.target.target_seed(draw, "synthetic", "misleading", "tpe")
        benchmark.append(first_loss(draw, seed))
        # Nor may a source study replay the target's draws or another source's.
        source_seeds = {p.source_seed(draw) for p in task.sources}
        assert len(source_seeds) == len(task.sources) and seed not in source_seeds
    independent = [first_loss(d, derive_seed(d, "an unrelated stream")) for d in draws]
    # Independent draws: about equal on average (40 draws of a loss with a wide spread).
    assert 0.7 < np.mean(benchmark) / np.mean(independent) < 1.4
