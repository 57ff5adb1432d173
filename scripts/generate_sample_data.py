#!/usr/bin/env python3
"""Write deterministic sample sales (with a few invalid rows of every kind) to a CSV file.

.venv/bin/python scripts/generate_sample_data.py out.csv [--items 4 --stores 2 --periods 400
--frequency D --seed 0 --no-signal --no-invalid --rename] ; --rename also writes out.mapping.json
with the column mapping for the renamed columns.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "functions"))

from item_prediction.sample_data import generate_sales  # noqa: E402

RENAMED = {"date": "Order Date", "item_id": "SKU", "quantity": "Units Sold", "store_id": "Shop", "unit_price": "Price", "promotion": "On Promo"}

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("output", type=Path)
parser.add_argument("--items", type=int, default=4)
parser.add_argument("--stores", type=int, default=2)
parser.add_argument("--periods", type=int, default=400)
parser.add_argument("--frequency", choices=("D", "W"), default="D")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--no-signal", action="store_true", help="independent noise: nothing to learn")
parser.add_argument("--no-invalid", action="store_true", help="only valid rows")
parser.add_argument("--rename", action="store_true", help="use export-style column names and write a mapping file")
args = parser.parse_args()
sample = generate_sales(items=args.items, stores=args.stores, periods=args.periods, frequency=args.frequency, seed=args.seed,
                        signal=not args.no_signal, invalid=not args.no_invalid, column_names=RENAMED if args.rename else None)
args.output.write_bytes(sample.content)
if sample.mapping_json:
    args.output.with_suffix(".mapping.json").write_text(sample.mapping_json)
print(f"{args.output}: {sample.rows:,} rows ({len(sample.invalid_lines)} invalid, lines {sorted(sample.invalid_lines)[:5]}...)")
