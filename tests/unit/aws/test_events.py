"""The sample events in events/ are the shapes the handlers accept, and parse as documented."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from item_prediction.aws import api_query, ledger
from item_prediction.aws.events import EventError, object_ref
from item_prediction.aws.settings import Settings
from item_prediction.domain.schema import ColumnMapping
from item_prediction.steps import plan
from item_prediction.steps import validate as validate_step
from item_prediction.steps.envelope import step_of

EVENTS = Path(__file__).resolve().parents[3] / "events"


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


@pytest.mark.parametrize(
    ("name", "key", "version"),
    [
        ("object_created.json", "raw/sales/2024-01.csv", "IYV3p45BT0ac8hjHg1houSdS1a.Mo8hQ"),
        ("s3_notification.json", "raw/sales/2024-01 export.csv", "IYV3p45BT0ac8hjHg1houSdS1a.Mo8hQ"),  # keys arrive URL-encoded
        ("validate_object.json", "raw/sales/2024-01.csv", None),
    ],
)
def test_validation_inputs_name_one_object(name, key, version):
    ref = object_ref(load(name))
    assert (ref.bucket, ref.key, ref.version_id) == ("item-prediction-dev-data", key, version)


def test_an_unknown_event_is_a_clear_error():
    with pytest.raises(EventError, match="expected an S3 Object Created or Object Deleted event"):
        object_ref({"hello": "world"})


def test_step_outputs_chain():
    validation_output, featured = load("validation_output.json"), load("shard_features_output.json")
    assert {"bucket", "dataset", "source_key", "source_version", "frequency"} <= validation_output.keys()
    # A shard's BuildFeatures output (the Predict step's input): the plan's item plus its features.
    assert {"dataset", "shard", "shard_count", "run_id", "mode", "horizon", "lease_owner"} <= featured.keys()
    assert {"manifest_key", "features_key", "features_version"} <= featured.keys()
    assert featured["lease_owner"] == ledger.lease_owner(validation_output, "sales")
    assert featured["run_id"] == plan.new_run_id(featured["lease_owner"], datetime(2024, 2, 1, tzinfo=UTC))
    assert featured["manifest_key"] == f"features/sales/shard={featured['shard']:05d}/manifest.json"


def test_the_backfill_sample_names_the_plan_step():
    """FeatureEngineering and Predictions run only as state machine steps (no whole-dataset run)."""
    assert step_of(load("plan_backfill.json"), "FeatureEngineering", ("plan", "shard")) == "plan"
    assert load("plan_backfill.json")["dataset"] == "sales"


def test_the_api_event_is_a_valid_query():
    event = load("api_get_predictions.json")
    query = api_query.parse_query(
        event["pathParameters"]["dataset"], event["pathParameters"]["item_id"], event["queryStringParameters"]
    )
    assert query.pk("run") == "DS#sales#RUN#run#ITEM#ITEM-000#STORE#STORE-00" and (query.sk_from, query.sk_to) == (
        "DATE#2024-02-01",
        "DATE#2024-02-14",
    )
    assert event["rawPath"] == f"/datasets/{query.dataset}/predictions/{query.item_id}" == event["requestContext"]["http"]["path"]


def test_the_mapping_example_is_a_valid_mapping():
    mapping = ColumnMapping.from_json((EVENTS / "mapping_example.json").read_text())
    assert mapping.columns["item_id"] == "SKU" and mapping.dayfirst is True and mapping.decimal == ","


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("raw/sales/a.csv", None),
        ("raw/sales/2024/jan.csv.gz", None),
        ("raw/a.csv", None),
        ("raw/sales/_mapping.json", "configuration"),
        ("raw/sales/.hidden.csv", "configuration"),
        ("raw/sales/", "folder"),
        ("raw/sales/plan/june.csv", "a plan file, read at forecast time"),
        ("raw/sales/plan/2024/june.csv.gz", "a plan file"),
        ("raw/plan.csv", None),  # a sales file of dataset default named plan.csv
        ("raw/sales/planned.csv", None),
        ("reports/x.json", "not under raw/"),
    ],
)
def test_which_objects_are_sales_files(key, reason):
    found = validate_step.skip_reason(Settings(bucket="b", table="t"), key)
    assert (found is None) if reason is None else (reason in found)


def test_mapping_lookup_order_and_dataset_of_a_key():
    settings = Settings(bucket="b", table="t")
    assert settings.dataset_of("raw/sales/2024/jan.csv") == "sales" and settings.dataset_of("raw/a.csv") == "default"
    assert validate_step.mapping_candidates(settings, "sales", "raw/sales/2024/jan.csv") == [
        "raw/sales/2024/_mapping.json",
        "raw/sales/_mapping.json",
        "config/mappings/sales.json",
        "config/mappings/default.json",
    ]
    assert validate_step.output_keys(settings, "sales", "raw/sales/2024/jan.csv.gz") == {
        "relative": "2024/jan.csv.gz",
        "index_key": "validated/sales/_parts/2024/jan.csv.gz.json",
        "quarantine_key": "quarantine/sales/2024/jan.csv.gz.csv.gz",
        "report_key": "reports/sales/2024/jan.csv.gz.validation.json",
    }


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("BUCKET_NAME", "data")
    monkeypatch.setenv("RAW_PREFIX", "incoming/")
    monkeypatch.setenv("FORECAST_HORIZON", "21")
    monkeypatch.delenv("CHUNK_ROWS", raising=False)
    settings = Settings.from_env()
    assert (settings.bucket, settings.raw_prefix, settings.forecast_horizon, settings.chunk_rows) == (
        "data",
        "incoming/",
        21,
        100_000,
    )
    monkeypatch.setenv("CHUNK_ROWS", "0")
    with pytest.raises(ValueError, match="CHUNK_ROWS must be at least 1"):
        Settings.from_env()
    monkeypatch.setenv("CHUNK_ROWS", "lots")
    with pytest.raises(ValueError, match="CHUNK_ROWS must be an integer"):
        Settings.from_env()
