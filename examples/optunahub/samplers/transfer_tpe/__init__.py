"""OptunaHub entry for TransferTPESampler: the sampler itself lives in ``optuna_transfer``."""

from __future__ import annotations

from optuna_transfer import TransferTPESampler


__all__ = ["TransferTPESampler"]
