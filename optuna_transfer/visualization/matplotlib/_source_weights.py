"""Matplotlib backend of :func:`optuna_transfer.visualization.plot_source_weights`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from typing import TYPE_CHECKING

from optuna.study import Study
from optuna.trial import FrozenTrial

from optuna_transfer.visualization._source_weights import _get_source_weights_info
from optuna_transfer.visualization._source_weights import _SourceWeightsInfo
from optuna_transfer.visualization._source_weights import MARKER_Y
from optuna_transfer.visualization._source_weights import TARGET_LABEL


if TYPE_CHECKING:
    from matplotlib.axes import Axes


def plot_source_weights(
    study: Study,
    sampler: Any = None,
    *,
    target: Callable[[FrozenTrial], float] | None = None,
    target_name: str = "Objective Value",
) -> Axes:
    """Plot how much TransferTPESampler trusted each source, trial by trial, with matplotlib.

    .. seealso::
        :func:`optuna_transfer.visualization.plot_source_weights`, which this draws the same
        data as; the arguments are the same.

    Returns:
        The :class:`matplotlib.axes.Axes` of the weights. The objective values are on its
        twin (right) axis, ``ax.figure.axes[1]``.
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError(
            "This plot needs matplotlib, which is not installed: `pip install matplotlib`, "
            "or use the Plotly version, optuna_transfer.visualization.plot_source_weights."
        ) from e
    info = _get_source_weights_info(study, sampler, target, target_name)
    _, ax = plt.subplots()
    _draw(info, ax)
    return ax


def _draw(info: _SourceWeightsInfo, ax: Axes) -> None:
    ax.set_title("Source Weights Plot")
    ax.set_xlabel("Trial")
    ax.set_ylabel("Weight")
    for label in info.labels:
        ax.plot(
            info.weight_numbers,
            info.weights[label],
            ls=":" if label == TARGET_LABEL else "-",
            marker=".",
            label=f"weight: {label}",
        )
    for numbers, name, symbol in (
        (info.zero_shot_numbers, "zero-shot trial", "D"),
        (info.probe_numbers, "probe trial", "x"),
    ):
        if numbers:
            ax.scatter(numbers, [MARKER_Y] * len(numbers), marker=symbol, c="black", s=30,
                       label=name, zorder=3)
    ax.set_ylim(-0.05, MARKER_Y + 0.07)
    right = ax.twinx()
    # The weights (and the legend) in front of the objective values, which are context.
    ax.set_zorder(right.get_zorder() + 1)
    ax.patch.set_visible(False)
    right.set_ylabel(info.target_name)
    if info.values:
        right.scatter(info.value_numbers, info.values, c="grey", s=12, alpha=0.6,
                      label=info.target_name)
    if info.best_values is not None and info.values:
        right.step(info.value_numbers, info.best_values, where="post", c="grey",
                   label="Best Value")
    handles, labels = ax.get_legend_handles_labels()
    right_handles, right_labels = right.get_legend_handles_labels()
    if handles or right_handles:
        ax.legend(handles + right_handles, labels + right_labels, loc="best", fontsize="small",
                  framealpha=0.9)
