"""The main job's argument checks, run before anything is built or started: each refusal is one
line naming the option and the reason (the caller exits 2)."""

from __future__ import annotations

import csv
import gzip
import sys
from pathlib import Path

from ..config import REPO_ROOT

# The dataset rule lives in functions/item_prediction (aws.settings.validate_dataset_name, added by the
# ingest work). Until that lands this pattern, DESIGN.md's, is the one local copy of it.
MAX_HORIZON = 366
MAX_CONCURRENCY = 10_000  # a Distributed Map's most child executions at once (the template's ShardConcurrency bound)


class ArgumentError(ValueError):
    """A refused option: one line for the user."""


def functions_on_path() -> None:
    """functions/ importable (item_prediction: the rules the functions apply, checked here too)."""
    if str(REPO_ROOT / "functions") not in sys.path:
        sys.path.insert(0, str(REPO_ROOT / "functions"))


def check_dataset(name: str) -> None:
    """The functions' own rule (item_prediction.aws.settings), so the job refuses what the pipeline would."""
    functions_on_path()
    from item_prediction.aws.settings import validate_dataset_name

    try:
        validate_dataset_name(name)
    except ValueError as exc:
        raise ArgumentError(f"--dataset: {exc}") from None


def check_horizon(horizon: int) -> None:
    if not 0 <= horizon <= MAX_HORIZON:
        raise ArgumentError(
            f"--horizon {horizon}: periods to predict must be 1 to {MAX_HORIZON} (0 = the default: 14 daily, 8 weekly)"
        )


def read_header(path: Path) -> list[str]:
    """The input's header row, decoded and split the way DataValidation does (encoding, delimiter)."""
    functions_on_path()
    from item_prediction.domain import decoding

    with open(path, "rb") as handle:
        head = handle.read(decoding.HEAD_BYTES)
    if head.startswith(b"\x1f\x8b"):
        with gzip.open(path, "rb") as handle:
            head = handle.read(decoding.HEAD_BYTES)
    codec, _ = decoding.detect_encoding(head)
    text = head.decode(codec, errors="replace")
    first = next((line for line in text.splitlines() if line.strip()), "")
    return next(csv.reader([first], delimiter=decoding.sniff_delimiter(text)), [])


def check_mapping(mapping: Path, data: Path | None) -> None:
    """The mapping is a valid mapping, and every source column it names is in the input's header."""
    functions_on_path()
    from item_prediction.domain.schema import ColumnMapping, MappingError

    try:
        parsed = ColumnMapping.from_json(mapping.read_bytes())
    except MappingError as exc:
        raise ArgumentError(f"--mapping {mapping}: {exc}") from None
    if data is None:
        return
    header = read_header(data)
    present = {name.strip().lower() for name in header}
    absent = {canonical: source for canonical, source in parsed.columns.items() if source.strip().lower() not in present}
    if absent:
        named = ", ".join(f"{source!r} (for {canonical})" for canonical, source in absent.items())
        raise ArgumentError(f"--mapping {mapping} names columns not in the header of {data}: {named}; the header has {header}")


def check(args) -> None:
    """Every check that needs no emulator and no build."""
    if args.mapping and not args.input:
        raise ArgumentError("--mapping goes with --input")
    plan = getattr(args, "plan", None)
    if plan and args.dataset == "default":
        raise ArgumentError("--plan needs a named --dataset: plan files go to raw/<dataset>/plan/")
    for option, path in (("--input", args.input), ("--mapping", args.mapping), ("--plan", plan)):
        if path and not Path(path).is_file():
            raise ArgumentError(f"{option} {path}: no such file")
    check_dataset(args.dataset)
    check_horizon(args.horizon)
    if not 0 <= getattr(args, "concurrency", 0) <= MAX_CONCURRENCY:
        raise ArgumentError(f"--concurrency {args.concurrency}: shards at once must be 0 (the CPU count) to {MAX_CONCURRENCY}")
    report = getattr(args, "report", None)
    if report and not Path(report).resolve().parent.is_dir():
        raise ArgumentError(f"--report {report}: no such directory {Path(report).resolve().parent}")
    if args.mapping:
        check_mapping(Path(args.mapping), Path(args.input))
