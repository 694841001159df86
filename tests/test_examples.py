"""The quickstart and warm-grid examples run end to end in fast mode and show what they claim."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quickstart_fast(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = _load("quickstart").main(["--fast", "--workdir", str(tmp_path)])

    # The source was stored in SQLite under the workdir and read back by name.
    assert (tmp_path / "hpo.db").is_file()
    assert result["storage"].endswith("hpo.db")
    assert result["source_names"] == ["previous-run"]
    assert len(result["warm_values"]) == 15 and len(result["cold_values"]) == 15

    # Zero-shot: the first warm trial is the source's best config (same search space).
    assert result["warm_first_params"] == result["source_best_params"]
    # On a related task, warm-starting pays off within the same budget (seed 0 is deterministic).
    assert result["warm_best_value"] <= result["cold_best_value"]
    assert min(result["warm_values"][:3]) < min(result["cold_values"][:3])

    # Weights: recorded for every non-zero-shot trial; sources in [0, 1], the target at 1.
    weights = result["weights"]
    assert weights, "no trial recorded mixture weights"
    for per_trial in weights.values():
        assert set(per_trial) == {"previous-run", "target"}
        assert per_trial["target"] == 1.0
        assert 0.0 <= per_trial["previous-run"] <= 1.0
    # The related source earns trust: it has a say in the last trials.
    assert weights[max(weights)]["previous-run"] > 0.0

    out = capsys.readouterr().out
    assert "warm-started TPE" in out and "cold TPE" in out and "previous-run=" in out


def test_warm_grid_fast(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = _load("warm_grid").main(["--fast", "--workdir", str(tmp_path)])

    grid = result["grid"]
    size = result["grid_size"]
    assert set(grid) == {"lr", "weight_decay", "batch_size"}
    assert len(grid["lr"]) == 5 and len(grid["weight_decay"]) == 3
    assert grid["batch_size"] == [result["source_best_params"]["batch_size"]]
    assert size == 15
    # The grid is centred on the source's best (up to neighbourhood_grid's 12-digit rounding).
    for name in ("lr", "weight_decay"):
        assert grid[name][len(grid[name]) // 2] == pytest.approx(
            result["source_best_params"][name], rel=1e-9
        )

    # The sampler walks the whole grid once and stops the study by itself.
    assert result["warm_exhausted"]
    assert result["warm_n_trials"] == size
    # Best-first: the grid's best point comes early, and sooner than GridSampler's random
    # order does on average.
    warm = result["warm_trials_to_best"]
    random_order = result["grid_trials_to_best"]
    assert 1 <= warm < size
    # The grid's centre is last time's best, exactly: it is evaluated first.
    assert result["warm_first_params"] == result["source_best_params"]
    assert warm < sum(random_order) / len(random_order)
    assert all(1 <= n <= size for n in random_order)

    out = capsys.readouterr().out
    assert "WarmStartGridSampler" in out and "GridSampler (random order" in out


def test_warm_grid_says_when_the_best_is_not_reached(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Three trials do not reach the grid's best (seed 0): the summary must not name a trial
    # that was never run.
    result = _load("warm_grid").main(["--fast", "--n-trials", "3", "--workdir", str(tmp_path)])

    assert result["warm_n_trials"] == 3
    assert result["warm_trials_to_best"] == 4  # len + 1: never reached
    out = capsys.readouterr().out
    assert "did not reach the grid's best within 3 trials" in out
    assert "reached the grid's best at trial" not in out
