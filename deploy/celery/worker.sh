#!/usr/bin/env bash
# One celery worker of the cluster profile (docs/DEPLOY.md): takes step tasks from the `dagster` queue of
# the broker in SALES_CLUSTER__CELERY_BROKER and runs each against the Dagster instance the run names
# (PostgreSQL: DAGSTER_PG_* must be set, as for every process of the deployment).
#
#   deploy/celery/worker.sh NAME [CONCURRENCY]     # CONCURRENCY: steps at once, default 1
#
# The settings (SALES_DATA_DIR, SALES_ML__..., SALES_CLUSTER__...) must be those of the runs: a worker
# executes the steps of the code location with its own environment.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
: "${DAGSTER_HOME:?set DAGSTER_HOME to a folder holding deploy/postgres/dagster.yaml}"
: "${SALES_CLUSTER__CELERY_BROKER:?set SALES_CLUSTER__CELERY_BROKER (e.g. redis://host:6379/0)}"
: "${SALES_CLUSTER__CELERY_BACKEND:?set SALES_CLUSTER__CELERY_BACKEND (e.g. redis://host:6379/1)}"
bin=${SALES_VENV_BIN:-$repo/.venv/bin}
export SALES_CLUSTER__EXECUTOR=celery
export PATH="$bin:$PATH"
cd "$repo"
# `dagster-celery` writes the broker config and starts `celery worker` as its child: stop the worker by
# its process group (or let the orchestrator stop the container).
exec "$bin/dagster-celery" worker start -A dagster_celery.app -y "$here/celery.yaml" \
    --name "${1:?name the worker}" -q dagster --loglevel INFO -- --concurrency "${2:-1}"
