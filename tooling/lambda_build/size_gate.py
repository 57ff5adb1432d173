"""The size gate: no build that Lambda would reject, or that breaks our budgets, gets through.

For every function of ``template.yaml`` it measures what Lambda measures: the function's code
plus all its layers, unzipped, as the sum of file sizes; this must be *smaller than*
262,144,000 bytes. It also checks every zip against the direct-upload limit, the number of
layers, that a function mounts the layers its layers depend on, and our own budgets from
``layers/layers.toml``.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import config as configmod
from . import lock as lockmod
from . import template as templatemod
from .build import read_info
from .config import REPO_ROOT, Config
from .package import sizes_by_package, zip_into
from .tools import BuildError, iter_files, tree_bytes

SAM_BUILD_DIR = REPO_ROOT / ".aws-sam" / "build"
SKIPPED_PARTS = {"__pycache__", "tests", ".pytest_cache"}


@dataclass
class FunctionSize:
    name: str
    code_source: str
    code_bytes: int
    code_zip_bytes: int
    layers: dict[str, int]
    total: int
    limit: int
    contributors: list[tuple[str, int]] = field(default_factory=list)

    @property
    def headroom(self) -> int:
        return self.limit - self.total

    def as_dict(self) -> dict:
        return {
            "function": self.name,
            "code_source": self.code_source,
            "code_bytes": self.code_bytes,
            "code_zip_bytes": self.code_zip_bytes,
            "layers": self.layers,
            "total_bytes": self.total,
            "limit_bytes": self.limit,
            "headroom_bytes": self.headroom,
            "headroom_percent": round(100 * self.headroom / self.limit, 1),
            "largest": [{"name": name, "bytes": size} for name, size in self.contributors],
        }


def _code_files(spec: templatemod.FunctionSpec, build_dir: Path) -> tuple[str, list[Path], Path]:
    built = build_dir / spec.logical_id
    if built.is_dir():
        return "sam build", list(iter_files(built)), built
    root = spec.code_uri
    files = [p for p in iter_files(root) if not SKIPPED_PARTS & set(p.relative_to(root).parts)]
    return "CodeUri (not built yet)", files, root


def _layer_sizes(config: Config) -> dict[str, dict]:
    sizes = {}
    for layer in config.layers:
        folder = config.layer_output(layer)
        if not (folder / "python").is_dir():
            raise BuildError(f"layer {layer.name} is not built: run 'scripts/manage-layers.sh build all' (or ./build.sh)")
        packages = sizes_by_package(folder / "python")  # measured, never taken from the build record
        zip_path = config.layer_zip(layer)
        sizes[layer.name] = {
            "architecture": (read_info(config, layer) or {}).get("architecture"),
            "bytes": tree_bytes(folder),
            "zip_bytes": zip_path.stat().st_size if zip_path.exists() else None,
            "packages": packages,
        }
    return sizes


def measure(config: Config, target: str = "all", build_dir: Path = SAM_BUILD_DIR) -> dict:
    """Sizes and violations (one line each) for layers, functions or both."""
    violations: list[str] = []
    layers = _layer_sizes(config)
    architectures = sorted({item["architecture"] or "unknown" for item in layers.values()})
    if len(architectures) > 1:
        violations.append(f"layers built for different architectures: {', '.join(architectures)} (rebuild with one --arch)")
    limits, budgets = config.limits, config.budgets_for(architectures[0] if architectures[0] in config.architectures else None)
    result: dict = {
        "limits": limits,
        "budgets": budgets,
        "architecture": architectures[0],
        "layer_names": list(layers),
        "layers": {},
        "functions": [],
        "violations": violations,
    }
    if target in ("layers", "all"):
        total = sum(item["bytes"] for item in layers.values())
        for name, item in layers.items():
            result["layers"][name] = {"bytes": item["bytes"], "zip_bytes": item["zip_bytes"]}
            if item["zip_bytes"] is not None and item["zip_bytes"] > min(limits["direct_upload_zipped"], budgets["layer_zipped"]):
                violations.append(
                    f"layer {name}: zip of {item['zip_bytes']:,} bytes "
                    f"is over {min(limits['direct_upload_zipped'], budgets['layer_zipped']):,}"
                )
        result["layers_total_bytes"] = total
        if total > budgets["all_layers_unzipped"]:
            violations.append(f"all layers: {total:,} bytes unzipped is over the budget {budgets['all_layers_unzipped']:,}")
    if target in ("functions", "all"):
        needs = lockmod.layer_dependencies(config, lockmod.read_lock(config))
        for spec in templatemod.functions(config):
            source, files, root = _code_files(spec, build_dir)
            code_bytes = sum(path.stat().st_size for path in files)
            total = code_bytes + sum(layers[name]["bytes"] for name in spec.layers)
            contributors = [(f"{spec.logical_id} code", code_bytes)]
            for name in spec.layers:
                contributors += [(f"{package} ({name})", size) for package, size in layers[name]["packages"].items()]
            code_zip_bytes = zip_into(io.BytesIO(), root, files, compresslevel=None)  # zlib's default level, as SAM zips
            size = FunctionSize(
                spec.logical_id,
                source,
                code_bytes,
                code_zip_bytes,
                {name: layers[name]["bytes"] for name in spec.layers},
                total,
                limits["function_and_layers_unzipped"],
                sorted(contributors, key=lambda item: -item[1])[:5],
            )
            result["functions"].append(size.as_dict())
            largest = ", ".join(f"{name} {nbytes / 1e6:.1f} MB" for name, nbytes in size.contributors)
            if total >= limits["function_and_layers_unzipped"]:
                violations.append(
                    f"{spec.logical_id}: {total:,} bytes unzipped (code + {len(spec.layers)} layers) is not smaller than "
                    f"the limit {limits['function_and_layers_unzipped']:,}; largest: {largest}"
                )
            if len(spec.layers) > limits["layers_per_function"]:
                violations.append(f"{spec.logical_id}: {len(spec.layers)} layers, Lambda allows {limits['layers_per_function']}")
            if code_bytes > budgets["function_code_unzipped"]:
                violations.append(
                    f"{spec.logical_id}: code is {code_bytes:,} bytes, over the budget {budgets['function_code_unzipped']:,}"
                )
            if size.code_zip_bytes > limits["direct_upload_zipped"]:
                violations.append(
                    f"{spec.logical_id}: code zip of {size.code_zip_bytes:,} bytes is over {limits['direct_upload_zipped']:,}"
                )
            for name in spec.layers:
                missing = needs.get(name, set()) - set(spec.layers)
                if missing:
                    violations.append(
                        f"{spec.logical_id}: layer {name} needs {', '.join(sorted(missing))}, which the function does not mount"
                    )
    return result


def render(result: dict) -> str:
    lines = []
    if result["layers"]:
        lines.append(f"{'layer':<22}{'unzipped':>16}{'zipped':>14}")
        for name, item in result["layers"].items():
            zipped = f"{item['zip_bytes']:,}" if item["zip_bytes"] is not None else "-"
            lines.append(f"{name:<22}{item['bytes']:>16,}{zipped:>14}")
        lines.append(
            f"{'all layers':<22}{result['layers_total_bytes']:>16,}   budget {result['budgets']['all_layers_unzipped']:,}"
        )
        lines.append("")
    if result["functions"]:
        mounted = {name for item in result["functions"] for name in item["layers"]}
        names = [name for name in result["layer_names"] if name in mounted]
        lines.append(
            f"{'function':<28}{'code':>10}"
            + "".join(f"{name:>20}" for name in names)
            + f"{'total':>14}{'limit':>14}{'headroom':>22}"
        )
        for item in result["functions"]:
            cells = "".join(f"{item['layers'][name]:>20,}" if name in item["layers"] else f"{'-':>20}" for name in names)
            lines.append(
                f"{item['function']:<28}{item['code_bytes']:>10,}{cells}{item['total_bytes']:>14,}"
                f"{item['limit_bytes']:>14,}{item['headroom_bytes']:>14,} ({item['headroom_percent']:>4}%)"
            )
        worst = min(result["functions"], key=lambda item: item["headroom_bytes"])
        lines.append(
            f"largest in {worst['function']}: " + ", ".join(f"{c['name']} {c['bytes'] / 1e6:.1f} MB" for c in worst["largest"])
        )
    lines += [f"VIOLATION {line}" for line in result["violations"]] or ["all sizes within Lambda's limits and our budgets"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="size-validation.py",
        description="Check built layers and functions against Lambda's size limits and the project's budgets.",
    )
    parser.add_argument(
        "command",
        choices=("validate", "check", "report"),
        help="validate: table + exit non-zero on a violation; check: pass/fail only; report: table, exit 0",
    )
    parser.add_argument("--target", choices=("layers", "functions", "all"), default="all")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--verbose", action="store_true", help="also list each function's largest contributors")
    args = parser.parse_args(argv)
    try:
        result = measure(configmod.load(), args.target)
    except (BuildError, configmod.ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps(result, indent=2))
    elif args.command == "check":
        print("size check passed" if not result["violations"] else "size check FAILED")
    else:
        print(render(result))
        if args.verbose:
            for item in result["functions"]:
                print(f"{item['function']}: " + ", ".join(f"{c['name']} {c['bytes']:,}" for c in item["largest"]))
    for line in result["violations"]:
        print(f"error: {line}", file=sys.stderr)
    return 1 if result["violations"] and args.command != "report" else 0
