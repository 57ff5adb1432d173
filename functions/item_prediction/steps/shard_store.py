"""Validated rows as Parquet shard parts: where they live, how validation writes them, how a shard reads them.

Layout (Hive-style partitions, so Athena and Glue read ``validated/<dataset>/`` as it is)::

    validated/<dataset>/n=<N>/shard=<s:05d>/<relative>.parquet   one part per (upload, shard)
    validated/<dataset>/_parts/<relative>.json                    the upload's rows per shard
    validated/<dataset>/_dataset.json                             the dataset manifest (Plan/Aggregate)

``<relative>`` is the upload's key below ``raw/<dataset>/`` (see ``validate.output_keys``). A part
written under ``n`` shards serves shard ``s`` of any ``N >= n`` with ``s % n == t`` (filtered to its
own series) and any ``N < n`` with ``t % N == s`` (see :mod:`item_prediction.domain.shards`).
Names starting with ``_`` or ``.`` below the dataset are not parts (Athena skips them too).

**Supersede rule**: where several parts hold a row for the same (item, store, date), the row of the
part with the later S3 LastModified wins (ties: the later key); a part never repeats a key (the
validator quarantines repeats within an upload as ``duplicate_key``, the first line winning).

Parts are written with :class:`item_prediction.aws.columnar.PartWriter` (a row group per append to a
local file, the footer once at the end) and uploaded with ``Storage.put_part``.
"""

from __future__ import annotations

import os
import tempfile
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from ..aws import columnar
from ..aws.columnar import PartWriter
from ..aws.settings import Settings
from ..aws.storage import Storage
from ..domain import schema, shards

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # the order of a part listed without a time (S3 always gives one)
PART_SUFFIX = ".parquet"
INDEX_FOLDER = "_parts"
MANIFEST_NAME = "_dataset.json"
RUNS_PREFIX = "runs/"
MAX_SHARDS_IN_OUTPUT = 1_000  # more entries go to runs/<ds>/uploads/<relative>.shards.json (payload limit 256 KB)
MAX_PART_ENDS = 400  # a shard item's part_ends (about 150 bytes each): 60 KB of the 256 KB a Map item may hold
INDEX_RESOLUTION = 1_024  # the index counts rows per shard of at least this many, so any re-split is estimated exactly
ROW_GROUP_ROWS = 100_000  # a shard's buffered rows are written as one row group once they reach this
BUFFER_ROWS = 500_000  # all shards' buffered rows together: past it every buffer is written (bounds memory)
DTYPES = {  # schema.CANONICAL_COLUMNS, in that order, as parts store them
    schema.DATE: "str",
    schema.ITEM: "str",
    schema.QUANTITY: "float64",
    schema.STORE: "str",
    schema.PRICE: "float64",
    schema.PROMOTION: "int8",
}
TEXT_COLUMNS = tuple(name for name, dtype in DTYPES.items() if dtype == "str")  # written dictionary-encoded


@dataclass(frozen=True)
class Part:
    """One stored part: the rows of upload ``source`` that fall in shard ``part_shard`` of ``part_count``."""

    key: str
    source: str  # the upload's key below raw/<dataset>/
    part_count: int
    part_shard: int
    size: int = 0
    last_modified: datetime | None = None
    etag: str | None = None


# -- keys ---------------------------------------------------------------------------------------
def dataset_prefix(settings: Settings, dataset: str) -> str:
    return f"{settings.validated_prefix}{dataset}/"


def part_key(settings: Settings, dataset: str, relative: str, count: int, shard: int) -> str:
    """``validated/<dataset>/n=<count>/shard=<shard:05d>/<relative>.parquet``."""
    return f"{dataset_prefix(settings, dataset)}n={count}/shard={shard:05d}/{relative}{PART_SUFFIX}"


def index_key(settings: Settings, dataset: str, relative: str) -> str:
    """``validated/<dataset>/_parts/<relative>.json``: the upload's rows per shard."""
    return f"{dataset_prefix(settings, dataset)}{INDEX_FOLDER}/{relative}.json"


def manifest_key(settings: Settings, dataset: str) -> str:
    return f"{dataset_prefix(settings, dataset)}{MANIFEST_NAME}"


def shards_list_key(dataset: str, relative: str) -> str:
    """Where an upload's long ``shards_written``/``shards_removed`` lists go instead of its output."""
    return f"{RUNS_PREFIX}{dataset}/uploads/{relative}.shards.json"


def parse_part_key(settings: Settings, dataset: str, key: str) -> tuple[str, int, int] | None:
    """``(relative, n, shard)`` of a part key; None for anything else (the index, the manifest,
    names starting with ``_`` or ``.``, other files)."""
    rest = key.removeprefix(dataset_prefix(settings, dataset))
    if rest == key or not rest.endswith(PART_SUFFIX):
        return None
    count_dir, _, rest = rest.partition("/")
    shard_dir, _, relative = rest.partition("/")
    if not (count_dir.startswith("n=") and shard_dir.startswith("shard=") and relative):
        return None
    try:
        count, shard = shards.check_count(int(count_dir[2:])), int(shard_dir[6:])
    except ValueError:
        return None
    if not 0 <= shard < count:
        return None
    return relative.removesuffix(PART_SUFFIX), count, shard


# -- listing ------------------------------------------------------------------------------------
def list_parts(storage: Storage, settings: Settings, dataset: str, prefix: str = "") -> list[Part]:
    """Every part of the dataset (one listing; of ``prefix`` below the dataset's folder), by key."""
    parts = []
    for entry in storage.list_objects(dataset_prefix(settings, dataset) + prefix):
        parsed = parse_part_key(settings, dataset, entry["key"])
        if parsed:
            relative, count, shard = parsed
            parts.append(
                Part(entry["key"], relative, count, shard, entry.get("size", 0), entry.get("last_modified"), entry.get("etag"))
            )
    return parts


def list_shard_parts(storage: Storage, settings: Settings, dataset: str, count: int, shard: int) -> list[Part]:
    """The parts holding rows of shard ``shard`` of ``count``, listed by their folders: the part
    counts the dataset has (``n=<n>/``, one request), then ``n=<n>/shard=<shard % n>/`` for each
    coarser or equal count and the whole ``n=<n>/`` for a finer one (rare: an upload that needed
    more shards than the Plan saw). A listing of the whole dataset grew with every upload and shard
    (a part per shard a week) and every shard made it: 1,000 keys a request."""
    base = dataset_prefix(settings, dataset)
    parts = []
    for folder in storage.list_folders(base):
        name = folder.removeprefix(base).rstrip("/")
        if not (name.startswith("n=") and name[2:].isdigit()):
            continue
        n = int(name[2:])
        parts += list_parts(storage, settings, dataset, f"{name}/shard={shard % n:05d}/" if n <= count else f"{name}/")
    return sorted(parts_for_shard(parts, count, shard), key=lambda part: part.key)


def parts_for_shard(parts: list[Part], count: int, shard: int) -> list[Part]:
    """The parts holding rows of shard ``shard`` of ``count``."""
    return [part for part in parts if shards.reads_part(shard, count, part.part_shard, part.part_count)]


def source_parts(parts: list[Part], relative: str) -> list[Part]:
    """The parts of one upload."""
    return [part for part in parts if part.source == relative]


def manifest_shard_count(storage: Storage, settings: Settings, dataset: str) -> int:
    """The dataset manifest's shard count; 1 for a new dataset (no manifest yet)."""
    return shards.check_count(int(storage.get_json_if_any(manifest_key(settings, dataset), {}).get("shard_count", 1)))


# -- reading ------------------------------------------------------------------------------------
def canonical(frame: pd.DataFrame, columns: tuple[str, ...] = tuple(DTYPES)) -> pd.DataFrame:
    """The canonical columns (or those of them in ``columns``) with their part dtypes (item/store/date text, ISO dates)."""
    return frame[list(columns)].astype({column: DTYPES[column] for column in columns})


def empty_frame() -> pd.DataFrame:
    return canonical(pd.DataFrame({column: pd.Series(dtype=dtype) for column, dtype in DTYPES.items()}))


def first_days(group: pd.DataFrame, since: str | None, cuts: pd.Series | None):
    """Each row's first date kept: its series' cut (``cuts``, ISO dates indexed by item and
    store), else ``since``, else every date."""
    if cuts is None or not len(cuts):
        return since or ""
    keys = pd.MultiIndex.from_arrays([group[schema.ITEM].astype(str), group[schema.STORE].fillna(schema.NO_STORE).astype(str)])
    return cuts.reindex(keys).fillna(since or "").to_numpy(dtype=object)


def _earliest(since: str | None, cuts: pd.Series | None) -> tuple[str, str] | None:
    """(date, the earliest day any series is read from), or None when some series is read whole
    (no ``since``: every day of the series the cuts do not name, see :func:`first_days`)."""
    if not since:
        return None
    return (schema.DATE, min(since, str(cuts.min())) if cuts is not None and len(cuts) else since)


PREFETCH_PARTS = 4  # parts downloading while one is read: each GET waits a round trip on S3
PREFETCH_BYTES = 128 * 1024 * 1024  # ...and at most this much of them on /tmp at once (Predictions has 512 MB)


def _download(storage: Storage, part: Part):
    """(``part`` in a temporary file, the version read), or (None, None) when it went since it was listed."""
    handle = tempfile.TemporaryFile()
    try:
        return handle, storage.download(part.key, handle)
    except storage.s3.exceptions.NoSuchKey:
        handle.close()
        return None, None
    except BaseException:
        handle.close()
        raise


def _downloaded(storage: Storage, parts: list[Part]) -> Iterator[tuple[Part, object, str | None]]:
    """Each part in a temporary file (None: gone), in order, while the next ones download (at most
    PREFETCH_PARTS and PREFETCH_BYTES of them by their listed size, one part alone without a
    thread): a shard of weekly files reads many small parts, and their round trips now overlap."""
    if len(parts) <= 1:
        yield from ((part, *_download(storage, part)) for part in parts)
        return
    queued, pending = deque(parts), deque()
    with ThreadPoolExecutor(PREFETCH_PARTS) as pool:
        try:
            while queued or pending:
                while queued and _room(pending, queued[0]):
                    part = queued.popleft()
                    pending.append((part, pool.submit(_download, storage, part)))
                part, future = pending.popleft()
                handle, version = future.result()
                try:
                    yield part, handle, version
                finally:
                    if handle is not None:
                        handle.close()
        finally:  # stopped early or failed: the files downloaded ahead are closed too
            for _, future in pending:
                if not future.cancel() and future.exception() is None and future.result()[0] is not None:
                    future.result()[0].close()


def _room(pending: deque, part: Part) -> bool:
    """Whether ``part`` may start downloading beside the ``pending`` ones."""
    if not pending:
        return True
    return len(pending) < PREFETCH_PARTS and sum(queued.size for queued, _ in pending) + part.size <= PREFETCH_BYTES


def _read_part(handle, part: Part, count: int, shard: int, since: str | None, cuts=None, columns=tuple(DTYPES), coded=False):
    """The rows of shard ``(count, shard)`` in ``part`` (downloaded to ``handle``), on/after
    ``since`` (a series of ``cuts``: on/after its cut), of ``columns`` (text columns as
    Categoricals when ``coded``), as frames."""
    by_series = cuts is not None and len(cuts) > 0  # first_days takes the ids as text
    frames, text = [], tuple(name for name in TEXT_COLUMNS if name in columns and coded and not by_series)
    for group in columnar.iter_row_groups(handle, columns=list(columns), at_least=_earliest(since, cuts), coded=text):
        if since or cuts is not None:
            group = group[_on_or_after(group, since, cuts)]
        if shards.needs_filter(count, part.part_count) and len(group):
            group = group[shards.shard_of(group[schema.ITEM], group[schema.STORE], count) == shard]
        if len(group):
            frames.append(_coded(group, columns) if coded else canonical(group, columns))
    return frames


def skippable(part: Part, ends: dict | None, earliest: tuple[str, str] | None) -> bool:
    """Whether ``part`` can go unread: ``ends`` (the Plan's :func:`part_ends`) records the last date
    of the rows of exactly this content of it (the same ETag as listed now) and that date is
    before ``earliest`` (:func:`_earliest`), the first day read. A weekly dataset gains a part per
    shard a week: without this a window of a few weeks downloaded every one of them."""
    known = (ends or {}).get(part.key)
    return bool(earliest and known and part.etag and known[0] == part.etag and known[1] < earliest[1])


def part_ends(parts: list[dict], indexes: dict[str, dict]) -> dict[str, list[str]]:
    """``{part key: [etag, last date]}`` for the listed ``parts`` (``key``, ``etag``, ``source``)
    whose upload index (``indexes``: by upload, with ``date_range`` and ``parts``, as the upload
    catalog keeps them) records their ETag (the index describes that content) and its rows' dates.

    At most MAX_PART_ENDS of them, those that end first (the ones a window surely skips): the map
    rides in the shard's Map item, and a file a day for years would pass Step Functions' 256 KB.
    A part left out is read, as before (7.7 years of weekly files fit)."""
    ends = {}
    for part in parts:
        index = indexes.get(part["source"]) or {}
        written, dates = index.get("parts") or {}, index.get("date_range")
        if dates and part.get("etag") and written.get(part["key"]) == part["etag"]:
            ends[part["key"]] = [part["etag"], dates[1]]
    if len(ends) > MAX_PART_ENDS:
        ends = dict(sorted(ends.items(), key=lambda entry: (entry[1][1], entry[0]))[:MAX_PART_ENDS])
    return ends


def _on_or_after(group: pd.DataFrame, since: str | None, cuts: pd.Series | None) -> np.ndarray:
    """Which rows are on/after their first day (:func:`first_days`): ISO text compares as dates do.
    Dates read coded (never with cuts) are compared once per distinct date."""
    dates = group[schema.DATE].array
    if isinstance(dates, pd.Categorical):
        kept = dates.categories.to_numpy(dtype=object) >= (since or "")
        return np.append(kept, False)[dates.codes]  # code -1 (no date): not kept
    return group[schema.DATE].to_numpy(dtype=object) >= first_days(group, since, cuts)


def _coded(group: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """The ``columns`` of ``group`` with their part dtypes, the text ones as Categoricals (of the
    row group's dictionary when it was read coded, else of the text; :func:`_concat` sorts them)."""
    coded = {}
    for name in (name for name in columns if DTYPES[name] == "str"):
        values = group[name].array
        if isinstance(values, pd.Categorical):  # fresh: fastparquet's own object is set up in place
            codes, labels = values.codes, values.categories
        else:
            codes, labels = pd.factorize(np.asarray(values, dtype=object), sort=True)  # missing: -1
        coded[name] = pd.Categorical.from_codes(codes, pd.Index(labels, dtype=object))  # one label type for the union
    numbers = {name: group[name].to_numpy(dtype=DTYPES[name]) for name in columns if name not in coded}
    return pd.DataFrame({name: coded[name] if name in coded else numbers[name] for name in columns})


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Frames of the same columns one after the other; Categoricals over the union of their
    categories (sorted), where ``pd.concat`` would fall back to text."""
    if not isinstance(frames[0][schema.DATE].dtype, pd.CategoricalDtype):
        return pd.concat(frames, ignore_index=True)
    columns = {}
    for name in frames[0].columns:
        parts = [frame[name] for frame in frames]
        coded = isinstance(parts[0].dtype, pd.CategoricalDtype)
        columns[name] = (
            union_categoricals(parts, sort_categories=True) if coded else np.concatenate([p.to_numpy() for p in parts])
        )
    return pd.DataFrame(columns)


def _span(part: list[pd.DataFrame]) -> tuple[str, str]:
    """The first and last date of a part's rows (once per distinct date when read coded)."""
    if not isinstance(part[0][schema.DATE].array, pd.Categorical):
        return min(frame[schema.DATE].min() for frame in part), max(frame[schema.DATE].max() for frame in part)
    present = [frame[schema.DATE].array for frame in part]
    present = [dates.categories[np.unique(dates.codes[dates.codes >= 0])] for dates in present]
    return min(dates.min() for dates in present), max(dates.max() for dates in present)


def _superseding(frames: list[list[pd.DataFrame]]) -> pd.DataFrame:
    """The parts' rows (oldest part first) with the supersede rule applied: a later part's row wins
    over an earlier one for the same series and date. Parts whose dates do not overlap cannot
    supersede one another (a part holds each key once: validation keeps a key's first row), so
    they are concatenated as they are, the usual case of weekly uploads."""
    combined = _concat([frame for part in frames for frame in part])
    spans = sorted(_span(part) for part in frames)
    if all(earlier[1] < later[0] for earlier, later in zip(spans, spans[1:], strict=False)):
        return combined
    return combined.drop_duplicates(subset=list(schema.ROW_KEY), keep="last").reset_index(drop=True)


def load_shard(
    storage: Storage,
    settings: Settings,
    dataset: str,
    count: int,
    shard: int,
    *,
    since: str | None = None,
    cuts: pd.Series | None = None,
    parts: list[Part] | None = None,
    columns: tuple[str, ...] = tuple(DTYPES),
    ends: dict | None = None,
    coded: bool = False,
) -> tuple[pd.DataFrame, list[dict]]:
    """Every validated row of shard ``shard`` of ``count`` and the ``{key, version_id}`` of each part read.

    Parts are read a row group at a time and filtered to the shard (and to dates on/after
    ``since``, an ISO date, for incremental windows; a series of ``cuts``, ISO dates indexed by
    item and store, from its own cut), so memory holds one row group and the shard's rows.
    The supersede rule applies: the later part (LastModified, then key) wins.
    ``parts`` is the dataset's listing when the caller has it (one listing for many shards).
    ``count=1, shard=0`` reads the whole dataset. ``columns``: the canonical columns to return
    (the row key's among them: the supersede rule needs it). ``ends`` (:func:`part_ends`): parts
    whose rows all end before the first day read are not downloaded (:func:`skippable`).
    ``coded``: its text columns (ids, dates) as pandas Categoricals of their sorted values instead
    of text, read from the parts' dictionaries: a year of rows without a Python string per value
    (the report slice's read).
    """
    shards.check_count(count)
    if not set(schema.ROW_KEY) <= set(columns):
        raise ValueError(f"load_shard needs the row key {schema.ROW_KEY} among the columns, got {columns}")
    listed = list_shard_parts(storage, settings, dataset, count, shard) if parts is None else parts_for_shard(parts, count, shard)
    ordered = sorted(listed, key=lambda part: (part.last_modified or EPOCH, part.key))
    frames, inputs, earliest = [], [], _earliest(since, cuts)
    for part, handle, version in _downloaded(storage, [part for part in ordered if not skippable(part, ends, earliest)]):
        if handle is None:  # went since it was listed (a re-upload or a retraction)
            continue
        read = _read_part(handle, part, count, shard, since, cuts, columns, coded)
        frames += [read] if read else []
        inputs.append({"key": part.key, "version_id": version})
    if not frames:
        return _coded(empty_frame(), columns) if coded else empty_frame()[list(columns)], inputs
    return _superseding(frames), inputs


# -- row counts ---------------------------------------------------------------------------------
def shard_rows(indexes: list[dict], count: int) -> dict[int, int]:
    """Rows per shard of ``count`` from upload indexes (``_parts/<relative>.json``), shards with rows only.

    An upper bound of the rows :func:`load_shard` returns: a row superseded by a later upload is
    counted in both. Exact per index up to its ``resolution``; past it, a shard's rows are
    spread evenly over its sub-shards (an estimate: the hash spreads series evenly).
    """
    shards.check_count(count)
    totals = np.zeros(count, dtype=np.float64)
    for index in indexes:
        resolution = int(index["resolution"])
        fine = np.zeros(resolution, dtype=np.float64)
        for shard, rows in index["resolution_rows"].items():
            fine[int(shard)] = rows
        if count <= resolution:
            totals += fine.reshape(-1, count).sum(axis=0)
        else:
            totals += np.tile(fine, count // resolution) / (count // resolution)
    return {shard: int(round(rows)) for shard, rows in enumerate(totals) if rows > 0}


def upload_index(
    source_key: str,
    count: int,
    resolution: int,
    resolution_rows: np.ndarray,
    date_range: tuple[str, str] | None = None,
    parts: dict[str, str] | None = None,
) -> dict:
    """The index of one upload: its part count, rows per part, rows per shard of ``resolution``,
    the first and last date of its rows and ``{part key: ETag}`` of the parts written (what lets a
    reader skip parts that end before its window, :func:`part_ends`)."""
    coarse = resolution_rows.reshape(-1, count).sum(axis=0)
    return {
        "source_key": source_key,
        "shard_count": count,
        "rows": {str(shard): int(rows) for shard, rows in enumerate(coarse) if rows},
        "resolution": resolution,
        "resolution_rows": {str(shard): int(rows) for shard, rows in enumerate(resolution_rows) if rows},
        "date_range": list(date_range) if date_range else None,
        "parts": dict(parts or {}),
    }


# -- writing ------------------------------------------------------------------------------------
class ShardSink:
    """Validation's clean-row sink: each chunk's rows go to per-shard local Parquet files.

    Rows are routed under ``count`` shards (the dataset's, known before reading) and buffered per
    shard, a shard's buffer written as one row group when it reaches ROW_GROUP_ROWS and all of them
    when together they pass BUFFER_ROWS: memory is bounded whatever the file's size. Rows per shard
    of ``resolution`` are counted for the upload's index. :meth:`finish` splits the files once more
    when the upload itself needs more shards than ``count``.
    """

    def __init__(self, count: int, directory: str) -> None:
        self.count = shards.check_count(count)
        self.resolution = max(INDEX_RESOLUTION, count)
        self.resolution_rows = np.zeros(self.resolution, dtype=np.int64)
        self.rows = 0
        self._directory = directory
        self._writers: dict[tuple[int, int], PartWriter] = {}
        self._buffers: dict[tuple[int, int], list[pd.DataFrame]] = {}  # (shard count, shard) -> rows
        self._buffered: dict[tuple[int, int], int] = {}

    def __call__(self, frame: pd.DataFrame) -> None:
        if not len(frame):
            return
        frame = canonical(frame)
        fine = shards.shard_of(frame[schema.ITEM], frame[schema.STORE], self.resolution)
        self.resolution_rows += np.bincount(fine, minlength=self.resolution)
        self.rows += len(frame)
        self._buffer(self.count, frame, fine % self.count)

    def _buffer(self, count: int, frame: pd.DataFrame, target: np.ndarray) -> None:
        """Buffer each shard's rows of ``frame`` (``target``: their shard among ``count``): a shard's
        buffer becomes one row group at ROW_GROUP_ROWS rows, and all of them once together they pass
        BUFFER_ROWS. Few, large row groups: a shard reads them back far faster than many small ones."""
        for shard, rows in frame.groupby(target, sort=True):
            key = (count, int(shard))
            self._buffers.setdefault(key, []).append(rows)
            self._buffered[key] = self._buffered.get(key, 0) + len(rows)
            if self._buffered[key] >= ROW_GROUP_ROWS:
                self._flush(key)
        if sum(self._buffered.values()) >= BUFFER_ROWS:
            for key in list(self._buffers):
                self._flush(key)

    def _writer(self, count: int, shard: int) -> PartWriter:
        if (count, shard) not in self._writers:
            path = os.path.join(self._directory, f"n{count}-s{shard}.parquet")
            # readers of a window skip older row groups by date; ids and dates repeat: dictionary pages
            self._writers[count, shard] = PartWriter(path, stats=(schema.DATE,), dictionary=TEXT_COLUMNS)
        return self._writers[count, shard]

    def _flush(self, key: tuple[int, int]) -> None:
        frames = self._buffers.pop(key, [])
        self._buffered.pop(key, None)
        if frames:
            self._writer(*key).append(pd.concat(frames, ignore_index=True))

    def finish(self, count: int) -> dict[int, PartWriter]:
        """Write what is buffered and close the files; ``{shard: writer}`` (``writer.path``,
        ``writer.rows``) under ``count`` shards, ``count >= self.count``."""
        for key in list(self._buffers):
            self._flush(key)
        written = {shard: writer for (n, shard), writer in self._writers.items() if n == self.count}
        for writer in written.values():
            writer.finish()
        if count > self.count:
            written = self._split(written, count)
        return written

    def _split(self, written: dict[int, PartWriter], count: int) -> dict[int, PartWriter]:
        """Re-route the files to ``count`` shards, a row group at a time through the buffers; each
        old file goes once read."""
        shards.check_count(count)
        for old in written.values():
            with open(old.path, "rb") as handle:
                for group in columnar.iter_row_groups(handle, columns=list(DTYPES)):
                    group = canonical(group)
                    self._buffer(count, group, shards.shard_of(group[schema.ITEM], group[schema.STORE], count))
            os.remove(old.path)
        for key in list(self._buffers):
            self._flush(key)
        fresh = {shard: writer for (n, shard), writer in self._writers.items() if n == count}
        for writer in fresh.values():
            writer.finish()
        return fresh


# -- storing an upload's parts ---------------------------------------------------------------------
def remove_parts(
    storage: Storage, settings: Settings, dataset: str, relative: str, *, keep=frozenset(), listed: list[Part] | None = None
) -> list[Part]:
    """Delete the upload's parts not in ``keep`` (a re-upload's rows never linger); the parts removed.
    ``listed``: the upload's parts as just listed (else listed here)."""
    listed = source_parts(list_parts(storage, settings, dataset), relative) if listed is None else listed
    stale = [part for part in listed if part.key not in keep]
    for part in stale:
        storage.delete(part.key)
    return stale


def drop_source(storage: Storage, settings: Settings, dataset: str, relative: str) -> list[Part]:
    """Delete all of an upload's parts and its index (a retraction, or a version without clean rows)."""
    removed = remove_parts(storage, settings, dataset, relative)
    if storage.exists(index_key(settings, dataset, relative)):
        storage.delete(index_key(settings, dataset, relative))
    return removed


def store_parts(
    storage: Storage,
    settings: Settings,
    dataset: str,
    source_key: str,
    relative: str,
    sink: ShardSink,
    date_range: list[str] | None = None,
) -> dict:
    """Upload the sink's parts under ``N = max(sink.count, shard_count_for(rows))``, delete the
    upload's older parts elsewhere, then write its index (with ``date_range``, the first and last
    date of the sink's rows, and the parts' ETags). Returns ``shard_count``,
    ``shards_written`` (``{shard_count, shard, rows}`` per part) and ``shards_removed``
    (``{shard_count, shard}`` of each older part deleted)."""
    count = max(sink.count, shards.shard_count_for(sink.rows))
    written, keys = [], set()
    for shard, writer in sorted(sink.finish(count).items()):
        key = part_key(settings, dataset, relative, count, shard)
        storage.put_part(key, writer)
        os.remove(writer.path)
        keys.add(key)
        written.append({"shard_count": count, "shard": shard, "rows": writer.rows})
    listed = source_parts(list_parts(storage, settings, dataset), relative)  # after the writes: their ETags
    removed = remove_parts(storage, settings, dataset, relative, keep=keys, listed=listed)
    etags = {part.key: part.etag for part in listed if part.key in keys}
    index = upload_index(source_key, count, sink.resolution, sink.resolution_rows, date_range, etags)
    storage.put_json(index_key(settings, dataset, relative), index)
    return {"shard_count": count, "shards_written": written, "shards_removed": removed_shards(removed)}


def removed_shards(parts: list[Part]) -> list[dict]:
    return [{"shard_count": part.part_count, "shard": part.part_shard} for part in parts]


def shard_lists(storage: Storage, dataset: str, relative: str, lists: dict) -> dict:
    """The step output's ``shards_written``/``shards_removed``, or, past MAX_SHARDS_IN_OUTPUT entries,
    ``shards_key``: the S3 JSON that holds both (see :func:`touched_shards`)."""
    if len(lists["shards_written"]) + len(lists["shards_removed"]) <= MAX_SHARDS_IN_OUTPUT:
        return lists
    key = storage.put_json(shards_list_key(dataset, relative), lists)
    return {"shards_key": key}


def touched_shards(storage: Storage, output: dict) -> dict:
    """``{"shards_written": [...], "shards_removed": [...]}`` of a DataValidation output, inline or
    from its ``shards_key``."""
    if output.get("shards_key"):
        return storage.get_json(output["shards_key"])
    return {name: output.get(name, []) for name in ("shards_written", "shards_removed")}
