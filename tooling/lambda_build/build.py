"""Build layers: install the locked wheels for the target, optimize, package, cache.

Two caches, both keyed by content hashes so that nothing is rebuilt unless something that
shapes its output changed:

* the *naive install* (``.build/naive/<arch>/<layer>``): the layer's locked wheels unpacked
  for the target platform and Python, exactly as ``sam build`` would leave them;
* the *layer* (``.build/layers/<layer>`` and its zip): the naive install after every
  optimizer rule, with a ``.build.json`` beside it recording the key, sizes and rule results.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from . import lock as lockmod
from .config import Architecture, Config, Layer
from .elfcheck import check_tree
from .optimize import Context, optimize
from .package import sizes_by_package, write_zip
from .tools import BuildError, progress, run, step, target_python, tree_bytes, uv_command

TOOLING_DIR = Path(__file__).resolve().parent
# The modules whose code shapes a layer's bytes; editing any other module rebuilds nothing.
SHAPING_MODULES = ("build.py", "config.py", "lock.py", "optimize.py", "package.py", "tools.py")
FORMAT_VERSION = 2  # bump when the install step changes what it leaves behind


def _tooling_digest() -> str:
    digest = hashlib.sha256()
    for name in SHAPING_MODULES:
        digest.update(name.encode())
        digest.update((TOOLING_DIR / name).read_bytes())
    return digest.hexdigest()


def _interpreter_version(config: Config) -> str:
    python = target_python(config.python_version)
    return subprocess.run(
        [str(python), "-c", "import sys; print(sys.version)"], capture_output=True, text=True, check=True
    ).stdout.strip()


def naive_key(config: Config, layer: Layer, arch: Architecture, entries: list[lockmod.LockEntry]) -> str:
    payload = {
        "format": FORMAT_VERSION,
        "layer": layer.name,
        "arch": arch.uv_platform,
        "python": config.python_version,
        "requirements": [entry.requirement_line() for entry in entries],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def layer_key(config: Config, layer: Layer, arch: Architecture, entries: list[lockmod.LockEntry]) -> str:
    """Everything that shapes a layer's bytes: its pins, the rules, the target, the build code."""
    payload = {
        "naive": naive_key(config, layer, arch, entries),
        "optimize": config.raw.get("optimize", {}),
        "target": config.raw["target"],
        "interpreter": _interpreter_version(config),
        "tooling": _tooling_digest(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def naive_dir(config: Config, layer: Layer, arch: Architecture) -> Path:
    return config.build_dir / "naive" / arch.name / layer.name


def install_naive(config: Config, layer: Layer, arch: Architecture, entries: list[lockmod.LockEntry], *, clean: bool) -> Path:
    """Unpack the layer's locked, hash-checked wheels for the target into ``naive/.../python``."""
    folder = naive_dir(config, layer, arch)
    marker = folder.with_suffix(".key")
    key = naive_key(config, layer, arch, entries)
    if not clean and marker.exists() and marker.read_text() == key and (folder / "python").is_dir():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp) / "requirements.txt"
        lockmod.write_layer_requirements(entries, requirements)
        with step(f"{layer.name}: installing {len(entries)} locked wheels for {config.runtime} {arch.name}"):
            run(
                uv_command()
                + [
                    "pip",
                    "install",
                    "--no-config",
                    "--quiet",
                    "--target",
                    str(folder / "python"),
                    *arch.uv_target(config.python_version),
                    "--no-deps",
                    "--require-hashes",
                    "--link-mode",
                    "copy",  # never hard-link into uv's cache: the optimizer rewrites files
                    "-r",
                    str(requirements),
                ]
            )
    (folder / "python" / ".lock").unlink(missing_ok=True)  # uv's own lock file, not part of any package
    marker.write_text(key)
    return folder


def read_info(config: Config, layer: Layer) -> dict | None:
    path = config.layer_info(layer)
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def layer_state(config: Config, layer: Layer, arch: Architecture, entries: list[lockmod.LockEntry]) -> tuple[str, dict | None]:
    """``built``, ``stale`` (something that shapes it changed) or ``missing``."""
    info = read_info(config, layer)
    if info is None or not (config.layer_output(layer) / "python").is_dir() or not config.layer_zip(layer).exists():
        return "missing", info
    if info.get("key") != layer_key(config, layer, arch, entries):
        return "stale", info
    return "built", info


def build_layer(
    config: Config, layer: Layer, arch: Architecture, entries: list[lockmod.LockEntry], *, clean: bool = False
) -> dict:
    """Build one layer unless an identical one is already built; return its build info."""
    state, info = layer_state(config, layer, arch, entries)
    if state == "built" and not clean:
        progress(f"{layer.name}: up to date ({info['unzipped_bytes']:,} bytes)")
        return {**info, "rebuilt": False}
    started = time.monotonic()
    naive = install_naive(config, layer, arch, entries, clean=clean)
    staging = config.build_dir / "staging" / layer.name
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    with step(f"{layer.name}: copying the naive install"):
        shutil.copytree(naive, staging, symlinks=True)
    python_dir = staging / "python"
    naive_bytes = tree_bytes(python_dir)
    naive_packages = sizes_by_package(python_dir)
    rules = optimize(python_dir, Context(config, arch))
    checked, problems = check_tree(python_dir, config, arch)
    if problems:
        raise BuildError(f"{layer.name}: {problems[0]}" + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""))
    output = config.layer_output(layer)
    shutil.rmtree(output, ignore_errors=True)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging.replace(output)
    with step(f"{layer.name}: zipping"):
        zipped = write_zip(output, config.layer_zip(layer))
    info = {
        "layer": layer.name,
        "key": layer_key(config, layer, arch, entries),
        "architecture": arch.name,
        "runtime": config.runtime,
        "bytecode": config.bytecode,
        "distributions": {entry.name: entry.version for entry in entries},
        "naive_bytes": naive_bytes,
        "unzipped_bytes": tree_bytes(output / "python"),
        "zip_bytes": zipped["zip_bytes"],
        "zip_sha256": zipped["sha256"],
        "elf_files_checked": checked,
        "rules": [result.as_dict() for result in rules],
        "packages": {"naive": naive_packages, "optimized": sizes_by_package(output / "python")},
        "build_seconds": round(time.monotonic() - started, 1),
    }
    config.layer_info(layer).write_text(json.dumps(info, indent=2) + "\n")
    progress(f"{layer.name}: {naive_bytes:,} -> {info['unzipped_bytes']:,} bytes unzipped, {info['zip_bytes']:,} zipped")
    return {**info, "rebuilt": True}


def build(config: Config, arch: Architecture, names: str | None = None, *, clean: bool = False) -> dict[str, dict]:
    entries = lockmod.read_lock(config)
    assignment = lockmod.assign_layers(config, entries)
    results = {}
    for layer in config.select(names):
        results[layer.name] = build_layer(config, layer, arch, assignment[layer.name], clean=clean)
    return results


def clean(config: Config, names: str | None = None) -> list[str]:
    removed = []
    for layer in config.select(names):
        for path in (config.layer_output(layer), config.layer_zip(layer), config.layer_info(layer)):
            if path.is_dir():
                shutil.rmtree(path)
                removed.append(str(path))
            elif path.exists():
                path.unlink()
                removed.append(str(path))
        for arch_dir in (config.build_dir / "naive").glob("*"):
            for path in (arch_dir / layer.name, arch_dir / f"{layer.name}.key"):
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
    shutil.rmtree(config.build_dir / "verify", ignore_errors=True)
    return removed
