"""Command line of the layer tooling (``scripts/manage-layers.sh`` runs it)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
import zipfile
from collections import defaultdict
from pathlib import PurePosixPath

from . import build as buildmod
from . import config as configmod
from . import lock as lockmod
from . import tools
from .optimize import package_of
from .verify import raise_for_problems, verify, verify_cached

COMMANDS = {
    "lock": "re-resolve layers/requirements.lock for the target (floors and no-downgrade enforced)",
    "build": "install, optimize, zip and verify layers (cached: unchanged layers are not rebuilt)",
    "optimize": "re-run the optimizer rules on the cached install (after editing layers.toml)",
    "validate": "verify built layers on the target interpreter: imports, workloads, ELF checks",
    "report": "sizes per layer and per package, unzipped and zipped, and what each rule removed",
    "status": "which layers are built, stale or missing",
    "clean": "remove built layers and their cached installs",
}


def _parser() -> argparse.ArgumentParser:
    # These options go before or after the command; SUPPRESS keeps the command's parser from
    # overwriting a value given before it with its own default (DEFAULTS fills in the rest).
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument("--arch", help="target architecture: x86_64 (default) or arm64; also $ITEM_PREDICTION_ARCH")
    common.add_argument("--format", choices=("text", "json"), help="output format: text (default) or json (for CI)")
    common.add_argument("--verbose", action="store_true", help="show every command and step timing")
    parser = argparse.ArgumentParser(
        prog="manage-layers.sh",
        description="Build, optimize, verify and report the shared Lambda layers declared in layers/layers.toml.",
        parents=[common],
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, summary in COMMANDS.items():
        sub = commands.add_parser(name, help=summary, description=summary, parents=[common])
        sub.set_defaults(func=RUNNERS[name])  # main() calls it: one runner per sub-command
        if name == "lock":
            sub.add_argument("--upgrade", action="store_true", help="move every pin to the newest allowed version")
            sub.add_argument("--allow-downgrade", action="store_true", help="accept a resolution that lowers a pin")
        else:
            sub.add_argument("layer", nargs="?", default="all", help="a layer name or 'all' (default)")
        if name == "build":
            sub.add_argument("--clean", action="store_true", help="rebuild from scratch, ignoring caches")
        if name in ("build", "optimize", "validate"):
            sub.add_argument(
                "--static-only",
                action="store_true",
                help="when the target interpreter cannot run this architecture (arm64 on x86_64): "
                "check ELF files only, and say so",
            )
    return parser


DEFAULTS = {"arch": None, "format": "text", "verbose": False}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    args = _parser().parse_args(argv)
    for name, value in DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, value)
    return args


def _emit(args: argparse.Namespace, payload, text: str) -> None:
    if args.format == "json":
        print(json.dumps(payload, indent=2, default=str))
    else:
        print(text)


def zipped_by_package(path) -> dict[str, int]:
    sizes: dict[str, int] = defaultdict(int)
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            relative = info.filename.split("/", 1)[1] if "/" in info.filename else info.filename
            sizes[package_of(PurePosixPath(relative))] += info.compress_size
    return dict(sizes)


def report(config: configmod.Config, names: str) -> dict:
    layers = {}
    for layer in config.select(names):
        info = buildmod.read_info(config, layer)
        if info is None:
            layers[layer.name] = {"state": "missing"}
            continue
        zipped = zipped_by_package(config.layer_zip(layer)) if config.layer_zip(layer).exists() else {}
        packages = {
            name: {
                "unzipped_bytes": size,
                "zipped_bytes": zipped.get(name, 0),
                "naive_bytes": info["packages"]["naive"].get(name, 0),
            }
            for name, size in info["packages"]["optimized"].items()
        }
        layers[layer.name] = {
            key: info[key]
            for key in (
                "architecture",
                "runtime",
                "bytecode",
                "naive_bytes",
                "unzipped_bytes",
                "zip_bytes",
                "zip_sha256",
                "rules",
                "distributions",
            )
        } | {"packages": packages}
    total = sum(item.get("unzipped_bytes", 0) for item in layers.values())
    built_for = next((item["architecture"] for item in layers.values() if "architecture" in item), None)
    budget = config.budgets_for(built_for)["all_layers_unzipped"]
    return {"layers": layers, "total_unzipped_bytes": total, "budget_bytes": budget, "within_budget": total <= budget}


def _report_text(data: dict) -> str:
    lines = []
    for name, layer in data["layers"].items():
        if "unzipped_bytes" not in layer:
            lines.append(f"{name}: {layer['state']}")
            continue
        lines.append(
            f"{name} ({layer['architecture']}, {layer['bytecode']}): {layer['naive_bytes']:,} naive -> "
            f"{layer['unzipped_bytes']:,} unzipped, {layer['zip_bytes']:,} zipped"
        )
        lines.append(f"  {'package':<26}{'naive':>14}{'unzipped':>14}{'zipped':>13}")
        for package, sizes in layer["packages"].items():
            lines.append(f"  {package:<26}{sizes['naive_bytes']:>14,}{sizes['unzipped_bytes']:>14,}{sizes['zipped_bytes']:>13,}")
        lines.append(f"  {'rule':<26}{'files':>8}{'bytes removed':>20}")
        for rule in layer["rules"]:
            lines.append(f"  {rule['rule']:<26}{rule['files']:>8,}{rule['bytes_removed']:>20,}")
    lines.append(
        f"all layers: {data['total_unzipped_bytes']:,} bytes unzipped, budget {data['budget_bytes']:,} "
        f"({'within' if data['within_budget'] else 'OVER'} budget)"
    )
    return "\n".join(lines)


def status(config: configmod.Config, arch, names: str) -> dict:
    entries = lockmod.read_lock(config)
    assignment = lockmod.assign_layers(config, entries)
    states = {}
    for layer in config.select(names):
        state, info = buildmod.layer_state(config, layer, arch, assignment[layer.name])
        states[layer.name] = {
            "state": state,
            "architecture": (info or {}).get("architecture"),
            "unzipped_bytes": (info or {}).get("unzipped_bytes"),
        }
    return states


def main_with_layer_option(argv: list[str]) -> int:
    """``COMMAND --layer NAME [...]`` (scripts/layer-utils.py) as ``COMMAND NAME [...]``."""
    if argv and argv[0] in ("-h", "--help"):
        print(
            textwrap.dedent(f"""\
            usage: layer-utils.py COMMAND [--layer NAME] [options]   (--layer defaults to all)
            commands: {", ".join(name for name in COMMANDS if name != "lock")}
            options are those of scripts/manage-layers.sh COMMAND --help""")
        )
        return 0
    rest, layer = [], "all"
    items = iter(argv)
    for item in items:
        if item == "--layer":
            layer = next(items, None)
            if layer is None:
                print("error: --layer needs a layer name or 'all'", file=sys.stderr)
                return 2
        elif item.startswith("--layer="):
            layer = item.split("=", 1)[1]
        else:
            rest.append(item)
    if not rest or rest[0] not in COMMANDS or rest[0] == "lock":
        print(
            f"error: expected a command: {', '.join(name for name in COMMANDS if name != 'lock')} (see --help)", file=sys.stderr
        )
        return 2
    return main([rest[0], layer, *rest[1:]])


def _run_lock(args: argparse.Namespace, config: configmod.Config, arch) -> None:
    result = lockmod.update_lock(config, upgrade=args.upgrade, allow_downgrade=args.allow_downgrade)
    changed = ", ".join(f"{name} {old} -> {new}" for name, (old, new) in result["changed"].items()) or "no changes"
    _emit(args, result, f"{result['lock']}: {result['distributions']} distributions; {changed}")


def _run_build(args: argparse.Namespace, config: configmod.Config, arch) -> None:
    """Build (cached), then verify once every layer is built."""
    results = buildmod.build(config, arch, args.layer, clean=getattr(args, "clean", False))
    all_built = all(buildmod.read_info(config, layer) for layer in config.layers)
    verification = verify_cached(config, arch, static_only=args.static_only) if all_built else None
    if verification is not None:
        raise_for_problems(verification)
    summary = {
        name: {k: info[k] for k in ("rebuilt", "unzipped_bytes", "zip_bytes", "zip_sha256")} for name, info in results.items()
    }
    payload = {
        "layers": summary,
        "verified": verification is not None,
        "runtime_checks": (verification or {}).get("runtime_checks"),
    }
    _emit(args, payload, _build_text(summary, verification))


def _build_text(summary: dict[str, dict], verification: dict | None) -> str:
    total = sum(item["unzipped_bytes"] for item in summary.values())
    verified = (
        "not verified (build all layers first)"
        if verification is None
        else ("verified (cached)" if verification["cached"] else "verified")
    )
    if verification is not None and verification["runtime_checks"] != "run":
        verified = f"ELF files checked; imports and workloads {verification['runtime_checks']}"
    lines = [
        f"{name}: {'rebuilt' if item['rebuilt'] else 'up to date'}, {item['unzipped_bytes']:,} bytes, "
        f"zip sha256 {item['zip_sha256'][:16]}"
        for name, item in summary.items()
    ]
    return "\n".join([*lines, f"total {total:,} bytes unzipped; {verified}"])


def _run_optimize(args: argparse.Namespace, config: configmod.Config, arch) -> None:
    for layer in config.select(args.layer):
        config.layer_info(layer).unlink(missing_ok=True)  # forces the rules to run again on the cached install
    _run_build(args, config, arch)


def _run_validate(args: argparse.Namespace, config: configmod.Config, arch) -> None:
    result = verify(config, arch, static_only=args.static_only)
    if args.layer != "all":
        result["problems"] = [
            p for p in result["problems"] if args.layer in p or not any(layer.name in p for layer in config.layers)
        ]
    verified = (
        f"all layers verified on {config.runtime} {arch.name}: {', '.join(result['sets'])}"
        if result["runtime_checks"] == "run"
        else f"ELF files of all layers checked for {arch.name}; imports and workloads {result['runtime_checks']}"
    )
    _emit(args, result, "\n".join(result["problems"]) or verified)
    raise_for_problems(result)


def _run_report(args: argparse.Namespace, config: configmod.Config, arch) -> None:
    data = report(config, args.layer)
    _emit(args, data, _report_text(data))


def _run_status(args: argparse.Namespace, config: configmod.Config, arch) -> None:
    data = status(config, arch, args.layer)
    _emit(
        args,
        data,
        "\n".join(
            f"{name}: {item['state']}"
            + (f" ({item['architecture']}, {item['unzipped_bytes']:,} bytes)" if item["unzipped_bytes"] else "")
            for name, item in data.items()
        ),
    )


def _run_clean(args: argparse.Namespace, config: configmod.Config, arch) -> None:
    removed = buildmod.clean(config, args.layer)
    _emit(args, {"removed": removed}, f"removed {len(removed)} build outputs")


RUNNERS = {
    "lock": _run_lock,
    "build": _run_build,
    "optimize": _run_optimize,
    "validate": _run_validate,
    "report": _run_report,
    "status": _run_status,
    "clean": _run_clean,
}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.verbose:
        tools.VERBOSE = True
        os.environ["ITEM_PREDICTION_VERBOSE"] = "1"
    try:
        config = configmod.load()
        arch = config.architecture(args.arch)
        config.select(getattr(args, "layer", None))  # an unknown layer is refused by every command, before any work
        args.func(args, config, arch)
    except (tools.BuildError, configmod.ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0
