"""core-data-science workload: what DataValidation and FeatureEngineering do with pandas, and the
Parquet intermediates through fastparquet (row groups appended to a local file, every codec we
write, a column subset read one row group at a time)."""

import gzip
import io
import os
import tempfile


def run(params):
    import numpy as np
    import pandas as pd
    from dateutil import parser as date_parser

    rows = ["date,item_id,store_id,quantity,unit_price"]
    for day in range(28):
        for item in ("A", "B"):
            rows.append(f"2024-01-{day + 1:02d},{item},S1,{day + (10 if item == 'B' else 0)},{1.5 + day % 3}")
    frame = pd.read_csv(io.StringIO("\n".join(rows)), parse_dates=["date"], dtype={"item_id": "string"})
    assert len(frame) == 56 and str(frame["date"].dtype).startswith("datetime64")

    totals = frame.groupby("item_id")["quantity"].sum()
    assert totals["A"] == sum(range(28)) and totals["B"] == sum(range(10, 38)), totals

    frame = frame.sort_values(["item_id", "date"])
    rolling = frame.groupby("item_id")["quantity"].transform(lambda s: s.shift(1).rolling(7, min_periods=7).mean())
    last_a = rolling[frame["item_id"] == "A"].iloc[-1]
    assert last_a == np.mean(range(20, 27)), last_a

    weekly = frame.set_index("date").groupby("item_id")["quantity"].resample("W-MON").sum()
    assert int(weekly.sum()) == int(frame["quantity"].sum())

    parsed = [date_parser.parse(text, dayfirst=True) for text in ("3rd of March 2024", "05/04/2024", "Mon, 4 Mar 2024 10:15 PM")]
    assert [(p.month, p.day) for p in parsed] == [(3, 3), (4, 5), (3, 4)], parsed

    matrix = np.array([[4.0, 1.0], [1.0, 3.0]])
    solution = np.linalg.solve(matrix, np.array([1.0, 2.0]))  # exercises numpy's own OpenBLAS
    assert np.allclose(matrix @ solution, [1.0, 2.0])
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as packed:
        packed.write(frame.to_csv(index=False).encode())
    buffer.seek(0)
    assert pd.read_csv(buffer, compression="gzip")["quantity"].sum() == frame["quantity"].sum()
    return {
        "rows": len(frame),
        "weekly_buckets": int(weekly.size),
        "parquet": _parquet(pd, np),
        "pandas": pd.__version__,
        "numpy": np.__version__,
    }


def _parquet(pd, np):
    """Write canonical rows as appended row groups with each codec; read them back exactly."""
    import fastparquet

    part = pd.DataFrame(
        {
            "item_id": pd.array(["A", "B", "=C"], dtype="str"),
            "date": pd.array(["2024-01-01", "2024-01-02", "2024-01-03"], dtype="str"),
            "quantity": np.array([1.0, 2.5, 0.0]),
            "unit_price": np.array([np.nan, 2.0, 3.5]),
            "promotion": np.array([0, 1, 0], dtype="int8"),
        }
    )
    sizes = {}
    with tempfile.TemporaryDirectory() as tmp:
        for codec in ("SNAPPY", "ZSTD", "GZIP"):
            path = os.path.join(tmp, f"{codec}.parquet")
            fastparquet.write(path, part, compression=codec, write_index=False)
            fastparquet.write(path, part, compression=codec, write_index=False, append=True)
            parquet = fastparquet.ParquetFile(path)
            assert len(parquet.row_groups) == 2, codec
            groups = list(parquet.iter_row_groups(columns=["quantity", "promotion"]))
            assert [list(g.columns) for g in groups] == [["quantity", "promotion"]] * 2, codec
            back = parquet.to_pandas()
            assert back["unit_price"].isna().sum() == 2 and str(back["promotion"].dtype) == "int8", back.dtypes
            assert back["quantity"].tolist() == part["quantity"].tolist() * 2
            assert back["item_id"].tolist() == part["item_id"].tolist() * 2
            sizes[codec] = os.path.getsize(path)
    return {"fastparquet": fastparquet.__version__, "bytes": sizes}
