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
  --arch ARCH              x86_64 (default) or arm64; must match the layers
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

environment=dev stack="" region="" arch="" skip_size=0 skip_layers=0 rollback=0 guided=0 dry_run=0 yes=0
while [ $# -gt 0 ]; do
  case "$1" in
    --environment) environment="${2:?--environment needs dev, staging or prod}"; shift ;;
    --stack-name) stack="${2:?--stack-name needs a name}"; shift ;;
    --region) region="${2:?--region needs a region}"; shift ;;
    --arch) arch="${2:?--arch needs x86_64 or arm64}"; shift ;;
    --skip-size-validation) skip_size=1 ;;
    --skip-layer-build) skip_layers=1 ;;
    --enable-rollback) rollback=1 ;;
    --guided) guided=1 ;;
    --yes) yes=1 ;;
    --dry-run) dry_run=1 ;;
    --local) echo "deploy.sh: --local must come first: ./deploy.sh --local [ARGS]" >&2; exit 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "deploy.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$environment" in dev|staging|prod) ;; *) echo "deploy.sh: error: --environment must be dev, staging or prod" >&2; exit 2 ;; esac
stack="${stack:-item-prediction-$environment}"
region="${region:-$(sed -n "/^\[$environment.deploy.parameters\]/,/^\[/s/^region = \"\(.*\)\"/\1/p" samconfig.toml | head -1)}"
arch="${arch:-x86_64}"
[ "$environment" != dev ] && rollback=1

cmd=(.tools/sam/bin/sam deploy --config-env "$environment" --stack-name "$stack" --region "$region"
     --no-fail-on-empty-changeset --parameter-overrides "Environment=$environment" "Architecture=$arch")
[ "$rollback" = 0 ] && cmd+=(--disable-rollback)
[ "$guided" = 1 ] && cmd+=(--guided)
[ "$yes" = 1 ] && cmd+=(--no-confirm-changeset)

if [ "$dry_run" = 1 ]; then
  printf '%q ' "${cmd[@]}"; echo
  exit 0
fi

scripts/bootstrap.sh --with-sam --quiet
AWS_REGION="$region" .venv/bin/python -m lambda_build.deploy check-credentials || exit 2

build=(./build.sh --arch "$arch")
[ "$skip_layers" = 1 ] && build+=(--functions-only)
[ "$skip_size" = 1 ] && build+=(--skip-validation)
"${build[@]}"

echo "==> [deploy] $stack in $region ($environment)" >&2
SAM_CLI_TELEMETRY=0 "${cmd[@]}"
echo "==> [smoke] invoking the read path and checking the functions" >&2
.venv/bin/python -m lambda_build.deploy smoke --stack-name "$stack" --region "$region"
.venv/bin/python -m lambda_build.deploy outputs --stack-name "$stack" --region "$region"
echo "==> [done] logs: sam logs --stack-name $stack --region $region --tail" >&2
