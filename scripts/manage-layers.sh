#!/usr/bin/env bash
# Layer upkeep: build|optimize|validate|report|status|clean [LAYER|all], and lock.
# A thin entry point: the work is done by the lambda_build package (tooling/lambda_build).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/bootstrap.sh" --quiet
exec "$root/.venv/bin/python" -m lambda_build "$@"
