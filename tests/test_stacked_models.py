"""Many sources at once: the stacked source models equal the per-source ones, bit for bit.

TransferTPESampler evaluates every source's smoothed ranking together
(``optuna_transfer._parzen.StackedSmoother``), built from all sources' observations in a few
array operations. Sampled params must not depend on that, so the kernels, and the predictions
made from them, are compared exactly with those of one ``ParzenEstimator`` per source.
"""

from __future__ import annotations

import numpy as np
import pytest

from optuna_transfer._parzen import ParzenEstimator
from optuna_transfer._parzen import StackedSmoother
from optuna_transfer._similarity import rank_agreement
from optuna_transfer._similarity import rank_agreements


# Numeric, numeric on a coarse grid (many equal values), categorical with 3 choices.
N_CHOICES = [0, 0, 3]


def _observations(rng: np.random.Generator, n: int) -> np.ndarray:
    obs = np.column_stack(
        [
            rng.uniform(size=n),
            rng.integers(0, 4, size=n) / 3.0,
            rng.integers(0, 3, size=n).astype(float),
        ]
    )
    # Parameters some trials do not have (conditional, or out of the target's range).
    obs[rng.uniform(size=obs.shape) < 0.15] = np.nan
    return obs


def _sources(seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    sizes = [0, 1, 2, 3, 40, 7, 1, 120, 2]  # empty, single, pairs, and larger sources
    observations = [_observations(rng, n) for n in sizes]
    # A source with one dimension missing throughout, and one whose values all tie.
    observations.append(np.column_stack([np.full(5, np.nan), rng.uniform(size=5), np.ones(5)]))
    observations.append(np.column_stack([np.full(6, 0.25), np.full(6, 1.0), np.zeros(6)]))
    values = [rng.uniform(size=len(o)) for o in observations]
    return observations, values


@pytest.mark.parametrize("seed", range(4))
def test_stacked_kernels_equal_one_estimator_per_source(seed: int) -> None:
    observations, values = _sources(seed)
    fast = StackedSmoother.from_observations(observations, N_CHOICES, values)
    slow = StackedSmoother([ParzenEstimator(o, N_CHOICES) for o in observations], values)
    for name in ("_mus", "_sigmas", "_log_z", "_log_w", "_mu0", "_inv_sigma", "_norm"):
        assert np.array_equal(getattr(fast, name), getattr(slow, name), equal_nan=True), name
    assert np.array_equal(fast._cat_probs[2], slow._cat_probs[2])
    assert np.array_equal(fast._starts, slow._starts)
    assert np.array_equal(fast._stops, slow._stops)


@pytest.mark.parametrize("seed", range(4))
def test_stacked_predictions_equal_each_estimator_alone(seed: int) -> None:
    observations, values = _sources(seed)
    smoother = StackedSmoother.from_observations(observations, N_CHOICES, values)
    rng = np.random.default_rng(100 + seed)
    x = _observations(rng, 9)
    # Both evaluation paths: all sources at once, and a few of them (as for the voters).
    nonempty = [i for i, o in enumerate(observations) if len(o)]
    for which in (nonempty, nonempty[:3]):
        got = smoother.smooth(x, which)
        for k, i in enumerate(which):
            alone = ParzenEstimator(observations[i], N_CHOICES).smooth(x, values[i])
            np.testing.assert_allclose(got[:, k], alone, rtol=1e-12, atol=1e-12)
    assert np.array_equal(smoother.smooth(x, nonempty)[:, :3], smoother.smooth(x, nonempty[:3]))


def test_rank_agreements_with_ties_in_every_source_equal_the_pairwise_definition() -> None:
    # Smoothed predictions often repeat a value exactly (one kernel dominates), so most
    # sources have tied scores: the tie handling is the common path, not an edge case.
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 6, size=(50, 30)).astype(float)
    scores[:, 0] = rng.uniform(size=50)  # one source without ties
    scores[:, 1] = 0.5  # one that ties everywhere
    losses = rng.integers(0, 20, size=50).astype(float)
    fast = rank_agreements(scores, losses)
    slow = [rank_agreement(scores[:, k], losses) for k in range(scores.shape[1])]
    np.testing.assert_allclose(fast, slow, atol=1e-12)
    assert fast[1] == 0.0
