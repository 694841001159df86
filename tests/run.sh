#!/usr/bin/env bash
# The README's test command. Sets up everything it needs on a fresh clone: a .venv with the
# package and all extras the tests use (torch included), and the PostgreSQL server binaries the
# multi-worker tests start (Debian package, installed only when absent). Then lint, type-check
# and run the whole suite, and the core tests against the lowest dependency versions
# (tests/lowest.sh). Safe to re-run; extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[dev,bench,vision]'
# Best effort: without root the PostgreSQL tests skip with a visible reason.
bash tests/postgres.sh || echo "tests/run.sh: PostgreSQL could not be installed; its tests will skip"
.venv/bin/python -m ruff check optuna_transfer tests benchmarks examples
.venv/bin/python -m mypy optuna_transfer tests benchmarks examples
.venv/bin/python -m pytest -q "$@"
# A run of selected tests (arguments given) leaves the lowest-versions run out.
if [ $# -eq 0 ]; then
    bash tests/lowest.sh
fi
