#!/usr/bin/env bash
# Create .venv and install harness with the test/dev extras on a fresh machine.
# torch is pinned to the CPU build by constraints/cpu.txt so no multi-GB CUDA wheel is fetched.
# Idempotent: a second call only re-checks the install (fast).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.harness-installed
want=$(cat pyproject.toml constraints/cpu.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -c constraints/cpu.txt -e ".[dev]"
  echo "$want" > "$stamp"
fi
