"""Cold-vs-warm benchmark of the optuna-transfer samplers (see ``cold_vs_warm.py``)."""
