#!/usr/bin/env bash
# Installs Debian's headless-capable Chromium for the browser tests (sales_tests/ui, marker `browser`).
# Idempotent: does nothing when /usr/bin/chromium already starts. Needs root (or sudo) and apt.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [[ -x "$CHROMIUM" ]] && "$CHROMIUM" --headless --no-sandbox --version >/dev/null 2>&1; then
    echo "chromium present: $("$CHROMIUM" --version)"
    exit 0
fi

SUDO=""
if [[ "$(id -u)" != "0" ]]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# fonts-liberation gives the screenshots readable Latin text; the browser itself comes from Debian only.
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
echo "chromium installed: $("$CHROMIUM" --version)"
