"""Load ``layers/layers.toml``: the Lambda target, limits, budgets and layer definitions.

Everything else (the build, the size gate, the scripts and the tests) asks this module
instead of restating a runtime, a limit or a layer name.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_PATH = REPO_ROOT / "layers" / "layers.toml"


class ConfigError(Exception):
    """The configuration file is missing or inconsistent."""


@dataclass(frozen=True)
class Architecture:
    """How to build for, and check binaries of, one Lambda architecture."""

    name: str
    uv_platform: str
    elf_machine: str
    multiarch: str
    strip: tuple[str, ...]

    def uv_target(self, python_version: str) -> list[str]:
        """uv's options for wheels of this target (lock and install must ask for the same one)."""
        return ["--python-version", python_version, "--python-platform", self.uv_platform, "--only-binary", ":all:"]


@dataclass(frozen=True)
class Layer:
    """One shared Lambda layer, as declared in ``layers.toml``."""

    name: str
    description: str
    requirements: Path
    workload: str
    position: int  # 0-based index in Lambda's mount order

    @property
    def source_dir(self) -> Path:
        return self.requirements.parent


@dataclass(frozen=True)
class Config:
    """The parsed ``layers.toml``."""

    path: Path
    runtime: str
    python_version: str
    glibc: tuple[int, int]
    default_architecture: str
    architectures: dict[str, Architecture]
    limits: dict[str, int]
    budgets: dict[str, int]
    lock_file: Path
    floors: dict[str, str]
    layers: tuple[Layer, ...]
    bytecode: str
    aws_services: tuple[str, ...]
    prune_unused: tuple[str, ...]
    keep: tuple[str, ...]
    raw: dict = field(repr=False, compare=False)

    @cached_property
    def build_dir(self) -> Path:
        """Where layers are built: ``$ITEM_PREDICTION_BUILD_DIR`` or ``.build/`` in the repo."""
        return Path(os.environ.get("ITEM_PREDICTION_BUILD_DIR", REPO_ROOT / ".build"))

    def budgets_for(self, arch_name: str | None) -> dict[str, int]:
        """Our budgets, with an architecture's own numbers where ``layers.toml`` gives any."""
        overrides = self.raw["budgets"].get("architectures", {}).get(arch_name or self.default_architecture, {})
        return {**self.budgets, **overrides}

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        known = ", ".join(layer.name for layer in self.layers)
        raise ConfigError(f"unknown layer {name!r} (known: {known})")

    def select(self, name: str | None) -> tuple[Layer, ...]:
        """Layers named by a command line argument: one name, or ``all``/None for every layer."""
        if name in (None, "all"):
            return self.layers
        return (self.layer(name),)

    def architecture(self, name: str | None = None) -> Architecture:
        name = name or os.environ.get("ITEM_PREDICTION_ARCH") or self.default_architecture
        try:
            return self.architectures[name]
        except KeyError:
            known = ", ".join(self.architectures)
            raise ConfigError(f"unknown architecture {name!r} (known: {known})") from None

    def layer_output(self, layer: Layer) -> Path:
        """The built layer folder (holding ``python/``): the template's ContentUri, what Lambda mounts at /opt.

        One folder per layer whatever the architecture, so the template names it once; the
        build info beside it records which architecture it holds.
        """
        return self.build_dir / "layers" / layer.name

    def layer_zip(self, layer: Layer) -> Path:
        return self.build_dir / "layers" / f"{layer.name}.zip"

    def layer_info(self, layer: Layer) -> Path:
        return self.build_dir / "layers" / f"{layer.name}.build.json"


def load(path: Path | None = None) -> Config:
    """Parse and check ``layers.toml``."""
    path = Path(path or os.environ.get("ITEM_PREDICTION_LAYERS_CONFIG", CONFIG_PATH))
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    root = path.resolve().parents[1]
    target = raw["target"]
    architectures = _architectures(target)
    layers = _layers(raw, root, path)
    optimize = raw.get("optimize", {})
    if optimize.get("bytecode", "sourceless") not in ("sourceless", "source+bytecode"):
        raise ConfigError(f"{path}: optimize.bytecode must be 'sourceless' or 'source+bytecode'")
    major, minor = (int(part) for part in target["glibc"].split("."))
    config = Config(
        path=path,
        runtime=target["runtime"],
        python_version=target["python_version"],
        glibc=(major, minor),
        default_architecture=target["default_architecture"],
        architectures=architectures,
        limits=dict(raw["limits"]),
        budgets={key: value for key, value in raw["budgets"].items() if key != "architectures"},
        lock_file=root / raw["lock"]["file"],
        floors=dict(raw["lock"].get("floors", {})),
        layers=layers,
        bytecode=optimize.get("bytecode", "sourceless"),
        aws_services=tuple(optimize.get("aws_services", ())),
        prune_unused=tuple(optimize.get("unused", {}).get("prune", ())),
        keep=tuple(optimize.get("unused", {}).get("keep", ())),
        raw=raw,
    )
    _check_target(config)
    return config


def _architectures(target: dict) -> dict[str, Architecture]:
    return {
        name: Architecture(
            name=name,
            uv_platform=spec["uv_platform"],
            elf_machine=spec["elf_machine"],
            multiarch=spec["multiarch"],
            strip=tuple(spec["strip"]),
        )
        for name, spec in target["architectures"].items()
    }


def _layers(raw: dict, root: Path, path: Path) -> tuple[Layer, ...]:
    """The ``[[layers]]`` in mount order; their names must be unique."""
    layers = tuple(
        Layer(
            name=spec["name"],
            description=spec["description"],
            requirements=root / spec["requirements"],
            workload=spec["workload"],
            position=index,
        )
        for index, spec in enumerate(raw["layers"])
    )
    names = [layer.name for layer in layers]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: duplicate layer names in {names}")
    return layers


def _check_target(config: Config) -> None:
    """Budgets name known architectures, the default is one of them, the runtime matches the Python."""
    unknown = set(config.raw["budgets"].get("architectures", {})) - set(config.architectures)
    if unknown:
        raise ConfigError(f"{config.path}: budgets for unknown architectures {sorted(unknown)}")
    if config.default_architecture not in config.architectures:
        raise ConfigError(f"{config.path}: default_architecture is not one of {list(config.architectures)}")
    if config.runtime != f"python{config.python_version}":
        raise ConfigError(f"{config.path}: runtime {config.runtime} does not match python_version")
