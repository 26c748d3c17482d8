#!/usr/bin/env bash
# Install what the tests need (on CI also Chromium), then run them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# CI (fresh machine, root): the browser test needs Chromium; without it that test skips, saying why.
if [ "${CI:-}" = "true" ] && [ "$(id -u)" = 0 ] && ! command -v chromium >/dev/null; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } >/dev/null 2>&1 \
        || echo "chromium could not be installed: the headless-browser test will be skipped" >&2
fi
exec .venv/bin/python -m pytest -q "$@"
