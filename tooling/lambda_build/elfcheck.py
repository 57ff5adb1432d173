"""Static checks of every ELF file in a layer against the Lambda target.

Catches, before anything is deployed, the breakages that otherwise surface as an ImportError
on the first cold start: a binary for the wrong machine, one that needs a newer glibc than
Amazon Linux 2023's, an extension module built for another Python, and a vendored library
that was rewritten after install (``strip`` on auditwheel's ``*.libs/`` leaves load segments
that the dynamic loader rejects as "not page-aligned").
"""

from __future__ import annotations

import base64
import csv
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection

from .config import Architecture, Config
from .optimize import ELF_MAGIC, is_vendored
from .tools import iter_files

_EXTENSION_TAG = re.compile(r"\.cpython-(?P<version>\d+)(?P<flags>[a-z]*)-(?P<platform>[A-Za-z0-9_]+)-linux-gnu\.so$")
_GLIBC = re.compile(r"^GLIBC_(\d+)\.(\d+)(?:\.(\d+))?$")


@dataclass(frozen=True)
class Problem:
    """One file that would not load on the target, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def record_hashes(root: Path) -> dict[str, str]:
    """Relative path -> sha256 (hex) from every ``*.dist-info/RECORD`` in the layer."""
    hashes = {}
    for record in root.glob("*.dist-info/RECORD"):
        with open(record, newline="") as handle:
            for row in csv.reader(handle):
                if len(row) >= 2 and row[1].startswith("sha256="):
                    encoded = row[1].removeprefix("sha256=")
                    raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
                    hashes[row[0]] = raw.hex()
    return hashes


def _required_glibc(elf: ELFFile) -> tuple[int, ...]:
    newest: tuple[int, ...] = ()
    for section in elf.iter_sections():
        if not isinstance(section, GNUVerNeedSection):
            continue
        for _verneed, auxiliaries in section.iter_versions():
            for aux in auxiliaries:
                match = _GLIBC.match(aux.name)
                if match:
                    version = tuple(int(part) for part in match.groups() if part is not None)
                    newest = max(newest, version)
    return newest


def check_file(path: Path, relative: str, config: Config, arch: Architecture) -> list[Problem]:
    """Every reason this one ELF file would fail on the target."""
    problems = []
    tag = _EXTENSION_TAG.search(path.name)
    if tag:
        wanted = config.python_version.replace(".", "")
        if tag["version"] != wanted or tag["flags"]:
            problems.append(
                Problem(relative, f"extension built for cpython-{tag['version']}{tag['flags']}, runtime is {config.runtime}")
            )
        if tag["platform"] != arch.multiarch.split("-")[0]:
            problems.append(Problem(relative, f"extension built for {tag['platform']}, architecture is {arch.name}"))
    try:
        with open(path, "rb") as handle:
            elf = ELFFile(handle)
            machine = elf["e_machine"]
            if machine != arch.elf_machine:
                problems.append(Problem(relative, f"machine {machine}, architecture {arch.name} needs {arch.elf_machine}"))
            for segment in elf.iter_segments():
                if segment["p_type"] != "PT_LOAD" or segment["p_align"] <= 1:
                    continue
                if segment["p_offset"] % segment["p_align"] != segment["p_vaddr"] % segment["p_align"]:
                    problems.append(
                        Problem(
                            relative,
                            "ELF load segment offset/address not page-aligned (library rewritten after build, e.g. stripped)",
                        )
                    )
                    break
            glibc = _required_glibc(elf)
            if glibc and glibc[:2] > config.glibc:
                needed = ".".join(map(str, glibc))
                problems.append(Problem(relative, f"needs GLIBC_{needed}, the runtime has {'.'.join(map(str, config.glibc))}"))
    except (ELFError, ValueError, OSError, KeyError) as exc:
        problems.append(Problem(relative, f"unreadable ELF file ({exc})"))
    return problems


def check_tree(root: Path, config: Config, arch: Architecture) -> tuple[int, list[Problem]]:
    """Check every ELF file below ``root`` (a layer's ``python/``); return (files checked, problems)."""
    problems: list[Problem] = []
    hashes = record_hashes(root)
    checked = 0
    for path in iter_files(root):
        with open(path, "rb") as handle:
            if handle.read(4) != ELF_MAGIC:
                continue
        checked += 1
        relative = path.relative_to(root).as_posix()
        problems += check_file(path, relative, config, arch)
        if is_vendored(Path(relative)) and relative in hashes:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest != hashes[relative]:
                problems.append(
                    Problem(relative, "vendored library differs from its wheel (modified after install; never strip *.libs/)")
                )
    return checked, problems
