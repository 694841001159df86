"""benchmarks/scale.py in a tiny configuration: the numbers it reports are measured ones."""

from __future__ import annotations

import math

from benchmarks import scale


def test_sources_row_measures_both_samplers_and_memory() -> None:
    row = scale.sources_row(5, n_trials=8)
    assert row["sources"] == 5
    assert row["cold"] > 0 and row["transfer"] > 0
    assert row["peak_mib"] > 10  # a Python process with numpy and optuna


def test_long_rows_cover_every_block() -> None:
    rows = scale.long_rows(200)
    assert [start for start, _, _ in rows] == [0, 100]
    assert all(cold > 0 and warm > 0 for _, cold, warm in rows)


def test_unrelated_regret_runs_both_source_sets_on_one_target() -> None:
    out = scale.unrelated_regret(0, n_unrelated=2, budgets=[3, 6])
    assert set(out) == {"related", "related+unrelated"}
    for curve in out.values():
        assert len(curve) == 2 and curve[1] <= curve[0] and math.isfinite(curve[1])
