"""The dataset's upload catalog: what the Plan needs of every upload index, kept in one document.

Each upload writes its index (``validated/<ds>/_parts/<relative>.json``: rows per shard of its
resolution, the first and last date of its rows, its parts' ETags; :func:`shard_store.upload_index`).
The Plan needs all of them on every run: the rows per shard decide the shard count, the dates let
a predict shard skip the parts that end before its window. A dataset that gains a file a week has
156 indexes after three years, and reading each on every run made the Plan's cost grow with the
dataset's age. So ``runs/<ds>/_upload-catalog.json`` keeps, under each index's ETag, its dates and
part ETags, and the indexes' rows summed per resolution: a run lists the indexes (one request per
1,000), reads only those that are new, and rebuilds the whole catalog from the indexes when one
was rewritten or deleted (a re-upload or a retraction), so it always says what the indexes say.
The Plan runs under the dataset's lease: one writer at a time. The catalog lives under ``runs/``,
which FeatureEngineering writes, not under ``validated/``, which only DataValidation writes.
"""

from __future__ import annotations

from ..aws.settings import Settings
from ..aws.storage import Storage
from . import shard_store

CATALOG_NAME = "_upload-catalog.json"  # beside the dataset's run folders
FORMAT = 1


def catalog_key(settings: Settings, dataset: str) -> str:
    return f"{shard_store.RUNS_PREFIX}{dataset}/{CATALOG_NAME}"


def upload_catalog(storage: Storage, settings: Settings, dataset: str) -> dict:
    """``{"format", "indexes": {relative: {"etag", "date_range", "parts"}}, "sums": {resolution:
    {fine shard: rows}}}`` of the dataset's upload indexes as listed now (see the module)."""
    prefix = f"{shard_store.dataset_prefix(settings, dataset)}{shard_store.INDEX_FOLDER}/"
    listed = {
        entry["key"].removeprefix(prefix).removesuffix(".json"): entry.get("etag")
        for entry in storage.list_objects(prefix)
        if entry["key"].endswith(".json")
    }
    cached = _read(storage, catalog_key(settings, dataset))
    unchanged = cached is not None and all(listed.get(relative) == entry["etag"] for relative, entry in cached["indexes"].items())
    catalog = cached if unchanged else {"format": FORMAT, "indexes": {}, "sums": {}}
    new = [relative for relative in listed if relative not in catalog["indexes"]]
    for relative in new:
        _add(catalog, relative, listed[relative], storage.get_json(shard_store.index_key(settings, dataset, relative)))
    if new or not unchanged:
        storage.put_json(catalog_key(settings, dataset), catalog)
    return catalog


def _add(catalog: dict, relative: str, etag: str | None, index: dict) -> None:
    """One index into the catalog: its entry, and its rows added to its resolution's sums."""
    catalog["indexes"][relative] = {"etag": etag, "date_range": index.get("date_range"), "parts": index.get("parts") or {}}
    sums = catalog["sums"].setdefault(str(int(index["resolution"])), {})
    for shard, rows in index["resolution_rows"].items():
        sums[shard] = sums.get(shard, 0) + int(rows)


def shard_rows(catalog: dict, count: int) -> dict[int, int]:
    """Rows per shard of ``count`` (:func:`shard_store.shard_rows` of every index: the same numbers,
    as the rows of one resolution add up before they are split)."""
    summed = [{"resolution": int(resolution), "resolution_rows": rows} for resolution, rows in catalog["sums"].items()]
    return shard_store.shard_rows(summed, count)


def _read(storage: Storage, key: str) -> dict | None:
    """The stored catalog, or None when there is none or it is not one this code wrote (then rebuilt)."""
    try:
        document = storage.get_json_if_any(key)
    except ValueError:  # not JSON
        return None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        return None
    indexes, sums = document.get("indexes"), document.get("sums")
    if not isinstance(indexes, dict) or not isinstance(sums, dict):
        return None
    if not all(
        isinstance(entry, dict) and "etag" in entry and isinstance(entry.get("parts"), dict) for entry in indexes.values()
    ):
        return None
    if not all(isinstance(rows, dict) and all(isinstance(n, int) for n in rows.values()) for rows in sums.values()):
        return None
    return document
