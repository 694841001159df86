"""benchmarks/scale.py in a tiny configuration: the numbers it reports are measured ones."""

from __future__ import annotations

import math

import optuna
import pytest

from benchmarks import scale


def test_sources_row_measures_both_samplers_and_memory() -> None:
    row = scale.sources_row(5, n_trials=8, repeats=3)
    assert row["sources"] == 5 and row["repeats"] == 3
    assert row["cold"] > 0 and row["transfer"] > 0
    assert row["ratio_min"] <= row["ratio"] <= row["ratio_max"]
    assert row["peak_mib"] > 10  # a Python process with numpy and optuna


def test_paired_runs_alternate_which_sampler_goes_first() -> None:
    calls: list[str] = []

    def run(name: str, ms: float) -> list[float]:
        calls.append(name)
        return [ms]

    pairs = scale.paired_runs(lambda: run("cold", 1.0), lambda: run("transfer", 2.0), 3)
    assert calls == ["cold", "transfer", "transfer", "cold", "cold", "transfer"]
    # Each pair is (cold, transfer) whichever ran first.
    assert pairs == [([1.0], [2.0])] * 3


def test_summary_takes_medians_and_the_paired_ratios_range() -> None:
    row = scale._summary([1.0, 2.0, 4.0], [3.0, 2.0, 8.0])
    assert row["cold"] == 2.0 and row["transfer"] == 3.0
    assert row["ratio"] == 2.0  # ratios 3, 1, 2: the pairs' own, not median / median
    assert (row["ratio_min"], row["ratio_max"]) == (1.0, 3.0)


def test_long_rows_cover_every_block() -> None:
    rows = scale.long_rows(200, repeats=2)
    assert [row["start"] for row in rows] == [0, 100]
    assert all(row["cold"] > 0 and row["transfer"] > 0 for row in rows)


def test_unrelated_regret_runs_both_source_sets_on_one_target() -> None:
    out = scale.unrelated_regret(0, n_unrelated=2, budgets=[3, 6])
    assert set(out) == {"related", "related+unrelated"}
    for curve in out.values():
        assert len(curve) == 2 and curve[1] <= curve[0] and math.isfinite(curve[1])


def test_unrelated_regret_samplers_do_not_replay_the_task_draws(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # make_task(seed) places the target's optimum with RandomState(seed): a sampler seeded
    # with ``seed`` would start next to it (see the synthetic family's test of the same).
    seeds: list[int | None] = []

    def recording(cls: type) -> type:
        class Recording(cls):
            def __init__(self, *args: object, **kwargs: object) -> None:
                seeds.append(kwargs.get("seed"))  # type: ignore[arg-type]
                super().__init__(*args, **kwargs)

        return Recording

    monkeypatch.setattr(scale, "TransferTPESampler", recording(scale.TransferTPESampler))
    for name in ("RandomSampler", "TPESampler"):
        monkeypatch.setattr(optuna.samplers, name, recording(getattr(optuna.samplers, name)))
    scale.unrelated_regret(5, n_unrelated=6, budgets=[2])
    # 3 related sources, 6 unrelated ones, TransferTPE twice (and the samplers TPE builds).
    assert len(seeds) >= 11 and None not in seeds
    assert 5 not in seeds


def test_a_failing_row_shows_its_own_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # On main a row's process that failed surfaced as "CalledProcessError: ... returned
    # non-zero exit status 1", its traceback (the cause) thrown away with its stderr.
    import subprocess

    def failing(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(cmd, 1, "", "Traceback ...\nMemoryError: boom")

    monkeypatch.setattr(scale.subprocess, "run", failing)
    with pytest.raises(SystemExit, match=r"(?s)row with 3 sources failed \(exit 1\).*boom"):
        scale.main(["--sources", "3"])
