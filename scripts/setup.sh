#!/usr/bin/env bash
# Set up the workbench from nothing on Debian (Python 3.11): a virtual environment in .venv
# with the pinned packages, the workbench itself (editable), and Debian's chromium for
# static figure export and browser tests. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "[setup] installing Debian chromium (static figures, browser tests)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "[setup] chromium missing and not root: install it (apt-get install chromium) for PNG/SVG export" >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.tdw-installed
want=$(cat envs/requirements.txt envs/test-requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing pinned packages (torch first: the CPU wheel, not the CUDA build)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q "$(grep '^torch==' envs/requirements.txt)"
  .venv/bin/python -m pip install -q -r envs/requirements.txt -r envs/test-requirements.txt
  .venv/bin/python -m pip install -q --no-deps -e .
  echo "$want" > "$stamp"
fi
echo "[setup] ready: $(.venv/bin/python -c 'import torch, transformer_lens, snakemake; print("torch", torch.__version__, "| snakemake", snakemake.__version__)')"
