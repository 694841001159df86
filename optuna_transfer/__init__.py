"""Warm-start Optuna searches from finished studies."""

from optuna_transfer._redact import redact_url


__version__ = "0.1.0"

__all__ = ["redact_url"]
