#!/usr/bin/env bash
# CPU (user + sys, /usr/bin/time -v) of the whole segment backfill command,
# `python -m sales_assets.timeseries.backfill`, for today's code and baseline revisions, one after the
# other on the same warehouse, in fresh Dagster instances. The warehouse (raw_csv, clean_parquet,
# duckdb_table) is built once from CSV with today's code in a temp folder.
#
#   bench/bench_timeseries_backfill.sh [CSV] [REVISION ...]
#   bench/bench_timeseries_backfill.sh ../shared/data/sales_data_sample.csv 1a32ab3 732ee09
#
# Prints one line per code version: user, sys, their sum, the load average after it, and the ratio of
# the sum to the first revision's. Extra `SALES_*` variables in the environment reach every run (e.g.
# SALES_TIMESERIES__STATSFORECAST_CANDIDATES='["AutoTheta","AutoETS"]'). Read CPU, not wall, on a shared
# machine.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=$ROOT/.venv/bin/python
CSV=$(realpath "${1:-$ROOT/../shared/data/sales_data_sample.csv}")
shift || true
REVISIONS=("${@:-1a32ab3}")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

instance() {  # a fresh DAGSTER_HOME with the project's instance configuration
  mkdir -p "$WORK/home/$1" && cp "$ROOT/dagster_home/dagster.yaml" "$WORK/home/$1/" && echo "$WORK/home/$1"
}

export SALES_DATA_DIR=$WORK/data SALES_RAW_CSV=$CSV
(cd "$WORK" && PYTHONPATH=$ROOT DAGSTER_HOME=$(instance warehouse) "$ROOT/.venv/bin/dagster" asset materialize \
  -m sales_assets.definitions --select raw_csv,clean_parquet,duckdb_table >"$WORK/warehouse.log" 2>&1) \
  || { tail -20 "$WORK/warehouse.log"; exit 1; }

first=""
for version in "${REVISIONS[@]}" today; do
  if [ "$version" = today ]; then tree=$ROOT; else
    tree=$WORK/tree/$version && mkdir -p "$tree"
    git -C "$ROOT" archive "$version" sales_assets sales_serving | tar -x -C "$tree"
  fi
  # Run from the temp folder so that `python -m` finds the tree on PYTHONPATH, not the working directory.
  (cd "$WORK" && PYTHONPATH=$tree DAGSTER_HOME=$(instance "$version") /usr/bin/time -v "$PYTHON" \
    -m sales_assets.timeseries.backfill >"$WORK/$version.log" 2>"$WORK/$version.time") \
    || { tail -20 "$WORK/$version.log" "$WORK/$version.time"; exit 1; }
  user=$(awk -F': ' '/User time/ {print $2}' "$WORK/$version.time")
  sys=$(awk -F': ' '/System time/ {print $2}' "$WORK/$version.time")
  total=$(echo "$user + $sys" | bc)
  first=${first:-$total}
  echo "$version: user $user s, sys $sys s, CPU $total s ($(echo "scale=2; $total / $first" | bc)x $REVISIONS)," \
    "load $(cut -d' ' -f1-3 /proc/loadavg); $(tail -1 "$WORK/$version.log")"
done
