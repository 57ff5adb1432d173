#!/usr/bin/env bash
# Build everything offline: the shared layers (cached, verified on python3.13), the functions
# (sam build, no Docker unless --use-container), then the size gate, which blocks a build Lambda
# would reject. Run ./build.sh --help for the options.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$root"

usage() {
  cat <<'USAGE'
Usage: ./build.sh [options]
  --layers-only       build and verify the layers only
  --functions-only    build the functions only (layers must be built)
  --skip-validation   do not run the size gate (a build Lambda rejects may get through)
  --clean             rebuild the layers from scratch and clear SAM's build folder
  --arch ARCH         x86_64 (default) or arm64
  --static-only       verify foreign-architecture layers by their ELF files alone (arm64 built
                      on x86_64: the imports and workloads cannot run here; the build says so)
  --use-container     build functions in a container (needs a Docker engine)
  --verbose           show every command
  -h, --help          this help
USAGE
}

# An option's value, or one line and exit 2 (not bash's "line N: 2: parameter null or not set").
need() { [ -n "${2:-}" ] && [ "${2#--}" = "$2" ] || { echo "build.sh: $1 needs a value${3:+: $3}" >&2; exit 2; }; }

layers=1 functions=1 validate=1 clean=0 verbose=0 arch="" container=0 static_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --layers-only) functions=0 ;;
    --functions-only) layers=0 ;;
    --skip-validation) validate=0 ;;
    --clean) clean=1 ;;
    --verbose) verbose=1 ;;
    --arch) need "$1" "${2:-}" "x86_64 or arm64"; arch="$2"; shift ;;
    --arch=*) arch="${1#--arch=}" ;;
    --use-container) container=1 ;;
    --static-only) static_only=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

step() { echo "==> [$1] $2" >&2; }
fail() { echo "build.sh: error: $*" >&2; exit 1; }

command -v pyenv >/dev/null 2>&1 || [ -n "${TARGET_PYTHON:-}" ] || command -v python3.13 >/dev/null 2>&1 \
  || fail "python3.13 not found: install it (pyenv install 3.13) or set TARGET_PYTHON"
scripts/bootstrap.sh --with-sam --quiet || fail "could not set up .venv and the SAM CLI (see scripts/bootstrap.sh --help)"
py=.venv/bin/python
# An unknown architecture is refused before anything is announced (layers/layers.toml lists them).
if [ -n "$arch" ]; then
  $py -c 'import sys; from lambda_build import config; config.load().architecture(sys.argv[1])' "$arch" 2>/dev/null \
    || { echo "build.sh: --arch $arch: unknown architecture (known: $($py -c 'from lambda_build import config; print(", ".join(config.load().architectures))'))" >&2; exit 2; }
fi
step prerequisites "python3.13, project environment, SAM CLI"
# The target (runtime version, default architecture, interpreter) comes from layers/layers.toml;
# functions/Makefile compiles the functions' bytecode with the same interpreter.
read -r RUNTIME_VERSION default_arch found_python < <($py -c 'from lambda_build import config, tools
c = config.load(); print(c.python_version, c.default_architecture, tools.target_python(c.python_version))') \
  || fail "could not read layers/layers.toml or find python3.13"
export RUNTIME_VERSION TARGET_PYTHON="${TARGET_PYTHON:-$found_python}"
arch="${arch:-$default_arch}"
flags=(--arch "$arch"); [ "$verbose" = 1 ] && flags+=(--verbose)

if [ "$layers" = 1 ]; then
  step layers "build, optimize and verify for $arch (cached)"
  build_flags=(); [ "$clean" = 1 ] && build_flags+=(--clean); [ "$static_only" = 1 ] && build_flags+=(--static-only)
  $py -m lambda_build "${flags[@]}" build all "${build_flags[@]}" >/dev/null || fail "layer build failed (see above)"
fi

if [ "$functions" = 1 ]; then
  step functions "sam build ($([ "$container" = 1 ] && echo container || echo no Docker))"
  [ "$clean" = 1 ] && rm -rf .aws-sam/build
  sam_flags=(--parameter-overrides "Architecture=$arch")
  [ "$container" = 1 ] && sam_flags+=(--use-container)
  [ "$verbose" = 1 ] && sam_flags+=(--debug)
  log=$(mktemp); trap 'rm -f "$log"' EXIT
  SAM_CLI_TELEMETRY=0 .tools/sam/bin/sam build "${sam_flags[@]}" >"$log" 2>&1 || { tail -20 "$log" >&2; fail "sam build failed"; }
  [ "$verbose" = 1 ] && cat "$log" >&2
fi

if [ "$validate" = 1 ]; then
  step size-gate "function + layers against Lambda's limits and our budgets"
  $py scripts/size-validation.py validate || fail "size gate failed: see the violations above"
else
  echo "WARNING: --skip-validation: the size gate did not run; this build may be rejected by Lambda." >&2
  $py scripts/size-validation.py report || true
fi
step done "layers: .build/layers/  functions: .aws-sam/build/  next: ./deploy.sh --environment dev"
