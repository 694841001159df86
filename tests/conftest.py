from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
import sys

import pytest


sys.path.insert(0, str(Path(__file__).parent))
import _pg  # noqa: E402


@pytest.fixture(scope="session")
def pg_server() -> Iterator[_pg.Server]:
    """A real PostgreSQL server for the session (installed via tests/postgres.sh if absent)."""
    bin_dir = _pg.ensure_installed()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries absent and tests/postgres.sh could not install")
    with _pg.server(bin_dir) as server:
        yield server
