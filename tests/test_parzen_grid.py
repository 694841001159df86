"""ParzenEstimator.smooth_grid: a kernel regression over a Cartesian grid, in blocks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optuna_transfer import _parzen
from optuna_transfer._parzen import ParzenEstimator


N_OBS = 30
# Two numeric columns (one with a NaN value: marginalised) and a categorical one.
COLUMNS = [np.linspace(0, 1, 5), np.array([0.0, 1.0, 2.0]), np.array([0.0, 0.3, np.nan, 1.0])]
N_CHOICES = [0, 3, 0]


def _estimator() -> tuple[ParzenEstimator, np.ndarray]:
    rng = np.random.default_rng(0)
    obs = np.column_stack(
        [
            rng.uniform(size=N_OBS),
            rng.integers(0, 3, N_OBS).astype(float),
            rng.uniform(size=N_OBS),
        ]
    )
    obs[3, 0] = np.nan  # a trial without the first parameter
    return ParzenEstimator(obs, N_CHOICES), rng.uniform(size=N_OBS)


def _term_by_term(est: ParzenEstimator, values: np.ndarray) -> np.ndarray:
    """smooth_grid's definition: per block of points, every point's kernel terms gathered and
    summed column by column."""
    tables = [est._dimension_log_pdf(j, c)[:, :-1] for j, c in enumerate(COLUMNS)]
    sizes = [len(c) for c in COLUMNS]
    n_points = math.prod(sizes)
    log_w = est._log_w[:-1]
    rows = max(1, _parzen._BLOCK // len(log_w))
    out = np.empty(n_points)
    for start in range(0, n_points, rows):
        stop = min(start + rows, n_points)
        logk = np.broadcast_to(log_w, (stop - start, len(log_w))).copy()
        for table, i in zip(tables, np.unravel_index(np.arange(start, stop), sizes)):
            logk += table[i]
        out[start:stop] = _parzen._kernel_average(logk, values)
    return out


# Blocks of 7 points (every column gathered per point), of 50 (the trailing 12 points added by
# broadcasting, a block ending inside a leading combination), and one block for all 60; each
# exponentiated a point at a time, 4 points (the last column) at a time, or all at once.
@pytest.mark.parametrize("block_points", [7, 50, 1000])
@pytest.mark.parametrize("chunk_points", [1, 4, 1000])
def test_smooth_grid_is_smooth_at_every_grid_point(
    monkeypatch: pytest.MonkeyPatch, block_points: int, chunk_points: int
) -> None:
    monkeypatch.setattr(_parzen, "_BLOCK", block_points * N_OBS)
    monkeypatch.setattr(_parzen, "_CHUNK", chunk_points * N_OBS)
    est, values = _estimator()
    grid = np.array(np.meshgrid(*COLUMNS, indexing="ij")).reshape(len(COLUMNS), -1).T
    got = est.smooth_grid(COLUMNS, values)
    np.testing.assert_allclose(got, est.smooth(grid, values), rtol=1e-12)
    # Summed in the same order as term by term, so equal to the last bit: the ranking of a
    # grid does not change with how its points are blocked.
    np.testing.assert_array_equal(got, _term_by_term(est, values))
    # A regression of values in [0, 1] stays within them, and varies over the grid.
    assert got.min() >= 0.0 and got.max() <= 1.0 and np.ptp(got) > 0.1
