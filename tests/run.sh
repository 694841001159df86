#!/usr/bin/env bash
# The README's test command: makes .venv, installs the package with every extra the tests need,
# then runs the whole suite. Safe to re-run; extra pytest arguments are passed through.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[dev,bench,vision]'
.venv/bin/python -m ruff check optuna_transfer tests benchmarks examples
.venv/bin/python -m mypy optuna_transfer
.venv/bin/python -m pytest -q "$@"
