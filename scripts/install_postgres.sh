#!/usr/bin/env bash
# Installs Debian's PostgreSQL server for the production-profile tests (sales_tests/deploy, marker
# `postgres`; scripts/start_postgres.sh runs the throwaway cluster). Idempotent: does nothing when an
# initdb is already installed. Needs root (or sudo) and apt.
set -euo pipefail

initdb_path() {
    ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1
}

if [[ -n "$(initdb_path)" ]]; then
    echo "postgresql present: $("$(initdb_path)" --version)"
    exit 0
fi

SUDO=""
if [[ "$(id -u)" != "0" ]]; then
    SUDO="sudo -n"  # never wait for a password: fail, and the tests say why they skip
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# The package's own cluster is not used: the tests start their own in a temp folder.
$SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
echo "postgresql installed: $("$(initdb_path)" --version)"
