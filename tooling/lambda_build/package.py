"""Reproducible layer zips and the size accounting Lambda does."""

from __future__ import annotations

import os
import stat
import zipfile
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from .optimize import package_of
from .tools import iter_files, sha256_file

FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # what SAM writes too; no build-time timestamps in the zip


def zip_into(out: BinaryIO, root: Path, files: Iterable[Path] | None = None, *, compresslevel: int | None = 9) -> int:
    """Zip ``files`` (every regular file below ``root`` when None) into ``out``, named by their
    path below ``root``; the archive's size in bytes.

    The one zip writer (layers, the local stack's function artifacts, the size gate's estimate),
    reproducible: entries in the given (by default sorted) order, dated 1980-01-01, with fixed
    permissions, so the same files always give the same bytes. ``compresslevel`` None is zlib's
    default, what ``sam build``/``sam package`` use.
    """
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=compresslevel) as archive:
        for path in iter_files(root) if files is None else files:
            info = zipfile.ZipInfo(path.relative_to(root).as_posix(), date_time=FIXED_DATE)
            mode = 0o755 if os.stat(path).st_mode & stat.S_IXUSR else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.create_system = 3
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(path, "rb") as handle:
                archive.writestr(info, handle.read(), compresslevel=compresslevel)
    return out.tell()


def write_zip(folder: Path, destination: Path) -> dict:
    """Zip ``folder``'s contents (``python/...``) byte-for-byte reproducibly, at the best compression.

    Two builds of the same files give the same sha256, so SAM (which hashes content) publishes
    no new layer version. The file appears whole or not at all (written beside it, then moved).
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_suffix(".zip.partial")
    with open(partial, "wb") as out:
        zip_into(out, folder)
    partial.replace(destination)
    return {"zip": str(destination), "zip_bytes": destination.stat().st_size, "sha256": sha256_file(destination)}


def sizes_by_package(python_dir: Path) -> dict[str, int]:
    """Unzipped bytes per top-level package (``numpy.libs`` and ``numpy-*.dist-info`` count as numpy)."""
    sizes: dict[str, int] = defaultdict(int)
    for path in iter_files(python_dir):
        sizes[package_of(path.relative_to(python_dir))] += path.stat().st_size
    return dict(sorted(sizes.items(), key=lambda item: -item[1]))


def largest_files(root: Path, count: int = 10) -> list[tuple[str, int]]:
    files = [(path.relative_to(root).as_posix(), path.stat().st_size) for path in iter_files(root)]
    return sorted(files, key=lambda item: -item[1])[:count]
