"""Plots and optuna-dashboard views of what the transfer sampler believed.

Follows :mod:`optuna.visualization`: :func:`plot_source_weights` returns a Plotly figure
(``pip install 'optuna-transfer[plot]'``); :mod:`optuna_transfer.visualization.matplotlib` has
the same plot returning matplotlib Axes. :func:`annotate_for_dashboard` and
:func:`with_transfer_attrs` put the same information where optuna-dashboard shows it;
:func:`source_summary` says in a few lines which sources earned a vote and until when.
"""

from optuna_transfer.visualization import matplotlib
from optuna_transfer.visualization._dashboard import annotate_for_dashboard
from optuna_transfer.visualization._dashboard import source_summary
from optuna_transfer.visualization._dashboard import with_transfer_attrs
from optuna_transfer.visualization._source_weights import plot_source_weights


__all__ = [
    "annotate_for_dashboard",
    "matplotlib",
    "plot_source_weights",
    "source_summary",
    "with_transfer_attrs",
]
