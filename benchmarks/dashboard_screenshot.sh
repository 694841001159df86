#!/usr/bin/env bash
# Screenshots of optuna-dashboard showing what TransferTPESampler believed (committed as
# benchmarks/figures/dashboard_trial.png, dashboard_note.png, dashboard_study.png). Needs the dashboard extra
# and Debian's chromium:
#   .venv/bin/pip install -e '.[dashboard]'; apt-get install -y chromium
#   bash benchmarks/dashboard_screenshot.sh [OUT_DIR]     # default benchmarks/figures
# It runs a small warm-started study into a SQLite file (one related and one misleading
# source, the objective wrapped in with_transfer_attrs), annotates it with
# annotate_for_dashboard, serves it with optuna-dashboard on 127.0.0.1 and screenshots a
# trial page, the study note and the study page with headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-benchmarks/figures}
PORT=${PORT:-18765}
WORK=$(mktemp -d)
DB="$WORK/studies.db"
cleanup() {
    if [ -n "${DASH_PID:-}" ]; then kill "$DASH_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

.venv/bin/python - "$DB" <<'PY'
import sys

import optuna

from optuna_transfer import TransferTPESampler
from optuna_transfer.visualization import annotate_for_dashboard
from optuna_transfer.visualization import with_transfer_attrs

optuna.logging.set_verbosity(optuna.logging.WARNING)
url = f"sqlite:///{sys.argv[1]}"


def objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5, 5)
    y = trial.suggest_float("y", -5, 5)
    return (x - 1) ** 2 + (y + 2) ** 2


last_month = optuna.create_study(
    study_name="last-month", storage=url, sampler=optuna.samplers.TPESampler(seed=0)
)
last_month.optimize(objective, n_trials=30)
# A misleading source: it maximised the same loss, so its best points are the target's worst.
other_task = optuna.create_study(
    study_name="other-task", storage=url, direction="maximize",
    sampler=optuna.samplers.TPESampler(seed=1),
)
other_task.optimize(objective, n_trials=30)
sampler = TransferTPESampler.from_storage(url, ["last-month", "other-task"], seed=0)
study = optuna.create_study(study_name="warm-started", storage=url, sampler=sampler)
study.optimize(with_transfer_attrs(objective), n_trials=25)
annotate_for_dashboard(optuna.load_study(study_name="warm-started", storage=url))
PY

.venv/bin/optuna-dashboard "sqlite:///$DB" --host 127.0.0.1 --port "$PORT" >"$WORK/dash.log" 2>&1 &
DASH_PID=$!
BASE="http://127.0.0.1:$PORT"
for _ in $(seq 100); do
    curl -sf "$BASE/api/studies" >/dev/null && break
    sleep 0.2
done
STUDY_ID=$(curl -sf "$BASE/api/studies" | .venv/bin/python -c \
    'import json,sys; print(next(s["study_id"] for s in json.load(sys.stdin)["study_summaries"] if s["study_name"] == "warm-started"))')

shot() {
    chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$(mktemp -d -p "$WORK")" --hide-scrollbars \
        --virtual-time-budget=10000 --window-size="${3:-1400,1000}" --screenshot="$1" "$2" \
        >/dev/null 2>&1
}
mkdir -p "$OUT"
# Trial 6: a trial chosen by the weighted vote, after the zero-shot trials and the probe.
shot "$OUT/dashboard_trial.png" "$BASE/dashboard/studies/$STUDY_ID/trials?numbers=6"
shot "$OUT/dashboard_note.png" "$BASE/dashboard/studies/$STUDY_ID/note"
# The study page: optuna-dashboard draws the saved weights figure below its own plots.
shot "$OUT/dashboard_study.png" "$BASE/dashboard/studies/$STUDY_ID" 1400,1800
ls -l "$OUT"/dashboard_*.png
