"""Named, measured rules that slim an installed layer without breaking it.

Each rule takes the layer's ``python/`` folder and returns what it changed; the build records
bytes and files per rule and per top-level package for the report. Rules never touch what
auditwheel vendored (``*.libs/``): stripping those corrupts them, and verification checks it.
"""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .config import Architecture, Config
from .tools import BuildError, iter_files, run, step, target_python

ELF_MAGIC = b"\x7fELF"
# .tp: Tempita templates the Cython sources are generated from (scikit-learn ships 0.47 MB of them)
SOURCE_SUFFIXES = {".c", ".h", ".cc", ".cpp", ".cxx", ".hh", ".hpp", ".pyx", ".pxd", ".pxi", ".tp", ".f", ".f90", ".cu", ".a"}
DOC_SUFFIXES = {".rst", ".md"}
DOC_DIRS = {"doc", "docs", "examples", "example"}


@dataclass
class RuleResult:
    """What one rule did to one layer."""

    name: str
    description: str
    files: int = 0
    bytes_removed: int = 0  # negative when a rule adds bytes (bytecode beside source)
    by_package: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def as_dict(self) -> dict:
        return {
            "rule": self.name,
            "description": self.description,
            "files": self.files,
            "bytes_removed": self.bytes_removed,
            "by_package": dict(sorted(self.by_package.items(), key=lambda item: -abs(item[1]))),
        }


@dataclass
class Context:
    """What a rule may need besides the folder."""

    config: Config
    arch: Architecture


def package_of(relative: Path) -> str:
    """The top-level package a path belongs to (``numpy.libs`` counts as numpy)."""
    head = relative.parts[0]
    for suffix in (".libs", ".dist-info", ".data"):
        if head.endswith(suffix):
            head = head[: -len(suffix)].split("-")[0]
    return head.removesuffix(".py").removesuffix(".pyc")


def is_vendored(relative: Path) -> bool:
    return any(part.endswith(".libs") for part in relative.parts)


def is_metadata(relative: Path) -> bool:
    return any(part.endswith((".dist-info", ".egg-info")) for part in relative.parts)


def is_elf(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) == ELF_MAGIC


def _remove(root: Path, paths: Iterable[Path], result: RuleResult) -> RuleResult:
    for path in sorted(set(paths)):
        if not path.exists():
            continue
        files = [path] if path.is_file() else list(iter_files(path))
        for file in files:
            size = file.stat().st_size
            result.files += 1
            result.bytes_removed += size
            result.by_package[package_of(file.relative_to(root))] += size
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    return result


def _kept(relative: Path, keep: tuple[str, ...]) -> bool:
    text = relative.as_posix()
    return any(text == item or text.startswith(item.rstrip("/") + "/") or item.startswith(text + "/") for item in keep)


def _walk_dirs(root: Path) -> Iterable[Path]:
    for dirpath, dirnames, _ in os.walk(root):
        dirnames.sort()
        for name in dirnames:
            yield Path(dirpath, name)


def drop_console_scripts(root: Path, ctx: Context) -> RuleResult:
    """Remove ``bin/`` and its RECORD lines: the installer wrote the build machine's interpreter
    path into those scripts, which would make the layer differ from one checkout to another."""
    result = RuleResult("console-scripts", "command-line entry points (python/bin): nothing runs them in Lambda")
    for record in root.glob("*.dist-info/RECORD"):
        lines = record.read_text().splitlines(keepends=True)
        kept = [line for line in lines if not line.startswith("bin/")]
        if kept != lines:
            record.write_text("".join(kept))
    return _remove(root, [root / "bin"], result)


def drop_test_suites(root: Path, ctx: Context) -> RuleResult:
    result = RuleResult("test-suites", "package test suites (tests/ folders, conftest.py)")
    targets = [d for d in _walk_dirs(root) if d.name == "tests" and not _kept(d.relative_to(root), ctx.config.keep)]
    targets += [f for f in iter_files(root) if f.name == "conftest.py"]
    return _remove(root, targets, result)


def drop_docs(root: Path, ctx: Context) -> RuleResult:
    result = RuleResult("docs-examples", "documentation and examples (*.rst, *.md, doc/examples folders that are not packages)")
    targets = [
        d
        for d in _walk_dirs(root)
        if d.name in DOC_DIRS and not (d / "__init__.py").exists() and not is_metadata(d.relative_to(root))
    ]
    targets += [f for f in iter_files(root) if f.suffix in DOC_SUFFIXES and not is_metadata(f.relative_to(root))]
    return _remove(root, [t for t in targets if not _kept(t.relative_to(root), ctx.config.keep)], result)


def drop_sources(root: Path, ctx: Context) -> RuleResult:
    result = RuleResult("c-sources-headers", "C/C++/Cython/Fortran sources and templates, headers and static archives")
    targets = [f for f in iter_files(root) if f.suffix.lower() in SOURCE_SUFFIXES and not is_vendored(f.relative_to(root))]
    return _remove(root, [t for t in targets if not _kept(t.relative_to(root), ctx.config.keep)], result)


def drop_type_stubs(root: Path, ctx: Context) -> RuleResult:
    result = RuleResult("type-stubs", "type stubs (*.pyi): only type checkers read them")
    return _remove(root, [f for f in iter_files(root) if f.suffix == ".pyi"], result)


def prune_aws_service_models(root: Path, ctx: Context) -> RuleResult:
    services = set(ctx.config.aws_services)
    result = RuleResult("aws-service-models", f"botocore/boto3 service models except {', '.join(sorted(services))}")
    targets = []
    for data in (root / "botocore" / "data", root / "boto3" / "data"):
        if data.is_dir():
            targets += [d for d in data.iterdir() if d.is_dir() and d.name not in services]
    return _remove(root, targets, result)


def prune_unused_modules(root: Path, ctx: Context) -> RuleResult:
    result = RuleResult("unused-modules", "submodules and data no function uses (layers.toml [optimize.unused])")
    targets = [
        path
        for pattern in ctx.config.prune_unused
        for path in root.glob(pattern)
        if not _kept(path.relative_to(root), ctx.config.keep)
    ]
    return _remove(root, targets, result)


def strip_extensions(root: Path, ctx: Context) -> RuleResult:
    """Strip debug symbols from packages' own extension modules, never from ``*.libs/``."""
    result = RuleResult("strip-debug", "debug symbols of packages' own extension modules (not *.libs/)")
    strip = next((shutil.which(tool) for tool in ctx.arch.strip if shutil.which(tool)), None)
    targets = [
        f
        for f in iter_files(root)
        if (f.suffix == ".so" or ".so." in f.name) and not is_vendored(f.relative_to(root)) and is_elf(f)
    ]
    if not targets:
        return result
    if strip is None:
        raise BuildError(
            f"no strip for {ctx.arch.name} (tried {', '.join(ctx.arch.strip)}): apt-get install binutils-{ctx.arch.multiarch}"
        )
    for file in targets:
        # strip into a copy and keep it only when smaller: aarch64's strip can re-pad segments to
        # 64 KiB pages and grow a file
        stripped = file.with_name(file.name + ".stripped")
        run([strip, "--strip-debug", "-o", str(stripped), str(file)])
        saved = file.stat().st_size - stripped.stat().st_size
        if saved > 0:
            os.replace(stripped, file)
            result.files += 1
            result.bytes_removed += saved
            result.by_package[package_of(file.relative_to(root))] += saved
        else:
            stripped.unlink()
    return result


def compile_bytecode(root: Path, ctx: Context) -> RuleResult:
    """Hash-based bytecode from the target interpreter, with paths as Lambda will see them."""
    sourceless = ctx.config.bytecode == "sourceless"
    result = RuleResult(
        "bytecode",
        "unchecked-hash bytecode compiled by the target interpreter, "
        + ("sourceless (.pyc replaces .py)" if sourceless else "beside the source (__pycache__)"),
    )
    stale = [d for d in _walk_dirs(root) if d.name == "__pycache__"]
    _remove(root, stale, RuleResult("stale", ""))
    sources = [f for f in iter_files(root) if f.suffix == ".py" and not is_metadata(f.relative_to(root))]
    before = {f: f.stat().st_size for f in sources}
    python = target_python(ctx.config.python_version)
    # One process, files in compileall's sorted order: the bytes of a .pyc can depend on what the
    # compiling process compiled before it (whether equal constants are shared), so a worker pool,
    # which hands files out by timing, gave a different ml-libraries zip on one build in several.
    command = [
        str(python),
        "-I",
        "-m",
        "compileall",
        "-q",
        "-j",
        "1",
        "--invalidation-mode",
        "unchecked-hash",
        "-s",
        str(root),
        "-p",
        "/opt/python",
    ]
    if sourceless:
        command.append("-b")
    run([*command, str(root)])
    for source, size in before.items():
        package = package_of(source.relative_to(root))
        if sourceless:
            compiled = source.with_suffix(".pyc")
            if not compiled.exists():
                raise BuildError(f"{source.relative_to(root)}: the target interpreter did not compile it")
            delta = size - compiled.stat().st_size
            source.unlink()
        else:
            tag = f"cpython-{ctx.config.python_version.replace('.', '')}"
            compiled = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
            if not compiled.exists():
                raise BuildError(f"{source.relative_to(root)}: the target interpreter did not compile it")
            delta = -compiled.stat().st_size
        result.files += 1
        result.bytes_removed += delta
        result.by_package[package] += delta
    return result


Rule = Callable[[Path, Context], RuleResult]

# The order matters: remove first, strip, then compile what is left.
RULES: tuple[Rule, ...] = (
    drop_console_scripts,
    drop_test_suites,
    drop_docs,
    drop_sources,
    drop_type_stubs,
    prune_aws_service_models,
    prune_unused_modules,
    strip_extensions,
    compile_bytecode,
)


def optimize(root: Path, ctx: Context) -> list[RuleResult]:
    results = []
    for rule in RULES:
        with step(f"  optimize {root.parent.name}: {rule.__name__.replace('_', ' ')}"):
            results.append(rule(root, ctx))
    return results
