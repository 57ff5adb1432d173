#!/usr/bin/env bash
# Set up what the project needs on a fresh machine, idempotently and quickly when done:
#   .venv       python3.13 with the pinned dev dependencies (requirements-dev.lock) and the tooling
#   .tools/sam  AWS SAM CLI in its own environment (its pins clash with ours), with --with-sam
#   chromium    Debian's package, for the forecast report's browser test, with --with-browser (as root
#               with apt-get; elsewhere that test is skipped and says why)
# Usage: scripts/bootstrap.sh [--with-sam] [--with-browser] [--quiet]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
with_sam=0 with_browser=0 quiet=0
for arg in "$@"; do
  case "$arg" in
    --with-sam) with_sam=1 ;;
    --with-browser) with_browser=1 ;;
    --quiet) quiet=1 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bootstrap: unknown option $arg" >&2; exit 2 ;;
  esac
done
say() { [ "$quiet" = 1 ] || echo "==> $*" >&2; }
UV_VERSION=0.13.8
SAM_VERSION=1.170.0

find_python313() {
  if [ -n "${TARGET_PYTHON:-}" ]; then echo "$TARGET_PYTHON"; return; fi
  if command -v pyenv >/dev/null 2>&1; then
    local v; v=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.13\.[0-9]+$' | sort -V | tail -1 || true)
    if [ -n "$v" ]; then PYENV_VERSION="$v" pyenv which python3.13; return; fi
  fi
  command -v python3.13 || { echo "bootstrap: python3.13 not found (pyenv install 3.13 or set TARGET_PYTHON)" >&2; exit 1; }
}

stamp=".venv/.bootstrap-$(cat requirements-dev.lock pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  py=$(find_python313)
  if [ ! -x .venv/bin/python ]; then
    say "creating .venv with $py"
    "$py" -m venv .venv
  fi
  [ -x .venv/bin/uv ] && [ "$(.venv/bin/uv --version | cut -d' ' -f2)" = "$UV_VERSION" ] || {
    say "installing uv $UV_VERSION"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
  }
  say "installing pinned dev dependencies (requirements-dev.lock)"
  .venv/bin/uv pip sync --quiet --python .venv/bin/python requirements-dev.lock
  .venv/bin/uv pip install --quiet --python .venv/bin/python --no-deps -e .
  rm -f .venv/.bootstrap-*
  touch "$stamp"
fi

if [ "$with_sam" = 1 ] && [ ! -x .tools/sam/bin/sam ]; then
  say "installing AWS SAM CLI $SAM_VERSION into .tools/sam (about a minute)"
  .venv/bin/uv venv --quiet --python "$(find_python313)" .tools/sam
  .venv/bin/uv pip install --quiet --python .tools/sam/bin/python "aws-sam-cli==$SAM_VERSION"
fi

if [ "$with_browser" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian's chromium for the report's browser test (about a minute)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
      || echo "bootstrap: could not install chromium: the report's browser test will be skipped" >&2
  else
    echo "bootstrap: no chromium and no root apt-get: the report's browser test will be skipped" >&2
  fi
fi
