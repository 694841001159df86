"""OptunaHub entry for WarmStartGridSampler: the sampler itself lives in ``optuna_transfer``."""

from __future__ import annotations

from optuna_transfer import neighbourhood_grid
from optuna_transfer import WarmStartGridSampler


__all__ = ["WarmStartGridSampler", "neighbourhood_grid"]
