"""Ingest on moto with a versioned bucket (as the template's): duplicate and late events, deleted
uploads, refused dataset names, the per-dataset lease and the versions a run reads."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from item_prediction.aws import ledger
from item_prediction.steps import validate as validate_step
from lambda_build.sample_data import generate_sales

from .conftest import (
    BUCKET,
    TABLE,
    FakeContext,
    all_items,
    build_shard,
    object_created,
    object_deleted,
    part_keys,
    plan,
    predict_shard,
    read_json,
    run_pipeline,
    shard_items,
)


@pytest.fixture
def s3(aws):
    aws.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return aws


def validate(event):
    from data_validation.app import lambda_handler

    return lambda_handler(event, FakeContext("DataValidation"))


def aggregate(event):
    from predictions.app import lambda_handler

    return lambda_handler({**event, "step": "aggregate"}, FakeContext("Predictions"))


def upload(s3, key: str, body: bytes) -> str:
    return s3.put_object(Bucket=BUCKET, Key=key, Body=body)["VersionId"]


def every_version(s3) -> list[tuple[str, str]]:
    """Every object version and delete marker in the bucket: what a step wrote, even if replaced."""
    listing = s3.list_object_versions(Bucket=BUCKET)
    return sorted((entry["Key"], entry["VersionId"]) for kind in ("Versions", "DeleteMarkers") for entry in listing.get(kind, []))


def lease(dataset: str = "sales") -> dict | None:
    return boto3.resource("dynamodb").Table(TABLE).get_item(Key={"pk": f"DS#{dataset}", "sk": "LEASE"}).get("Item")


def sales(seed: int, items: int = 2, periods: int = 70, prefix: str = "ITEM-") -> bytes:
    return generate_sales(items=items, stores=1, periods=periods, seed=seed, invalid=False).content.replace(
        b"ITEM-", prefix.encode()
    )


def test_the_same_upload_twice_adds_nothing(s3):
    version = upload(s3, "raw/sales/a.csv", sales(1))
    first = run_pipeline("raw/sales/a.csv", version)[2]
    assert first["predictions_written"] == 2 * 10 and lease() is None
    written, items = every_version(s3), all_items()
    again = validate(object_created("raw/sales/a.csv", version))  # the same event delivered twice
    assert again["skipped"] is True and again["reason"] == f"already processed: raw/sales/a.csv version {version}"
    assert every_version(s3) == written and all_items() == items
    forced = validate({"bucket": BUCKET, "key": "raw/sales/a.csv", "force": True})  # an operator's re-run
    assert "skipped" not in forced and forced["source_version"] == version


def test_a_late_event_for_a_superseded_version_is_skipped(s3):
    old = upload(s3, "raw/sales/a.csv", sales(1))
    new = upload(s3, "raw/sales/a.csv", sales(2))
    late = validate(object_created("raw/sales/a.csv", old))
    assert late["skipped"] is True and late["reason"] == "superseded: a newer version of raw/sales/a.csv exists"
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="validated/").get("KeyCount") == 0
    manual = validate({"bucket": BUCKET, "key": "raw/sales/a.csv"})  # no version named: the current one, pinned
    assert manual["source_version"] == new and read_json(s3, manual["report_key"])["source"]["version_id"] == new
    assert validate(object_created("raw/sales/a.csv", new))["reason"] == f"already processed: raw/sales/a.csv version {new}"


def test_a_failed_validation_frees_its_claim_for_the_retry(s3, monkeypatch):
    version = upload(s3, "raw/sales/a.csv", sales(1))
    real = validate_step.validate_object
    monkeypatch.setattr(validate_step, "validate_object", lambda *args, **kwargs: (_ for _ in ()).throw(RuntimeError("network")))
    with pytest.raises(RuntimeError):
        validate(object_created("raw/sales/a.csv", version))
    monkeypatch.setattr(validate_step, "validate_object", real)
    assert validate(object_created("raw/sales/a.csv", version))["rows"]["clean"] > 0  # the retry is not a "duplicate"


def test_a_held_lease_makes_features_wait_and_a_released_or_expired_one_lets_them_through(s3):
    version = upload(s3, "raw/sales/a.csv", sales(1))
    validated = validate(object_created("raw/sales/a.csv", version))
    table = boto3.resource("dynamodb").Table(TABLE)
    ledger.acquire_lease(table, "sales", "raw/sales/other.csv#v9", int(time.time()))
    with pytest.raises(ledger.DatasetBusy) as busy:
        plan(validated)
    assert type(busy.value).__name__ == "DatasetBusy" and "raw/sales/other.csv#v9" in str(busy.value)
    assert lease()["owner"] == "raw/sales/other.csv#v9"  # the holder keeps it
    ledger.release_lease(table, "sales", "raw/sales/other.csv#v9")
    planned = plan(validated)
    assert planned["lease_owner"] == f"raw/sales/a.csv#{version}" == lease()["owner"]
    ledger.release_lease(table, "sales", planned["lease_owner"])
    table.put_item(
        Item={"pk": "DS#sales", "sk": "LEASE", "owner": "raw/sales/crashed.csv#v1", "expires_at": int(time.time()) - 1}
    )
    taken_over = plan(validated)  # an expired lease is taken over
    assert taken_over["shards_run"] == planned["shards_run"] and lease()["owner"] == planned["lease_owner"]


def holding_the_lease_while_it_aggregates(monkeypatch, fail: bool = False) -> list:
    """Record the dataset's lease as the Aggregate step begins (after the handler took it again,
    if it did); the step itself does nothing (or fails, ``fail``): what is tested is the handler's lease."""
    from item_prediction.steps import aggregate as aggregate_step

    seen = []

    def recording(storage, settings, event, **kwargs):
        seen.append(lease(event["dataset"]))
        if fail:
            raise RuntimeError("aggregate failed")
        return {"metrics": None, "shards_run": 0}

    monkeypatch.setattr(aggregate_step, "aggregate", recording)
    return seen


def test_the_lease_is_given_back_after_the_aggregate_step_on_every_path(s3, monkeypatch):
    version = upload(s3, "raw/sales/a.csv", sales(1))
    planned = plan(validate(object_created("raw/sales/a.csv", version)))
    assert lease()["owner"] == planned["lease_owner"]  # Plan keeps the run's lease for the fan-out
    seen = holding_the_lease_while_it_aggregates(monkeypatch, fail=True)
    with pytest.raises(RuntimeError, match="aggregate failed"):
        aggregate(planned)
    assert [held["owner"] for held in seen] == [planned["lease_owner"]] and lease() is None  # released although it failed
    nothing = plan({"dataset": "empty"})  # the backfill of a dataset without data: skipped, lease given back
    assert nothing["skipped"] is True and nothing["lease_owner"] == "backfill#empty" and lease("empty") is None


def test_a_retried_aggregate_attempt_takes_the_released_lease_again_and_gives_it_back(s3, monkeypatch):
    version = upload(s3, "raw/sales/a.csv", sales(1))
    planned = plan(validate(object_created("raw/sales/a.csv", version)))
    ledger.release_lease(boto3.resource("dynamodb").Table(TABLE), "sales", planned["lease_owner"])  # the failed attempt's end
    seen = holding_the_lease_while_it_aggregates(monkeypatch)
    retried = aggregate(planned)
    assert "retake_lease" in retried["durations_ms"]
    assert [held["owner"] for held in seen] == [planned["lease_owner"]]  # the retry ran under the run's lease
    assert lease() is None  # and gave it back at its end


def test_an_aggregate_attempt_waits_while_another_run_holds_the_lease(s3, monkeypatch):
    version = upload(s3, "raw/sales/a.csv", sales(1))
    planned = plan(validate(object_created("raw/sales/a.csv", version)))
    table = boto3.resource("dynamodb").Table(TABLE)
    ledger.release_lease(table, "sales", planned["lease_owner"])
    ledger.acquire_lease(table, "sales", "raw/sales/b.csv#v2", int(time.time()))  # another run took it meanwhile
    seen = holding_the_lease_while_it_aggregates(monkeypatch)
    with pytest.raises(ledger.DatasetBusy) as busy:
        aggregate(planned)
    assert type(busy.value).__name__ == "DatasetBusy" and "raw/sales/b.csv#v2" in str(busy.value)
    assert seen == [] and all_items() == []  # nothing read or written without the lease
    assert lease()["owner"] == "raw/sales/b.csv#v2"  # the other run keeps it
    ledger.release_lease(table, "sales", "raw/sales/b.csv#v2")
    assert "retake_lease" in aggregate(planned)["durations_ms"] and lease() is None  # the state machine's retry


def test_a_deleted_upload_is_retracted_and_the_next_features_exclude_its_rows(s3):
    kept, gone = upload(s3, "raw/sales/a.csv", sales(1)), upload(s3, "raw/sales/b file.csv", sales(2, prefix="GONE-"))
    validate(object_created("raw/sales/a.csv", kept))
    planned = plan(validate(object_created("raw/sales/b file.csv", gone)))
    (featured,) = [build_shard(item) for item in shard_items(planned)]
    assert featured["series"] == 4 and featured["input_count"] == 2
    ledger.release_lease(boto3.resource("dynamodb").Table(TABLE), "sales", planned["lease_owner"])  # as Aggregate does
    marker = s3.delete_object(Bucket=BUCKET, Key="raw/sales/b file.csv")["VersionId"]
    retracted = validate(object_deleted("raw/sales/b file.csv", marker))
    assert retracted["retracted"] is True and "skipped" not in retracted  # the run goes on
    assert retracted["removed_keys"] == ["validated/sales/n=1/shard=00000/b file.csv.parquet"]
    assert retracted["shards_removed"] == [{"shard_count": 1, "shard": 0}] and retracted["removed_count"] == 1
    assert part_keys(s3) == ["validated/sales/n=1/shard=00000/a.csv.parquet"]
    indexes = s3.list_objects_v2(Bucket=BUCKET, Prefix="validated/sales/_parts/")["Contents"]
    assert [item["Key"] for item in indexes] == ["validated/sales/_parts/a.csv.json"]  # b's index went with its parts
    report = read_json(s3, retracted["report_key"])
    assert report["retracted"] is True and report["retracted_at"] and report["source"]["version_id"] == gone
    (rebuilt,) = [build_shard(item) for item in shard_items(plan(retracted))]
    manifest = read_json(s3, rebuilt["manifest_key"])
    assert rebuilt["series"] == manifest["series"] == 2 and rebuilt["input_count"] == 1
    assert [entry["key"] for entry in manifest["inputs"]] == ["validated/sales/n=1/shard=00000/a.csv.parquet"]
    again = validate(object_deleted("raw/sales/b file.csv", marker))  # the deletion event delivered twice
    assert again["skipped"] is True and again["reason"] == "already retracted: raw/sales/b file.csv"


def test_deleting_an_old_version_or_a_retention_expiry_keeps_the_rows(s3):
    old = upload(s3, "raw/sales/a.csv", sales(1))
    new = upload(s3, "raw/sales/a.csv", sales(2, periods=80))
    validated = validate(object_created("raw/sales/a.csv", new))
    s3.delete_object(Bucket=BUCKET, Key="raw/sales/a.csv", VersionId=old)
    skipped = validate(object_deleted("raw/sales/a.csv", old))
    assert skipped["reason"] == f"nothing to retract: the current version {new} of raw/sales/a.csv is the one validated"
    expired = validate(object_deleted("raw/sales/a.csv", "marker", reason="Lifecycle Expiration"))
    assert expired["skipped"] is True and "retention" in expired["reason"]
    assert validated["shards_written"] == [{"shard_count": 1, "shard": 0, "rows": validated["rows"]["clean"]}]
    s3.head_object(Bucket=BUCKET, Key="validated/sales/n=1/shard=00000/a.csv.parquet")  # still there
    # Deleting the current version brings the previous one back: it is validated in its place.
    current = upload(s3, "raw/sales/a.csv", sales(3))
    validate(object_created("raw/sales/a.csv", current))
    s3.delete_object(Bucket=BUCKET, Key="raw/sales/a.csv", VersionId=current)
    replaced = validate(object_deleted("raw/sales/a.csv", current))
    assert replaced["source_version"] == new and replaced["rows"] == validated["rows"]


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("raw/../x.csv", "'..' is not allowed: use 1 to 64"),
        ("raw/a b/x.csv", "'a b' is not allowed: use 1 to 64"),
        ("raw/default/x.csv", "'default' is not allowed as a folder"),
    ],
)
def test_a_bad_dataset_name_is_refused_with_the_reason_and_the_upload_kept(s3, capsys, key, name):
    version = upload(s3, key, sales(1))
    result = validate(object_created(key, version))
    assert result["skipped"] is True and result["reason"].startswith(f"dataset name {name}") and "\n" not in result["reason"]
    assert s3.get_object(Bucket=BUCKET, Key=key, VersionId=version)["Body"].read() == sales(1)
    assert [k for k, _ in every_version(s3)] == [key] and all_items() == []  # no output, no ledger item
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any(blob.get("RejectedUploads") == [1.0] or blob.get("RejectedUploads") == 1.0 for blob in emf)


def test_keys_with_spaces_and_plus_signs_are_decoded(s3):
    key = "raw/sales/jan export+1.csv"
    version = upload(s3, key, sales(1))
    event = object_created(key, version)
    assert event["detail"]["object"]["key"] == "raw/sales/jan+export%2B1.csv"  # as EventBridge sends it
    result = validate(event)
    assert result["source_key"] == key and part_keys(s3) == ["validated/sales/n=1/shard=00000/jan export+1.csv.parquet"]


def test_a_file_without_clean_rows_never_removes_another_files_rows(s3):
    good = validate(object_created("raw/sales/jan.csv", upload(s3, "raw/sales/jan.csv", sales(1))))
    bad = validate(
        object_created("raw/sales/jan.txt", upload(s3, "raw/sales/jan.txt", b"date,item_id,quantity\n2024-01-01,A,-1\n"))
    )
    assert bad["skipped"] is True and bad["quarantine_key"] == "quarantine/sales/jan.txt.csv.gz"
    elsewhere = validate(object_created("raw/jan.csv", upload(s3, "raw/jan.csv", sales(2))))
    assert good["shards_written"] and elsewhere["shards_written"]
    assert part_keys(s3) == [  # jan.csv's rows are still there
        "validated/default/n=1/shard=00000/jan.csv.parquet",
        "validated/sales/n=1/shard=00000/jan.csv.parquet",
    ]
    assert good["report_key"] != bad["report_key"] != elsewhere["report_key"]


def test_predictions_read_the_features_version_the_run_wrote(s3):
    planned = plan(validate(object_created("raw/sales/a.csv", upload(s3, "raw/sales/a.csv", sales(1)))))
    (featured,) = [build_shard(item) for item in shard_items(planned)]
    manifest = read_json(s3, featured["manifest_key"])
    part = "validated/sales/n=1/shard=00000/a.csv.parquet"
    validated_version = s3.head_object(Bucket=BUCKET, Key=part)["VersionId"]
    assert manifest["inputs"] == [{"key": part, "version_id": validated_version}] and featured["input_count"] == 1
    assert (
        manifest["features_version"]
        == featured["features_version"]
        == s3.head_object(Bucket=BUCKET, Key=featured["features_key"])["VersionId"]
    )
    s3.put_object(Bucket=BUCKET, Key=featured["features_key"], Body=b"not the features")  # a later writer
    predicted = predict_shard(featured)
    assert predicted["series"] == 2 and predicted["predictions_written"] == 2 * 10


def test_a_version_that_arrives_during_validation_wins_over_the_older_rows(s3, monkeypatch):
    real = validate_step.validate_object
    later: dict = {}

    def meanwhile(storage, settings, ref, **kwargs):  # the newer version lands (and its run writes) while this one is read
        result = real(storage, settings, ref, **kwargs)
        if not later:
            later["version"] = upload(s3, "raw/sales/a.csv", sales(2, items=3))
        return result

    first = upload(s3, "raw/sales/a.csv", sales(1))
    monkeypatch.setattr(validate_step, "validate_object", meanwhile)
    result = validate(object_created("raw/sales/a.csv", first))
    assert (result["source_version"], result["validated_version"]) == (first, later["version"])
    assert read_json(s3, result["report_key"])["source"]["version_id"] == later["version"]
    assert result["rows"]["clean"] == len(generate_sales(items=3, stores=1, periods=70, seed=2, invalid=False).frame)


def test_an_upload_deleted_during_validation_leaves_no_rows(s3, monkeypatch):
    real = validate_step.validate_object

    def meanwhile(storage, settings, ref, **kwargs):  # the deletion's own run retracted before these rows were written
        result = real(storage, settings, ref, **kwargs)
        s3.delete_object(Bucket=BUCKET, Key="raw/sales/a.csv")
        return result

    version = upload(s3, "raw/sales/a.csv", sales(1))
    monkeypatch.setattr(validate_step, "validate_object", meanwhile)
    result = validate(object_created("raw/sales/a.csv", version))
    assert result["retracted"] is True and result["source_version"] == version
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="validated/").get("KeyCount") == 0
