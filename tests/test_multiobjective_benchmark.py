"""The multi-objective suite: 2-D hypervolume, front order, table normalisation, a tiny run."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Literal

import numpy as np
import optuna
import pytest

from benchmarks import multiobjective as mo
from benchmarks.tasks import load_table
from optuna_transfer import TransferTPESampler


def _brute_hypervolume(points: np.ndarray, ref: tuple[float, float]) -> float:
    # Exact by cells: the coordinates cut [min, ref] into rectangles, each dominated or not.
    xs = np.unique(np.append(points[:, 0], ref[0]))
    ys = np.unique(np.append(points[:, 1], ref[1]))
    area = 0.0
    for (x0, x1), (y0, y1) in itertools.product(zip(xs, xs[1:]), zip(ys, ys[1:])):
        if x1 <= ref[0] and y1 <= ref[1] and (
            (points[:, 0] <= x0) & (points[:, 1] <= y0)
        ).any():
            area += (x1 - x0) * (y1 - y0)
    return area


def test_hypervolume_by_hand() -> None:
    assert mo.hypervolume_2d(np.array([[0.5, 0.5]])) == pytest.approx(0.25)
    # Two corners: 0.8 x 0.4 + 0.4 x 0.8 - the 0.4 x 0.4 overlap.
    two = np.array([[0.6, 0.2], [0.2, 0.6]])
    assert mo.hypervolume_2d(two) == pytest.approx(0.48)
    # A dominated point, a point outside the reference box and one on its edge add nothing.
    more = np.vstack([two, [[0.7, 0.7], [1.2, 0.0], [1.0, 0.1]]])
    assert mo.hypervolume_2d(more) == pytest.approx(0.48)
    assert mo.hypervolume_2d(np.empty((0, 2))) == 0.0
    assert mo.hypervolume_2d(np.array([[0.0, 0.0]]), (2.0, 3.0)) == pytest.approx(6.0)


def test_hypervolume_matches_brute_force_on_random_points() -> None:
    rng = np.random.default_rng(0)
    for n in (1, 3, 10, 40):
        # Rounded so that ties in either coordinate occur.
        pts = np.round(rng.uniform(0.0, 1.2, size=(n, 2)), 1)
        assert mo.hypervolume_2d(pts) == pytest.approx(_brute_hypervolume(pts, (1.0, 1.0)))


def test_front_ranks_and_crowding() -> None:
    losses = np.array([[1.0, 4.0], [2.0, 2.0], [4.0, 1.0], [3.0, 3.0], [4.0, 4.0], [2.0, 2.0]])
    # Duplicates share a front; (3, 3) is dominated by (2, 2) only; (4, 4) by (3, 3).
    assert mo.front_ranks(losses).tolist() == [0, 0, 0, 1, 2, 0]
    front = np.array([[0.0, 3.0], [1.0, 1.0], [3.0, 0.0], [2.0, 0.5]])
    # Sorted by objective 0: 0, 1, 2, 3; the inner points get (next - previous) / span per
    # objective: (1, 1): 2/3 + 2.5/3; (2, 0.5): 2/3 + 1/3.
    dist = mo.crowding_distance(front)
    assert np.isinf(dist[[0, 2]]).all()
    assert dist[1] == pytest.approx(4.5 / 3)
    assert dist[3] == pytest.approx(1.0)


def _study(
    points: list[tuple[float, float]], directions: list[Literal["minimize", "maximize"]]
) -> optuna.Study:
    study = optuna.create_study(directions=directions)
    dist = optuna.distributions.FloatDistribution(0, 100)
    for i, values in enumerate(points):
        study.add_trial(optuna.trial.create_trial(
            params={"x": float(i)}, distributions={"x": dist}, values=list(values)))
    return study


def test_top_k_by_front_is_round_robin_over_front_ordered_sources() -> None:
    # Source a (minimise both): front x=0,1,2 (x=1 in the middle, x=0 and 2 extremes),
    # then x=3 on the second front.
    a = _study([(1.0, 5.0), (2.0, 2.0), (5.0, 1.0), (3.0, 3.0)], ["minimize", "minimize"])
    # Source b maximises its first objective: x=1 (acc 9, time 4) dominates x=0 (8, 5).
    b = _study([(8.0, 5.0), (9.0, 4.0)], ["maximize", "minimize"])
    assert [t.number for t in mo.ranked_by_front(a)] == [0, 2, 1, 3]
    assert [t.number for t in mo.ranked_by_front(b)] == [1, 0]
    # Params are the trial numbers, so the two sources share configurations. Round 1: a's
    # x=0, b's x=1; round 2: a's x=2, b's x=0 (a repeat, skipped); round 3: a's x=1
    # (a repeat), a's x=3.
    assert mo.top_k_by_front([a, b], 4) == [{"x": 0.0}, {"x": 1.0}, {"x": 2.0}, {"x": 3.0}]
    assert mo.top_k_by_front([a, b], 2) == [{"x": 0.0}, {"x": 1.0}]


@pytest.fixture(scope="module")
def naval() -> mo.MOTable:
    return mo.load_mo_table("hpolib", "naval_propulsion")


def test_table_agrees_with_the_single_objective_table(naval: mo.MOTable) -> None:
    single = load_table("hpolib", "naval_propulsion")
    np.testing.assert_allclose(naval.losses[:, 0], single.losses)
    params = {name: c[1] for name, c in naval.choices.items()}
    assert naval.index(params) == single.index(params)
    assert (naval.losses[:, 1] > 0).all()  # training time, seconds


def test_normalisations(naval: mo.MOTable) -> None:
    best = naval.losses.min(axis=0)
    worst = naval.losses.max(axis=0)
    rank = naval.normalise(np.vstack([best, worst]), "rank")
    assert rank[0].tolist() == [0.0, 0.0]
    # The worst value: every other configuration is strictly better, bar ties with it.
    assert (rank[1] > 0.99).all() and (rank[1] < 1.0).all()
    q = np.quantile(naval.losses, mo.HIGH_QUANTILE, axis=0)
    lin = naval.normalise(np.vstack([best, worst, (best + q) / 2]), "linear")
    np.testing.assert_allclose(lin, [[0.0, 0.0], [1.0, 1.0], [0.5, 0.5]])
    # The whole table's front reaches the reference box's far corner: close to all of it.
    assert naval.hypervolume(naval.losses, "rank") > 0.99


def test_tiny_run_writes_the_table_and_reuses_sources(tmp_path: Path) -> None:
    out = tmp_path / "mo"
    figure = tmp_path / "fig.md"
    argv = ["--benches", "hpolib", "--seeds", "1", "--n-trials", "5", "--source-trials", "8",
            "--out", str(out), "--figure", str(figure)]
    assert mo.main(argv) == 0
    text = (out / "table.md").read_text()
    assert figure.read_text() == text
    assert "reference point **(1, 1)**" in text
    assert "Failed runs" not in text
    for task in ("naval_propulsion", "parkinsons_telemonitoring", "protein_structure",
                 "slice_localization"):
        assert f"| hpolib/{task} | transfer-tpe |" in text
    storage = optuna.storages.RDBStorage(f"sqlite:///{out / 'studies.db'}")
    names = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    assert names == {mo.source_study_name("hpolib", d, 8, 0) for d in
                     ("naval_propulsion", "parkinsons_telemonitoring", "protein_structure",
                      "slice_localization")}
    stored = mo.source_trials("hpolib", "naval_propulsion", 8, 0, storage)
    fresh = mo.source_trials("hpolib", "naval_propulsion", 8, 0, None)
    assert [t.values for t in stored] == [t.values for t in fresh]


def test_enqueue_run_starts_with_the_sources_best(naval: mo.MOTable) -> None:
    srcs = tuple(
        (d, tuple(mo.source_trials("hpolib", d, 10, 0, None)))
        for d in ("parkinsons_telemonitoring", "protein_structure")
    )
    job = mo.MOJob("hpolib", "naval_propulsion", "tpe+enqueue", 0, 4, 3, srcs)
    result = mo.run_job(job)
    assert result.error is None and result.losses.shape == (4, 2)
    studies = []
    for _, trials in srcs:
        s = optuna.create_study(directions=["minimize", "minimize"])
        s.add_trials(list(trials))
        studies.append(s)
    expected = [naval.losses[naval.index(p)] for p in mo.top_k_by_front(studies, 3)]
    np.testing.assert_allclose(result.losses[:3], expected)
    # Hypervolume per budget never shrinks as trials are added.
    hv = mo.hypervolumes(result, [1, 2, 3, 4], "rank")
    assert hv == sorted(hv) and hv[0] > 0


def test_joint_variant_differs_from_transfer_tpe_only_in_multivariate() -> None:
    srcs = tuple(
        (d, tuple(mo.source_trials("hpolib", d, 10, 0, None)))
        for d in ("parkinsons_telemonitoring", "protein_structure")
    )
    studies = []
    for _, trials in srcs:
        s = optuna.create_study(directions=["minimize", "minimize"])
        s.add_trials(list(trials))
        studies.append(s)
    samplers = {}
    for m in ("transfer-tpe", "transfer-tpe-joint"):
        sampler = mo._sampler(mo.MOJob("hpolib", "naval_propulsion", m, 0, 4, 3, srcs), studies)[0]
        assert isinstance(sampler, TransferTPESampler)
        samplers[m] = sampler
    assert samplers["transfer-tpe"]._multivariate is None  # the default: per parameter
    assert samplers["transfer-tpe-joint"]._multivariate is True
    # One seed stream for both, so a comparison of the two is paired.
    assert samplers["transfer-tpe"]._seed == samplers["transfer-tpe-joint"]._seed


def test_first_seed_runs_held_out_seeds(tmp_path: Path) -> None:
    out = tmp_path / "mo"
    argv = ["--benches", "hpolib", "--methods", "tpe,transfer-tpe-joint", "--seeds", "1",
            "--first-seed", "3", "--n-trials", "3", "--source-trials", "6", "--out", str(out)]
    assert mo.main(argv) == 0
    text = (out / "table.md").read_text()
    assert "* Seeds: 3-3;" in text
    assert "| hpolib/naval_propulsion | transfer-tpe-joint |" in text
    storage = optuna.storages.RDBStorage(f"sqlite:///{out / 'studies.db'}")
    names = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    assert mo.source_study_name("hpolib", "naval_propulsion", 6, 3) in names


@pytest.mark.parametrize("bad", [["--seeds", "0"], ["--first-seed", "-1"]])
def test_an_empty_or_negative_seed_range_is_refused(
    bad: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        mo.main(["--benches", "hpolib", *bad])
    assert "--seeds must be at least 1 and --first-seed at least 0" in capsys.readouterr().err
