#!/usr/bin/env bash
# Issue 9's figure: what the one export reader (dialect detection, strict values, malformed-line quarantine)
# costs the whole `dagster asset materialize --select raw_csv,clean_parquet` command on 5,000,000 generated
# rows, against the revision before it (7cda52d by default), alternating, same file, same machine.
# Usage: bash bench/bench_reader_overhead.sh [BASELINE_REV] [ROWS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rev=${1:-7cda52d}
rows=${2:-5000000}
work=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$work/baseline" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git -C "$root" worktree add -q "$work/baseline" "$rev"
"$root/.venv/bin/sales-generate" --rows "$rows" --out "$work/sales.csv" >/dev/null
run() { # label source-tree repeat
  local d="$work/run-$1-$3"
  mkdir -p "$d/home" && cp "$root/dagster_home/dagster.yaml" "$d/home/"
  (cd "$2" && DAGSTER_HOME="$d/home" SALES_DATA_DIR="$d/data" SALES_RAW_CSV="$work/sales.csv" \
    SALES_SETTINGS_FILE= PYTHONPATH="$2" /usr/bin/time -f "$1: wall %e s, CPU %U+%S s, peak %M KB" \
    "$root/.venv/bin/dagster" asset materialize --select raw_csv,clean_parquet -m sales_assets.definitions \
    >"$d/log" 2>"$d/time") || { tail -5 "$d/log"; exit 1; }
  tail -1 "$d/time"
}
for i in 1 2; do run "baseline $rev" "$work/baseline" "$i"; run current "$root" "$i"; done
