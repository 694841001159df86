"""The grid ranking's percentile: average ranks among all points, NaN below everything."""

from __future__ import annotations

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import numpy as np

from optuna_transfer._grid._ranking import percentile


# Few distinct values, so ties are common; infinities and NaN (a point no model scores).
VALUES = st.sampled_from([-np.inf, -1.5, 0.0, 0.25, 2.0, np.inf, np.nan])


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(VALUES, min_size=1, max_size=40))
def test_percentile_is_the_average_rank_over_the_number_of_points(values: list[float]) -> None:
    raw = np.array(values)
    n = len(raw)
    got = percentile(raw)
    # The definition, pair by pair: NaN (no score) below every number, -inf included; equal
    # values share their mean rank.
    key = [(not np.isnan(v), 0.0 if np.isnan(v) else v) for v in raw]
    below = np.array([sum(k < ki for k in key) for ki in key])
    equal = np.array([sum(k == ki for k in key) for ki in key])
    np.testing.assert_array_equal(got, (below + (equal + 1) / 2) / n)
    # Ranks 1..n in all, however they tie.
    assert np.isclose(got.sum() * n, n * (n + 1) / 2)
