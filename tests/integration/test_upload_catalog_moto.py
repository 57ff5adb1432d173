"""The upload catalog on moto: the Plan reads only the indexes that are new since its last run, and
the catalog always gives what reading every index gives (rows per shard under any count, dates,
part ETags), after re-uploads, retractions and damaged catalogs too."""

from __future__ import annotations

import boto3
import numpy as np
import pytest
from item_prediction.aws.settings import Settings
from item_prediction.aws.storage import Storage
from item_prediction.steps import shard_store, upload_catalog

from .conftest import BUCKET, TABLE

SETTINGS = Settings(BUCKET, TABLE)
COUNTS = (1, 2, 8, 64, 1024, 2048, 4096)


@pytest.fixture
def storage(aws):
    return Storage(BUCKET, TABLE, s3=boto3.client("s3"))


def write_index(storage: Storage, relative: str, seed: int, resolution: int = 1024) -> dict:
    """An upload's index with random rows per fine shard (some empty), dates and part ETags."""
    rows = np.random.default_rng(seed).integers(0, 7, resolution) * np.random.default_rng(seed + 1).integers(0, 2, resolution)
    day = 1 + seed % 27
    parts = {f"validated/sales/n=2/shard=0000{s}/{relative}.parquet": f'"{seed}-{s}"' for s in range(2)}
    index = shard_store.upload_index(
        f"raw/sales/{relative}", 2, resolution, rows, (f"2024-01-{day:02d}", f"2024-02-{day:02d}"), parts
    )
    storage.put_json(shard_store.index_key(SETTINGS, "sales", relative), index)
    return index


def every_index(storage: Storage) -> list[dict]:
    """The former way: read every index."""
    prefix = f"{shard_store.dataset_prefix(SETTINGS, 'sales')}{shard_store.INDEX_FOLDER}/"
    return [storage.get_json(key) for key in storage.list_keys(prefix) if key.endswith(".json")]


def assert_as_every_index_says(storage: Storage, catalog: dict) -> None:
    indexes = every_index(storage)
    for count in COUNTS:
        assert upload_catalog.shard_rows(catalog, count) == shard_store.shard_rows(indexes, count), count
    by_source = {index["source_key"].removeprefix("raw/sales/"): index for index in indexes}
    assert set(catalog["indexes"]) == set(by_source)
    for relative, entry in catalog["indexes"].items():
        assert entry["date_range"] == by_source[relative]["date_range"] and entry["parts"] == by_source[relative]["parts"]


@pytest.fixture
def reads(storage, monkeypatch):
    """The index keys read through ``storage.get_json``."""
    read: list[str] = []
    original = storage.get_json

    def counting(key):
        if f"/{shard_store.INDEX_FOLDER}/" in key:
            read.append(key)
        return original(key)

    monkeypatch.setattr(storage, "get_json", counting)
    return read


def test_a_run_reads_only_the_indexes_new_since_the_last_and_adds_them_up(storage, reads):
    for week in range(5):
        write_index(storage, f"week{week}.csv", seed=week, resolution=2048 if week == 3 else 1024)
    first = upload_catalog.upload_catalog(storage, SETTINGS, "sales")
    assert len(reads) == 5
    assert_as_every_index_says(storage, first)
    reads.clear()
    assert upload_catalog.upload_catalog(storage, SETTINGS, "sales") == first and reads == []
    write_index(storage, "week5.csv", seed=5)
    grown = upload_catalog.upload_catalog(storage, SETTINGS, "sales")
    assert reads == [shard_store.index_key(SETTINGS, "sales", "week5.csv")]
    assert_as_every_index_says(storage, grown)


def test_a_rewritten_or_deleted_index_rebuilds_the_catalog(storage):
    for week in range(4):
        write_index(storage, f"week{week}.csv", seed=week)
    upload_catalog.upload_catalog(storage, SETTINGS, "sales")
    write_index(storage, "week1.csv", seed=40)  # a re-upload: other rows, other dates
    assert_as_every_index_says(storage, upload_catalog.upload_catalog(storage, SETTINGS, "sales"))
    storage.delete(shard_store.index_key(SETTINGS, "sales", "week2.csv"))  # a retraction
    assert_as_every_index_says(storage, upload_catalog.upload_catalog(storage, SETTINGS, "sales"))


@pytest.mark.parametrize(
    "damage",
    [
        b"not json",
        b'{"format": 2, "indexes": {}, "sums": {}}',
        b'{"format": 1, "indexes": {"week0.csv": {"parts": {}}}, "sums": {}}',
        b'{"format": 1, "indexes": {}, "sums": {"1024": {"3": "many"}}}',
    ],
)
def test_a_catalog_that_cannot_be_used_is_rebuilt_from_the_indexes(storage, damage):
    for week in range(3):
        write_index(storage, f"week{week}.csv", seed=week)
    storage.put_bytes(upload_catalog.catalog_key(SETTINGS, "sales"), damage)
    assert_as_every_index_says(storage, upload_catalog.upload_catalog(storage, SETTINGS, "sales"))
