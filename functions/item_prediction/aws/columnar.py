"""Parquet files for the pipeline's intermediates (validated rows, features), with fastparquet.

fastparquet is the engine because it fits the layers (6.5 MB with cramjam, fsspec and packaging once
built; pyarrow unpacks to 172 MB and cannot). Files are written with snappy compression (fast to
read and write; what Athena and Glue read by default), without the pandas index, one row group per
frame written, so a reader can take a big file a row group at a time (:func:`iter_row_groups`) and
a writer can stream a big input into one local file a chunk at a time (:class:`PartWriter`).

Strings come back as object columns of ``str`` (missing values as None), numbers with the dtype
they were written with (float64, int8, ...).

pandas, numpy and fastparquet are imported inside the functions: the API function imports the
storage module and never loads them.
"""

from __future__ import annotations

import struct
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

COMPRESSION = "SNAPPY"
CONTENT_TYPE = "application/vnd.apache.parquet"
MAGIC = b"PAR1"  # a Parquet file starts and ends with it


def engine():
    """fastparquet, imported without its warning about a pandas option pandas 3 deprecated
    (it only reads the option; the warning would land in every cold start's log)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*future.infer_string.*")
        import fastparquet
    return fastparquet


def write_frame(frame: pd.DataFrame, handle, *, compression: str = COMPRESSION, dictionary: tuple[str, ...] = ()) -> None:
    """Write ``frame`` to an open binary file as one Parquet row group (``compression``: a
    fastparquet codec name; the benchmark compares others; ``dictionary``: text columns written
    dictionary-encoded, see :func:`dictionary_encoded`), as :class:`PartWriter` writes a part."""
    frame = frame.reset_index(drop=True)
    meta = _metadata(frame)
    handle.write(MAGIC)
    group = _row_group(handle, frame, meta, dictionary=dictionary, compression=compression)
    _footer(handle, meta, [group] if group is not None else [], len(frame))
    handle.flush()


def read_frame(handle, *, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a whole Parquet file from an open binary file."""
    return engine().ParquetFile(handle).to_pandas(columns=columns)


def iter_row_groups(
    handle, *, columns: list[str] | None = None, at_least: tuple[str, str] | None = None, coded: tuple[str, ...] = ()
) -> Iterator[pd.DataFrame]:
    """One frame per row group of an open Parquet file: memory bounded by the largest row group.

    ``at_least`` (column, value): skip, unread, the row groups whose statistics say every value of
    the column is below ``value`` (a row group without statistics is read); the rows of a group
    read are not filtered. A file without rows yields nothing. ``coded``: text columns to give as
    pandas Categoricals of the row group's dictionary (small integers and each distinct text once,
    no Python string per row) where every row group of the file has one (see
    :func:`dictionary_encoded`); in other files they come as text."""
    parquet = engine().ParquetFile(handle)
    filters = [(at_least[0], ">=", at_least[1])] if at_least else None
    categories = [name for name in coded if _has_dictionary(parquet, name)] or None  # None: as before, text
    yield from parquet.iter_row_groups(filters=filters, columns=columns, categories=categories)


def _has_dictionary(parquet, name: str) -> bool:
    """Whether every row group of the file has a dictionary page for column ``name`` (fastparquet
    reads a column as categorical only then)."""
    chunks = [chunk.meta_data for group in parquet.row_groups for chunk in group.columns]
    chunks = [chunk for chunk in chunks if chunk.path_in_schema == [name]]
    return bool(chunks) and len(chunks) == len(parquet.row_groups) and all(c.dictionary_page_offset is not None for c in chunks)


class PartWriter:
    """A Parquet file on local disk written a row group per :meth:`append`, its footer once at :meth:`finish`.

    Each append opens the file, adds the frame's row group and closes it again; only the row
    groups' metadata stays in memory, so thousands of writers (validation's shards) hold no open
    file handles, and an append costs the same however many row groups the file has (fastparquet's
    own ``write(append=True)`` re-reads and rewrites the footer every time: measured slower in
    ``scripts/bench_part_writer.py``, see docs/scaling.md). Every frame must have the first one's
    columns (the first frame sets the schema, dtypes included); an empty frame adds no row group,
    except as the first, which gives a part with the schema and no rows. The caller owns ``path``
    (uploads it after :meth:`finish`, then removes it).
    """

    def __init__(self, path: str, *, stats: tuple[str, ...] = (), dictionary: tuple[str, ...] = ()) -> None:
        """``stats``: columns whose min and max each row group records besides the numeric ones
        (fastparquet's default), e.g. ISO date text, so that readers skip row groups (see
        :func:`iter_row_groups`). ``dictionary``: text columns written dictionary-encoded (see
        :func:`dictionary_encoded`)."""
        self.path = path
        self.stats = tuple(stats)
        self.dictionary = tuple(dictionary)
        self.rows = 0
        self.row_groups = 0
        self.finished = False
        self._meta = None
        self._columns: list = []
        self._groups: list = []  # the row groups' metadata (the thrift object's list is a copy)

    def append(self, frame: pd.DataFrame) -> None:
        if self.finished:
            raise ValueError("part already finished")
        if self._meta is not None and list(frame.columns) != self._columns:
            raise ValueError(f"columns {list(frame.columns)} differ from the part's {self._columns}")
        if self._meta is not None and frame.empty:
            return
        frame = frame.reset_index(drop=True)
        with open(self.path, "ab" if self._meta is not None else "wb") as handle:
            if self._meta is None:
                self._meta = _metadata(frame)
                self._columns = list(frame.columns)
                handle.write(MAGIC)
            if not frame.empty:
                self._groups.append(_row_group(handle, frame, self._meta, stats=self.stats, dictionary=self.dictionary))
        self.rows += len(frame)
        self.row_groups += int(not frame.empty)

    def finish(self) -> str:
        """Write the footer (once; again is a no-op) and return the finished file's path."""
        if self._meta is None:
            raise ValueError("no frame appended: a part needs at least its schema")
        if not self.finished:
            with open(self.path, "ab") as handle:
                _footer(handle, self._meta, self._groups, self.rows)
            self.finished = True
        return self.path


def _metadata(frame: pd.DataFrame):
    """The file's schema and pandas metadata, from a frame as it is (its text columns stay text;
    an object column's type guessed from its values, as fastparquet's own ``write`` does; every
    column may hold nulls, since a part's later chunks may have them where its first did not)."""
    return engine().writer.make_metadata(frame, index_cols=[], cols_dtype=frame.columns.dtype, object_encoding="infer")


def _row_group(handle, frame: pd.DataFrame, meta, *, stats=(), dictionary=(), compression: str = COMPRESSION):
    """Write one row group of ``frame`` at the handle's position; its metadata (None for no rows).
    Statistics: numbers and dates (fastparquet's default) and the ``stats`` columns."""
    kept = [name for name in frame.columns if frame[name].dtype.kind in "iufM" or name in stats]
    data = dictionary_encoded(frame, tuple(dictionary))
    return engine().writer.make_row_group(handle, data, meta.schema, compression=compression, stats=kept)


def _footer(handle, meta, groups: list, rows: int) -> None:
    """Close a file with its row groups' metadata, the footer's length and the magic bytes."""
    meta.row_groups, meta.num_rows = groups, rows
    size = engine().writer.write_thrift(handle, meta)
    handle.write(struct.pack(b"<I", size) + MAGIC)


def dictionary_encoded(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """``frame`` with ``columns`` as categoricals of their sorted values, which fastparquet writes
    as dictionary-encoded pages: each distinct text once per row group, then small integers.

    Ids and ISO dates repeat on every row: a row group of them reads about 3x faster this way
    (the reader takes each value from the dictionary instead of decoding every string) and is
    smaller. The file's schema stays plain UTF-8 text (the schema comes from the part's first
    frame as it is), so every Parquet reader, fastparquet included, gives back the same strings
    as from a plain part: no categorical reaches the caller, and parts written before read as
    they did. Sorted categories keep the row group's min/max statistics (skipping by date) right:
    fastparquet takes them in category order.
    """
    import pandas as pd

    encoded = {}
    for name in columns:
        codes, values = pd.factorize(frame[name], sort=True)  # one hashing pass; missing values: -1
        encoded[name] = pd.Categorical.from_codes(codes, pd.Index(values, dtype=object))
    return frame.assign(**encoded) if encoded else frame
