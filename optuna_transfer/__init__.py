"""Warm-start Optuna searches from finished studies."""

from optuna_transfer._grid import WarmStartGridSampler
from optuna_transfer._neighbourhood import neighbourhood_grid
from optuna_transfer._redact import redact_url
from optuna_transfer._tpe import TransferTPESampler


__version__ = "0.1.0"

__all__ = ["TransferTPESampler", "WarmStartGridSampler", "neighbourhood_grid", "redact_url"]
