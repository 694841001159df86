"""Reference objectives for transfer experiments (torch/torchvision: the ``vision`` extra).

Importing this package needs neither torch nor torchvision; they are imported when an
objective is built or run.
"""

from __future__ import annotations

import importlib
from typing import Any
from typing import TYPE_CHECKING


if TYPE_CHECKING:
    from optuna_transfer.objectives._cifar_data import CifarNotFoundError
    from optuna_transfer.objectives._cifar_data import write_synthetic_cifar
    from optuna_transfer.objectives._cifar_model import UnsafeCheckpointError
    from optuna_transfer.objectives._cifar_model import WeightsUnavailableError
    from optuna_transfer.objectives._cifar_objective import CifarFineTune
    from optuna_transfer.objectives._cifar_pretrain import pretrain_checkpoint
    from optuna_transfer.objectives._safe_pickle import UnsafePickleError

_EXPORTS = {
    "CifarFineTune": "_cifar_objective",
    "CifarNotFoundError": "_cifar_data",
    "UnsafeCheckpointError": "_cifar_model",
    "UnsafePickleError": "_safe_pickle",
    "WeightsUnavailableError": "_cifar_model",
    "pretrain_checkpoint": "_cifar_pretrain",
    "write_synthetic_cifar": "_cifar_data",
}

__all__ = [
    "CifarFineTune",
    "CifarNotFoundError",
    "UnsafeCheckpointError",
    "UnsafePickleError",
    "WeightsUnavailableError",
    "pretrain_checkpoint",
    "write_synthetic_cifar",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # Later look-ups skip this function.
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
