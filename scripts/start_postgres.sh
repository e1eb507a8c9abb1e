#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the production profile (deploy/postgres/, docs/DEPLOY.md): Debian's
# initdb/pg_ctl, a temp folder, a free loopback port, password auth, and two databases on it: `dagster`
# (instance storage) and `mlflow` (tracking store and model registry; MLflow and Dagster both have a `runs`
# table, so they cannot share one database).
#
#   eval "$(scripts/start_postgres.sh start [DIR])"   # starts; prints `export ...` lines (below)
#   scripts/start_postgres.sh stop DIR                  # stops the cluster and deletes DIR
#
# `start` prints DAGSTER_PG_{HOST,PORT,USERNAME,PASSWORD,DB} (read by deploy/postgres/dagster.yaml),
# SALES_ML__MLFLOW_TRACKING_URI (read by sales_assets/settings.py), SALES_PG_DIR and, last, SALES_PG_URL:
# the server's connection URL without a database. Exit code 3: no PostgreSQL server binaries (install them
# with scripts/install_postgres.sh). The server refuses to run as root, so as root it runs as the
# `postgres` user that Debian's package creates.
set -Eeuo pipefail

usage() {
    echo "usage: $0 start [DIR] | stop DIR" >&2
    exit 2
}

find_bindir() {
    # The newest installed major version; PG_BINDIR overrides (another distribution's layout).
    local dir=${PG_BINDIR:-}
    if [[ -z "$dir" ]]; then
        dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    fi
    if [[ -z "$dir" || ! -x "$dir/initdb" ]]; then
        echo "no PostgreSQL server binaries (initdb) in ${PG_BINDIR:-/usr/lib/postgresql/*/bin};" \
            "run scripts/install_postgres.sh or set PG_BINDIR" >&2
        exit 3
    fi
    echo "$dir"
}

# Runs a server binary as the cluster's owner: ourselves, or `postgres` when we are root. From `/`, since
# the server binaries stop when the owner cannot read the working directory (root's folders often).
as_owner() {
    if [[ "$(id -u)" == "0" ]]; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    local bindir dir port password
    bindir=$(find_bindir)
    dir=${1:-$(mktemp -d -t sales-pg.XXXXXX)}
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [[ -e "$dir/data" ]]; then
        echo "$dir/data exists: stop that cluster first ($0 stop $dir)" >&2
        exit 2
    fi
    # On failure: say where the cluster's logs are, and leave the folder for `stop` to remove.
    trap 'echo "start failed; logs in $dir (remove with: $0 stop $dir)" >&2; tail -n 20 "$dir"/*.log >&2 2>/dev/null' ERR
    port=${PG_PORT:-$(free_port)}
    password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
    printf '%s\n' "$password" >"$dir/password"
    chmod 600 "$dir/password"
    if [[ "$(id -u)" == "0" ]]; then
        # The postgres user must reach the folder; mktemp makes it 0700 and root's.
        chown -R postgres: "$dir"
        if ! runuser -u postgres -- test -w "$dir"; then
            echo "the postgres user cannot reach $dir (a parent folder is private); use a folder under /tmp" >&2
            exit 2
        fi
    fi
    # Local socket connections are trusted (only the owner can reach the socket in $dir); TCP needs the
    # password, as a real server's would.
    as_owner "$bindir/initdb" -D "$dir/data" -U sales --pwfile="$dir/password" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-locale >"$dir/initdb.log"
    # fsync=off: the cluster is thrown away, and durability would only slow the tests down.
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off" start >/dev/null
    for database in dagster mlflow; do
        as_owner "$bindir/createdb" -h "$dir" -p "$port" -U sales "$database"
    done
    local url="postgresql+psycopg2://sales:$password@127.0.0.1:$port"
    cat <<EOF
export SALES_PG_DIR=$dir
export DAGSTER_PG_HOST=127.0.0.1
export DAGSTER_PG_PORT=$port
export DAGSTER_PG_USERNAME=sales
export DAGSTER_PG_PASSWORD=$password
export DAGSTER_PG_DB=dagster
export SALES_ML__MLFLOW_TRACKING_URI=$url/mlflow
export SALES_PG_URL=$url
EOF
}

stop() {
    local dir=${1:-}
    [[ -n "$dir" ]] || usage
    # Only a folder that `start` made (it holds `password`) is deleted.
    if [[ ! -f "$dir/password" ]]; then
        echo "$dir was not made by $0 start; not touching it" >&2
        exit 2
    fi
    if [[ -f "$dir/data/postmaster.pid" ]]; then
        as_owner "$(find_bindir)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    fi
    rm -rf "$dir"
}

case "${1:-}" in
start) start "${2:-}" ;;
stop) stop "${2:-}" ;;
*) usage ;;
esac
