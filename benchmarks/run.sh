#!/usr/bin/env bash
# The README's main-job command: a quick cold-vs-warm run on the HPOLib suite (3 seeds x 50
# target trials, 50-trial source studies; a few minutes with setup on 2 cores). For the full
# benchmark pass options through, e.g. `bash benchmarks/run.sh --seeds 10 --n-trials 100`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[bench]'
# Later options override these defaults (argparse keeps the last value). The script prints
# where it wrote each suite's table, plot and curves, and its studies: the options passed
# through decide them, so they are not echoed here.
.venv/bin/python -m benchmarks.cold_vs_warm --suites hpolib --seeds 3 --n-trials 50 \
    --source-trials 50 --workers 2 --out results/quick "$@"
