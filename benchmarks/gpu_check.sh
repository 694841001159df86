#!/usr/bin/env bash
# One-shot GPU check of CifarFineTune (see benchmarks/gpu_check.py): full-size synthetic
# CIFAR-10, batch 256 and 1024 with and without CUDA graphs, an injected OOM, one table.
# Needs no network, only a Python with this package and its `vision` extra installed
# ($PYTHON, else .venv/bin/python, else python3). Stopped after 8 minutes, printing what it
# measured by then. Extra arguments go to gpu_check.py, e.g. --out gpu_check.md.
set -euo pipefail
cd "$(dirname "$0")/.."
py="${PYTHON:-}"
if [ -z "$py" ]; then
    if [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; fi
fi
export PYTHONUNBUFFERED=1
# The checkout itself, so that an uninstalled copy (a bare GPU machine) imports it too.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec timeout --signal=INT --kill-after=20 480 "$py" benchmarks/gpu_check.py "$@"
