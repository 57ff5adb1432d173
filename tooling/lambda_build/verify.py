"""Prove that built layers work on the target before anything is deployed.

For every set of layers a function mounts (read from ``template.yaml``), the layers are merged
as Lambda mounts them (template order, later layers win) and the target interpreter runs, in
isolated mode with nothing but the standard library and the merged folder on its path:
an import of every top-level module, then the workload of each layer in the set. Every ELF
file is also checked statically (see :mod:`lambda_build.elfcheck`). Each problem is one line
naming the file or the step and the reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from . import template as templatemod
from .build import read_info
from .config import Architecture, Config
from .elfcheck import Problem, check_tree
from .tools import BuildError, interpreter_machine, iter_files, step, target_python

WORKLOADS_DIR = Path(__file__).resolve().parent / "workloads"
RUNNER = WORKLOADS_DIR / "runner.py"


def merge_layers(folders: dict[str, Path], destination: Path) -> list[str]:
    """Merge layer folders (name -> folder holding ``python/``), in order, into ``destination``
    as Lambda does (hard links, later wins); return the paths that collided."""
    shutil.rmtree(destination, ignore_errors=True)
    destination.mkdir(parents=True)
    owner: dict[str, str] = {}
    collisions = []
    for name, source in folders.items():
        for path in iter_files(source):
            relative = path.relative_to(source)
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            key = relative.as_posix()
            if key in owner:
                collisions.append(f"{key}: in {owner[key]} and {name}")
                target.unlink()
            owner[key] = name
            try:
                os.link(path, target)
            except OSError:
                shutil.copy2(path, target)
    return collisions


def distribution_owners(config: Config) -> dict[str, list[str]]:
    """Distribution name -> the built layers that carry its ``.dist-info``."""
    owners: dict[str, list[str]] = {}
    for layer in config.layers:
        for info in sorted((config.layer_output(layer) / "python").glob("*.dist-info")):
            name = info.name.removesuffix(".dist-info").rsplit("-", 1)[0].lower().replace("_", "-")
            owners.setdefault(name, []).append(layer.name)
    return owners


def run_workloads(config: Config, python_dir: Path, layers: tuple[str, ...]) -> dict:
    spec = {
        "workloads": [str(WORKLOADS_DIR / f"{config.layer(name).workload}.py") for name in layers],
        "params": {"aws_services": list(config.aws_services)},
    }
    python = target_python(config.python_version)
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "TZ": "UTC", "HOME": str(python_dir.parent)}
    completed = subprocess.run(
        [str(python), "-I", "-S", "-B", str(RUNNER), str(python_dir), json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        cwd=python_dir.parent,
    )
    if completed.returncode != 0 or not completed.stdout.strip():
        last = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        return {"failures": [{"what": "interpreter", "error": f"exit {completed.returncode}: {last}"}]}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def foreign_architecture(config: Config, arch: Architecture) -> str | None:
    """Why the target interpreter cannot load this architecture's layers, or None when it can."""
    python = target_python(config.python_version)
    machine = interpreter_machine(python)
    if machine == arch.multiarch.split("-")[0]:
        return None
    return f"the target interpreter {python} runs on {machine}, not {arch.name}"


def verification_key(config: Config, sets: dict[str, tuple[str, ...]], static_only: bool = False) -> str:
    digest = hashlib.sha256(json.dumps({"sets": sets, "static_only": static_only}, sort_keys=True).encode())
    for layer in config.layers:
        digest.update(((read_info(config, layer) or {}).get("key") or "missing").encode())
    for path in sorted(WORKLOADS_DIR.glob("*.py")):
        digest.update(path.read_bytes())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()


def verify(
    config: Config, arch: Architecture, *, sets: dict[str, tuple[str, ...]] | None = None, static_only: bool = False
) -> dict:
    """Verify all built layers; return a report whose ``problems`` are one line each.

    ``static_only`` accepts ELF checks alone when the target interpreter runs on another machine
    than the layers' architecture (arm64 layers built on x86_64): the report then says that the
    imports and workloads did not run (``runtime_checks``), instead of failing.
    """
    if sets is None:
        sets = templatemod.layer_sets(config)
    problems: list[str] = []
    report: dict = {"architecture": arch.name, "layers": {}, "sets": {}, "problems": problems, "runtime_checks": "run"}
    for layer in config.layers:
        info = read_info(config, layer)
        python_dir = config.layer_output(layer) / "python"
        if info is None or not python_dir.is_dir():
            problems.append(f"{layer.name}: not built (run 'scripts/manage-layers.sh build {layer.name}')")
            continue
        if info.get("architecture") != arch.name:
            problems.append(f"{layer.name}: built for {info.get('architecture')}, verifying for {arch.name}")
        with step(f"{layer.name}: checking ELF files"):
            checked, elf_problems = check_tree(python_dir, config, arch)
        problems.extend(f"{layer.name}: {problem}" for problem in elf_problems)
        report["layers"][layer.name] = {"elf_files_checked": checked, "problems": [str(p) for p in elf_problems]}
    for name, layers in distribution_owners(config).items():
        if len(layers) > 1:
            problems.append(f"distribution {name} is in more than one layer: {', '.join(layers)}")
    if problems:
        return report
    foreign = foreign_architecture(config, arch)
    if foreign and static_only:
        report["runtime_checks"] = f"not run (--static-only): {foreign}"
        return report
    if foreign:
        problems.append(
            f"{arch.name}: {foreign}, so it cannot import these layers: verify on an {arch.name} machine, set TARGET_PYTHON "
            f"to an {arch.name} python{config.python_version} (qemu-user), or accept ELF checks alone with --static-only"
        )
        return report
    for set_name, layers in sets.items():
        merged = config.build_dir / "verify" / set_name.replace("+", "_")
        with step(f"verifying {set_name} ({' + '.join(layers)}) on {config.runtime}"):
            collisions = merge_layers({name: config.layer_output(config.layer(name)) for name in layers}, merged)
            problems.extend(f"{set_name}: file in two layers: {item}" for item in collisions)
            outcome = run_workloads(config, merged / "python", layers)
        for failure in outcome.get("failures", []):
            problems.append(f"{set_name}: {failure['what']}: {failure['error']}")
        report["sets"][set_name] = {
            "layers": list(layers),
            "python": outcome.get("python"),
            "imports": sorted(outcome.get("imports", {})),
            "workloads": outcome.get("workloads", {}),
        }
        shutil.rmtree(merged, ignore_errors=True)
    return report


def verify_cached(config: Config, arch: Architecture, *, static_only: bool = False) -> dict:
    """Verify unless these exact layers already passed with these workloads and layer sets."""
    sets = templatemod.layer_sets(config)
    key = verification_key(config, sets, static_only)
    marker = config.build_dir / "layers" / "verified.json"
    try:
        previous = json.loads(marker.read_text())
        if previous.get("key") == key and not previous["report"]["problems"]:
            return {**previous["report"], "cached": True}
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        pass
    report = verify(config, arch, sets=sets, static_only=static_only)
    if not report["problems"]:
        marker.write_text(json.dumps({"key": key, "report": report}, indent=2) + "\n")
    elif marker.exists():
        marker.unlink()
    return {**report, "cached": False}


def raise_for_problems(report: dict) -> None:
    if report["problems"]:
        first = report["problems"][0]
        more = len(report["problems"]) - 1
        raise BuildError(first + (f" (+{more} more: see 'scripts/manage-layers.sh validate all')" if more else ""))


__all__ = ["Problem", "merge_layers", "raise_for_problems", "verify", "verify_cached"]
