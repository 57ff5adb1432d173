"""Parquet files for the pipeline's intermediates (validated rows, features), with fastparquet.

fastparquet is the engine because it fits the layers (6.5 MB with cramjam, fsspec and packaging once
built; pyarrow unpacks to 172 MB and cannot). Files are written with snappy compression (fast to
read and write; what Athena and Glue read by default), without the pandas index, one row group per
frame written, so a reader can take a big file a row group at a time (:func:`iter_row_groups`) and
a writer can stream a big input into one file a chunk at a time (:class:`PartWriter`).

Strings come back as object columns of ``str`` (missing values as None), numbers with the dtype
they were written with (float64, int8, ...).

pandas, numpy and fastparquet are imported inside the functions: the API function imports the
storage module and never loads them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    import pandas as pd

COMPRESSION = "SNAPPY"
CONTENT_TYPE = "application/vnd.apache.parquet"


def _engine():
    """fastparquet, imported without its warning about a pandas option pandas 3 deprecated
    (it only reads the option; the warning would land in every cold start's log)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*future.infer_string.*")
        import fastparquet
    return fastparquet


def write_frame(frame: pd.DataFrame, handle, *, compression: str = COMPRESSION) -> None:
    """Write ``frame`` to an open binary file as one Parquet row group (``compression``: a
    fastparquet codec name; the benchmark compares others)."""
    _engine().write(handle, frame.reset_index(drop=True), compression=compression, write_index=False, open_with=_given(handle))


def read_frame(handle, *, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a whole Parquet file from an open binary file."""
    return _engine().ParquetFile(handle).to_pandas(columns=columns)


def iter_row_groups(handle, *, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
    """One frame per row group of an open Parquet file: memory bounded by the largest row group.

    A file without rows yields nothing."""
    yield from _engine().ParquetFile(handle).iter_row_groups(columns=columns)


class PartWriter:
    """Streams frames into one Parquet file on local disk, one row group per :meth:`append`.

    fastparquet appends row groups to a file it can reopen by path, so the part lives in a private
    temporary folder (``/tmp`` in Lambda) until :meth:`finish` hands it over for upload; closing
    the writer (or leaving its ``with`` block) removes it. Every frame must have the same columns
    and dtypes (the first one sets the schema); an empty frame adds no row group, except as the
    first frame, which writes the schema of a part without rows.
    """

    def __init__(self, directory: str | None = None) -> None:
        self._folder = tempfile.mkdtemp(prefix="part-", dir=directory)
        self.path = os.path.join(self._folder, "part.parquet")
        self.rows = 0
        self.row_groups = 0
        self._started = False
        self._file: BinaryIO | None = None

    def append(self, frame: pd.DataFrame) -> None:
        if self._file is not None:
            raise ValueError("part already finished")
        if self._started and frame.empty:
            return
        _engine().write(self.path, frame.reset_index(drop=True), compression=COMPRESSION, write_index=False, append=self._started)
        self._started = True
        self.rows += len(frame)
        self.row_groups += int(not frame.empty)

    def finish(self) -> BinaryIO:
        """The finished part, open for reading from its first byte (upload it, then close the writer)."""
        if not self._started:
            raise ValueError("no frame appended: a part needs at least its schema")
        if self._file is None:
            self._file = open(self.path, "rb")  # closed by close()
        self._file.seek(0)
        return self._file

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        shutil.rmtree(self._folder, ignore_errors=True)

    def __enter__(self) -> PartWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
