"""Read what ``template.yaml`` says about functions and layers.

The template is the source of truth for which layers each function mounts (and in which
order); verification and the size gate ask it here instead of keeping their own list.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from .config import REPO_ROOT, Config
from .tools import BuildError

TEMPLATE_PATH = REPO_ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """A YAML loader that keeps CloudFormation short-form tags (!Ref, !Sub, ...) as plain dicts."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_template(path: Path = TEMPLATE_PATH) -> dict:
    try:
        return yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    except FileNotFoundError:
        raise BuildError(f"{path}: not found") from None


@dataclass(frozen=True)
class FunctionSpec:
    """One function of the template, as far as sizes and layers are concerned."""

    logical_id: str
    code_uri: Path
    handler: str
    layers: tuple[str, ...]  # our layer names, in the template's (= mount) order
    memory_mb: int | None
    timeout_s: int | None
    architecture: object


def _layer_names(template: dict, config: Config) -> dict[str, str]:
    """Logical id of each layer resource -> our layer name (the folder its ContentUri names)."""
    known = {layer.name for layer in config.layers}
    names = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") not in ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion"):
            continue
        content = resource.get("Properties", {}).get("ContentUri") or resource.get("Properties", {}).get("Content")
        name = Path(str(content)).name if isinstance(content, str) else None
        if name not in known:
            raise BuildError(f"template layer {logical_id}: ContentUri {content!r} names no layer of layers.toml")
        names[logical_id] = name
    return names


def functions(config: Config, path: Path = TEMPLATE_PATH) -> list[FunctionSpec]:
    """The template's functions with their code folder and layers (Globals merged in)."""
    template = load_template(path)
    layer_ids = _layer_names(template, config)
    defaults = template.get("Globals", {}).get("Function", {})
    specs = []
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = {**defaults, **resource.get("Properties", {})}
        layers = []
        for ref in props.get("Layers", []):
            target = ref.get("Ref") if isinstance(ref, dict) else None
            if target not in layer_ids:
                raise BuildError(f"{logical_id}: layer {ref!r} is not one of the template's layer resources")
            layers.append(layer_ids[target])
        specs.append(
            FunctionSpec(
                logical_id=logical_id,
                code_uri=(path.parent / str(props.get("CodeUri", "."))).resolve(),
                handler=str(props.get("Handler")),
                layers=tuple(layers),
                memory_mb=props.get("MemorySize") if isinstance(props.get("MemorySize"), int) else None,
                timeout_s=props.get("Timeout") if isinstance(props.get("Timeout"), int) else None,
                architecture=props.get("Architectures"),
            )
        )
    return specs


def layer_sets(config: Config, path: Path = TEMPLATE_PATH) -> dict[str, tuple[str, ...]]:
    """Each distinct set of layers a function mounts, named by the functions that mount it."""
    sets: dict[tuple[str, ...], list[str]] = {}
    for spec in functions(config, path):
        sets.setdefault(spec.layers, []).append(spec.logical_id)
    return {"+".join(names): layers for layers, names in sets.items()}
