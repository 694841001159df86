"""The grid ranking's parts against their definitions: the percentile of a score among the
grid's points, and each source's trust from the target's trials."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import numpy as np
import optuna
from optuna.trial import create_trial
from optuna.trial import FrozenTrial

from optuna_transfer._grid._ranking import GridRanker
from optuna_transfer._grid._ranking import percentile
from optuna_transfer._grid._space import GridSpace
from optuna_transfer._similarity import rank_agreement
from optuna_transfer._similarity import trust
from optuna_transfer._sources import load_sources


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


XS = [0.0, 1.0, 2.0, 3.0, 4.0]
YS = ["a", "b", "c"]
GRID: dict[str, list[Any]] = {"x": XS, "y": YS}
DISTS = {
    "x": optuna.distributions.FloatDistribution(0.0, 4.0),
    "y": optuna.distributions.CategoricalDistribution(YS),
}


def _loss(params: dict, best_x: float) -> float:
    return (params["x"] - best_x) ** 2 + (params["y"] != "b")


def _study(best_x: float, points: list[tuple[float, str]]) -> optuna.Study:
    study = optuna.create_study()
    study.add_trials(
        [
            create_trial(
                value=_loss({"x": x, "y": y}, best_x), params={"x": x, "y": y}, distributions=DISTS
            )
            for x, y in points
        ]
    )
    return study


def test_each_sources_trust_is_its_pairwise_agreement_on_the_trials_points() -> None:
    every = [(x, y) for x in XS for y in YS]
    # A related source (the target's optimum) and a misleading one (the far corner).
    sources = [_study(1.0, every[::2]), _study(4.0, every[1::2])]
    ranker = GridRanker(GridSpace(GRID), load_sources(sources), 0, seed=0)
    target = _study(1.0, [(0.0, "a"), (1.0, "b"), (2.0, "c"), (3.0, "b"), (4.0, "a"), (1.0, "c")])
    finished: list[FrozenTrial] = target.get_trials()
    losses = np.array([t.value for t in finished])
    ids = np.array([GridSpace(GRID).id_of(t.params) for t in finished])
    # Two of the losses tie: that pair is left out, as the definition says.
    expected = [
        trust(rank_agreement(ranker._source_scores[s, ids], losses), len(finished))
        for s in range(len(sources))
    ]
    got = ranker._trusts(ids, losses)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    related, misleading = got
    assert related > 0.9 > 0.1 > misleading
    assert ranker.rank(finished, losses).max_trust == related
