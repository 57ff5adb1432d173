#!/usr/bin/env bash
# Deploy the stack with SAM (build first unless told not to), smoke-test it, print its outputs.
# ./deploy.sh --local runs the whole pipeline offline on a local AWS emulator instead.
# Run ./deploy.sh --help for the options.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$root"

usage() {
  cat <<'USAGE'
Usage: ./deploy.sh [options]
  --environment ENV        dev (default), staging or prod: the samconfig.toml section
  --stack-name NAME        default item-prediction-ENV
  --region REGION          default from samconfig.toml (us-east-1)
  --arch ARCH              x86_64 (default, layers/layers.toml) or arm64
  --skip-size-validation   build without the size gate (warned loudly)
  --skip-layer-build       reuse the built layers; build the functions only
  --enable-rollback        roll back a failed deploy (always on for staging and prod)
  --guided                 let SAM ask for every setting
  --yes                    do not ask to confirm the changeset (CI, behind its own approval)
  --dry-run                print the exact sam deploy command and stop
  --local [ARGS]           run the pipeline offline on a local AWS emulator (see ./deploy.sh --local --help)
  -h, --help               this help
USAGE
}

if [ "${1:-}" = "--local" ]; then
  shift
  scripts/bootstrap.sh --with-sam --quiet
  exec .venv/bin/python -m lambda_build.local "$@"
fi

# An option's value, or one line and exit 2 (not bash's "line N: 2: parameter null or not set").
need() { [ -n "${2:-}" ] && [ "${2#--}" = "$2" ] || { echo "deploy.sh: $1 needs a value${3:+: $3}" >&2; exit 2; }; }

environment=dev skip_size=0 skip_layers=0 dry_run=0 target_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --environment) need "$1" "${2:-}" "dev, staging or prod"; environment="$2"; shift ;;
    --stack-name|--region|--arch) need "$1" "${2:-}"; target_args+=("$1" "$2"); shift ;;
    --skip-size-validation) skip_size=1 ;;
    --skip-layer-build) skip_layers=1 ;;
    --enable-rollback) target_args+=(--rollback) ;;
    --guided|--yes) target_args+=("$1") ;;
    --dry-run) dry_run=1 ;;
    --local) echo "deploy.sh: --local must come first: ./deploy.sh --local [ARGS]" >&2; exit 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "deploy.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
target_args+=(--environment "$environment")

scripts/bootstrap.sh --with-sam --quiet
helper() { .venv/bin/python -m lambda_build.deploy "$1" "${target_args[@]}"; }
# The exact sam deploy command: samconfig.toml's environment, its parameter overrides plus ours.
cmd=$(helper command) || exit 2
mapfile -t cmd <<<"$cmd"
read -r stack region arch < <(helper target)

if [ "$dry_run" = 1 ]; then
  printf '%q ' "${cmd[@]}"; echo
  exit 0
fi

helper check-credentials || exit 2

build=(./build.sh --arch "$arch")
[ "$skip_layers" = 1 ] && build+=(--functions-only)
[ "$skip_size" = 1 ] && build+=(--skip-validation)
"${build[@]}"

echo "==> [deploy] $stack in $region ($environment, $arch)" >&2
SAM_CLI_TELEMETRY=0 "${cmd[@]}"
echo "==> [smoke] invoking each function and the API" >&2
helper smoke
helper outputs
echo "==> [done] logs: sam logs --stack-name $stack --region $region --tail" >&2
