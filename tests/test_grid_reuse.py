"""One WarmStartGridSampler for several studies (issue 13, item 2): each is ranked by its own
trials."""

from __future__ import annotations

from _grid_support import added
from _grid_support import distance_to
from _grid_support import grid_source
from _grid_support import GRID_X
import optuna

from optuna_transfer import WarmStartGridSampler


optuna.logging.set_verbosity(optuna.logging.ERROR)


def test_one_sampler_on_two_studies_ranks_each_by_its_own_trials() -> None:
    source = grid_source(4.0)
    sampler = WarmStartGridSampler(source, {"x": GRID_X}, seed=0)
    first = optuna.create_study(sampler=sampler)
    second = optuna.create_study(sampler=sampler)
    xs = (-8.0, -2.0, 0.0, 6.0, 9.0)
    for x in xs:
        first.add_trial(added(x, abs(x - 4.0)))
        second.add_trial(added(x, abs(x + 8.0)))  # the opposite end is best here
    # Both in-memory studies have study id 0 and the same trial numbers.
    ranked_first = sampler.ranked_grid(first)
    ranked_second = sampler.ranked_grid(second)
    fresh = WarmStartGridSampler(source, {"x": GRID_X}, seed=0)
    assert ranked_second == fresh.ranked_grid(second)
    assert ranked_second != ranked_first
    # And the trial it samples next is the one a fresh sampler samples.
    second.optimize(distance_to(-8.0), n_trials=1)
    copy = optuna.create_study(sampler=WarmStartGridSampler(source, {"x": GRID_X}, seed=0))
    for x in xs:
        copy.add_trial(added(x, abs(x + 8.0)))
    copy.optimize(distance_to(-8.0), n_trials=1)
    assert second.trials[-1].params == copy.trials[-1].params


def test_the_cache_does_not_outlive_its_storage() -> None:
    # Studies built and dropped in a loop: a new storage may reuse a dropped one's id(), and
    # must not be served the dropped study's ranking.
    source = grid_source(4.0)
    sampler = WarmStartGridSampler(source, {"x": GRID_X}, seed=0)
    for i, best in enumerate((-8.0, 8.0, -4.0, 0.0, 6.0, -10.0)):
        study = optuna.create_study(sampler=sampler)
        for x in (-8.0, -4.0, 0.0, 6.0, 10.0):
            study.add_trial(added(x, abs(x - best)))
        fresh = WarmStartGridSampler(source, {"x": GRID_X}, seed=0)
        assert sampler.ranked_grid(study) == fresh.ranked_grid(study), i
        del study
