"""The lock: one joint resolution of every layer for the target platform and Python.

The lock (``layers/requirements.lock``) pins every distribution with its hashes. It is resolved
once for all layers together, so that no two layers can carry different versions of one
package, and then split: each distribution belongs to the first layer, in mount order, whose
requirements reach it. Floors in ``layers.toml`` and a no-downgrade check stop a resolver from
quietly backtracking to an ancient release (it happened: boto3 0.0.3).
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from .config import Config, Layer
from .tools import BuildError, run, uv_command

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")
_HASH = re.compile(r"--hash=(sha256:[0-9a-f]{64})")
_VIA = re.compile(r"^#\s+(?:via\s+)?([A-Za-z0-9][A-Za-z0-9._-]*)\s*$")


@dataclass
class LockEntry:
    """One pinned distribution of the lock."""

    name: str  # canonical name
    version: str
    hashes: list[str] = field(default_factory=list)
    required_by: set[str] = field(default_factory=set)  # canonical names of dependants

    def requirement_line(self) -> str:
        hashes = " ".join(f"--hash={digest}" for digest in self.hashes)
        return f"{self.name}=={self.version} {hashes}"


def parse_lock(text: str) -> dict[str, LockEntry]:
    """Parse a ``uv pip compile --generate-hashes`` output into entries keyed by canonical name."""
    entries: dict[str, LockEntry] = {}
    current: LockEntry | None = None
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line:
            continue
        pin = _PIN.match(line)
        if pin:
            current = LockEntry(canonicalize_name(pin.group(1)), pin.group(2))
            entries[current.name] = current
        if current is None:
            continue
        current.hashes.extend(_HASH.findall(line))
        via = _VIA.match(line)
        if via and line != "# via" and not line.startswith("# via -r"):
            current.required_by.add(canonicalize_name(via.group(1)))
    return entries


def read_lock(config: Config) -> dict[str, LockEntry]:
    if not config.lock_file.exists():
        raise BuildError(f"{config.lock_file}: no lock yet; run 'scripts/manage-layers.sh lock'")
    return parse_lock(config.lock_file.read_text())


def layer_roots(layer: Layer) -> list[Requirement]:
    """The top-level requirements a layer declares."""
    lines = []
    for raw_line in layer.requirements.read_text().splitlines():
        line = raw_line.split("#", 1)[0].strip()
        if line:
            lines.append(Requirement(line))
    return lines


def dependency_graph(entries: dict[str, LockEntry]) -> dict[str, set[str]]:
    """Forward edges (distribution -> what it requires), read from the lock's ``via`` notes."""
    graph: dict[str, set[str]] = {name: set() for name in entries}
    for name, entry in entries.items():
        for parent in entry.required_by:
            graph.setdefault(parent, set()).add(name)
    return graph


def closure(roots: set[str], graph: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        stack.extend(graph.get(name, ()))
    return seen


def assign_layers(config: Config, entries: dict[str, LockEntry]) -> dict[str, list[LockEntry]]:
    """Give every locked distribution to exactly one layer: the first in mount order that needs it."""
    graph = dependency_graph(entries)
    assignment: dict[str, list[LockEntry]] = {}
    owner: dict[str, str] = {}
    for layer in config.layers:
        roots = {canonicalize_name(req.name) for req in layer_roots(layer)}
        missing = roots - entries.keys()
        if missing:
            raise BuildError(f"{layer.name}: {sorted(missing)} not in the lock; run 'scripts/manage-layers.sh lock'")
        mine = sorted(name for name in closure(roots, graph) if name not in owner)
        for name in mine:
            owner[name] = layer.name
        assignment[layer.name] = [entries[name] for name in mine]
    orphans = sorted(set(entries) - owner.keys())
    if orphans:
        raise BuildError(f"lock holds distributions no layer needs: {orphans}; re-lock")
    return assignment


def layer_dependencies(config: Config, entries: dict[str, LockEntry]) -> dict[str, set[str]]:
    """For each layer, the other layers its distributions need at import time."""
    graph = dependency_graph(entries)
    assignment = assign_layers(config, entries)
    owner = {entry.name: layer for layer, items in assignment.items() for entry in items}
    needs: dict[str, set[str]] = {}
    for layer, items in assignment.items():
        reached = closure({entry.name for entry in items}, graph)
        needs[layer] = {owner[name] for name in reached if owner[name] != layer}
    return needs


def check_floors(config: Config, entries: dict[str, LockEntry]) -> list[str]:
    """Problems: a floored distribution missing or resolved below its floor, or a layer pin unmet."""
    problems = []
    for name, floor in config.floors.items():
        entry = entries.get(canonicalize_name(name))
        if entry is None:
            problems.append(f"{name}: has a floor ({floor}) but is not in the lock")
        elif Version(entry.version) < Version(floor):
            problems.append(f"{name}: resolved {entry.version}, below the floor {floor}")
    for layer in config.layers:
        for req in layer_roots(layer):
            entry = entries.get(canonicalize_name(req.name))
            if entry and not req.specifier.contains(entry.version, prereleases=True):
                problems.append(f"{layer.name}: {req} is not met by the locked {entry.version}")
    return problems


def check_no_downgrade(old: dict[str, LockEntry], new: dict[str, LockEntry]) -> list[str]:
    return [
        f"{name}: {old[name].version} -> {entry.version}"
        for name, entry in sorted(new.items())
        if name in old and Version(entry.version) < Version(old[name].version)
    ]


def _uv_compile(config: Config, arch_name: str, output: Path, *options: str) -> None:
    """Resolve the layers' requirements jointly with uv for one target architecture."""
    arch = config.architectures[arch_name]
    root = config.path.parents[1]
    command = uv_command() + [
        "pip",
        "compile",
        *[str(layer.requirements.relative_to(root)) for layer in config.layers],
        *arch.uv_target(config.python_version),
        "--no-config",
        "--output-file",
        str(output),
        "--quiet",
        *options,
    ]
    run(command, cwd=root)


def _compile(config: Config, arch_name: str, output: Path, upgrade: bool) -> None:
    options = ["--generate-hashes", "--custom-compile-command", "scripts/manage-layers.sh lock"]
    if upgrade:
        options.append("--upgrade")  # otherwise uv keeps the pins already in the output file
    _uv_compile(config, arch_name, output, *options)


def update_lock(config: Config, *, upgrade: bool = False, allow_downgrade: bool = False) -> dict:
    """Re-resolve the lock; fail on a floor, a downgrade, or architectures that disagree."""
    old = parse_lock(config.lock_file.read_text()) if config.lock_file.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        candidate = Path(tmp) / "requirements.lock"
        if config.lock_file.exists():
            candidate.write_text(config.lock_file.read_text())
        _compile(config, config.default_architecture, candidate, upgrade)
        new = parse_lock(candidate.read_text())
        problems = check_floors(config, new)
        if not allow_downgrade:
            problems += [f"downgrade {item}" for item in check_no_downgrade(old, new)]
        for arch_name in config.architectures:
            if arch_name == config.default_architecture:
                continue
            other_path = Path(tmp) / f"{arch_name}.lock"
            _compile_other(config, arch_name, candidate, other_path)
            other = parse_lock(other_path.read_text())
            differ = sorted(
                name
                for name in new.keys() | other.keys()
                if (new.get(name) and new[name].version) != (other.get(name) and other[name].version)
            )
            if differ:
                problems.append(f"{arch_name} resolves differently: {differ}")
        assign_layers(config, new)  # every distribution must land in exactly one layer
        if problems:
            raise BuildError("lock rejected: " + "; ".join(problems))
        config.lock_file.write_text(candidate.read_text())
    changed = {
        name: [old[name].version if name in old else None, entry.version]
        for name, entry in new.items()
        if name not in old or old[name].version != entry.version
    }
    removed = sorted(set(old) - set(new))
    return {"lock": str(config.lock_file), "distributions": len(new), "changed": changed, "removed": removed}


def _compile_other(config: Config, arch_name: str, constraint: Path, output: Path) -> None:
    try:
        _uv_compile(config, arch_name, output, "--constraint", str(constraint))
    except BuildError as exc:
        raise BuildError(f"the lock does not resolve for {arch_name}: {exc}") from None


def write_layer_requirements(entries: list[LockEntry], path: Path) -> None:
    """A hash-pinned requirements file for one layer, the only input its install gets."""
    path.write_text("".join(entry.requirement_line() + "\n" for entry in entries))


__all__ = [
    "LockEntry",
    "assign_layers",
    "check_floors",
    "check_no_downgrade",
    "layer_dependencies",
    "parse_lock",
    "read_lock",
    "update_lock",
    "write_layer_requirements",
]
