"""Read CIFAR batch files without letting the file run code.

CIFAR's "python version" files are pickles, and ``pickle.load`` on a file from the internet (or
from a shared data directory) runs whatever callable the file names. The batches only need
numpy's array reconstruction, so everything else is refused before it is looked up.
"""

from __future__ import annotations

import io
import os
import pickle
from typing import Any

import numpy as np


class UnsafePickleError(pickle.UnpicklingError):
    """A data file asked to load a global that the CIFAR format never needs."""


def _allowed_globals() -> dict[tuple[str, str], Any]:
    # Taken from numpy's own reduce so that the functions are right for the installed numpy;
    # the real CIFAR files were written by numpy 1.x (``numpy.core``), numpy 2 writes
    # ``numpy._core``: both names map to the same objects without importing the old alias.
    reconstruct = np.ndarray((0,), dtype=np.uint8).__reduce__()[0]
    scalar = np.uint8(0).__reduce__()[0]
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = reconstruct
        allowed[(module, "scalar")] = scalar
    return allowed


_ALLOWED = _allowed_globals()


class _CifarUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"Refusing to load global '{module}.{name}': CIFAR batch files only contain "
                "numpy arrays, lists, numbers and strings, so this file is corrupt or was "
                "crafted to run code. Nothing from it was executed; replace the file with the "
                "official CIFAR archive."
            ) from None


def load_cifar_pickle(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Unpickle one CIFAR batch/meta file, allowing only numpy array reconstruction.

    Keys are returned as ``str`` whether the file was written by Python 2 (the official files,
    read with ``encoding="bytes"`` as the format requires) or by Python 3.

    Raises:
        UnsafePickleError: The file names any other global (e.g. ``os.system``).
        ValueError: The file is no complete pickle (truncated, empty, compressed, another
            format), named with its path.
    """
    with open(path, "rb") as f:
        data = f.read()
    try:
        obj = _CifarUnpickler(io.BytesIO(data), encoding="bytes").load()
    except UnsafePickleError as err:
        raise UnsafePickleError(f"{path}: {err}") from None
    except Exception as err:  # truncated or foreign bytes fail anywhere in the unpickler
        raise ValueError(
            f"{path} is corrupt or incomplete ({type(err).__name__}: {err}). Extract the "
            "official archive again (or write the folder again with write_synthetic_cifar)."
        ) from err
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a pickled dict, got {type(obj).__name__}.")
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}
