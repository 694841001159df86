"""TransferTPESampler: TPE whose priors come from finished source studies.

``_sampler`` holds the sampler (options, Optuna's sampler interface, the cold fallback),
``_search`` how one configuration is chosen (candidates and the vote; no storage access),
``_finite`` how on a categorical search space (every configuration ranked as the grid ranks
its points), and ``_claims`` everything it records in the study and claims there against other
workers.
"""

from optuna_transfer._tpe._claims import COLD_ATTR_KEY
from optuna_transfer._tpe._claims import params_with_running
from optuna_transfer._tpe._claims import PROBE_ATTR_KEY
from optuna_transfer._tpe._claims import RANDOM_ATTR_KEY
from optuna_transfer._tpe._claims import WEIGHTS_ATTR_KEY
from optuna_transfer._tpe._claims import ZERO_SHOT_ATTR_KEY
from optuna_transfer._tpe._sampler import TransferTPESampler


__all__ = [
    "COLD_ATTR_KEY",
    "PROBE_ATTR_KEY",
    "RANDOM_ATTR_KEY",
    "TransferTPESampler",
    "WEIGHTS_ATTR_KEY",
    "ZERO_SHOT_ATTR_KEY",
    "params_with_running",
]
