"""optuna-dashboard shows the transfer: checked through the dashboard's own JSON API."""

from __future__ import annotations

from collections.abc import Iterator
import json
from pathlib import Path
import threading
from typing import Any
import urllib.request
from wsgiref.simple_server import make_server
from wsgiref.simple_server import WSGIRequestHandler

import optuna
from optuna.study import StudyDirection
from optuna.trial import Trial
import optuna_dashboard
import pytest

from optuna_transfer import TransferTPESampler
from optuna_transfer.visualization import annotate_for_dashboard
from optuna_transfer.visualization import with_transfer_attrs


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - wsgiref's name
        pass


def _objective(trial: Trial) -> float:
    x = trial.suggest_float("x", -5, 5)
    y = trial.suggest_float("y", -5, 5)
    return (x - 1) ** 2 + (y + 2) ** 2


@pytest.fixture()
def storage_url(tmp_path: Path) -> str:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    related = optuna.create_study(
        study_name="related", storage=url, sampler=optuna.samplers.RandomSampler(0)
    )
    related.optimize(_objective, n_trials=20)
    misleading = optuna.create_study(
        study_name="misleading",
        storage=url,
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(1),
    )
    misleading.optimize(_objective, n_trials=20)
    sampler = TransferTPESampler.from_storage(url, ["related", "misleading"], seed=0)
    target = optuna.create_study(study_name="target", storage=url, sampler=sampler)
    target.optimize(with_transfer_attrs(_objective), n_trials=10)
    return url


@pytest.fixture()
def dashboard(storage_url: str) -> Iterator[str]:
    """The dashboard's WSGI app served on a free local port; yields its base URL."""
    server = make_server(
        "127.0.0.1", 0, optuna_dashboard.wsgi(storage_url), handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.loads(response.read())


def _study_detail(base: str, name: str) -> dict[str, Any]:
    studies = _get(f"{base}/api/studies")["study_summaries"]
    study_id = next(s["study_id"] for s in studies if s["study_name"] == name)
    detail: dict[str, Any] = _get(f"{base}/api/studies/{study_id}")
    return detail


def test_dashboard_shows_roles_weights_note_and_figure(
    storage_url: str, dashboard: str
) -> None:
    # After the run, from storage alone, as a user would.
    annotate_for_dashboard(optuna.load_study(study_name="target", storage=storage_url))
    # Again: the note and the figure are replaced, not duplicated.
    annotate_for_dashboard(optuna.load_study(study_name="target", storage=storage_url))

    detail = _study_detail(dashboard, "target")
    target = optuna.load_study(study_name="target", storage=storage_url)
    stored = {t.number: t for t in target.trials}
    roles = []
    for trial in detail["trials"]:
        attrs = {a["key"]: a["value"] for a in trial["user_attrs"]}
        roles.append(attrs["transfer:role"])
        raw = stored[trial["number"]].system_attrs.get("transfer_tpe:weights")
        if raw is not None:
            for label, w in json.loads(raw):
                assert attrs[f"transfer:weight:{label}"] == str(round(w, 3))
    assert roles[:2] == ["zero-shot", "zero-shot"]
    assert roles.count("probe") == 1
    # Weights are numeric user attrs, so the trial table can sort by them.
    sortable = {a["key"]: a["sortable"] for a in detail["union_user_attrs"]}
    assert sortable["transfer:weight:related"] is True

    note = detail["note"]
    assert note["version"] == 2
    assert "**related** voted in" in note["body"]
    assert "| 0 | zero-shot |" in note["body"]
    graphs = detail["plotly_graph_objects"]
    assert [g["id"] for g in graphs] == ["transfer-source-weights"]
    names = {t.get("name") for t in json.loads(graphs[0]["graph_object"])["data"]}
    assert {"weight: related", "weight: misleading", "zero-shot trial", "probe trial"} <= names


def test_annotate_without_weights_says_so(storage_url: str, dashboard: str) -> None:
    annotate_for_dashboard(optuna.load_study(study_name="related", storage=storage_url))
    note = _study_detail(dashboard, "related")["note"]["body"]
    assert "not run with TransferTPESampler" in note


def _two_objectives(trial: Trial) -> tuple[float, float]:
    value = _objective(trial)
    return value, 1.0 / (1.0 + value)


def test_annotate_a_multi_objective_study_draws_the_chosen_objective(
    storage_url: str, dashboard: str
) -> None:
    # On main annotate_for_dashboard had no `target`, and plot_source_weights (which it calls)
    # refuses a multi-objective study without one: such a study could not be annotated.
    directions: list[StudyDirection] = [StudyDirection.MINIMIZE, StudyDirection.MAXIMIZE]
    source = optuna.create_study(
        study_name="mo-source", storage=storage_url, directions=directions
    )
    source.optimize(_two_objectives, n_trials=20)
    sampler = TransferTPESampler(source, seed=0)
    study = optuna.create_study(
        study_name="mo-target", storage=storage_url, directions=directions, sampler=sampler
    )
    study.optimize(_two_objectives, n_trials=8)

    with pytest.raises(ValueError, match="pass `target`"):
        annotate_for_dashboard(study)
    assert _study_detail(dashboard, "mo-target")["note"]["body"] == ""  # nothing written

    annotate_for_dashboard(study, target=lambda t: t.values[1], target_name="accuracy")
    detail = _study_detail(dashboard, "mo-target")
    first = study.trials[0]
    assert f"| 0 | zero-shot | {first.values[0]:.4g}, {first.values[1]:.4g} |" in (
        detail["note"]["body"]
    )
    figure = json.loads(detail["plotly_graph_objects"][0]["graph_object"])
    drawn = next(t for t in figure["data"] if t.get("name") == "accuracy")
    assert drawn["y"] == [t.values[1] for t in study.trials]
