"""The agreed zero-shot portfolio (``optuna_transfer._schedule.agreed_portfolio``)."""

from __future__ import annotations

import numpy as np
import optuna
from optuna.distributions import FloatDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial

from optuna_transfer._schedule import agreed_portfolio
from optuna_transfer._schedule import round_robin_portfolio
from optuna_transfer._sources import SourceTask


def _task(name: str, xs: list[float]) -> SourceTask:
    """A source whose trials, best first, sit at ``xs``."""
    trials = [
        optuna.trial.create_trial(
            params={"x": x}, distributions={"x": FloatDistribution(0, 1)}, value=float(i)
        )
        for i, x in enumerate(xs)
    ]
    return SourceTask.from_trials(name, trials, [StudyDirection.MINIMIZE])


def _key(t: FrozenTrial) -> float:
    return float(t.params["x"])


def _rating(table: dict[float, list[float]]):  # type: ignore[no-untyped-def]
    def predict(trials: list[FrozenTrial]) -> np.ndarray:
        return np.array([table[t.params["x"]] for t in trials])

    return predict


def test_sources_that_agree_get_their_joint_favourite_first() -> None:
    # Each source's own best is poor for the other two; 0.3 (second best of source a) is
    # good for all three.
    tasks = [_task("a", [0.1, 0.3]), _task("b", [0.5, 0.3]), _task("c", [0.9, 0.3])]
    ratings = {
        0.1: [0.0, 0.7, 0.8],
        0.5: [0.6, 0.0, 0.6],
        0.9: [0.8, 0.7, 0.0],
        0.3: [0.05, 0.05, 0.05],
    }
    portfolio = agreed_portfolio(tasks, 2, _key, _rating(ratings))
    assert portfolio[0][1].params == {"x": 0.3}
    assert portfolio[0][0] == 0  # reached first through source a's list
    # Round robin would start with the sources' own bests, none of which the others like.
    assert [t.params["x"] for _, t in round_robin_portfolio(tasks, 2, _key)] == [0.1, 0.5]


def test_sources_that_disagree_each_get_one_of_theirs() -> None:
    # Every configuration is good for its own source only: the portfolio hedges.
    tasks = [_task("a", [0.1, 0.2]), _task("b", [0.5, 0.6]), _task("c", [0.9, 0.8])]
    ratings = {
        0.1: [0.0, 0.9, 0.9],
        0.2: [0.1, 0.9, 0.9],
        0.5: [0.9, 0.0, 0.9],
        0.6: [0.9, 0.1, 0.9],
        0.9: [0.9, 0.9, 0.0],
        0.8: [0.9, 0.9, 0.1],
    }
    portfolio = agreed_portfolio(tasks, 3, _key, _rating(ratings))
    assert sorted(i for i, _ in portfolio) == [0, 1, 2]
    assert sorted(t.params["x"] for _, t in portfolio) == [0.1, 0.5, 0.9]


def test_portfolio_skips_configs_that_do_not_fit_and_repeats() -> None:
    tasks = [_task("a", [0.1, 0.3]), _task("b", [0.3, 0.5])]
    ratings = {0.1: [0.0, 0.2], 0.3: [0.1, 0.0], 0.5: [0.4, 0.1]}
    portfolio = agreed_portfolio(
        tasks, 5, lambda t: None if t.params["x"] == 0.5 else _key(t), _rating(ratings)
    )
    assert [t.params["x"] for _, t in portfolio] == [0.3, 0.1]


def test_one_candidate_needs_no_rating() -> None:
    def fail(trials: list[FrozenTrial]) -> np.ndarray:
        raise AssertionError("not called")

    portfolio = agreed_portfolio([_task("a", [0.4])], 3, _key, fail)
    assert [t.params["x"] for _, t in portfolio] == [0.4]
