"""Which torch device a trial trains on, and which GPU a worker process takes."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING


if TYPE_CHECKING:
    import torch


# Read in this order; the first one set wins. ``LOCAL_RANK`` is what torchrun and most
# launchers export, so a launcher-set rank needs no extra configuration.
RANK_ENV_VARS = ("OPTUNA_TRANSFER_RANK", "LOCAL_RANK")


def worker_rank() -> int:
    """This worker's rank: ``$OPTUNA_TRANSFER_RANK``, else ``$LOCAL_RANK``, else 0.

    Raises:
        ValueError: The variable is set but is not an int >= 0.
    """
    for name in RANK_ENV_VARS:
        raw = os.environ.get(name)
        if raw is None or raw.strip() == "":
            continue
        try:
            rank = int(raw)
        except ValueError:
            rank = -1
        if rank < 0:
            raise ValueError(
                f"${name}={raw!r} is not a worker rank; set it to an int >= 0 (worker i of n "
                "uses GPU i % torch.cuda.device_count()) or unset it."
            )
        return rank
    return 0


def require_vision(user: str) -> None:
    """Import torch and torchvision, or say that ``user`` needs the ``vision`` extra.

    Raises:
        ImportError: One of them is not installed (raised from the original error).
    """
    try:
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError as e:
        # As the visualization's missing-Plotly error: the extra's name, not only the module's.
        missing = e.name or "one of them"
        raise ImportError(
            f"{user} needs torch and torchvision, and {missing} is not installed: "
            "`pip install 'optuna-transfer[vision]'` (or `pip install torch torchvision`)."
        ) from e


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> GPU ``rank % device_count()`` if CUDA is available (rank from
    :func:`worker_rank`), else the CPU; otherwise the device as given.

    Raises:
        ValueError: The string is not a device torch knows, or the rank variable is invalid.
        RuntimeError: A CUDA device was asked for but CUDA (or that GPU) is not available.
    """
    import torch

    if device == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        return torch.device("cuda", worker_rank() % torch.cuda.device_count())
    try:
        resolved = torch.device(device)
    except RuntimeError as err:
        raise ValueError(
            f"device={device!r} is not a torch device; use 'auto', 'cpu', 'cuda' or 'cuda:N'."
        ) from err
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"device={device!r} was requested but CUDA is not available on this machine "
                f"(torch {torch.__version__}). Use device='cpu', or 'auto' to take a GPU only "
                "when there is one."
            )
        count = torch.cuda.device_count()
        if resolved.index is not None and resolved.index >= count:
            raise RuntimeError(
                f"device={device!r} was requested but only {count} CUDA device(s) exist; "
                f"use an index below {count}."
            )
    elif resolved.type != "cpu":
        raise ValueError(f"device={device!r}: only 'auto', 'cpu' and CUDA devices are supported.")
    return resolved
