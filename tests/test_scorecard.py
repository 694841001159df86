"""The #17 scorecard on hand-made curves.json files whose ratios can be worked out by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from benchmarks import scorecard
from benchmarks.scorecard import EPS


N = 50


def _run(task: str, method: str, seed: int, regret: list[float] | None,
         best_loss: list[float] | None = None, error: str | None = None) -> dict[str, Any]:
    # A failed run has no curves, as the runner writes it.
    regret = [] if regret is None else regret
    return {
        "suite": "", "task": task, "method": method, "seed": seed, "error": error,
        "normalised_regret": regret,
        "best_loss": best_loss if best_loss is not None else list(regret),
    }


def _flat(x: float) -> list[float]:
    return [x] * N


def _write(folder: Path, suite: str, runs: list[dict[str, Any]]) -> Path:
    (folder / suite).mkdir(parents=True, exist_ok=True)
    path = folder / suite / "curves.json"
    for r in runs:
        r["suite"] = suite
    path.write_text(json.dumps({"suite": suite, "command": f"cold_vs_warm {suite}",
                                "n_trials": N, "runs": runs}))
    return path


def _table_runs() -> list[dict[str, Any]]:
    """Two tasks, two seeds. Means (trials >= 10): task a: tpe 0.3, tpe+enqueue 0.1,
    transfer-tpe 0 (0.5 before trial 10), wscmaes failed on both seeds; task b: tpe 0.2,
    tpe+enqueue 0.1, wscmaes 0.05, transfer-tpe 0.2."""
    fail = "ValueError: No compatible source_trials"
    late = [0.5] * 9 + [0.0] * (N - 9)
    return [
        _run("a", "tpe", 0, _flat(0.4)), _run("a", "tpe", 1, _flat(0.2)),
        _run("a", "tpe+enqueue", 0, _flat(0.1)), _run("a", "tpe+enqueue", 1, _flat(0.1)),
        _run("a", "wscmaes", 0, None, error=fail), _run("a", "wscmaes", 1, None, error=fail),
        _run("a", "transfer-tpe", 0, late), _run("a", "transfer-tpe", 1, late),
        _run("b", "tpe", 0, _flat(0.2)), _run("b", "tpe", 1, _flat(0.2)),
        _run("b", "tpe+enqueue", 0, _flat(0.05)), _run("b", "tpe+enqueue", 1, _flat(0.15)),
        _run("b", "wscmaes", 0, _flat(0.04)), _run("b", "wscmaes", 1, _flat(0.06)),
        _run("b", "transfer-tpe", 0, _flat(0.3)), _run("b", "transfer-tpe", 1, _flat(0.1)),
    ]


def _steps(*points: tuple[int, float]) -> list[float]:
    """A best-so-far curve: ``(first trial, value)`` steps, 1-based."""
    curve = []
    for i in range(1, N + 1):
        curve.append([v for start, v in points if start <= i][-1])
    return curve


def _grid_runs() -> list[dict[str, Any]]:
    """Task c: grid's median best at 50 is 2.0; warm-grid's median best curve is 5 (trials
    1-3), 3.5 (4-11), 1.5 (12-): it reaches 2.0 at trial 12. Task d: at trial 4."""
    runs = []
    for task, slow_step in (("c", 12), ("d", 4)):
        runs += [
            _run(task, "grid", 0, _flat(0.5), _steps((1, 4.0), (20, 1.0))),
            _run(task, "grid", 1, _flat(0.5), _steps((1, 4.0), (30, 3.0))),
            _run(task, "grid+enqueue", 0, _flat(0.2)),
            _run(task, "grid+enqueue", 1, _flat(0.2)),
            _run(task, "warm-grid", 0, _flat(0.1), _steps((1, 5.0), (4, 2.0))),
            _run(task, "warm-grid", 1, _flat(0.1), _steps((1, 5.0), (slow_step, 1.0))),
        ]
    return runs


@pytest.fixture
def table(tmp_path: Path) -> scorecard.SuiteRuns:
    return scorecard.load_curves(_write(tmp_path, "hpolib", _table_runs()))


def test_mean_regret_is_over_finished_seeds_at_the_budget(table: scorecard.SuiteRuns) -> None:
    assert table.mean_regret("a", "tpe", 50) == pytest.approx(0.3)
    assert table.mean_regret("a", "transfer-tpe", 9) == pytest.approx(0.5)
    assert table.mean_regret("a", "transfer-tpe", 10) == 0.0
    assert math.isnan(table.mean_regret("a", "wscmaes", 10))
    assert table.mean_regret("b", "wscmaes", 10) == pytest.approx(0.05)
    assert table.n_failed == {"tpe": 0, "tpe+enqueue": 0, "wscmaes": 2, "transfer-tpe": 0}


def test_ratios_add_epsilon_and_skip_a_failed_anchor(table: scorecard.SuiteRuns) -> None:
    # Task a: zero regret against 0.1 is finite thanks to EPS.
    assert scorecard.task_ratios(table, "enqueue anchor", 10) == pytest.approx(
        {"a": EPS / (0.1 + EPS), "b": (0.2 + EPS) / (0.1 + EPS)}
    )
    # wscmaes failed on every seed of a: only b has a ratio.
    assert scorecard.task_ratios(table, "wscmaes", 10) == pytest.approx(
        {"b": (0.2 + EPS) / (0.05 + EPS)}
    )
    # Best anchor: tpe+enqueue on a (wscmaes did not run there), wscmaes on b.
    best = scorecard.task_ratios(table, "best anchor", 25)
    assert best == pytest.approx({"a": EPS / (0.1 + EPS), "b": (0.2 + EPS) / (0.05 + EPS)})
    assert scorecard.suite_geomean(table, "best anchor", 25) == pytest.approx(
        math.sqrt(best["a"] * best["b"])
    )
    assert scorecard.task_ratios(table, "cold", 50) == pytest.approx(
        {"a": EPS / (0.3 + EPS), "b": 1.0}
    )


def test_checks_on_a_table_suite(table: scorecard.SuiteRuns) -> None:
    by_target = {c.target: c for c in scorecard.checks([table])}
    g = scorecard.suite_geomean(table, "best anchor", 10)
    anchor = by_target["`hpolib`: geomean transfer-tpe / best anchor at 10 <= 0.6x"]
    assert anchor.measured.startswith(f"{g:.3f} (")
    assert anchor.holds is (g <= 0.6)
    # At 3 trials task a is still at 0.5 (5x tpe+enqueue) and b is at 2x: both listed. Task
    # a's ratio is the same on either seed; b's is 0.67 on seed 1 (0.1 vs 0.15) and 5.9 on
    # seed 0 (0.3 vs 0.05): the interval spans them.
    early = by_target["`hpolib`: no task above 1.0x tpe+enqueue at 3"]
    assert early.holds is False
    b0, b1 = (0.1 + EPS) / (0.15 + EPS), (0.3 + EPS) / (0.05 + EPS)
    # tpe+enqueue is flat: one trial less of it costs nothing.
    assert early.measured == (f"max 4.960; above: a 4.960 (4.960-4.960), b 1.990 "
                              f"({b0:.3f}-{b1:.3f}); one trial less of "
                              "tpe+enqueue on those tasks: a 1.000, b 1.000")
    # Task b ties cold TPE at 50 (ratio exactly 1): not above.
    final = by_target["`hpolib`: no task above 1.0x cold tpe at 50"]
    assert (final.measured, final.holds) == ("max 1.000", True)
    # No misleading, continuous or grid check on this suite.
    assert len(by_target) == 3 + 2 + 1


def test_misleading_and_continuous_targets(tmp_path: Path) -> None:
    mis = scorecard.load_curves(_write(tmp_path, "misleading", _table_runs()))
    cont = scorecard.load_curves(_write(tmp_path, "continuous", _table_runs()))
    by_target = {c.target: c for c in scorecard.checks([mis, cont])}
    cold50 = math.sqrt(EPS / (0.3 + EPS) * 1.0)
    c = by_target["`misleading`: geomean transfer-tpe / cold tpe at 50 <= 1.1x"]
    assert c.holds is True
    assert c.measured.startswith(f"{cold50:.3f} (")
    assert "`misleading`: geomean transfer-tpe / cold tpe at 10 <= 1.15x" in by_target
    ws = (0.2 + EPS) / (0.05 + EPS)
    c = by_target["`continuous`: geomean transfer-tpe / wscmaes at 50 <= 1x"]
    assert c.holds is False
    assert c.measured.startswith(f"{ws:.3f} (")


def test_cold_targets_show_the_reseeded_cold_method_as_noise_reference(tmp_path: Path) -> None:
    # tpe-reseeded: 0.45 on task a (tpe 0.3), 0.1 on task b (tpe 0.2).
    runs = _table_runs() + [
        _run(t, "tpe-reseeded", seed, _flat(x)) for t, x in (("a", 0.45), ("b", 0.1))
        for seed in (0, 1)
    ]
    mis = scorecard.load_curves(_write(tmp_path, "misleading", runs))
    by_target = {c.target: c for c in scorecard.checks([mis])}
    ra, rb = (0.45 + EPS) / (0.3 + EPS), (0.1 + EPS) / (0.2 + EPS)
    final = by_target["`misleading`: no task above 1.0x cold tpe at 50"]
    # The warm method's verdict is unchanged; the reference says how cold fares against itself.
    assert final.holds is True
    assert final.measured == (
        f"max 1.000; noise reference, tpe-reseeded / tpe: geomean {math.sqrt(ra * rb):.3f}, "
        f"max {ra:.3f}, above: a {ra:.3f}"
    )
    c = by_target["`misleading`: geomean transfer-tpe / cold tpe at 10 <= 1.15x"]
    assert c.measured.endswith(f"; noise reference, tpe-reseeded / tpe: geomean "
                               f"{math.sqrt(ra * rb):.3f}")
    # Without the reseeded runs the rows say nothing of it.
    plain = scorecard.load_curves(_write(tmp_path / "plain", "misleading", _table_runs()))
    assert all("noise" not in c.measured for c in scorecard.checks([plain]))
    # Its mean regret is a column of the suite's per-task table.
    assert "| task | trials | transfer-tpe | tpe+enqueue | wscmaes | tpe | tpe-reseeded |" in (
        scorecard.scorecard_markdown([mis])
    )


def test_grid_suite_roles_and_trials_to_cold_final(tmp_path: Path) -> None:
    grid = scorecard.load_curves(_write(tmp_path, "grid", _grid_runs()))
    assert grid.roles == scorecard.GRID_ROLES
    assert scorecard.trials_to_cold_final(grid, "c") == 12.0
    assert scorecard.trials_to_cold_final(grid, "d") == 4.0
    # No wscmaes on grids: best anchor is grid+enqueue.
    assert scorecard.task_ratios(grid, "wscmaes", 10) == {}
    assert scorecard.task_ratios(grid, "best anchor", 10) == pytest.approx(
        {"c": (0.1 + EPS) / (0.2 + EPS), "d": (0.1 + EPS) / (0.2 + EPS)}
    )
    (check,) = [c for c in scorecard.checks([grid]) if "median best" in c.target]
    assert (check.measured, check.holds) == ("max 12; above: c 12", False)


def test_overall_is_the_geomean_of_suite_geomeans(tmp_path: Path) -> None:
    table = scorecard.load_curves(_write(tmp_path, "hpolib", _table_runs()))
    grid = scorecard.load_curves(_write(tmp_path, "grid", _grid_runs()))
    per_suite = [scorecard.suite_geomean(s, "enqueue anchor", 25) for s in (table, grid)]
    assert per_suite[1] == pytest.approx((0.1 + EPS) / (0.2 + EPS))
    assert scorecard.overall_geomean([table, grid], "enqueue anchor", 25) == pytest.approx(
        math.sqrt(per_suite[0] * per_suite[1])
    )


def _write_short(folder: Path, n_trials: int) -> Path:
    """The table runs cut to their first ``n_trials`` trials."""
    runs = _table_runs()
    for r in runs:
        r["normalised_regret"] = r["normalised_regret"][:n_trials]
        r["best_loss"] = r["best_loss"][:n_trials]
    path = _write(folder, "hpolib", runs)
    doc = json.loads(path.read_text())
    doc["n_trials"] = n_trials
    path.write_text(json.dumps(doc))
    return path


def test_short_runs_are_not_measured(tmp_path: Path) -> None:
    data = scorecard.load_curves(_write_short(tmp_path, 20))
    by_target = {c.target: c for c in scorecard.checks([data])}
    c = by_target["`hpolib`: no task above 1.0x cold tpe at 50"]
    assert (c.measured, c.holds) == ("n/a: runs have 20 trials", None)


def test_cli_reads_output_folders_and_writes_markdown(tmp_path: Path) -> None:
    _write(tmp_path / "run1", "hpolib", _table_runs())
    _write(tmp_path / "run1", "grid", _grid_runs())
    _write(tmp_path / "run2", "misleading", _table_runs())
    out = tmp_path / "card.md"
    assert scorecard.main([str(tmp_path / "run1"), str(tmp_path / "run2"), "--out", str(out)]) == 0
    text = out.read_text()
    assert f"ε = {EPS:g}" in text
    for suite in ("grid", "hpolib", "misleading"):
        assert f"## `{suite}`" in text
    assert "`wscmaes` failed in 2 of 4 runs" in text
    # The machine the runs were made on, where their curves recorded it.
    assert "made by `cold_vs_warm hpolib`. Warm" in text
    doc = json.loads((tmp_path / "run1" / "hpolib" / "curves.json").read_text())
    doc["machine"] = "Some CPU, 2 logical cores, Linux 6"
    (tmp_path / "run1" / "hpolib" / "curves.json").write_text(json.dumps(doc))
    doc["versions"] = "optuna 5.1.0, optuna_transfer 0.1.0 (git deadbee)"
    (tmp_path / "run1" / "hpolib" / "curves.json").write_text(json.dumps(doc))
    scorecard.main([str(tmp_path / "run1"), "--out", str(out)])
    assert "made by `cold_vs_warm hpolib` on Some CPU, 2 logical cores, Linux 6. Warm" in (
        out.read_text())
    # The versions the runs recorded, not today's checkout's (on main only the latter).
    line = next(x for x in out.read_text().splitlines() if x.startswith("* Versions of the"))
    assert "optuna 5.1.0, optuna_transfer 0.1.0 (git deadbee)" in line
    assert "not recorded" in line  # the grid suite's curves have none
    # Every check is a row of the targets table.
    n_checks = len(scorecard.checks(scorecard.load_suites([tmp_path / "run1",
                                                            tmp_path / "run2"])))
    assert text.count("| yes |") + text.count("| **no** |") == n_checks
    # A suite given twice is refused rather than silently picked.
    with pytest.raises(ValueError, match="suite 'hpolib' is in both"):
        scorecard.load_suites([tmp_path / "run1", tmp_path / "run1" / "hpolib"])


def test_misleading_cold_targets_show_what_the_zero_shot_trials_cost(tmp_path: Path) -> None:
    # Three sources: three zero-shot trials by default. tpe's curve on task a falls from 0.9
    # (trials 1-7) to 0.3 (8-), on task b from 0.8 (1-6) to 0.2 (7-9) to 0.1 (10-): started
    # three trials late it would be at 0.9 and 0.2 at 10 trials (not 0.3 and 0.1), and at 50
    # where it is.
    runs = _table_runs()
    runs[0]["normalised_regret"] = runs[1]["normalised_regret"] = _steps((1, 0.9), (8, 0.3))
    runs[8]["normalised_regret"] = runs[9]["normalised_regret"] = _steps(
        (1, 0.8), (7, 0.2), (10, 0.1))
    for r in runs:
        r["source_studies"] = ["s1", "s2", "s3"]
    mis = scorecard.load_curves(_write(tmp_path, "misleading", runs))
    assert mis.n_sources == {"a": 3, "b": 3}
    by_target = {c.target: c for c in scorecard.checks([mis])}
    at10 = math.sqrt((0.9 + EPS) / (0.3 + EPS) * (0.2 + EPS) / (0.1 + EPS))
    c = by_target["`misleading`: geomean transfer-tpe / cold tpe at 10 <= 1.15x"]
    assert c.measured.endswith(
        f"; delay reference, tpe at 10 - k (k = 3 zero-shot trials) / tpe: geomean {at10:.3f}")
    c = by_target["`misleading`: geomean transfer-tpe / cold tpe at 50 <= 1.1x"]
    assert c.measured.endswith("(k = 3 zero-shot trials) / tpe: geomean 1.000")
    # Two sources still give two zero-shot trials (the default's lower bound).
    for r in runs:
        r["source_studies"] = ["s1"]
    one = scorecard.load_curves(_write(tmp_path / "one", "misleading", runs))
    c = {c.target: c for c in scorecard.checks([one])}[
        "`misleading`: geomean transfer-tpe / cold tpe at 10 <= 1.15x"]
    assert "(k = 2 zero-shot trials)" in c.measured
    # Runs that did not record their sources give no reference.
    plain = scorecard.load_curves(_write(tmp_path / "plain", "misleading", _table_runs()))
    assert all("delay" not in c.measured for c in scorecard.checks([plain]))


def test_early_targets_show_what_one_trial_less_of_the_replay_scores(tmp_path: Path) -> None:
    # tpe+enqueue on task b: 0.4 for 4 trials, 0.1 from trial 5; transfer-tpe stays at 0.4
    # until trial 6 (its fifth trial was a probe that beat nothing): behind by one trial.
    runs = _table_runs()
    for i in (10, 11):
        runs[i]["normalised_regret"] = _steps((1, 0.4), (5, 0.1))
    for i in (14, 15):
        runs[i]["normalised_regret"] = _steps((1, 0.4), (6, 0.1))
    data = scorecard.load_curves(_write(tmp_path, "hpobench", runs))
    by_target = {c.target: c for c in scorecard.checks([data])}
    at5 = by_target["`hpobench`: no task above 1.0x tpe+enqueue at 5"]
    behind = (0.4 + EPS) / (0.1 + EPS)
    assert at5.holds is False
    assert at5.measured == (f"max 4.960; above: a 4.960 (4.960-4.960), b {behind:.3f} "
                            f"({behind:.3f}-{behind:.3f}); one trial less of "
                            f"tpe+enqueue on those tasks: a 1.000, b {behind:.3f}")
    # At 3 trials task b ties the replay: only a is listed, and only a gets a reference.
    at3 = by_target["`hpobench`: no task above 1.0x tpe+enqueue at 3"]
    assert at3.measured.endswith("on those tasks: a 1.000")


def test_intervals_draw_seeds_with_their_pairs(tmp_path: Path) -> None:
    # One task, two seeds. transfer-tpe 0.1 / 0.3 and tpe 0.2 / 0.2 on seeds 0 / 1; a third
    # seed only tpe finished, so it is never drawn: a draw keeps a seed's runs together.
    runs = [
        _run("a", "transfer-tpe", 0, _flat(0.1)), _run("a", "transfer-tpe", 1, _flat(0.3)),
        _run("a", "transfer-tpe", 2, None, error="boom"),
        _run("a", "tpe", 0, _flat(0.2)), _run("a", "tpe", 1, _flat(0.2)),
        _run("a", "tpe", 2, _flat(0.2)),
    ]
    data = scorecard.load_curves(_write(tmp_path, "misleading", runs))
    assert data.seeds["a"]["transfer-tpe"].tolist() == [0, 1]
    draws = scorecard.bootstrap_replicates(data, n=400)
    values = {round(scorecard.suite_geomean(d, "cold", 50), 6) for d in draws}
    seed0, both, seed1 = ((x + EPS) / (0.2 + EPS) for x in (0.1, 0.2, 0.3))
    # Both seeds once, or one of them twice: nothing else, and never the tpe-only seed 2.
    assert values == {round(v, 6) for v in (seed0, both, seed1)}
    assert {s for d in draws for s in d.seeds["a"]["tpe"].tolist()} == {0, 1}
    assert scorecard.interval(scorecard.suite_geomean(d, "cold", 50) for d in draws) == (
        pytest.approx(seed0), pytest.approx(seed1))
    # The same draws every time: a report is reproducible.
    again = scorecard.bootstrap_replicates(data, n=400)
    assert [d.regret["a"]["tpe"][:, 0].tolist() for d in draws] == [
        d.regret["a"]["tpe"][:, 0].tolist() for d in again]
    c = {c.target: c for c in scorecard.checks([data])}[
        "`misleading`: geomean transfer-tpe / cold tpe at 50 <= 1.1x"]
    assert c.measured == f"{both:.3f} ({seed0:.3f}-{seed1:.3f} over seeds)"
    assert c.holds is True


def test_interval_of_nothing_is_nan() -> None:
    lo, hi = scorecard.interval([math.nan, math.nan])
    assert math.isnan(lo) and math.isnan(hi)
    assert scorecard.interval([1.0, 2.0, 3.0], level=1.0) == (1.0, 3.0)


def test_an_anchor_that_did_not_run_is_named_so_and_not_compared(tmp_path: Path) -> None:
    # Only tpe+enqueue ran as an anchor. On main the report still listed wscmaes among the
    # anchors, gave it a row and columns of n/a, and said its target "had no task where both
    # finished", as if it had run and failed.
    runs = [r for r in _table_runs() if r["method"] != "wscmaes"]
    data = scorecard.load_curves(_write(tmp_path, "continuous", runs))
    text = scorecard.scorecard_markdown([data])
    assert ("Warm: `transfer-tpe`; anchors: `tpe+enqueue` (`wscmaes` did not run: left out of "
            "the comparisons); cold: `tpe`.") in text
    assert "* Anchors that did not run: `continuous`: `wscmaes`" in text
    assert "| wscmaes |" not in text and "| / wscmaes |" not in text
    by_target = {c.target: c for c in scorecard.checks([data])}
    ws = by_target["`continuous`: geomean transfer-tpe / wscmaes at 50 <= 1x"]
    assert (ws.measured, ws.holds) == ("not run: `wscmaes` did not run on this suite", None)
    best = by_target["`continuous`: geomean transfer-tpe / best anchor at 10 <= 0.6x"]
    g = scorecard.suite_geomean(data, "best anchor", 10)
    assert best.measured.startswith(f"{g:.3f} (")
    assert best.measured.endswith("; best anchor of `tpe+enqueue` alone (`wscmaes` did not run)")
    # With every anchor run (wscmaes failing on some tasks counts as run) nothing says so.
    full = scorecard.load_curves(_write(tmp_path / "full", "continuous", _table_runs()))
    assert "did not run" not in scorecard.scorecard_markdown([full])
    assert "Warm: `transfer-tpe`; anchors: `tpe+enqueue`, `wscmaes`; cold: `tpe`." in (
        scorecard.scorecard_markdown([full]))


def test_a_cold_method_that_did_not_run_is_not_measured(tmp_path: Path) -> None:
    runs = [r for r in _table_runs() if r["method"] != "tpe"]
    data = scorecard.load_curves(_write(tmp_path, "misleading", runs))
    by_target = {c.target: c for c in scorecard.checks([data])}
    c = by_target["`misleading`: geomean transfer-tpe / cold tpe at 50 <= 1.1x"]
    assert (c.measured, c.holds) == ("not run: `tpe` did not run on this suite", None)
    assert "| cold tpe |" not in scorecard.scorecard_markdown([data])


def test_runs_shorter_than_every_budget_say_so_instead_of_empty_tables(tmp_path: Path) -> None:
    # On main 2-trial runs gave ratio tables with no budget column and empty rows.
    text = scorecard.scorecard_markdown([scorecard.load_curves(_write_short(tmp_path, 2))])
    assert "| warm / |" not in text and "| task | trials |" not in text
    assert text.count("No ratios: the runs have 2 trials, fewer than the first budget, 3.") == 2


_GOOD_RUN = {"task": "a", "method": "tpe", "seed": 0, "error": None,
             "normalised_regret": [0.5], "best_loss": [0.5]}


@pytest.mark.parametrize(("doc", "what"), [
    ('{"runs": [', "not valid JSON (Expecting value: line 1 column 11 (char 10))"),
    ("[]", 'expected a JSON object with a "runs" list, got a list'),
    ('{"suite": "hpolib"}', 'expected a JSON object with a "runs" list, got no "runs"'),
    ('{"runs": [3]}', "run 1: expected a JSON object, got a number"),
    ('{"runs": [], "n_trials": "50"}', '"n_trials" is a string, expected an integer'),
    (json.dumps({"runs": [_GOOD_RUN, {**_GOOD_RUN, "method": None}]}),
     'run 2: "method" is null, expected a string'),
    (json.dumps({"runs": [{k: v for k, v in _GOOD_RUN.items() if k != "seed"}]}),
     'run 1: no "seed"'),
    (json.dumps({"runs": [{**_GOOD_RUN, "normalised_regret": "0.5"}]}),
     'run 1: "normalised_regret" is a string, expected a list of numbers'),
    (json.dumps({"runs": [{**_GOOD_RUN, "best_loss": [0.5, None]}]}),
     'run 1: "best_loss" holds null, expected numbers only'),
])
def test_a_bad_curves_file_is_named_with_what_is_wrong(
    doc: str, what: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # On main: a bare JSONDecodeError, KeyError('runs') or TypeError naming no file.
    path = tmp_path / "hpolib" / "curves.json"
    path.parent.mkdir()
    path.write_text(doc)
    with pytest.raises(ValueError) as info:
        scorecard.load_curves(path)
    assert str(info.value) == f"{path}: {what}"
    # The command line says it in one line.
    with pytest.raises(SystemExit) as exit_info:
        scorecard.main([str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"python -m benchmarks.scorecard: error: {path}: {what}"


def test_a_folder_with_no_curves_is_one_line_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        scorecard.main([str(tmp_path)])
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"python -m benchmarks.scorecard: error: {tmp_path}: no curves.json in it or in its "
        "sub-folders.")
