"""The probe after the zero-shot portfolio tests the sources' claim away from their region.

A random probe often landed in the region the portfolio came from (on a ``misleading``
table: the same diverging learning rates), so the target confirmed sources that were wrong
and the search stayed there for many trials. Placed where the portfolio is not, the probe
tells misleading sources from good ones at once.
"""

from __future__ import annotations

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import Trial
import pytest

from optuna_transfer import TransferTPESampler
from optuna_transfer import WarmStartGridSampler
from optuna_transfer._grid._claims import GRID_ID_ATTR_KEY
from optuna_transfer._grid._claims import PROBE_ATTR_KEY as GRID_PROBE_ATTR_KEY
from optuna_transfer._grid._claims import WALK_ATTR_KEY
from optuna_transfer._grid._space import GridSpace
from optuna_transfer._schedule import probe_beat_a_pick
from optuna_transfer._tpe import PROBE_ATTR_KEY
from optuna_transfer._tpe import RANDOM_ATTR_KEY
from optuna_transfer._tpe._search import distance_to_nearest
from optuna_transfer._tpe._search import probe_row


optuna.logging.set_verbosity(optuna.logging.WARNING)


def _corner(trial: Trial) -> float:
    # Best near (8, 8) of [-10, 10]^2.
    x = trial.suggest_float("x", -10, 10)
    y = trial.suggest_float("y", -10, 10)
    return (x - 8) ** 2 + (y - 8) ** 2


def _grid_corner(trial: Trial) -> float:
    x = trial.suggest_int("x", 0, 9)
    y = trial.suggest_int("y", 0, 9)
    return float((x - 8) ** 2 + (y - 8) ** 2)


def test_probe_row_without_source_opinion_takes_the_draw_farthest_from_every_seen_row() -> None:
    space = {
        "x": optuna.distributions.FloatDistribution(0, 1),
        "c": optuna.distributions.CategoricalDistribution(["a", "b"]),
    }
    # Seen near x = 0.9 with choice 0; the last row lacks "c" (a conditional parameter).
    seen = np.array([[0.9, 0.0], [0.95, 0.0], [0.85, np.nan]])

    def no_opinion(rows: np.ndarray) -> np.ndarray:
        return np.full((len(rows), 2), 0.5)

    for seed in range(5):
        u = probe_row(np.random.RandomState(seed), space, seen, 24, no_opinion)
        assert u[1] == 1.0  # the other choice
        assert u[0] < 0.3


def test_probe_row_weighs_distance_and_the_sources_worst_prediction_by_rank() -> None:
    space: dict[str, BaseDistribution] = {"x": optuna.distributions.FloatDistribution(0, 1)}
    seen = np.array([[0.5]])
    draws = np.array([[0.0], [0.05], [0.9], [0.5 + 1e-3]])

    def worst_at_the_top(rows: np.ndarray) -> np.ndarray:
        return rows  # the predicted quantile rises with x

    # Ranks of distance 4, 3, 2, 1 and of predicted badness 1, 2, 4, 3: the draw at 0.9 is
    # not the farthest, but the best of both.
    rng = _Replay(draws)
    u = probe_row(rng, space, seen, len(draws), worst_at_the_top)  # type: ignore[arg-type]
    assert u[0] == 0.9
    assert distance_to_nearest(draws, seen, space).tolist() == pytest.approx(
        [0.5, 0.45, 0.4, 1e-3]
    )


class _Replay:
    """A stand-in for the random generator: ``uniform`` returns the given rows in turn."""

    def __init__(self, rows: np.ndarray) -> None:
        self._values = iter(rows[:, 0].tolist())

    def uniform(self) -> float:
        return next(self._values)


def test_transfer_tpe_probe_lands_away_from_the_portfolio() -> None:
    source = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    source.optimize(_corner, n_trials=60)
    for seed in range(5):
        study = optuna.create_study(sampler=TransferTPESampler(source, seed=seed, n_zero_shot=2))
        study.optimize(_corner, n_trials=3)
        zero_shot, probe = study.trials[:2], study.trials[2]
        assert probe.system_attrs.get(PROBE_ATTR_KEY)
        nearest = min(
            sum(abs(probe.params[k] - t.params[k]) for k in ("x", "y")) for t in zero_shot
        )
        # A uniform draw is this far from the corner's points about a third of the time.
        assert nearest > 20.0, (seed, probe.params, [t.params for t in zero_shot])


def test_grid_probe_lands_away_from_the_portfolio() -> None:
    source = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    source.optimize(_grid_corner, n_trials=40)
    grid = {"x": list(range(10)), "y": list(range(10))}
    for seed in range(5):
        study = optuna.create_study(
            sampler=WarmStartGridSampler(source, grid, seed=seed, n_zero_shot=2)
        )
        study.optimize(_grid_corner, n_trials=3)
        zero_shot, probe = study.trials[:2], study.trials[2]
        assert probe.system_attrs.get(GRID_PROBE_ATTR_KEY)
        nearest = min(
            sum(abs(probe.params[k] - t.params[k]) for k in ("x", "y")) for t in zero_shot
        )
        # A uniform draw is this far from the corner's points about a fifth of the time.
        assert nearest >= 12, (seed, probe.params, [t.params for t in zero_shot])
        assert int(probe.system_attrs[GRID_ID_ATTR_KEY]) >= 0


def test_grid_distance_to_nearest_mixes_unit_and_categorical_distances() -> None:
    space = GridSpace({"a": [1, 2, 3, 4, 5], "c": ["x", "y"], "k": [7]})
    corner = space.id_of({"a": 5, "c": "x", "k": 7})
    assert corner is not None
    distance = space.distance_to_nearest([corner])
    by_params = {tuple(space.params_of(i).values()): d for i, d in enumerate(distance)}
    assert by_params[(5, "x", 7)] == 0.0
    assert by_params[(1, "y", 7)] == 1.0  # both modelled columns at their farthest
    assert by_params[(3, "x", 7)] == 0.25  # half the range on one of two columns
    assert by_params[(5, "y", 7)] == 0.5


def _line(trial: Trial) -> float:
    return (trial.suggest_float("x", 0, 1) - 0.95) ** 2


def _source_with_best_at(best: float) -> list[optuna.trial.FrozenTrial]:
    dist = optuna.distributions.FloatDistribution(0, 1)
    return [
        optuna.trial.create_trial(
            params={"x": x}, distributions={"x": dist}, value=(x - best) ** 2
        )
        for x in np.linspace(0, 1, 41)
    ]


def test_start_up_is_random_while_the_probe_leads_even_if_a_source_keeps_its_trust() -> None:
    # Source A's best (x = 0) is the target's worst, source B's (x = 0.6) is fair; the probe,
    # far from both, lands near 1, beats both, and B, which ranks it second, keeps a vote by
    # ranking the three in nearly the target's order. Chance beat every pick of the sources,
    # so the start-up goes on at random, as cold TPE's, not in local steps from the probe.
    sources = [
        optuna.create_study(study_name=name, storage=None) for name in ("a", "b")
    ]
    for study, best in zip(sources, (0.0, 0.6)):
        study.add_trials(_source_with_best_at(best))
    n_startup = 8
    led = 0
    for seed in range(6):
        sampler = TransferTPESampler(sources, seed=seed, n_startup_trials=n_startup)
        study = optuna.create_study(sampler=sampler)
        study.optimize(_line, n_trials=3 + n_startup)
        probe = study.trials[2]
        assert probe.system_attrs.get(PROBE_ATTR_KEY)
        assert probe.value is not None
        if probe.value > min(t.value for t in study.trials[:2] if t.value is not None):
            continue  # the farthest of the draws fell between the picks (about 1 seed in 10)
        led += 1
        weights = sampler.get_source_weights(study)
        assert weights[3]["b"] > 0.5, weights[3]  # a source still votes
        roles = [t.user_attrs["transfer:role"] for t in study.trials[3:]]
        # Every start-up trial after the probe (the probe is the first of n_startup).
        assert roles[: n_startup - 1] == ["random"] * (n_startup - 1), (seed, roles)
    assert led >= 4


def test_start_up_follows_the_sources_when_their_picks_beat_the_probe() -> None:
    source = optuna.create_study()
    source.add_trials(_source_with_best_at(0.9))
    for seed in range(5):
        sampler = TransferTPESampler(source, seed=seed, n_startup_trials=8)
        study = optuna.create_study(sampler=sampler)
        study.optimize(_line, n_trials=8)
        assert study.trials[2].system_attrs.get(PROBE_ATTR_KEY)
        roles = [t.user_attrs["transfer:role"] for t in study.trials[3:]]
        assert "random" not in roles, (seed, roles)
        assert study.best_value < 1e-3


def _grid_line(trial: Trial) -> float:
    return float((trial.suggest_int("x", 0, 20) - 19) ** 2)


def test_grid_walks_at_random_while_the_probe_leads_even_if_a_source_keeps_its_trust() -> None:
    # The grid version of the TransferTPE test above: on 0..20, source A's best (0) is the
    # target's worst, B's (12) fair, and the probe (20, farthest from both) the best.
    dist = optuna.distributions.IntDistribution(0, 20)
    sources = []
    for name, best in (("a", 0), ("b", 12)):
        study = optuna.create_study(study_name=name)
        study.add_trials(
            [
                optuna.trial.create_trial(
                    params={"x": x}, distributions={"x": dist}, value=float((x - best) ** 2)
                )
                for x in range(21)
            ]
        )
        sources.append(study)
    n_startup = 8
    near_probe = 0
    for seed in range(5):
        sampler = WarmStartGridSampler(
            sources, {"x": list(range(21))}, seed=seed, n_startup_trials=n_startup
        )
        study = optuna.create_study(sampler=sampler)
        study.optimize(_grid_line, n_trials=n_startup)
        assert [t.params["x"] for t in study.trials[:3]] == [0, 12, 20]
        assert study.trials[2].system_attrs.get(GRID_PROBE_ATTR_KEY)
        # From the third finished trial until the start-up ends, each trial walks.
        walks = [bool(t.system_attrs.get(WALK_ATTR_KEY)) for t in study.trials[3:]]
        assert all(walks), (seed, [t.params["x"] for t in study.trials])
        near_probe += sum(t.params["x"] >= 17 for t in study.trials[3:])
    # Local steps from the probe would take 19, 18, 17 first in every run (15 of these 25).
    assert near_probe < 10


def _fails_above_half(trial: Trial) -> float:
    # The sources' best region (x near 0.9) fails on the target, as an out-of-memory batch size
    # would; the objective still improves towards the failing edge.
    x = trial.suggest_float("x", 0, 1)
    if x > 0.5:
        raise RuntimeError("out of memory")
    return (x - 0.45) ** 2


def test_a_probe_that_completes_where_the_picks_failed_is_not_chance_beating_them() -> None:
    # The picks were not beaten on their values: they failed, which says where the target
    # fails, not that the sources rank it wrongly (as trust ignores failures). So the
    # start-up keeps following the sources' prior trust, with a few random trials at most.
    source = optuna.create_study()
    source.add_trials(_source_with_best_at(0.9))
    n_random = 0
    for seed in range(5):
        sampler = TransferTPESampler(source, seed=seed, n_zero_shot=2, n_startup_trials=10)
        study = optuna.create_study(sampler=sampler)
        study.optimize(_fails_above_half, n_trials=10, catch=(RuntimeError,))
        assert [t.state for t in study.trials[:2]] == [optuna.trial.TrialState.FAIL] * 2
        probe = study.trials[2]
        assert probe.system_attrs.get(PROBE_ATTR_KEY)
        assert probe.state == optuna.trial.TrialState.COMPLETE
        n_random += sum(bool(t.system_attrs.get(RANDOM_ATTR_KEY)) for t in study.trials[3:])
    # With the prior trust (about 0.6) a start-up trial is random with probability about
    # 0.15: some 5 of these 35; all 35 if the probe counted as having beaten the picks.
    assert n_random < 20, n_random


def _lopsided_source() -> list[optuna.trial.FrozenTrial]:
    # Best at x = 0.5; three times as bad per unit of distance above it as below it.
    dist = optuna.distributions.FloatDistribution(0, 1)
    return [
        optuna.trial.create_trial(
            params={"x": x},
            distributions={"x": dist},
            value=abs(x - 0.5) * (3.0 if x > 0.5 else 1.0),
        )
        for x in np.linspace(0.0, 1.0, 41)
    ]


def test_transfer_tpe_probe_goes_where_the_sources_predict_the_worst() -> None:
    # The portfolio sits at x = 0.5, so the draws nearest 0 and nearest 1 are about as far from
    # it; the source predicts the upper side worse, and that is where its claim is tested. A
    # probe chosen by distance alone takes either side, about half the time each.
    source = _lopsided_source()
    upper = 0
    for seed in range(10):
        study = optuna.create_study(sampler=TransferTPESampler(source, seed=seed))
        study.optimize(lambda t: (t.suggest_float("x", 0, 1) - 0.3) ** 2, n_trials=3)
        probe = study.trials[2]
        assert probe.system_attrs.get(PROBE_ATTR_KEY)
        assert abs(probe.params["x"] - 0.5) > 0.25  # still away from the portfolio
        upper += probe.params["x"] > 0.5
    assert upper >= 9, upper


def _plateau_beside_a_basin(trial: Trial) -> float:
    # Diverged runs everywhere (about 1, slightly better towards x = 0.6) except a basin around
    # 0.3 that no source knows; the sources' picks (0 and 0.6) and the probe (near 1) all lie on
    # the plateau.
    x = trial.suggest_float("x", 0, 1)
    if abs(x - 0.3) < 0.1:
        return (x - 0.3) ** 2
    return 1.0 + 0.01 * abs(x - 0.6)


def test_a_probe_that_beats_a_pick_is_followed_by_a_random_trial() -> None:
    # Source A's pick (x = 0) is the worst of the three, the probe beat it, and B ranks all three
    # in the target's order, so B keeps its vote. Trust alone would leave the start-up to
    # local steps along the plateau from B's pick; the probe having beaten a pick, the next
    # trial is drawn at random, to test the picks against a typical configuration.
    sources = [optuna.create_study(study_name=name) for name in ("a", "b")]
    for study, best in zip(sources, (0.0, 0.6)):
        study.add_trials(_source_with_best_at(best))
    for seed in range(5):
        sampler = TransferTPESampler(sources, seed=seed, n_startup_trials=8)
        study = optuna.create_study(sampler=sampler)
        study.optimize(_plateau_beside_a_basin, n_trials=4)
        picks, probe, after = study.trials[:2], study.trials[2], study.trials[3]
        assert probe.system_attrs.get(PROBE_ATTR_KEY)
        values = [picks[0].value, picks[1].value, probe.value]
        assert None not in values
        assert values[1] < values[2] < values[0], (seed, probe.params)  # type: ignore[operator]
        assert sampler.get_source_weights(study)[3]["b"] > 0.5  # B still votes
        assert after.system_attrs.get(RANDOM_ATTR_KEY), (seed, after.params)


def _role_trial(number: int, value: float | None, role: str) -> optuna.trial.FrozenTrial:
    """A trial of ``role`` ("pick" or "probe") with ``value``, FAIL where it is None."""
    state = optuna.trial.TrialState.FAIL if value is None else optuna.trial.TrialState.COMPLETE
    trial = optuna.trial.create_trial(
        params={"x": 0.5},
        distributions={"x": optuna.distributions.FloatDistribution(0, 1)},
        value=value,
        state=state,
        system_attrs={role: True},
    )
    trial.number = number
    return trial


@pytest.mark.parametrize(
    "direction", [optuna.study.StudyDirection.MINIMIZE, optuna.study.StudyDirection.MAXIMIZE]
)
@pytest.mark.parametrize(
    "picks, probe, beaten",
    [
        ([3.0, 1.0], 2.0, True),  # better than one pick
        ([3.0, 1.0], 4.0, False),  # worse than both
        ([3.0, 1.0], 3.0, False),  # a tie is no win
        ([None, 1.0], 2.0, False),  # a failed pick was not beaten on its value
    ],
)
def test_probe_beat_a_pick_compares_completed_values_strictly(
    direction: optuna.study.StudyDirection,
    picks: list[float | None],
    probe: float,
    beaten: bool,
) -> None:
    sign = 1.0 if direction == optuna.study.StudyDirection.MINIMIZE else -1.0
    values = [None if v is None else sign * v for v in [*picks, probe]]
    roles = ["pick"] * len(picks) + ["probe"]
    trials = [_role_trial(i, v, role) for i, (v, role) in enumerate(zip(values, roles))]
    study = optuna.create_study(direction=direction)
    assert (
        probe_beat_a_pick(
            study, trials, lambda t: "probe" in t.system_attrs, lambda t: "pick" in t.system_attrs
        )
        is beaten
    )
