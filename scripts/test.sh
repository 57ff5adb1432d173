#!/usr/bin/env bash
# The test command. On a fresh machine it installs what it needs (.venv with python3.13 and the
# pinned dev dependencies; the layers are built, cached, by the tests that need them), checks the
# code with ruff (lint, complexity limits, formatting: pyproject.toml), then runs the whole suite.
# Extra arguments go to pytest, e.g. scripts/test.sh -m "not slow" -x
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/bootstrap.sh" --with-sam --with-browser
cd "$root"
echo "==> ruff check and ruff format --check" >&2
.venv/bin/ruff check --quiet .
.venv/bin/ruff format --check --quiet . || { echo "ruff format would change the files above: run .venv/bin/ruff format ." >&2; exit 1; }
exec .venv/bin/python -m pytest "$@"
