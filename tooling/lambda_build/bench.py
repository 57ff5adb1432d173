"""Side-by-side benchmark of layer variants: sizes and cold import time on the target interpreter.

Variants, all from the same locked wheels:

* ``naive``: wheels unpacked as they are, no bytecode (what ``sam build`` makes);
* ``strip-only``: the "slim" approach: tests and bytecode deleted, packages' own ``.so`` stripped;
* ``ours-source+bytecode``: our rules, but source kept with hash-based bytecode beside it;
* ``ours``: the layers as built (``layers.toml``: sourceless hash-based bytecode).

Cold import runs ``python3.13 -I -S -B`` in a fresh process per sample with only the merged
layers on the path: ``-B`` and a read-only view mean no bytecode is cached between runs, as on
Lambda, so a variant is only fast if what it ships is valid bytecode.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from . import build as buildmod
from . import config as configmod
from . import lock as lockmod
from .offline.emulator import REGION
from .optimize import Context, drop_test_suites, optimize, strip_extensions
from .package import write_zip
from .tools import BuildError, progress, target_python, tree_bytes
from .verify import merge_layers

IMPORT_SET = "import pandas, numpy, sklearn.ensemble, joblib, boto3"
PROBE = "import sys, time; sys.path.insert(0, sys.argv[1]); t = time.perf_counter(); {imports}; print(time.perf_counter() - t)"


def _variant_dirs(config: configmod.Config, arch, work: Path, with_source_variant: bool) -> dict[str, dict[str, Path]]:
    entries = lockmod.read_lock(config)
    assignment = lockmod.assign_layers(config, entries)
    buildmod.build(config, arch)  # ours, cached
    variants: dict[str, dict[str, Path]] = {"naive": {}, "strip-only": {}}
    if with_source_variant:
        variants["ours-source+bytecode"] = {}
    variants["ours"] = {}
    for layer in config.layers:
        naive = buildmod.install_naive(config, layer, arch, assignment[layer.name], clean=False)
        variants["naive"][layer.name] = naive
        slim = work / "strip-only" / layer.name
        shutil.copytree(naive, slim)
        ctx = Context(config, arch)
        drop_test_suites(slim / "python", ctx)
        for cache in list((slim / "python").rglob("__pycache__")):
            shutil.rmtree(cache)
        strip_extensions(slim / "python", ctx)
        variants["strip-only"][layer.name] = slim
        if with_source_variant:
            source = work / "source+bytecode" / layer.name
            shutil.copytree(naive, source)
            progress(f"benchmark: optimizing {layer.name} with source kept")
            optimize(source / "python", Context(dataclasses.replace(config, bytecode="source+bytecode"), arch))
            variants["ours-source+bytecode"][layer.name] = source
        variants["ours"][layer.name] = config.layer_output(layer)
    return variants


def _import_times(python: Path, merged: dict[str, Path], runs: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in merged}
    probe = PROBE.format(imports=IMPORT_SET)
    for folder in merged.values():  # one discarded run each: the page cache, not the variant
        subprocess.run([str(python), "-I", "-S", "-B", "-c", probe, str(folder)], check=True, capture_output=True)
    for _ in range(runs):  # round robin, so that machine noise hits every variant alike
        for name, folder in merged.items():
            out = subprocess.run(
                [str(python), "-I", "-S", "-B", "-c", probe, str(folder)], check=True, capture_output=True, text=True
            )
            samples[name].append(float(out.stdout.strip()))
    return samples


def run(runs: int = 7, with_source_variant: bool = True, arch_name: str | None = None) -> dict:
    config = configmod.load()
    arch = config.architecture(arch_name)
    python = target_python(config.python_version)
    with tempfile.TemporaryDirectory(dir=config.build_dir) as tmp:
        work = Path(tmp)
        variants = _variant_dirs(config, arch, work, with_source_variant)
        results: dict[str, dict] = {}
        merged_dirs: dict[str, Path] = {}
        for name, layers in variants.items():
            progress(f"benchmark: measuring {name}")
            sizes = {layer: tree_bytes(folder / "python") for layer, folder in layers.items()}
            zips = {
                layer: write_zip(folder, work / "zips" / name / f"{layer}.zip")["zip_bytes"] for layer, folder in layers.items()
            }
            results[name] = {
                "unzipped": sizes,
                "unzipped_total": sum(sizes.values()),
                "zipped": zips,
                "zipped_total": sum(zips.values()),
            }
            merged = work / "merged" / name
            merge_layers(layers, merged)
            merged_dirs[name] = merged / "python"
        progress(f"benchmark: cold imports, {runs} fresh processes per variant")
        samples = _import_times(python, merged_dirs, runs)
    baseline = statistics.median(samples["naive"])
    for name, values in samples.items():
        median = statistics.median(values)
        results[name]["import_seconds"] = {"median": round(median, 3), "samples": [round(v, 3) for v in values]}
        results[name]["import_speedup_vs_naive"] = round(baseline / median, 2)
        results[name]["size_ratio_vs_naive"] = round(results[name]["unzipped_total"] / results["naive"]["unzipped_total"], 3)
    return {"python": str(python), "architecture": arch.name, "import_set": IMPORT_SET, "runs": runs, "variants": results}


def render(report: dict) -> str:
    variants = report["variants"]
    layers = list(next(iter(variants.values()))["unzipped"])
    lines = [
        f"Cold import of '{report['import_set']}' on {report['python']} ({report['architecture']}), "
        f"median of {report['runs']} fresh processes"
    ]
    header = (
        f"{'variant':<22}"
        + "".join(f"{name:>19}" for name in layers)
        + f"{'all layers':>14}{'zipped':>13}{'import s':>10}{'speedup':>9}{'size':>7}"
    )
    lines += [header, "-" * len(header)]
    for name, item in variants.items():
        lines.append(
            f"{name:<22}"
            + "".join(f"{item['unzipped'][layer]:>19,}" for layer in layers)
            + f"{item['unzipped_total']:>14,}{item['zipped_total']:>13,}{item['import_seconds']['median']:>10.3f}"
            + f"{item['import_speedup_vs_naive']:>8.2f}x{item['size_ratio_vs_naive']:>7.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_layers.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per variant (at least 5)")
    parser.add_argument("--no-source-variant", action="store_true", help="skip the source+bytecode variant (saves a minute)")
    parser.add_argument("--arch", help="architecture (default from layers.toml)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument(
        "--cold-starts", action="store_true", help="instead: init duration per function, ours vs source-only layers"
    )
    args = parser.parse_args(argv)
    if args.runs < 5:
        parser.error("--runs must be at least 5")
    try:
        if args.cold_starts:
            report = cold_starts(args.runs, args.arch)
            text = render_cold_starts(report)
        else:
            report = run(args.runs, not args.no_source_variant, args.arch)
            text = render(report)
    except (BuildError, configmod.ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2) if args.format == "json" else text)
    return 0


def cold_starts(runs: int = 5, arch_name: str | None = None) -> dict:
    """Init duration of each function from our layers beside a source-only build of the same layers.

    The source-only variant applies every rule but bytecode: same files, ``.py`` instead of
    hash-based ``.pyc``. Each sample is a fresh environment in the local runner (read-only
    /opt and /var/task, as on Lambda, so nothing compiled at import is kept).
    """
    from .bytecode_free import source_only_layers
    from .offline.sandbox import LocalFunction
    from .template import functions

    config = configmod.load()
    arch = config.architecture(arch_name)
    buildmod.build(config, arch)
    build_dir = Path(__file__).resolve().parents[2] / ".aws-sam" / "build"
    specs = [spec for spec in functions(config) if (build_dir / spec.logical_id).is_dir()]
    if not specs:
        raise BuildError("no built functions: run ./build.sh first")
    with tempfile.TemporaryDirectory(dir=config.build_dir) as tmp:
        source_only = source_only_layers(config, arch, Path(tmp) / "source-only")
        variants = {"ours": {layer.name: config.layer_output(layer) for layer in config.layers}, "source-only": source_only}
        samples: dict[str, dict[str, list[float]]] = {spec.logical_id: {name: [] for name in variants} for spec in specs}
        env = {"AWS_DEFAULT_REGION": REGION, "POWERTOOLS_METRICS_NAMESPACE": "Bench", "BUCKET_NAME": "b", "TABLE_NAME": "t"}
        for run_index in range(runs):
            progress(f"cold starts: round {run_index + 1} of {runs}")
            for spec in specs:
                for name, folders in variants.items():
                    function = LocalFunction(
                        spec.logical_id,
                        spec.handler,
                        build_dir / spec.logical_id,
                        {layer: folders[layer] for layer in spec.layers},
                        python_version=config.python_version,
                        memory_mb=3008,
                        timeout_s=60,
                        environment=env,
                        work_dir=Path(tmp) / "work" / name / spec.logical_id,
                    )
                    samples[spec.logical_id][name].append(function.start_only())
                    function.stop()
    result = {}
    for function_name, by_variant in samples.items():
        medians = {name: round(statistics.median(values), 1) for name, values in by_variant.items()}
        result[function_name] = {
            "init_ms_median": medians,
            "samples": by_variant,
            "speedup": round(medians["source-only"] / medians["ours"], 2),
        }
    return {"runs": runs, "functions": result}


def render_cold_starts(report: dict) -> str:
    lines = [
        f"Init duration (median of {report['runs']} cold starts in the local runner)",
        f"{'function':<28}{'ours ms':>10}{'source-only ms':>16}{'speedup':>9}",
    ]
    for name, item in report["functions"].items():
        lines.append(
            f"{name:<28}{item['init_ms_median']['ours']:>10.0f}{item['init_ms_median']['source-only']:>16.0f}{item['speedup']:>8.2f}x"
        )
    return "\n".join(lines)
