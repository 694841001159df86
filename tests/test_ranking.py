"""Pareto fronts of the target's trials (several objectives), checked against the definition."""

from __future__ import annotations

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import numpy as np

from optuna_transfer._ranking import non_domination_ranks


def _dominates(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(a <= b) and np.any(a < b))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.integers(1, 3).flatmap(
        lambda m: st.tuples(
            st.just(m),
            st.lists(st.lists(st.integers(0, 3), min_size=m, max_size=m), max_size=30),
        )
    )
)
def test_fronts_are_peeled_by_the_definition(case: tuple[int, list[list[int]]]) -> None:
    # Small integer values: many ties and duplicate rows, where a front is easiest to get wrong.
    m, rows = case
    losses = np.array(rows, dtype=float).reshape(len(rows), m)
    ranks = non_domination_ranks(losses)
    assert ranks.shape == (len(rows),)
    remaining = set(range(len(rows)))
    front = 0
    while remaining:
        expected = {
            i for i in remaining if not any(_dominates(losses[j], losses[i]) for j in remaining)
        }
        assert {i for i in remaining if ranks[i] == front} == expected
        remaining -= expected
        front += 1
    assert (ranks < front).all()


def test_a_chain_of_dominated_points_is_one_front_each() -> None:
    losses = np.array([[3.0, 3.0], [0.0, 0.0], [2.0, 2.0], [1.0, 1.0], [1.0, 1.0]])
    assert non_domination_ranks(losses).tolist() == [3, 0, 2, 1, 1]
