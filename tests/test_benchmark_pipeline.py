"""The benchmark pipeline's shared pieces: the suite registry and what travels in a job."""

from __future__ import annotations

import os
import pickle

import pytest

from benchmarks import cold_vs_warm
from benchmarks.report import suite_markdown
from benchmarks.report import SuiteData
from benchmarks.report import weight_summary
from benchmarks.runner import RunResult
from benchmarks.suites import SUITES


def test_every_suite_names_its_tasks_methods_and_baseline() -> None:
    for name, suite in SUITES.items():
        tasks = suite.tasks()
        assert tasks and all(t.suite == name for t in tasks)
        assert suite.baseline in suite.methods
    grid = SUITES["grid"]
    # Cold TPE is the reference whenever it runs, even in a grid suite.
    assert grid.baseline_among(["grid", "tpe", "warm-grid"]) == "tpe"
    assert grid.baseline_among(["warm-grid", "grid"]) == "grid"
    assert grid.baseline_among(["warm-grid", "grid+enqueue"]) == "warm-grid"


def test_cifar_data_dir_travels_in_the_jobs_not_the_environment() -> None:
    before = dict(os.environ)
    args = cold_vs_warm.build_parser().parse_args(
        ["--suites", "cifar10", "--seeds", "2", "--cifar-data-dir", "/mnt/cifar"]
    )
    plan = cold_vs_warm.make_plan(args)
    problems = [p for j in plan.run_jobs for p in (j.task.target, *j.task.sources)]
    problems += [j.problem for j in plan.source_jobs]
    assert problems and {p.data_dir for p in problems} == {"/mnt/cifar"}
    # A worker process gets the job pickled: the folder goes with it.
    job = pickle.loads(pickle.dumps(plan.run_jobs[0]))
    assert job.task.target.data_dir == "/mnt/cifar"
    # The folder is not part of any study name, so stored studies are found again.
    assert plan.source_jobs[0].study_name == (
        "source-cifar-cifar100-tpe-mixed-n100-seed0"
    )
    assert dict(os.environ) == before


def test_synthetic_grid_enqueue_runs_the_sources_best_on_the_grid() -> None:
    from benchmarks import synthetic

    (result,) = synthetic.run_jobs([(3, "related", "grid+enqueue", 6)])
    assert result.error is None and len(result.trials) == 6
    on_grid = [
        all(t.params[name] in values for name, values in synthetic.GRID.items())
        for t in result.trials
    ]
    assert all(on_grid)
    # Regret against the best grid point: never below it.
    assert min(result.regret) >= 0.0 and result.regret == sorted(result.regret, reverse=True)


def test_synthetic_reseeded_baselines_are_the_cold_methods_with_other_draws(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from benchmarks import synthetic

    cold, reseeded, grid, grid_reseeded = synthetic.run_jobs([
        (3, "misleading", "tpe", 4),
        (3, "misleading", "tpe-reseeded", 4),
        (3, "misleading", "grid", 4),
        (3, "misleading", "grid-reseeded", 4),
    ])
    runs = (cold, reseeded, grid, grid_reseeded)
    assert all(r.error is None and len(r.trials) == 4 for r in runs)
    # Same sampler, another seed stream: other random start-up draws.
    assert [t.params for t in cold.trials] != [t.params for t in reseeded.trials]
    assert [t.params for t in grid.trials] != [t.params for t in grid_reseeded.trials]
    assert all(
        t.params[name] in values
        for t in grid_reseeded.trials
        for name, values in synthetic.GRID.items()
    )
    # The script accepts them and prints the grid one with the grid methods.
    synthetic.main(["--seeds", "1", "--n-trials", "3", "--kinds", "related",
                    "--methods", "tpe-reseeded,grid-reseeded", "--workers", "1"])
    tables = capsys.readouterr().out.split("Seeds:")[1]
    plain, on_grid = tables.split("over the 9,375-point grid")
    assert "| tpe-reseeded |" in plain and "grid-reseeded" not in plain
    assert "| grid-reseeded |" in on_grid


def _result(task: str, method: str, regret: list[float], weights: object = None) -> RunResult:
    return RunResult(
        suite="hpolib", task=task, method=method, seed=0, study_name="s", source_studies=[],
        error=None, values=list(regret), losses=list(regret), best_loss=list(regret),
        regret=list(regret), pct_better=list(regret), optimize_s=0.0, objective_s=0.0,
        trials=[], source_weights=weights,
    )


def _per_task_section(table: str) -> list[str]:
    lines = table.split("## Per task:")[1].split("\n\n")
    return [lines[0].strip(), *lines[1].splitlines()]


@pytest.mark.parametrize("n_trials", [5, 12])
def test_per_task_table_reads_no_budget_beyond_the_run(n_trials: int) -> None:
    # On main a 5-trial run's column said "at 10 trials" and showed trial 5's regret.
    curve = [1.0 / (i + 1) for i in range(n_trials)]
    runs = [_result("a", "tpe", curve)]
    data = SuiteData.from_results(runs, ["tpe"], [0], n_trials)
    heading, header, _, row = _per_task_section(suite_markdown(data, "tpe", [], n_boot=1))
    assert header == "| task | tpe |"
    if n_trials < 10:
        assert heading == "mean normalised regret at the full budget (5 trials)"
        assert row == f"| a | {curve[-1]:.4f} |"
    else:
        assert heading == "mean normalised regret at 10 trials / at the full budget"
        assert row == f"| a | {curve[9]:.4f} / {curve[-1]:.4f} |"


@pytest.mark.parametrize(("n_trials", "columns"), [
    (5, ["trial 5"]), (10, ["trial 10"]), (50, ["trial 10", "trial 25", "trial 50"]),
    (60, ["trial 10", "trial 25", "trial 50", "trial 60"]),
])
def test_source_weight_columns_are_each_budget_once(n_trials: int, columns: list[str]) -> None:
    # On main a 10- or 50-trial run had its last column twice.
    weights = {str(i): {"target": 1.0 - i / n_trials, "s": i / n_trials} for i in range(n_trials)}
    lines = weight_summary([_result("a", "transfer-tpe", [0.0] * n_trials, weights)],
                           ["transfer-tpe"], n_trials)
    header = next(x for x in lines if x.startswith("| method |"))
    assert header == "| method | " + " | ".join(columns) + " |"
    last = (n_trials - 1) / n_trials
    assert lines[-1].endswith(f"| {1 - last:.2f} / {last:.2f} |")
