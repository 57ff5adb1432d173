#!/usr/bin/env python3
"""Write deterministic sample sales, with a few invalid rows of every kind, to a CSV file.

A thin command line over ``lambda_build.sample_data.generate_sales``: the same seed gives the
same bytes. ``--rename`` writes export-style column names and ``<output>.mapping.json``, the
column mapping that reads them (upload it as ``raw/<dataset>/_mapping.json`` or
``config/mappings/<dataset>.json``). ``--expected`` writes ``<output>.expected.json``: the line
number and rule of every invalid row, what DataValidation must report.

Example: .venv/bin/python scripts/generate_sample_data.py sales.csv.gz --items 20 --stores 3
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections import Counter
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "functions"), str(Path(__file__).resolve().parents[1] / "tooling")]

from lambda_build.entry import ensure_project_python  # noqa: E402

ensure_project_python(__file__)

from lambda_build.sample_data import RENAMED_COLUMNS, generate_sales  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("output", type=Path, help="the CSV file to write (gzip-compressed when it ends in .gz)")
    parser.add_argument("--items", type=int, default=4)
    parser.add_argument("--stores", type=int, default=2)
    parser.add_argument("--periods", type=int, default=400, help="days or weeks of history per series")
    parser.add_argument("--frequency", choices=("D", "W"), default="D")
    parser.add_argument("--start", default="2023-01-02", help="first date (default 2023-01-02)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gap-rate", type=float, default=0.02, help="share of periods left out (gaps)")
    parser.add_argument("--no-signal", action="store_true", help="independent noise: nothing to learn")
    parser.add_argument("--no-invalid", action="store_true", help="only valid rows")
    parser.add_argument("--rename", action="store_true", help="export-style column names, plus the mapping file")
    parser.add_argument("--delimiter", default=",", choices=(",", ";", "\t", "|"))
    parser.add_argument("--expected", action="store_true", help="also write the invalid rows' line numbers and rules")
    args = parser.parse_args(argv)
    if min(args.items, args.stores, args.periods) < 1:
        parser.error("--items, --stores and --periods must be at least 1")

    sample = generate_sales(
        items=args.items,
        stores=args.stores,
        periods=args.periods,
        frequency=args.frequency,
        start=args.start,
        seed=args.seed,
        signal=not args.no_signal,
        gap_rate=args.gap_rate,
        invalid=not args.no_invalid,
        column_names=RENAMED_COLUMNS if args.rename else None,
        delimiter=args.delimiter,
    )
    content = gzip.compress(sample.content, mtime=0) if args.output.suffix == ".gz" else sample.content
    args.output.write_bytes(content)
    base = args.output.with_name(args.output.name.removesuffix(".gz").removesuffix(".csv"))
    if sample.mapping_json:
        base.with_name(base.name + ".mapping.json").write_text(sample.mapping_json + "\n")
    if args.expected:
        expected = {
            "rows": sample.rows,
            "clean": len(sample.frame),
            "invalid_lines": {str(k): v for k, v in sorted(sample.invalid_lines.items())},
        }
        base.with_name(base.name + ".expected.json").write_text(json.dumps(expected, indent=2) + "\n")
    rules = ", ".join(f"{rule} {count}" for rule, count in sorted(Counter(sample.invalid_lines.values()).items()))
    print(
        f"{args.output}: {sample.rows:,} rows, {args.items * args.stores} series, "
        f"{len(sample.invalid_lines)} invalid ({rules or 'none'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
