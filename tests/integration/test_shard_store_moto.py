"""Validated shard parts on S3 (moto): what DataValidation writes, re-uploads and retractions, and how a shard reads them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pandas as pd
import pytest
from item_prediction.aws.settings import Settings
from item_prediction.aws.storage import ObjectRef, Storage
from item_prediction.domain import schema, shards
from item_prediction.steps import shard_store, upload_catalog
from item_prediction.steps import validate as validate_step

from .conftest import BUCKET, TABLE, part_keys

SETTINGS = Settings(BUCKET, TABLE)


def dataset_shard_rows(storage, count: int) -> dict[int, int]:
    """Rows per shard of ``count`` as the Plan counts them: from the upload catalog of the indexes."""
    return upload_catalog.shard_rows(upload_catalog.upload_catalog(storage, SETTINGS, "sales"), count)


@pytest.fixture
def storage(aws):
    aws.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return Storage(BUCKET, TABLE, s3=boto3.client("s3"))


def csv(items: int = 30, stores: int = 2, days: int = 10, quantity: int = 1, start: int = 1, prefix: str = "I") -> bytes:
    lines = ["date,item_id,store_id,quantity"]
    lines += [
        f"2024-01-{start + day:02d},{prefix}{item},S{store},{quantity}"
        for day in range(days)
        for item in range(items)
        for store in range(stores)
    ]
    return ("\n".join(lines) + "\n").encode()


def upload(storage: Storage, key: str, body: bytes) -> dict:
    storage.put_bytes(key, body, "text/csv")
    return validate_step.validate_object(storage, SETTINGS, ObjectRef(BUCKET, key))


def set_shard_count(storage: Storage, count: int, dataset: str = "sales") -> None:
    storage.put_json(shard_store.manifest_key(SETTINGS, dataset), {"shard_count": count})


def all_rows(storage: Storage, count: int = 1) -> pd.DataFrame:
    frames = [shard_store.load_shard(storage, SETTINGS, "sales", count, shard)[0] for shard in range(count)]
    return pd.concat(frames, ignore_index=True)


def test_validation_writes_one_part_per_shard_under_the_dataset_count(storage):
    set_shard_count(storage, 4)
    result = upload(storage, "raw/sales/2024/jan.csv", csv())
    assert result["shard_count"] == 4 and "validated_key" not in result
    assert sum(entry["rows"] for entry in result["shards_written"]) == result["rows"]["clean"] == 600
    assert part_keys(storage.s3) == [
        f"validated/sales/n=4/shard={entry['shard']:05d}/2024/jan.csv.parquet" for entry in result["shards_written"]
    ]
    for entry in result["shards_written"]:
        rows, inputs = shard_store.load_shard(storage, SETTINGS, "sales", 4, entry["shard"])
        assert len(rows) == entry["rows"] and len(inputs) == 1
        assert (shards.shard_of(rows[schema.ITEM], rows[schema.STORE], 4) == entry["shard"]).all()
    index = storage.get_json("validated/sales/_parts/2024/jan.csv.json")
    assert index["shard_count"] == 4 and index["rows"] == {str(e["shard"]): e["rows"] for e in result["shards_written"]}
    assert dataset_shard_rows(storage, 4) == {e["shard"]: e["rows"] for e in result["shards_written"]}


def test_an_upload_bigger_than_the_dataset_count_is_split_once_at_the_end(storage, monkeypatch):
    monkeypatch.setattr(schema, "SHARD_TARGET_ROWS", 100)
    result = upload(storage, "raw/sales/a.csv", csv())  # 600 rows: 8 shards of at most 100
    assert result["shard_count"] == 8 and {entry["shard_count"] for entry in result["shards_written"]} == {8}
    assert all(key.startswith("validated/sales/n=8/") for key in part_keys(storage.s3))
    assert len(all_rows(storage, 8)) == 600
    assert sorted(dataset_shard_rows(storage, 8).items()) == sorted(
        (entry["shard"], entry["rows"]) for entry in result["shards_written"]
    )


def test_a_re_upload_replaces_the_sources_parts_under_any_count(storage):
    first = upload(storage, "raw/sales/a.csv", csv(quantity=1))
    assert part_keys(storage.s3) == ["validated/sales/n=1/shard=00000/a.csv.parquet"] and first["shards_removed"] == []
    set_shard_count(storage, 2)
    upload(storage, "raw/sales/b.csv", csv(items=3, prefix="B"))
    second = upload(storage, "raw/sales/a.csv", csv(items=10, quantity=5))
    assert second["shards_removed"] == [{"shard_count": 1, "shard": 0}]
    assert [key for key in part_keys(storage.s3) if key.endswith("/a.csv.parquet")] == [
        f"validated/sales/n=2/shard={entry['shard']:05d}/a.csv.parquet" for entry in second["shards_written"]
    ]
    rows = all_rows(storage, 2)
    mine = rows[rows[schema.ITEM].str.startswith("I")]
    assert len(mine) == 10 * 2 * 10 and set(mine[schema.QUANTITY]) == {5.0}  # none of the first version's rows linger
    assert len(rows) - len(mine) == 3 * 2 * 10  # b.csv untouched


def test_a_version_without_clean_rows_removes_the_older_parts_and_is_not_skipped(storage):
    upload(storage, "raw/sales/a.csv", csv())
    empty = upload(storage, "raw/sales/a.csv", b"date,item_id,store_id,quantity\n2024-01-01,A,S,-1\n")
    assert empty["shards_removed"] == [{"shard_count": 1, "shard": 0}] and "skipped" not in empty
    assert part_keys(storage.s3) == [] and not storage.exists("validated/sales/_parts/a.csv.json")


def test_a_retraction_removes_every_part_and_the_index(storage):
    set_shard_count(storage, 2)
    written = upload(storage, "raw/sales/a.csv", csv())
    storage.delete("raw/sales/a.csv")
    retracted = validate_step.retract_source(
        storage, SETTINGS, "sales", ObjectRef(BUCKET, "raw/sales/a.csv"), now=datetime.now(UTC)
    )
    assert retracted["shards_removed"] == [
        {"shard_count": e["shard_count"], "shard": e["shard"]} for e in written["shards_written"]
    ]
    assert part_keys(storage.s3) == [] and not storage.exists("validated/sales/_parts/a.csv.json")
    assert dataset_shard_rows(storage, 2) == {}


def test_shards_read_coarser_and_finer_parts_exactly_once(storage):
    upload(storage, "raw/sales/old.csv", csv(items=20, prefix="O"))  # n=1
    set_shard_count(storage, 4)
    upload(storage, "raw/sales/new.csv", csv(items=20, prefix="N"))  # n=4
    for count in (1, 2, 4, 8):
        per_shard = [shard_store.load_shard(storage, SETTINGS, "sales", count, shard) for shard in range(count)]
        rows = pd.concat([frame for frame, _ in per_shard], ignore_index=True)
        assert len(rows) == 800 and not rows.duplicated(list(schema.ROW_KEY)).any(), count
        for shard, (frame, inputs) in enumerate(per_shard):
            assert (shards.shard_of(frame[schema.ITEM], frame[schema.STORE], count) == shard).all()
            assert "validated/sales/n=1/shard=00000/old.csv.parquet" in [entry["key"] for entry in inputs]
    assert list(rows.dtypes.astype(str)) == ["str", "str", "float64", "str", "float64", "int8"]


def test_the_part_written_later_wins_for_the_same_row_key(storage):
    upload(storage, "raw/sales/a.csv", csv(items=1, stores=1, days=3, quantity=1))
    upload(storage, "raw/sales/b.csv", csv(items=1, stores=1, days=1, quantity=7, start=2))
    listed = shard_store.list_parts(storage, SETTINGS, "sales")
    early, late = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)

    def when(a: datetime, b: datetime) -> list:
        return [shard_store.Part(**{**vars(p), "last_modified": a if p.source == "a.csv" else b}) for p in listed]

    b_later, _ = shard_store.load_shard(storage, SETTINGS, "sales", 1, 0, parts=when(early, late))
    a_later, _ = shard_store.load_shard(storage, SETTINGS, "sales", 1, 0, parts=when(late, early))
    tie, _ = shard_store.load_shard(storage, SETTINGS, "sales", 1, 0, parts=when(early, early))
    b_later = b_later.sort_values(schema.DATE)
    assert b_later[schema.QUANTITY].tolist() == [1.0, 7.0, 1.0] and len(b_later) == 3
    assert a_later[schema.QUANTITY].sort_values().tolist() == [1.0, 1.0, 1.0]
    assert sorted(tie[schema.QUANTITY].tolist()) == [1.0, 1.0, 7.0]  # a tie: the later key (b.csv) wins
    assert b_later[schema.DATE].tolist() == ["2024-01-01", "2024-01-02", "2024-01-03"]


def test_since_keeps_the_rows_on_and_after_a_date(storage):
    upload(storage, "raw/sales/a.csv", csv(days=10))
    recent, inputs = shard_store.load_shard(storage, SETTINGS, "sales", 1, 0, since="2024-01-08")
    assert sorted(recent[schema.DATE].unique()) == ["2024-01-08", "2024-01-09", "2024-01-10"] and len(inputs) == 1


def test_a_long_shard_list_goes_to_s3_instead_of_the_output(storage, monkeypatch):
    monkeypatch.setattr(shard_store, "MAX_SHARDS_IN_OUTPUT", 1)
    set_shard_count(storage, 4)
    result = upload(storage, "raw/sales/2024/jan.csv", csv())
    assert "shards_written" not in result and result["shards_key"] == "runs/sales/uploads/2024/jan.csv.shards.json"
    lists = shard_store.touched_shards(storage, result)
    assert len(lists["shards_written"]) == 4 and lists["shards_removed"] == []
    assert json.loads(storage.get_bytes(result["shards_key"])) == lists
    assert shard_store.touched_shards(storage, {"shards_written": [1]}) == {"shards_written": [1], "shards_removed": []}


def test_a_part_gone_since_the_listing_is_left_out(storage):
    upload(storage, "raw/sales/a.csv", csv(items=2))
    upload(storage, "raw/sales/b.csv", csv(items=2, prefix="B"))
    listed = shard_store.list_parts(storage, SETTINGS, "sales")
    storage.delete("validated/sales/n=1/shard=00000/a.csv.parquet")  # retracted meanwhile
    rows, inputs = shard_store.load_shard(storage, SETTINGS, "sales", 1, 0, parts=listed)
    assert [entry["key"] for entry in inputs] == ["validated/sales/n=1/shard=00000/b.csv.parquet"]
    assert set(rows[schema.ITEM]) == {"B0", "B1"}
    assert listed[0].last_modified > datetime.now(UTC) - timedelta(hours=1)


def test_a_shard_lists_by_folder_exactly_the_parts_the_whole_listing_gives_it(storage):
    """Parts under counts 1, 2 and 8 (an upload under a finer count than the shard's too) and the
    dataset's other files: each shard of 1, 2, 4, 8 and 16 lists exactly its parts, by folder."""
    upload(storage, "raw/sales/one.csv", csv(items=12, prefix="A"))  # n=1
    set_shard_count(storage, 2)
    upload(storage, "raw/sales/two.csv", csv(items=12, prefix="B"))  # n=2
    set_shard_count(storage, 8)
    upload(storage, "raw/sales/eight.csv", csv(items=12, prefix="C"))  # n=8
    whole = shard_store.list_parts(storage, SETTINGS, "sales")
    assert {part.part_count for part in whole} == {1, 2, 8}
    for count in (1, 2, 4, 8, 16):
        for shard in range(count):
            listed = shard_store.list_shard_parts(storage, SETTINGS, "sales", count, shard)
            assert listed == sorted(shard_store.parts_for_shard(whole, count, shard), key=lambda part: part.key), (count, shard)
            if count >= 8:
                assert all(part.part_count <= 8 and part.part_shard == shard % part.part_count for part in listed)
