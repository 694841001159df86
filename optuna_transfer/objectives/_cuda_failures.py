"""Which exceptions mean "this configuration needs more memory than the device has".

Those fail one trial and leave the process healthy, so the objective records them and lets the
study go on. Errors that poison the CUDA context for the rest of the process (an illegal memory
access, a device-side assert, an ECC error) are deliberately not on the list: every later trial
in that process would fail too, so they propagate and stop the worker, which must be restarted.
"""

from __future__ import annotations


# Message fragment -> what to tell the user. Matched case-sensitively against str(error); the
# first match wins. torch.OutOfMemoryError ("CUDA out of memory. Tried to allocate ...") and
# the plain RuntimeErrors raised by CUDA calls and by cuBLAS/cuDNN handles when they cannot get
# memory all land here.
_MEMORY_FAILURES: tuple[tuple[str, str], ...] = (
    ("out of memory", "GPU out of memory"),
    ("CUBLAS_STATUS_ALLOC_FAILED", "cuBLAS could not allocate memory"),
    ("CUDNN_STATUS_ALLOC_FAILED", "cuDNN could not allocate memory"),
    ("CUDNN_STATUS_NOT_ENOUGH_WORKSPACE", "cuDNN could not get enough workspace memory"),
    ("CUSOLVER_STATUS_ALLOC_FAILED", "cuSOLVER could not allocate memory"),
    ("CUFFT_ALLOC_FAILED", "cuFFT could not allocate memory"),
    ("DefaultCPUAllocator: can't allocate memory", "CPU out of memory"),
)


def memory_failure(error: BaseException) -> str | None:
    """A short description if ``error`` is an out-of-memory failure a study should survive,
    else ``None``."""
    import torch

    if isinstance(error, torch.OutOfMemoryError):
        return "GPU out of memory"
    if not isinstance(error, RuntimeError):
        return None
    message = str(error)
    for fragment, description in _MEMORY_FAILURES:
        if fragment in message:
            return description
    return None
