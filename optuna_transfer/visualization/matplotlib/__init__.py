"""Matplotlib versions of :mod:`optuna_transfer.visualization`'s plots (they return Axes)."""

from optuna_transfer.visualization.matplotlib._source_weights import plot_source_weights


__all__ = ["plot_source_weights"]
