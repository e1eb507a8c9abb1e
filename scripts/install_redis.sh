#!/usr/bin/env bash
# Installs Debian's Redis server, the celery broker of the cluster-profile tests (sales_tests/cluster,
# marker `cluster`; each test starts its own throwaway server on a free loopback port). Idempotent: does
# nothing when redis-server is already installed. Needs root (or sudo) and apt.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
    echo "redis present: $(redis-server --version)"
    exit 0
fi

SUDO=""
if [[ "$(id -u)" != "0" ]]; then
    SUDO="sudo -n"  # never wait for a password: fail, and the tests say why they skip
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# The package's own service is not used: the tests start their own server in a temp folder.
$SUDO apt-get install -y -qq --no-install-recommends redis-server >/dev/null
echo "redis installed: $(redis-server --version)"
