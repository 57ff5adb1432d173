"""Parquet files for the pipeline's intermediates (validated rows, features), with fastparquet.

fastparquet is the engine because it fits the layers (about 14 MB with cramjam and fsspec;
pyarrow unpacks to 172 MB and cannot). Files are written with snappy compression (fast to read
and write; what Athena and Glue read by default), without the pandas index, one row group per
frame written, so a reader can take a big file a row group at a time.

pandas, numpy and fastparquet are imported inside the functions: the API function imports the
storage module and has no pandas layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

COMPRESSION = "SNAPPY"


def write_frame(frame: pd.DataFrame, handle) -> None:
    """Write ``frame`` to an open binary file as one Parquet row group."""
    import fastparquet

    fastparquet.write(handle, frame.reset_index(drop=True), compression=COMPRESSION, write_index=False, open_with=_given(handle))


def read_frame(handle, *, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a whole Parquet file from an open binary file."""
    import fastparquet

    return fastparquet.ParquetFile(handle).to_pandas(columns=columns)


def _given(handle):
    """fastparquet opens paths itself; this hands it the file that is already open."""

    def open_with(_path, _mode="wb"):
        return _NoClose(handle)

    return open_with


class _NoClose:
    """A view of a file that fastparquet may 'close' without closing it (the caller uploads it next)."""

    def __init__(self, handle) -> None:
        self._handle = handle

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._handle.flush()

    def close(self) -> None:
        self._handle.flush()
