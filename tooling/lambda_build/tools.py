"""External tools the build drives (uv, the target interpreter, strip) and shared helpers."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path


class BuildError(Exception):
    """A build, verification or gate failure, with a message fit for one line of output."""


VERBOSE = os.environ.get("ITEM_PREDICTION_VERBOSE") == "1"


def progress(message: str) -> None:
    """Progress goes to stderr so that stdout stays machine-readable (JSON) where CI reads it."""
    print(f"==> {message}", file=sys.stderr, flush=True)


def detail(message: str) -> None:
    if VERBOSE:
        print(f"    {message}", file=sys.stderr, flush=True)


@contextmanager
def step(message: str) -> Iterator[None]:
    started = time.monotonic()
    progress(message)
    yield
    detail(f"{message}: {time.monotonic() - started:.1f}s")


def run(command: list[str], *, cwd: Path | None = None, env: dict | None = None) -> str:
    """Run a command; on failure raise BuildError with the command's last words."""
    detail("$ " + " ".join(command))
    completed = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if completed.returncode != 0:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-3:]
        raise BuildError(f"{Path(command[0]).name} failed ({completed.returncode}): {' | '.join(tail)}")
    return completed.stdout


@cache
def uv_command() -> list[str]:
    """uv, from the project environment (pinned in requirements-dev) or PATH."""
    beside = Path(sys.executable).with_name("uv")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("uv")
    if found:
        return [found]
    raise BuildError("uv not found: run scripts/bootstrap.sh (or 'pip install uv')")


@cache
def target_python(version: str) -> Path:
    """The target runtime's interpreter: $TARGET_PYTHON, pythonX.Y on PATH, or pyenv's."""
    candidates = []
    if os.environ.get("TARGET_PYTHON"):
        candidates.append(os.environ["TARGET_PYTHON"])
    try:
        pyenv = subprocess.run(["pyenv", "versions", "--bare"], capture_output=True, text=True, check=False)
        for installed in sorted(pyenv.stdout.split(), reverse=True):
            if installed.startswith(version + "."):
                env = dict(os.environ, PYENV_VERSION=installed)
                found = subprocess.run(
                    ["pyenv", "which", f"python{version}"], capture_output=True, text=True, env=env, check=False
                ).stdout.strip()
                if found:
                    candidates.append(found)
    except FileNotFoundError:
        pass
    on_path = shutil.which(f"python{version}")
    if on_path and "/shims/" not in on_path:
        candidates.append(on_path)
    for candidate in candidates:
        probe = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return Path(candidate)
    raise BuildError(f"python{version} (the target runtime) not found: install it (pyenv install {version}) or set TARGET_PYTHON")


@cache
def interpreter_machine(python: Path) -> str:
    """The machine an interpreter runs on (``platform.machine()``: x86_64, aarch64)."""
    probe = subprocess.run(
        [str(python), "-I", "-c", "import platform; print(platform.machine())"], capture_output=True, text=True, check=False
    )
    return probe.stdout.strip() or "unknown"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tree_bytes(root: Path) -> int:
    """Bytes as Lambda counts them: the sum of regular file sizes (directories count nothing)."""
    return sum(path.stat().st_size for path in iter_files(root))


def iter_files(root: Path) -> Iterator[Path]:
    """Every regular file below root, in a stable order; symlinks are not followed."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath, name)
            if path.is_file() and not path.is_symlink():
                yield path
