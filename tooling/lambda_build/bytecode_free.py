"""A source-only variant of the built layers: every optimizer rule except bytecode (for benchmarks)."""

from __future__ import annotations

import shutil
from pathlib import Path

from . import build as buildmod
from . import lock as lockmod
from .config import Architecture, Config
from .optimize import RULES, Context, compile_bytecode


def source_only_layers(config: Config, arch: Architecture, destination: Path) -> dict[str, Path]:
    assignment = lockmod.assign_layers(config, lockmod.read_lock(config))
    folders = {}
    for layer in config.layers:
        naive = buildmod.install_naive(config, layer, arch, assignment[layer.name], clean=False)
        folder = destination / layer.name
        shutil.copytree(naive, folder)
        for rule in RULES:
            if rule is not compile_bytecode:
                rule(folder / "python", Context(config, arch))
        folders[layer.name] = folder
    return folders
