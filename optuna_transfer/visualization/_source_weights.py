"""What the transfer sampler believed: per-source weights over trials, read from the study.

The data step (:func:`_get_source_weights_info`) reads only what the sampler recorded in each
trial's system attributes, so it works on a study loaded from storage with no sampler object.
Both backends (Plotly here, matplotlib in :mod:`optuna_transfer.visualization.matplotlib`)
draw the same :class:`_SourceWeightsInfo`.
"""

from __future__ import annotations

from collections.abc import Callable
import json
import math
from typing import Any
from typing import cast
from typing import NamedTuple
from typing import TYPE_CHECKING

import optuna
from optuna.study import Study
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_transfer._arguments import check_study
from optuna_transfer._ranking import violation
from optuna_transfer._tpe import COLD_ATTR_KEY
from optuna_transfer._tpe import PROBE_ATTR_KEY
from optuna_transfer._tpe import RANDOM_ATTR_KEY
from optuna_transfer._tpe import WEIGHTS_ATTR_KEY
from optuna_transfer._tpe import ZERO_SHOT_ATTR_KEY


if TYPE_CHECKING:
    import plotly.graph_objects as go


_logger = optuna.logging.get_logger(__name__)

# What TransferTPESampler records per trial (see its docstring): the weights as a JSON list
# of [label, weight] pairs on every trial it chose by its model; the portfolio entry of each
# zero-shot trial ("null": a claim withdrawn after a collision); the probe; a start-up trial
# sampled at random. A study recorded before the probe key existed has its probe inferred
# (see `_probe_numbers`).
WEIGHTS_KEY = WEIGHTS_ATTR_KEY
ZERO_SHOT_KEY = ZERO_SHOT_ATTR_KEY
PROBE_KEY = PROBE_ATTR_KEY
RANDOM_KEY = RANDOM_ATTR_KEY
_WITHDRAWN = "null"
TARGET_LABEL = "target"

# What each trial was, as shown in the plot, the user attrs and the dashboard note.
ROLE_ZERO_SHOT = "zero-shot"
ROLE_PROBE = "probe"
ROLE_RANDOM = "random"
ROLE_ENQUEUED = "enqueued"
ROLE_TRANSFER = "transfer"
ROLE_COLD = "cold"


class _TrialRecord(NamedTuple):
    number: int
    role: str | None
    weights: dict[str, float] | None


class _SourceWeightsInfo(NamedTuple):
    # Labels in the order the sampler records them ("target" first).
    labels: list[str]
    # Trials the sampler chose with recorded weights, and label -> weight per such trial.
    weight_numbers: list[int]
    weights: dict[str, list[float]]
    zero_shot_numbers: list[int]
    probe_numbers: list[int]
    # Finished trials' values (or ``target(trial)``) and, without a target, the incumbent.
    value_numbers: list[int]
    values: list[float]
    best_values: list[float] | None
    target_name: str


def recorded_weights(trial: FrozenTrial) -> dict[str, float] | None:
    """The weights the sampler recorded for ``trial`` ({label: weight}), or None."""
    raw = trial.system_attrs.get(WEIGHTS_KEY)
    if raw is None:
        return None
    return {str(label): float(w) for label, w in json.loads(raw)}


def _check_sampler(sampler: Any) -> None:
    if sampler is None:
        return
    from optuna_transfer._tpe import TransferTPESampler

    if not isinstance(sampler, TransferTPESampler):
        raise TypeError(
            "`sampler` must be the TransferTPESampler that ran the study, or None to read "
            f"everything from the study's recorded attributes; got {type(sampler).__name__}."
        )


def _is_zero_shot(trial: FrozenTrial) -> bool:
    # A claim withdrawn after a collision with another worker is recorded as "null".
    return trial.system_attrs.get(ZERO_SHOT_KEY, _WITHDRAWN) != _WITHDRAWN


def _probe_numbers(trials: list[FrozenTrial]) -> set[int]:
    """Trial numbers of the probe after the zero-shot portfolio.

    The sampler records it as ``PROBE_KEY``. A study recorded before the sampler did has no
    such key; there the sampler probed at the trial number equal to the portfolio size, and
    every trial before it was zero-shot or enqueued, so the probe is the first trial chosen
    with weights after only such trials.
    """
    if any(PROBE_KEY in t.system_attrs for t in trials):
        return {t.number for t in trials if t.system_attrs.get(PROBE_KEY)}
    for t in sorted(trials, key=lambda t: t.number):
        if _is_zero_shot(t) or _is_enqueued(t):
            continue
        if WEIGHTS_KEY in t.system_attrs:
            return {t.number}
        break
    return set()


def _is_enqueued(trial: FrozenTrial) -> bool:
    return bool(trial.system_attrs.get("fixed_params"))


def trial_records(study: Study, sampler: Any = None) -> list[_TrialRecord]:
    """Per trial of ``study``: its role and the weights the sampler recorded for it.

    Roles: ``"zero-shot"`` (evaluates a source's best configuration), ``"probe"`` (the trial
    after the portfolio, away from it and where the sources predict the worst), ``"random"``
    (a start-up trial sampled at random, where the sampler records it), ``"enqueued"``
    (user-fixed parameters), ``"transfer"`` (chosen by the sampler's own search: the weighted
    vote, its local steps or a categorical space's ranking; the weights say which sources
    still voted), ``"cold"`` (every source refuted and the sampler's own search over: sampled
    by cold TPE), or None (not sampled by TransferTPESampler).
    """
    _check_sampler(sampler)
    trials = study.get_trials(deepcopy=False)
    probes = _probe_numbers(trials)
    return [_trial_record(t, probes) for t in trials]


def in_portfolio_only(records: list[_TrialRecord]) -> bool:
    """Whether ``records`` are of a TransferTPE study that has run only zero-shot trials and
    the probe so far: they record no weights, as a study of another sampler does not."""
    return all(r.weights is None for r in records) and any(
        r.role in (ROLE_ZERO_SHOT, ROLE_PROBE) for r in records
    )


def why_no_weights(study: Study, sampler: Any = None) -> str:
    """Why no trial of ``study`` records weights, where none is a portfolio trial either
    (see :func:`in_portfolio_only`): a clause to follow "No trial records transfer weights: "."""
    from optuna_transfer._tpe import TransferTPESampler

    # The sampler handed in, or the one the study was created with (a loaded study's is
    # Optuna's default): it has sampled nothing yet.
    if isinstance(sampler, TransferTPESampler) or isinstance(study.sampler, TransferTPESampler):
        return "no trial sampled by TransferTPESampler yet"
    # Only another sampler's trials say it was not run with this one; without them (no trial,
    # or only enqueued or parameterless ones) nothing tells which sampler runs the study.
    if any(t.params and not _is_enqueued(t) for t in study.get_trials(deepcopy=False)):
        return "not run with TransferTPESampler (WarmStartGridSampler does not record them)"
    return "no trial sampled yet"


def _trial_record(t: FrozenTrial, probes: set[int]) -> _TrialRecord:
    weights = recorded_weights(t)
    role: str | None
    if _is_zero_shot(t):
        role = ROLE_ZERO_SHOT
    elif t.number in probes:
        role = ROLE_PROBE
    elif _is_enqueued(t):
        role = ROLE_ENQUEUED
    elif t.system_attrs.get(RANDOM_KEY):
        role = ROLE_RANDOM
    elif t.system_attrs.get(COLD_ATTR_KEY):
        role = ROLE_COLD
    elif weights is not None:
        # The sampler's own search (the vote, its local steps, a categorical space's ranking),
        # also once every source has lost its vote: the weights say who still voted.
        role = ROLE_TRANSFER
    else:
        role = None
    return _TrialRecord(t.number, role, weights)


def _get_source_weights_info(
    study: Study,
    sampler: Any,
    target: Callable[[FrozenTrial], float] | None,
    target_name: str,
) -> _SourceWeightsInfo:
    check_study("study", study)
    if target is None and len(study.directions) > 1:
        raise ValueError(
            "The study has several objectives: pass `target` (e.g. "
            "`target=lambda t: t.values[0]`) to choose the value drawn beside the weights."
        )
    records = trial_records(study, sampler)
    labels: list[str] = []
    if sampler is not None:
        labels = [TARGET_LABEL, *sampler.source_names]
    for r in records:
        for label in r.weights or {}:
            if label not in labels:
                labels.append(label)
    weighted = [r for r in records if r.weights is not None]
    weights = {
        label: [(r.weights or {}).get(label, math.nan) for r in weighted] for label in labels
    }
    if not weighted and not in_portfolio_only(records):
        _logger.warning(
            f"No trial of this study records transfer weights: {why_no_weights(study, sampler)}."
        )

    finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    values = [
        float(target(t)) if target is not None else float(cast(float, t.value)) for t in finished
    ]
    best_values: list[float] | None = None
    if target is None:
        # As optuna.visualization.plot_optimization_history: no incumbent for a user-defined
        # target, whose direction is unknown.
        # Only feasible trials make an incumbent, as in plot_optimization_history: none yet is
        # an infinite value, which neither backend draws.
        minimize = study.direction == StudyDirection.MINIMIZE
        pick = min if minimize else max
        none_yet = math.inf if minimize else -math.inf
        best_values = []
        for t, v in zip(finished, values):
            v = v if violation(t) == 0 else none_yet
            best_values.append(v if not best_values else pick(best_values[-1], v))
    return _SourceWeightsInfo(
        labels=labels,
        weight_numbers=[r.number for r in weighted],
        weights=weights,
        zero_shot_numbers=[r.number for r in records if r.role == ROLE_ZERO_SHOT],
        probe_numbers=[r.number for r in records if r.role == ROLE_PROBE],
        value_numbers=[t.number for t in finished],
        values=values,
        best_values=best_values,
        target_name=target_name,
    )


def _import_plotly() -> Any:
    try:
        import plotly.graph_objects as go
    except ImportError as e:
        raise ImportError(
            "plot_source_weights draws with Plotly, which is not installed: "
            "`pip install 'optuna-transfer[plot]'` (or `pip install plotly`), or use "
            "optuna_transfer.visualization.matplotlib.plot_source_weights."
        ) from e
    return go


# Markers drawn above the weights (which lie in [0, 1]) so they never hide a weight line.
MARKER_Y = 1.08


def plot_source_weights(
    study: Study,
    sampler: Any = None,
    *,
    target: Callable[[FrozenTrial], float] | None = None,
    target_name: str = "Objective Value",
) -> go.Figure:
    """Plot how much TransferTPESampler trusted each source, trial by trial.

    Left axis: the weight of each source's vote (its trust when above 1/2, else 0) and of the
    target's own model, for every trial the sampler chose by its model. Zero-shot trials
    (a source's best configuration, evaluated as is) and the probe after them are
    marked above the lines. Right axis: each finished trial's objective value and the
    incumbent (best so far), as in :func:`optuna.visualization.plot_optimization_history`.
    A source whose line drops to 0 has lost its vote; once every source is at 0 the sampler is
    cold TPE.

    Everything is read from the study's recorded trial attributes, so a study loaded with
    :func:`optuna.load_study` needs no sampler.

    Example:

        .. code-block:: python

            from optuna_transfer.visualization import plot_source_weights

            study = optuna.load_study(study_name="target", storage="sqlite:///studies.db")
            plot_source_weights(study).show()

    Args:
        study:
            A study run (in part) with :class:`~optuna_transfer.TransferTPESampler`.
        sampler:
            Optional: the :class:`~optuna_transfer.TransferTPESampler` that ran it. It fixes
            the order of the sources and shows sources no trial has weighed yet.
        target:
            A function giving the value to draw on the right axis for a trial; needed for a
            multi-objective study. With it, the incumbent is not drawn (its direction is
            unknown), as in Optuna's own plots.
        target_name:
            The name of that value, for the axis label.

    Returns:
        A :class:`plotly.graph_objects.Figure`.
    """
    go = _import_plotly()
    info = _get_source_weights_info(study, sampler, target, target_name)
    return _get_source_weights_plot(info, go)


def _get_source_weights_plot(info: _SourceWeightsInfo, go: Any) -> go.Figure:
    fig = go.Figure()
    for label in info.labels:
        fig.add_trace(
            go.Scatter(
                x=info.weight_numbers,
                y=info.weights[label],
                mode="lines+markers",
                name=f"weight: {label}",
                line={"dash": "dot"} if label == TARGET_LABEL else {},
                marker={"size": 5},
            )
        )
    for numbers, name, symbol in (
        (info.zero_shot_numbers, "zero-shot trial", "diamond"),
        (info.probe_numbers, "probe trial", "x"),
    ):
        if numbers:
            fig.add_trace(
                go.Scatter(
                    x=numbers,
                    y=[MARKER_Y] * len(numbers),
                    mode="markers",
                    name=name,
                    marker={"symbol": symbol, "size": 10, "color": "black"},
                    hovertemplate=f"trial %{{x}}: {name}<extra></extra>",
                )
            )
    if info.values:
        fig.add_trace(
            go.Scatter(
                x=info.value_numbers,
                y=info.values,
                mode="markers",
                name=info.target_name,
                yaxis="y2",
                marker={"color": "grey", "size": 5, "opacity": 0.6},
            )
        )
    if info.best_values is not None and info.values:
        fig.add_trace(
            go.Scatter(
                x=info.value_numbers,
                y=info.best_values,
                mode="lines",
                name="Best Value",
                yaxis="y2",
                line={"color": "grey", "shape": "hv"},
            )
        )
    fig.update_layout(
        title="Source Weights Plot",
        xaxis={"title": {"text": "Trial"}},
        yaxis={"title": {"text": "Weight"}, "range": [-0.05, MARKER_Y + 0.07]},
        yaxis2={
            "title": {"text": info.target_name},
            "overlaying": "y",
            "side": "right",
            "showgrid": False,
        },
        # Below the plot: beside it, it would cover the right axis title.
        legend={"orientation": "h", "yanchor": "top", "y": -0.2},
    )
    return fig
