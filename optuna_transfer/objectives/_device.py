"""Which torch device a trial trains on."""

from __future__ import annotations

from typing import TYPE_CHECKING


if TYPE_CHECKING:
    import torch


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> the first CUDA GPU if there is one, else the CPU; otherwise as given.

    Raises:
        ValueError: The string is not a device torch knows.
        RuntimeError: A CUDA device was asked for but CUDA (or that GPU) is not available.
    """
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
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
