#!/usr/bin/env bash
# The samplers against the lowest versions of their dependencies that pyproject.toml allows:
# each ">=X.Y" lower bound of `dependencies` is installed as "==X.Y.*" in .venv-lowest, so a
# bound that no longer holds (a newer Optuna's API, a numpy 2 function) fails here rather than
# in a user's environment. Runs the tests of Optuna's private API, Optuna's own sampler test
# cases and the samplers' core tests (one through PostgreSQL); the extras (plots, benchmarks,
# torch) are not installed. tests/run.sh calls it after the whole suite; arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-lowest
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
mapfile -t pins < <("$venv/bin/python" - <<'EOF'
import re
import tomllib

with open("pyproject.toml", "rb") as f:
    dependencies = tomllib.load(f)["project"]["dependencies"]
for dependency in dependencies:
    bound = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*>=\s*([0-9]+(?:\.[0-9]+)*)\s*(,.*)?", dependency)
    if bound is None:
        raise SystemExit(f"tests/lowest.sh: no '>=' lower bound to test in {dependency!r}")
    print(f"{bound[1]}=={bound[2]}.*")
EOF
)
"$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
# psycopg2: one test round-trips the sampler's records through PostgreSQL (tests/postgres.sh).
"$venv/bin/python" -m pip install -q "${pins[@]}" "pytest>=8" "pytest-timeout>=2.2" \
    "hypothesis>=6.90" "psycopg2-binary>=2.9"
"$venv/bin/python" -m pip install -q --no-deps -e .
echo "tests/lowest.sh: $("$venv/bin/python" -c 'import numpy, optuna, scipy
print(f"optuna {optuna.__version__}, numpy {numpy.__version__}, scipy {scipy.__version__}")')"
"$venv/bin/python" -m pytest -q -p no:cacheprovider \
    tests/test_optuna_compat.py tests/test_optuna_generic.py tests/test_optuna_grid.py \
    tests/test_conformance.py tests/test_grid_conformance.py \
    tests/test_transfer_tpe.py tests/test_grid_sampler.py tests/test_tpe_robustness.py \
    tests/test_sources.py tests/test_local_search.py tests/test_ranking.py "$@"
