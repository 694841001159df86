"""A bound on how long a download waits for the network."""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import socket
import threading


# Seconds a download may wait for the network at a time (to connect, or between reads).
DOWNLOAD_TIMEOUT_S = 60.0
_LOCK = threading.Lock()


@contextlib.contextmanager
def bounded_wait() -> Iterator[None]:
    """Within it, a socket that waits :data:`DOWNLOAD_TIMEOUT_S` for the network raises
    ``TimeoutError``. torchvision's and torch.hub's downloads open URLs with no timeout of
    their own: behind a firewall or proxy that swallows the connection they would wait for
    ever, and the trial would stay RUNNING. The socket default is process-wide, so downloads
    take turns."""
    with _LOCK:
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
        try:
            yield
        finally:
            socket.setdefaulttimeout(previous)
