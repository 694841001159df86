"""WarmStartGridSampler: order, adaptation, parallel claims, scoring."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
import threading
from typing import Any
import warnings

import numpy as np
import optuna
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial
import pytest

from optuna_transfer import neighbourhood_grid
from optuna_transfer import WarmStartGridSampler
from optuna_transfer._grid import _claims
from optuna_transfer._grid import GRID_ID_ATTR_KEY
from optuna_transfer._grid import PROBE_ATTR_KEY
from optuna_transfer._grid import REPEAT_ATTR_KEY
from optuna_transfer._parzen import ParzenEstimator


optuna.logging.set_verbosity(optuna.logging.WARNING)
GRID_X = [float(x) for x in np.linspace(-10, 10, 21)]


def _quadratic_source(centre: float, n: int = 40, seed: int = 0) -> optuna.Study:
    # A TPE study over a *continuous* range: its trials rarely hit grid points exactly.
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(lambda t: (t.suggest_float("x", -10, 10) - centre) ** 2, n_trials=n)
    return study


def _grid_source(best: float) -> optuna.Study:
    # A source that evaluated every grid point of GRID_X; best at ``best``.
    source = optuna.create_study()
    for x in GRID_X:
        source.enqueue_trial({"x": x})
    source.optimize(lambda t: abs(t.suggest_float("x", -10, 10) - best), n_trials=len(GRID_X))
    return source


def _xs_of(sampler: WarmStartGridSampler, n_trials: int, best: float = 4.0) -> list[float]:
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: abs(t.suggest_float("x", -10, 10) - best), n_trials=n_trials)
    return [t.params["x"] for t in study.trials]


def test_source_best_point_comes_first_from_grid_evaluations() -> None:
    # One source: the portfolio is its best two points (4, then 3 or 5: a tie), then the
    # probe, then local steps around 4 visit both neighbours.
    xs = _xs_of(WarmStartGridSampler(_grid_source(4.0), {"x": GRID_X}), 6)
    assert xs[0] == 4.0 and xs[1] in (3.0, 5.0)
    assert {3.0, 5.0} <= set(xs), xs


def test_zero_shot_portfolio_takes_each_sources_best_in_turn() -> None:
    sources = [_grid_source(4.0), _grid_source(-6.0)]
    assert _xs_of(WarmStartGridSampler(sources, {"x": GRID_X}), 2) == [4.0, -6.0]
    xs = _xs_of(WarmStartGridSampler(sources, {"x": GRID_X}, n_zero_shot=3), 3)
    assert xs[:2] == [4.0, -6.0] and xs[2] in (3.0, 5.0), xs
    # Without a portfolio the ranking alone decides: both sources score 4 and -6 alike, so the
    # first point is one of them, and there is no probe.
    xs = _xs_of(WarmStartGridSampler(sources, {"x": GRID_X}, n_zero_shot=0), 1)
    assert xs[0] in (4.0, -6.0)
    with pytest.raises(ValueError, match="n_zero_shot"):
        WarmStartGridSampler(sources, {"x": GRID_X}, n_zero_shot=-1)


def test_the_trial_after_the_portfolio_is_a_probe_far_from_it() -> None:
    # The ranking would put a neighbour of 4 (3 or 5) third, every seed; the probe takes the
    # point farthest from the portfolio instead, which the source also rates its worst.
    source = _grid_source(4.0)
    for s in range(8):
        xs = _xs_of(WarmStartGridSampler(source, {"x": GRID_X}, seed=s), 3)
        farthest = max(GRID_X, key=lambda x: min(abs(x - p) for p in xs[:2]))
        assert xs[2] == farthest, xs
    ranked = [p["x"] for p in WarmStartGridSampler(source, {"x": GRID_X}).ranked_grid()]
    assert ranked[:3] in ([4.0, 3.0, 5.0], [4.0, 5.0, 3.0])


def test_the_probe_goes_where_the_sources_predict_the_worst_among_far_points() -> None:
    sources = [_grid_source(4.0), _grid_source(-6.0), _grid_source(8.0)]
    for s in range(4):
        study = optuna.create_study(sampler=WarmStartGridSampler(sources, {"x": GRID_X}, seed=s))
        # The target is best where every source is bad: misleading sources.
        study.optimize(lambda t: abs(t.suggest_float("x", -10, 10) + 10.0), n_trials=4)
        xs = [t.params["x"] for t in study.trials]
        assert sorted(xs[:3]) == [-6.0, 4.0, 8.0]
        # The farthest point from the portfolio is -1 (5 from 4 and -6); -10 is 4 from -6,
        # but two of the three sources rate it their worst point.
        assert xs[3] == -10.0, xs
        assert study.trials[3].system_attrs.get(PROBE_ATTR_KEY) is True
        assert study.best_trial.number == 3


def test_continuous_source_informs_the_grid() -> None:
    sampler = WarmStartGridSampler(_quadratic_source(2.0), {"x": GRID_X, "k": ["a"]}, seed=0)
    ranked = [p["x"] for p in sampler.ranked_grid()]
    # The source's good region is where its best 10% (4 trials) lie: around 2, not at the edges.
    assert abs(ranked[0] - 2.0) <= 1.0, ranked
    def spread(xs: list[float]) -> float:
        return float(np.mean([abs(x - 2.0) for x in xs]))

    assert spread(ranked[:5]) < spread(ranked[-5:]), ranked


def test_several_sources_and_seeded_ties() -> None:
    sources = [_quadratic_source(2.0, seed=1), _quadratic_source(3.0, seed=2)]
    a = WarmStartGridSampler(sources, {"x": GRID_X}, seed=5).ranked_grid()
    b = WarmStartGridSampler(sources, {"x": GRID_X}, seed=5).ranked_grid()
    assert a == b
    assert a[0]["x"] in (2.0, 3.0)
    # A source with no information on the grid parameter: order is the seeded permutation.
    uninformed = optuna.create_study()
    uninformed.optimize(lambda t: t.suggest_float("other", 0, 1), n_trials=5)
    orders = {
        tuple(
            p["x"] for p in WarmStartGridSampler(uninformed, {"x": GRID_X}, seed=s).ranked_grid()
        )
        for s in range(3)
    }
    assert len(orders) == 3


def test_adapts_to_target_evidence_against_the_source() -> None:
    # The source says x = 8; the target's optimum is at x = -8.
    source = _quadratic_source(8.0)
    sampler = WarmStartGridSampler(source, {"x": GRID_X}, seed=0)
    before = sampler.ranked_grid()[0]["x"]
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: (t.suggest_float("x", -10, 10) + 8.0) ** 2, n_trials=12)
    after = [p["x"] for p in sampler.ranked_grid(study)]
    assert before >= 6.0
    visited = {t.params["x"] for t in study.trials}
    next_up = [x for x in after if x not in visited][0]
    assert next_up <= 0.0, (next_up, [t.params["x"] for t in study.trials])
    assert study.best_value <= 4.0


def test_misleading_source_hands_the_start_to_a_random_walk() -> None:
    # 2-D grid; the source optimised the negated target, so its favourites are the target's
    # worst corner. Once two target trials refute it, the early trials walk the grid at random
    # (as GridSampler would) instead of ranking points by a model of that corner.
    space = {"x": GRID_X, "y": GRID_X}

    def target(t: optuna.Trial) -> float:
        return (t.suggest_float("x", -10, 10) - 3) ** 2 + (t.suggest_float("y", -10, 10) + 3) ** 2

    source = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    source.optimize(lambda t: -target(t), n_trials=60)
    visits = []
    for seed in range(5):
        sampler = WarmStartGridSampler(source, space, seed=seed)
        study = optuna.create_study(sampler=sampler)
        study.optimize(target, n_trials=10)
        visits.append([(t.params["x"], t.params["y"]) for t in study.trials])
        weights_now = sampler._ranking_score(study, study.trials)[1]
        assert weights_now < 0.5  # the source has lost its vote
    # Trials 3-9 of different seeds go to different places (random walks), and they are not
    # the source's corner: on average far from its best point.
    src_best = (source.best_params["x"], source.best_params["y"])
    late = [v[3:] for v in visits]
    assert len({tuple(v) for v in late}) == 5
    dist = np.mean([np.hypot(x - src_best[0], y - src_best[1]) for v in late for x, y in v])
    assert dist > 8.0, dist
    # The source's own order would have stayed much closer to its favourites.
    ranked = WarmStartGridSampler(source, space, seed=0).ranked_grid()[:7]
    ranked_dist = np.mean([np.hypot(p["x"] - src_best[0], p["y"] - src_best[1]) for p in ranked])
    assert dist > 1.5 * ranked_dist, (dist, ranked_dist)


def test_grid_log_pdf_matches_parzen_log_pdf() -> None:
    rng = np.random.default_rng(0)
    obs = np.column_stack(
        [rng.uniform(size=30), rng.integers(0, 3, 30).astype(float), rng.uniform(size=30)]
    )
    obs[3, 0] = np.nan
    est = ParzenEstimator(obs, [0, 3, 0], prior_share=0.1)
    cols = [np.linspace(0, 1, 5), np.array([0.0, 1, 2]), np.array([0, 0.3, np.nan, 1])]
    grid = np.array(np.meshgrid(*cols, indexing="ij")).reshape(3, -1).T
    np.testing.assert_allclose(est.log_pdf_grid(cols), est.log_pdf(grid), atol=1e-9)


def test_ranking_a_62208_point_grid() -> None:
    # Its speed is a benchmark matter (the grid suites' sampler ms/trial include building it).
    space: dict[str, list[Any]] = {
        "a": ["relu", "tanh"],
        "b": ["relu", "tanh"],
        "bs": [8, 16, 32, 64],
        "d1": [0.0, 0.3, 0.6],
        "d2": [0.0, 0.3, 0.6],
        "lr": [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1],
        "s": ["cosine", "const"],
        "n1": [16, 32, 64, 128, 256, 512],
        "n2": [16, 32, 64, 128, 256, 512],
    }
    source = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    source.optimize(
        lambda t: sum(hash(str(t.suggest_categorical(k, v))) % 7 for k, v in space.items()),
        n_trials=200,
    )
    sampler = WarmStartGridSampler(source, space)
    study = optuna.create_study(sampler=sampler)
    study.optimize(
        lambda t: sum(len(str(t.suggest_categorical(k, v))) for k, v in space.items()), 5
    )
    assert len({t.system_attrs[GRID_ID_ATTR_KEY] for t in study.trials}) == 5


def test_errors() -> None:
    source = _quadratic_source(0.0, n=3)
    with pytest.raises(ValueError, match="more than"):
        WarmStartGridSampler(source, {f"p{i}": list(range(10)) for i in range(8)})
    with pytest.raises(ValueError, match="empty"):
        WarmStartGridSampler(source, {"x": []})
    with pytest.raises(TypeError, match="search_space"):
        WarmStartGridSampler(source, [("x", [1])])  # type: ignore[arg-type]
    failed = optuna.create_study()
    failed.optimize(lambda t: float("nan"), n_trials=2)
    with pytest.raises(ValueError, match="no usable trials"):
        WarmStartGridSampler(failed, {"x": [1, 2]})
    with pytest.raises(ValueError, match="empty"):
        WarmStartGridSampler([], {"x": [1, 2]})


def test_a_value_given_twice_is_warned() -> None:
    source = _quadratic_source(0.0, n=3)
    # Two grid points (as with GridSampler), so each configuration with it runs twice.
    with pytest.warns(UserWarning, match=r"`search_space\['x'\]` lists 1.0 twice"):
        sampler = WarmStartGridSampler(source, {"x": [0.0, 1.0, 2.0, 1.0]})
    assert sampler._space.n_points == 4
    # True and 1 are different grid values (GridSampler's equality), not a repeat.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        WarmStartGridSampler(source, {"flag": [True, 1, "1"]})


def test_a_partly_enqueued_trial_names_the_missing_parameter() -> None:
    # On main the error (GridSampler's) said only that all parameters must be specified.
    sampler = WarmStartGridSampler(_quadratic_source(0.0, n=3), {"x": [0.0, 1.0], "y": [1, 2]})
    study = optuna.create_study(sampler=sampler)
    study.enqueue_trial({"x": 0.0})
    with pytest.raises(ValueError, match="no value for 'y'.*parameters \\('x', 'y'\\)"):
        study.optimize(lambda t: t.suggest_float("x", 0, 1) + t.suggest_int("y", 1, 2), 1)
    assert study.trials[0].state == optuna.trial.TrialState.FAIL


def test_claim_race_second_writer_gives_way() -> None:
    # Trial 0 picks a point; before its write lands, trial 1 runs its whole claim on the same
    # point. Trial 0 (the lower number, but the second writer) must see trial 1 and move on.
    sampler = WarmStartGridSampler(_quadratic_source(2.0), {"x": GRID_X}, seed=0)
    study = optuna.create_study(sampler=sampler)
    storage = study._storage
    original = storage.set_trial_system_attr
    state = {"done": False}

    def interleaved(trial_id: int, key: str, value: Any) -> None:
        if key == GRID_ID_ATTR_KEY and not state["done"]:
            state["done"] = True
            other = storage.create_new_trial(study._study_id)
            sampler.before_trial(study, storage.get_trial(other))
        original(trial_id, key, value)

    storage.set_trial_system_attr = interleaved  # type: ignore[method-assign]
    first = storage.create_new_trial(study._study_id)
    sampler.before_trial(study, storage.get_trial(first))
    ids = [t.system_attrs[GRID_ID_ATTR_KEY] for t in storage.get_all_trials(study._study_id)]
    assert len(ids) == 2 and ids[0] != ids[1]


def test_claim_race_where_both_lose_the_last_point_still_evaluates_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Two workers B and C claim the last free point; both write before either reads, so both
    # see the other and lose. A lost claim must be withdrawn at once: were each to wait for the
    # other's claim to settle, both would wait out the settle timeout (made endless here) and
    # then repeat a point, possibly both the same one, leaving the last point unevaluated.
    monkeypatch.setattr(_claims, "_SETTLE_TIMEOUT_S", 3600.0)
    # C would see B still looking for a point and leave it the last one; workers that rank the
    # points differently (other seeds, random walks) still collide like this, so the test
    # turns that deference off to force the collision.
    monkeypatch.setattr(_claims.ClaimProtocol, "claimers_ahead", lambda *_: (0, 0))
    grid = {"x": [0.0, 1.0]}
    trials = _quadratic_source(0.0, n=10).trials
    study = optuna.create_study(sampler=WarmStartGridSampler(trials, grid, seed=0))
    storage = study._storage
    holder = storage.create_new_trial(study._study_id)  # A: holds the other point, running
    study.sampler.before_trial(study, storage.get_trial(holder))
    study_c = optuna.load_study(
        study_name=study.study_name, storage=storage, sampler=WarmStartGridSampler(trials, grid)
    )
    b = storage.create_new_trial(study._study_id)
    c = storage.create_new_trial(study._study_id)
    write = storage.set_trial_system_attr
    wrote = {b: threading.Event(), c: threading.Event()}
    errors: list[BaseException] = []
    workers: list[threading.Thread] = []

    def claim(s: optuna.Study, number: int) -> None:
        try:
            s.sampler.before_trial(s, storage.get_trial(number))
        except BaseException as e:  # reported to the main thread
            errors.append(e)
            wrote[number].set()

    def hooked_write(trial_id: int, key: str, value: Any) -> None:
        first_claim = (
            key == GRID_ID_ATTR_KEY and trial_id in wrote and not wrote[trial_id].is_set()
        )
        if first_claim and trial_id == b:
            # C reads the claims and picks the same point before B's claim lands ...
            workers.append(threading.Thread(target=claim, args=(study_c, c), daemon=True))
            workers[-1].start()
            assert wrote[c].wait(timeout=60)
        write(trial_id, key, value)
        if first_claim:
            wrote[trial_id].set()
            if trial_id == c:
                # ... and reads them again only after B's claim landed: both see both.
                assert wrote[b].wait(timeout=60)

    storage.set_trial_system_attr = hooked_write  # type: ignore[method-assign]
    workers.append(threading.Thread(target=claim, args=(study, b), daemon=True))
    workers[0].start()
    workers[0].join(timeout=30)  # B starts C before its own claim lands
    for worker in workers[1:]:
        worker.join(timeout=30)
    assert len(workers) == 2 and not any(w.is_alive() for w in workers), "a claimer hangs"
    assert not errors
    claimed = {n: storage.get_trial(n).system_attrs for n in (holder, b, c)}
    first = sorted(a[GRID_ID_ATTR_KEY] for a in claimed.values() if REPEAT_ATTR_KEY not in a)
    assert first == [0, 1], claimed
    assert sum(REPEAT_ATTR_KEY in a for a in claimed.values()) == 1, claimed


def _worker(path: str, trials: list[FrozenTrial], grid: dict[str, list[float]]) -> None:
    storage = optuna.storages.JournalStorage(JournalFileBackend(path))
    sampler = WarmStartGridSampler(trials, grid, seed=0)
    study = optuna.load_study(study_name="grid", storage=storage, sampler=sampler)
    study.optimize(lambda t: (t.suggest_float("x", -10, 10) - 1) ** 2 + t.suggest_int("k", 0, 1))


def test_four_processes_on_a_journal_file_never_repeat_a_point(tmp_path: Path) -> None:
    path = str(tmp_path / "journal.log")
    storage = optuna.storages.JournalStorage(JournalFileBackend(path))
    optuna.create_study(study_name="grid", storage=storage)
    grid = {"x": [float(x) for x in np.linspace(-10, 10, 20)], "k": [0, 1]}
    trials = _quadratic_source(1.0, n=20).trials
    # Spawned, not forked: pytest's process has threads by now (earlier tests', the storage's),
    # and a fork copies any lock one of them holds (Python 3.12+ warns of the deadlock).
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(path, trials, grid)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    study = optuna.load_study(study_name="grid", storage=storage)
    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    first_claims = [
        t.system_attrs[GRID_ID_ATTR_KEY] for t in done if REPEAT_ATTR_KEY not in t.system_attrs
    ]
    # Every point evaluated; no point evaluated twice while an unclaimed point remained (a trial
    # repeats a point only once all 40 were claimed: at most one per other worker).
    assert sorted(first_claims) == list(range(40))
    assert len(done) - len(first_claims) <= 3


def _twelve_trials(path: str, name: str, trials: list[FrozenTrial], grid: dict[str, Any]) -> None:
    storage = optuna.storages.JournalStorage(JournalFileBackend(path))
    sampler = WarmStartGridSampler(trials, grid, seed=0)  # the same seed in every worker
    study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
    study.optimize(
        lambda t: (t.suggest_float("x", -10, 10) - 1) ** 2 + t.suggest_int("k", 0, 1),
        n_trials=12,
    )


def test_same_seed_processes_cover_the_grid_before_any_repeat(tmp_path: Path) -> None:
    # Four workers with one seed, 12 trials each, on a 40-point grid: more trials than points,
    # and an instant objective, so a trial that lost a claim used to be overtaken by the other
    # workers' newer trials until every point was taken, and then repeated one (a repeat among
    # the first 40 trials in about 2 of 5 rounds). Three rounds, each its own study.
    path = str(tmp_path / "journal.log")
    storage = optuna.storages.JournalStorage(JournalFileBackend(path))
    grid = {"x": [float(x) for x in np.linspace(-10, 10, 20)], "k": [0, 1]}
    trials = _quadratic_source(1.0, n=20).trials
    ctx = multiprocessing.get_context("spawn")  # as in the test above
    for round_ in range(3):
        name = f"grid{round_}"
        optuna.create_study(study_name=name, storage=storage)
        procs = [
            ctx.Process(target=_twelve_trials, args=(path, name, trials, grid)) for _ in range(4)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=120)
            assert p.exitcode == 0
        study = optuna.load_study(study_name=name, storage=storage)
        done = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
        first = done[:40]
        assert [t.number for t in first if REPEAT_ATTR_KEY in t.system_attrs] == [], round_
        assert sorted(t.system_attrs[GRID_ID_ATTR_KEY] for t in first) == list(range(40))
        assert len(done) - 40 <= 3


def test_neighbourhood_grid() -> None:
    grid = neighbourhood_grid(
        {"lr": 1e-3, "weight_decay": 1e-4, "bs": 64},
        {"lr": (0.1, 1, 10), "weight_decay": (0.1, 1, 10)},
        keep=["bs"],
    )
    assert grid == {"lr": [1e-4, 1e-3, 1e-2], "weight_decay": [1e-5, 1e-4, 1e-3], "bs": [64]}
    grid = neighbourhood_grid(
        {"bs": 64, "dropout": 0.3, "act": "relu", "extra": 1},
        {"bs": (0.5, 1, 2)},
        offsets={"dropout": (-0.1, 0, 0.1)},
        values={"act": ["relu", "gelu"]},
        keep=[],  # keeps nothing more: "extra" stays out
    )
    assert grid == {"bs": [32, 64, 128], "dropout": [0.2, 0.3, 0.4], "act": ["relu", "gelu"]}
    study = optuna.create_study()
    study.enqueue_trial({"x": 2.0})
    study.optimize(lambda t: t.suggest_float("x", 0, 10), n_trials=1)
    assert neighbourhood_grid(study, offsets={"x": (-1, 0, 1)}) == {"x": [1.0, 2.0, 3.0]}
    with pytest.raises(ValueError, match="both"):
        neighbourhood_grid({"x": 1.0}, {"x": (1,)}, offsets={"x": (0,)})
    with pytest.raises(ValueError, match="not in `best_params`"):
        neighbourhood_grid({"x": 1.0}, {"y": (1,)})
    with pytest.raises(ValueError, match="non-numeric"):
        neighbourhood_grid({"x": "a"}, {"x": (1,)})
