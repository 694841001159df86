"""optuna_transfer.visualization: the plotted data is what the sampler recorded."""

from __future__ import annotations

import json
import logging
from pathlib import Path
import re
import sys
from typing import Any
from typing import cast
from typing import NamedTuple

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial
from optuna.trial import FrozenTrial
from optuna.trial import Trial
import pytest

from optuna_transfer import TransferTPESampler
from optuna_transfer import WarmStartGridSampler
from optuna_transfer.visualization import plot_source_weights
from optuna_transfer.visualization import with_transfer_attrs
import optuna_transfer.visualization.matplotlib as vis_mpl


matplotlib.use("Agg")  # Headless: CI has no display.
plt_source_weights = vis_mpl.plot_source_weights

WEIGHTS = "transfer_tpe:weights"
ZERO_SHOT = "transfer_tpe:zero_shot"
PROBE = "transfer_tpe:probe"
N_TRIALS = 16


def _objective(trial: Trial) -> float:
    x = trial.suggest_float("x", -5, 5)
    y = trial.suggest_float("y", -5, 5)
    return (x - 1) ** 2 + (y + 2) ** 2


def _sources() -> list[optuna.Study]:
    # A finished TPE study of the same objective: informative near the optimum too, where the
    # target's local steps refine (a coarser source loses its trust there, rightly so).
    related = optuna.create_study(
        study_name="related", sampler=optuna.samplers.TPESampler(seed=0)
    )
    related.optimize(_objective, n_trials=60)
    # Maximises the target's loss: its best configurations are the target's worst.
    misleading = optuna.create_study(
        study_name="misleading",
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(1),
    )
    misleading.optimize(_objective, n_trials=25)
    return [related, misleading]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, TransferTPESampler]:
    """A TransferTPESampler study in SQLite, and its sampler."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{tmp_path_factory.mktemp('vis') / 'studies.db'}"
    sampler = TransferTPESampler(_sources(), seed=0)
    study = optuna.create_study(study_name="target", storage=url, sampler=sampler)
    study.optimize(_objective, n_trials=N_TRIALS)
    return url, sampler


def _loaded(url: str) -> optuna.Study:
    # As a user opening the study later: no sampler object.
    return optuna.load_study(study_name="target", storage=url)


class _Recorded(NamedTuple):
    numbers: list[int]
    weights: dict[int, dict[str, float]]
    zero_shot: list[int]
    probe: list[int]
    values: list[float]
    best: list[float]


def _expected(study: optuna.Study) -> _Recorded:
    """What the sampler recorded, read straight from the trials' system attributes."""
    trials = study.get_trials()
    recorded = [t for t in trials if WEIGHTS in t.system_attrs]
    values = [float(cast(float, t.value)) for t in trials]
    return _Recorded(
        numbers=[t.number for t in recorded],
        weights={t.number: dict(json.loads(t.system_attrs[WEIGHTS])) for t in recorded},
        zero_shot=[t.number for t in trials if t.system_attrs.get(ZERO_SHOT, "null") != "null"],
        probe=[t.number for t in trials if t.system_attrs.get(PROBE)],
        values=values,
        best=np.minimum.accumulate(values).tolist(),
    )


def _xy(data: Any) -> list[float]:
    return np.asarray(data, dtype=float).tolist()


def test_plotly_traces_are_the_recorded_weights(run: tuple[str, TransferTPESampler]) -> None:
    url, sampler = run
    study = _loaded(url)
    exp = _expected(study)
    # The sampler's own account of its weights agrees with the attributes read here.
    assert sampler.get_source_weights(study) == exp.weights
    assert exp.zero_shot and exp.probe, "the run has zero-shot trials and a probe"

    fig = plot_source_weights(study)
    traces = {t.name: t for t in fig.data}
    assert set(traces) == {
        "weight: target", "weight: related", "weight: misleading", "zero-shot trial",
        "probe trial", "Objective Value", "Best Value",
    }
    weights = exp.weights
    for label in ("target", "related", "misleading"):
        trace = traces[f"weight: {label}"]
        assert list(trace.x) == exp.numbers
        assert list(trace.y) == [weights[n][label] for n in exp.numbers]
    assert list(traces["zero-shot trial"].x) == exp.zero_shot
    assert list(traces["probe trial"].x) == exp.probe
    assert list(traces["Objective Value"].x) == list(range(N_TRIALS))
    assert list(traces["Objective Value"].y) == exp.values
    assert list(traces["Best Value"].y) == exp.best
    assert traces["Best Value"].yaxis == "y2" and traces["weight: related"].yaxis in (None, "y")
    # The misleading source is refuted by the end; the related one still votes.
    last = weights[exp.numbers[-1]]
    assert last["misleading"] == 0.0 and last["related"] > 0.5


def test_same_plot_with_the_sampler_and_from_storage(
    run: tuple[str, TransferTPESampler],
) -> None:
    url, sampler = run
    study = _loaded(url)
    with_sampler = plot_source_weights(study, sampler)
    without = plot_source_weights(study)
    assert [(t.name, list(t.x), list(t.y)) for t in with_sampler.data] == [
        (t.name, list(t.x), list(t.y)) for t in without.data
    ]


def test_matplotlib_lines_are_the_recorded_weights(run: tuple[str, TransferTPESampler]) -> None:
    study = _loaded(run[0])
    exp = _expected(study)
    weights = exp.weights
    ax = plt_source_weights(study)
    try:
        lines = {line.get_label(): line for line in ax.get_lines()}
        for label in ("target", "related", "misleading"):
            line = lines[f"weight: {label}"]
            assert _xy(line.get_xdata()) == exp.numbers
            assert _xy(line.get_ydata()) == [weights[n][label] for n in exp.numbers]
        markers = {c.get_label(): np.asarray(c.get_offsets()) for c in ax.collections}
        assert _xy(markers["zero-shot trial"][:, 0]) == exp.zero_shot
        assert _xy(markers["probe trial"][:, 0]) == exp.probe
        right = ax.figure.axes[1]
        values = {c.get_label(): np.asarray(c.get_offsets()) for c in right.collections}
        assert _xy(values["Objective Value"][:, 1]) == exp.values
        best = {line.get_label(): line for line in right.get_lines()}["Best Value"]
        assert _xy(best.get_ydata()) == exp.best
        assert ax.get_ylabel() == "Weight" and right.get_ylabel() == "Objective Value"
    finally:
        plt.close("all")


def test_target_replaces_the_value_and_drops_the_incumbent(
    run: tuple[str, TransferTPESampler],
) -> None:
    study = _loaded(run[0])
    fig = plot_source_weights(study, target=lambda t: -t.params["x"], target_name="-x")
    traces = {t.name: t for t in fig.data}
    assert "Best Value" not in traces
    assert list(traces["-x"].y) == [-t.params["x"] for t in study.trials]
    assert fig.layout.yaxis2.title.text == "-x"
    ax = plt_source_weights(study, target=lambda t: -t.params["x"], target_name="-x")
    assert ax.figure.axes[1].get_ylabel() == "-x"
    plt.close("all")


def test_multi_objective_needs_a_target() -> None:
    study = optuna.create_study(directions=["minimize", "minimize"])
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), 1.0), n_trials=2)
    with pytest.raises(ValueError, match="`target`"):
        plot_source_weights(study)
    with pytest.raises(ValueError, match="`target`"):
        plt_source_weights(study)
    fig = plot_source_weights(study, target=lambda t: t.values[1], target_name="second")
    assert list({t.name: t for t in fig.data}["second"].y) == [1.0, 1.0]


def test_wrong_sampler_is_refused_by_name() -> None:
    study = optuna.create_study()
    grid = WarmStartGridSampler(_sources(), {"x": [0.0, 1.0]})
    with pytest.raises(TypeError, match="`sampler` must be the TransferTPESampler"):
        plot_source_weights(study, grid)


def _plot_capturing_logs(study: optuna.Study, caplog: pytest.LogCaptureFixture) -> Any:
    logger = logging.getLogger("optuna_transfer")
    logger.addHandler(caplog.handler)
    try:
        return plot_source_weights(study)
    finally:
        logger.removeHandler(caplog.handler)


def test_study_without_weights_warns_and_plots_only_values(
    caplog: pytest.LogCaptureFixture,
) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(0))
    study.optimize(_objective, n_trials=3)
    fig = _plot_capturing_logs(study, caplog)
    assert "records transfer weights" in caplog.text
    assert [t.name for t in fig.data] == ["Objective Value", "Best Value"]


def test_zero_shot_trials_alone_plot_without_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    # On main the plot of a TransferTPE study two trials in warned it was not run with it.
    study = optuna.create_study(sampler=TransferTPESampler(_sources(), seed=0))
    study.optimize(_objective, n_trials=2)
    fig = _plot_capturing_logs(study, caplog)
    assert "records transfer weights" not in caplog.text
    assert "zero-shot trial" in {t.name for t in fig.data}


def _trial(number: int, value: float, attrs: dict[str, object]) -> FrozenTrial:
    t = create_trial(
        params={"x": float(number)},
        distributions={"x": FloatDistribution(0, 100)},
        value=value,
        system_attrs=attrs,
    )
    t.number = number
    return t


def _weights(related: float) -> str:
    return json.dumps([["target", 1.0], ["related", related]])


def test_probe_inferred_for_studies_recorded_without_the_probe_key() -> None:
    # An earlier sampler version: enqueued trial 0, zero-shot trial 1, probe at trial 2.
    study = optuna.create_study()
    study.add_trials([
        _trial(0, 3.0, {"fixed_params": {"x": 0.0}}),
        _trial(1, 2.0, {ZERO_SHOT: json.dumps({"x": 1.0})}),
        _trial(2, 5.0, {WEIGHTS: _weights(0.6)}),
        _trial(3, 1.0, {WEIGHTS: _weights(0.0)}),
    ])
    traces = {t.name: t for t in plot_source_weights(study).data}
    assert list(traces["zero-shot trial"].x) == [1]
    assert list(traces["probe trial"].x) == [2]
    assert list(traces["weight: related"].y) == [0.6, 0.0]
    assert list(traces["Best Value"].y) == [3.0, 2.0, 2.0, 1.0]


def test_probe_key_and_withdrawn_zero_shot_claims() -> None:
    study = optuna.create_study(direction="maximize")
    study.add_trials([
        _trial(0, 1.0, {ZERO_SHOT: "null", WEIGHTS: _weights(0.7)}),  # claim withdrawn
        _trial(1, 2.0, {ZERO_SHOT: json.dumps({"x": 1.0})}),
        _trial(2, 0.5, {WEIGHTS: _weights(0.8)}),
        _trial(3, 4.0, {WEIGHTS: _weights(0.9), PROBE: True}),
    ])
    traces = {t.name: t for t in plot_source_weights(study).data}
    assert list(traces["zero-shot trial"].x) == [1]
    assert list(traces["probe trial"].x) == [3]
    assert list(traces["Best Value"].y) == [1.0, 2.0, 2.0, 4.0]  # maximised


def test_missing_plotly_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "plotly", None)
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    with pytest.raises(ImportError, match=r"optuna-transfer\[plot\]"):
        plot_source_weights(optuna.create_study())


def test_with_transfer_attrs_writes_the_recorded_weights_as_user_attrs(tmp_path: Path) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'a.db'}", sampler=TransferTPESampler(_sources(), seed=1)
    )
    study.optimize(with_transfer_attrs(_objective), n_trials=8)
    roles = []
    for t in study.trials:
        attrs = t.user_attrs
        roles.append(attrs["transfer:role"])
        if WEIGHTS in t.system_attrs:
            recorded = dict(json.loads(t.system_attrs[WEIGHTS]))
            assert {k: attrs[f"transfer:weight:{k}"] for k in recorded} == {
                k: round(w, 3) for k, w in recorded.items()
            }
            voters = [k for k, w in recorded.items() if k != "target" and w > 0]
            assert attrs["transfer:voters"].startswith(voters[0] if voters else "none")
        else:
            assert not any(k.startswith("transfer:weight:") for k in attrs)
    exp = _expected(study)
    zero_shot, probe = exp.zero_shot, exp.probe
    assert [i for i, r in enumerate(roles) if r == "zero-shot"] == zero_shot
    assert [i for i, r in enumerate(roles) if r == "probe"] == probe
    assert set(roles) <= {"zero-shot", "probe", "random", "transfer", "cold"}


def test_with_transfer_attrs_keeps_the_objective_result_and_errors() -> None:
    def failing(trial: Trial) -> float:
        trial.suggest_float("x", 0, 1)
        raise RuntimeError("boom")

    wrapped = with_transfer_attrs(failing)
    assert wrapped.__name__ == "failing"
    study = optuna.create_study(sampler=TransferTPESampler(_sources(), seed=0))
    with pytest.raises(RuntimeError, match="boom"):
        study.optimize(wrapped, n_trials=1)
    assert study.trials[0].user_attrs["transfer:role"] == "zero-shot"
    study.optimize(with_transfer_attrs(lambda t: t.suggest_float("x", 0, 1)), n_trials=1)
    assert study.trials[1].value == study.trials[1].params["x"]


def test_benchmark_report_plots_one_transfer_run_per_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmarks import cold_vs_warm
    from benchmarks import plots

    drawn: list[Any] = []
    real_draw = plots._draw

    def spy(info: Any, ax: Any) -> None:
        drawn.append(info)
        real_draw(info, ax)

    monkeypatch.setattr(plots, "_draw", spy)
    argv = [
        "--suites", "hpolib", "--methods", "random,transfer-tpe", "--seeds", "2",
        "--n-trials", "6", "--source-trials", "8", "--workers", "1", "--bootstrap", "5",
        "--out", str(tmp_path),
    ]
    assert cold_vs_warm.main(argv) == 0
    png = tmp_path / "hpolib" / "source_weights.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    runs = json.loads((tmp_path / "hpolib" / "curves.json").read_text())["runs"]
    transfer = sorted(
        (r for r in runs if r["method"] == "transfer-tpe" and r["seed"] == 0),
        key=lambda r: r["task"],
    )
    # One panel per task (first seed only), each the weights the sampler reported for it.
    assert len(drawn) == len(transfer) == 4
    for info, run in zip(drawn, transfer):
        reported = {int(k): v for k, v in run["source_weights"].items()}
        assert info.weight_numbers == sorted(reported)
        for label, ys in info.weights.items():
            assert ys == [reported[n][label] for n in info.weight_numbers]
        assert info.values == run["values"]


@pytest.mark.parametrize("sign", [1, -1], ids=["related", "misleading"])
def test_a_trial_is_labelled_cold_only_when_cold_tpe_sampled_it(sign: int) -> None:
    # On main a trial whose sources had all lost their votes was labelled "cold" ("chosen by
    # cold TPE") although the sampler's own local steps chose it.
    from optuna_transfer._tpe import COLD_ATTR_KEY

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    source = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=1))
    source.optimize(lambda t: sign * _objective(t), n_trials=40)
    def moved(t: Trial) -> float:  # the optimum moved a little since the source ran
        return (t.suggest_float("x", -5, 5) - 1.5) ** 2 + (t.suggest_float("y", -5, 5) + 1.5) ** 2

    study = optuna.create_study(sampler=TransferTPESampler(source, seed=0))
    study.optimize(moved, n_trials=30)
    weights = cast(TransferTPESampler, study.sampler).get_source_weights(study)
    roles = {t.number: t.user_attrs["transfer:role"] for t in study.trials}
    model_based = [t for t in study.trials if roles[t.number] in ("transfer", "cold")]
    for t in model_based:
        assert (roles[t.number] == "cold") == bool(t.system_attrs.get(COLD_ATTR_KEY)), t.number
    # Trials that no source voted in: the case that was mislabelled.
    refuted = [t.number for t in model_based if weights[t.number][source.study_name] == 0.0]
    assert refuted
    if sign == 1:
        assert any(roles[n] == "transfer" for n in refuted)
    else:
        assert any(roles[n] == "cold" for n in refuted)


def test_source_summary_names_a_bad_top(run: tuple[str, TransferTPESampler]) -> None:
    # On main top=-1 was a slice: the last source was hidden without a word.
    from optuna_transfer.visualization import source_summary

    study = _loaded(run[0])
    with pytest.raises(ValueError, match=r"`top` must be an integer >= 0 or None, got -1"):
        source_summary(study, top=-1)
    assert source_summary(study, top=1).count("* **") == 1


def _fresh_transfer_study() -> tuple[optuna.Study, TransferTPESampler]:
    source = optuna.create_study(study_name="related", sampler=optuna.samplers.RandomSampler(0))
    source.optimize(_objective, n_trials=5)
    sampler = TransferTPESampler(source, seed=0)
    return optuna.create_study(sampler=sampler), sampler


@pytest.mark.parametrize("enqueued", [False, True])
def test_a_transfer_study_no_trial_was_sampled_in_yet_is_not_said_to_be_another_samplers(
    enqueued: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # On main both said "not run with TransferTPESampler", though the study was created with it
    # (and the plot was even handed the sampler): it had only not sampled a trial yet.
    from optuna_transfer.visualization import source_summary

    study, sampler = _fresh_transfer_study()
    if enqueued:
        study.enqueue_trial({"x": 1.0, "y": -2.0})
        study.optimize(_objective, n_trials=1)
    expected = "no trial sampled by TransferTPESampler yet"
    assert source_summary(study).splitlines()[0] == (
        f"No trial records transfer weights: {expected}."
    )
    logger = logging.getLogger("optuna_transfer")
    logger.addHandler(caplog.handler)
    try:
        plot_source_weights(study, sampler)
    finally:
        logger.removeHandler(caplog.handler)
    assert expected in caplog.text
    assert "not run with" not in caplog.text


def test_a_loaded_study_with_no_sampled_trial_is_not_said_to_be_another_samplers(
    tmp_path: Path,
) -> None:
    # Loaded without its sampler and nothing sampled yet: which sampler will run it is unknown.
    from optuna_transfer.visualization import source_summary

    url = f"sqlite:///{tmp_path / 'studies.db'}"
    optuna.create_study(study_name="target", storage=url).enqueue_trial({"x": 1.0})
    text = source_summary(_loaded(url))
    assert text.splitlines()[0] == "No trial records transfer weights: no trial sampled yet."


def _study_readers() -> dict[str, Any]:
    from optuna_transfer.visualization import annotate_for_dashboard
    from optuna_transfer.visualization import source_summary

    sampler = TransferTPESampler([_trial(0, 1.0, {})], seed=0)
    return {
        "get_source_weights": sampler.get_source_weights,
        "plot_source_weights": plot_source_weights,
        "matplotlib plot_source_weights": plt_source_weights,
        "source_summary": source_summary,
        "annotate_for_dashboard": annotate_for_dashboard,
    }


@pytest.mark.parametrize("reader", list(_study_readers()))
@pytest.mark.parametrize(
    ("given", "shown"), [("target", "str 'target'"), (None, "NoneType None"), ([], "list []")]
)
def test_a_study_that_is_not_a_study_is_named_up_front(
    reader: str, given: Any, shown: str
) -> None:
    # On main each raised "AttributeError: 'str' object has no attribute 'get_trials'" (or
    # 'directions') from deep inside.
    with pytest.raises(
        TypeError,
        match=rf"^`study` must be an optuna\.Study, e\.g\. from optuna\.load_study\(study_name="
        rf"\.\.\., storage=\.\.\.\), got the {re.escape(shown)}\.$",
    ):
        _study_readers()[reader](given)


@pytest.mark.parametrize(("given", "shown"), [(None, "NoneType None"), ("f", "str 'f'")])
def test_with_transfer_attrs_refuses_a_non_callable_up_front(given: Any, shown: str) -> None:
    # On main it wrapped anything and failed only when the first trial called it.
    with pytest.raises(
        TypeError,
        match=rf"^`objective` must be the objective function study\.optimize calls \(it takes "
        rf"a trial\), got the {re.escape(shown)}\.$",
    ):
        with_transfer_attrs(given)
