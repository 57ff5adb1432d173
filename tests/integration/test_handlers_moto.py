"""The handlers against moto (S3, DynamoDB, SQS), run by the real pipeline state machine (see conftest.run_pipeline)."""

from __future__ import annotations

import calendar
import hashlib
import json
from collections import Counter
from datetime import date
from decimal import Decimal

import pytest
from item_prediction.aws import runtime, table_keys
from lambda_build.sample_data import RENAMED_COLUMNS, generate_sales

from .conftest import (
    BUCKET,
    TABLE,
    FakeContext,
    all_items,
    csv_bytes,
    current,
    dead_letters,
    object_created,
    plan,
    read_csv_gz,
    read_json,
    run_pipeline,
    run_shards,
    series_items,
    validated_rows,
)


def test_pipeline_accounts_for_every_row_and_predicts_every_series(aws, capsys, log_lines):
    sample = generate_sales(items=3, stores=2, periods=400, seed=3)
    aws.put_object(Bucket=BUCKET, Key="raw/sales/2024-01.csv", Body=sample.content)
    validated, featured, predicted = run_pipeline("raw/sales/2024-01.csv")

    assert validated["rows"] == {"in": sample.rows, "clean": len(sample.frame), "quarantined": len(sample.invalid_lines)}
    report = read_json(aws, validated["report_key"])
    assert report["rows_clean"] + report["rows_quarantined"] == report["rows_in"]
    assert report["rules"] == dict(Counter(sample.invalid_lines.values()))  # every expected rule, as often as expected
    quarantined = read_csv_gz(aws, validated["quarantine_key"])
    assert dict(zip(quarantined["_line"].astype(int), quarantined["_reasons"], strict=True)) == sample.invalid_lines
    clean, parts = validated_rows("sales")
    assert len(clean) == len(sample.frame) and [part["key"] for part in parts] == [
        "validated/sales/n=1/shard=00000/2024-01.csv.parquet"
    ]
    assert validated["shard_count"] == 1 and validated["shards_written"] == [
        {"shard_count": 1, "shard": 0, "rows": len(sample.frame)}
    ]
    assert report["input"]["sha256"] == __import__("hashlib").sha256(sample.content).hexdigest()

    assert featured["dataset"] == "sales" and featured["shard_count"] == 1 and featured["shards_run"] == 1
    assert featured["modes"] == {"train_and_predict": 1, "predict": 0}
    assert predicted["horizon"] == 10 and predicted["series"] == 6 and predicted["shards_run"] == 1
    assert predicted["metrics"]["beats_baseline"] is True
    run_id = predicted["run_id"]
    items = all_items()
    assert len(items) == 6 * 10 == predicted["predictions_written"]
    assert len(series_items()) == 6 == predicted["items_written"]  # one DynamoDB item per series
    by_series: dict[str, list[str]] = {}
    for item in items:
        by_series.setdefault(item["pk"], []).append(item["date"])
    last = sample.frame.groupby(["item_id", "store_id"])["date"].max()
    for (item_id, store_id), last_day in last.items():
        days = by_series[table_keys.prediction_pk("sales", run_id, item_id, store_id)]
        assert len(days) == 10 and min(days) > last_day, (item_id, store_id)
    assert all(item["prediction"] >= Decimal(0) for item in items)

    dataset_latest = read_json(aws, "models/sales/latest.json")
    shard = dataset_latest["shards"]["00000"]
    latest = read_json(aws, "models/sales/shard=00000/latest.json")
    model_bytes = aws.get_object(Bucket=BUCKET, Key=shard["model_key"])["Body"].read()
    assert latest["model_key"] == shard["model_key"] and latest["model_sha256"] == hashlib.sha256(model_bytes).hexdigest()
    assert latest["shard_count"] == 1 and latest["data_end"] == clean["date"].max()
    pointer = current("sales")
    assert pointer["generation"] == run_id and pointer["shard_count"] == 1
    assert shard["forecast_id"] == run_id and {item["forecast_id"] for item in items} == {run_id}
    (expiry,) = {int(item["expires_at"]) for item in items}  # one TTL for the run: 35 days after its end (or today, if later)
    assert expiry >= calendar.timegm(date.fromisoformat(pointer["forecast_range"][1]).timetuple()) + 35 * 86400
    metadata = read_json(aws, shard["model_key"].replace("model.joblib", "metadata.json"))
    manifest = read_json(aws, "features/sales/shard=00000/manifest.json")
    assert metadata["training_fingerprint"] == manifest["source_fingerprint"]
    # One shard: the dataset's metrics are that shard's backtest, exactly.
    for scores in ("model", "seasonal_naive"):
        assert predicted["metrics"][scores] == metadata["metrics"][scores]
    assert read_json(aws, predicted["run_report_key"])["metrics"] == predicted["metrics"] == dataset_latest["metrics"]
    part = read_csv_gz(aws, f"predictions/sales/{run_id}/shard=00000.csv.gz")
    assert len(part) == len(items)
    # The CSV part holds the numbers the items (and the API) serve, to the same places.
    served = {(item["pk"], item["date"]): float(item["prediction"]) for item in items}
    in_part = {
        (table_keys.prediction_pk("sales", run_id, row.item_id, row.store_id), str(row.date)[:10]): float(row.prediction)
        for row in part.itertuples()
    }
    assert in_part == served and any(value != round(value, 3) for value in served.values())

    # The run's forecast report: next to the validation reports, named in CURRENT, with every count.
    assert predicted["report_key"] == pointer["report_key"] == f"reports/sales/{run_id}/report.html"
    page = aws.get_object(Bucket=BUCKET, Key=predicted["report_key"])
    text = page["Body"].read().decode()
    assert page["ContentType"].startswith("text/html") and f"{report['rows_in']:,}" in text
    assert all(f"quarantined: {rule}" in text for rule in report["rules"]) and metadata["version"] in text

    # Structured logs carry the source object as correlation id; EMF metrics are emitted.
    logs = log_lines()
    assert {log["message"] for log in logs} >= {"validated", "planned", "shard features built", "shard predicted", "aggregated"}
    assert all(
        log["correlation_id"] == "raw/sales/2024-01.csv" for log in logs if log["message"] in ("validated", "aggregated")
    )  # no version
    assert all(log["cold_start"] in (True, False) for log in logs)
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    emitted = {
        metric["Name"] for blob in emf for directive in blob["_aws"]["CloudWatchMetrics"] for metric in directive["Metrics"]
    }
    assert {"RowsIn", "RowsClean", "RowsQuarantined", "PredictionsWritten"} <= emitted
    assert any(blob.get("RowsQuarantined") == [float(len(sample.invalid_lines))] for blob in emf)


STEPS = {
    "validated": {"validate", "write_outputs"},
    "planned": {"take_lease", "plan"},
    "shard features built": {"renew_lease", "read_validated", "build_features", "write_features"},
    "shard predicted": {
        "renew_lease",
        "read_features",
        "read_plan",
        "backtest",
        "fit",
        "save_model",
        "forecast",
        "write_items",
        "write_csv",
        "report_slice",
    },
    "aggregated": {"retake_lease", "aggregate"},
}
RESULT_OF = {  # the run's results by (function, step) for each log message
    "validated": ("DataValidationFunction", None),
    "planned": ("FeatureEngineeringFunction", "plan"),
    "shard features built": ("FeatureEngineeringFunction", "shard"),
    "shard predicted": ("PredictionsFunction", "shard"),
    "aggregated": ("PredictionsFunction", "aggregate"),
}


def emitted_metrics(out: str) -> dict[str, str]:
    """{metric name: unit} of the EMF blobs printed on stdout."""
    blobs = [json.loads(line) for line in out.splitlines() if '"_aws"' in line]
    return {
        metric["Name"]: metric.get("Unit")
        for blob in blobs
        for directive in blob["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]
    }


def test_each_function_logs_outputs_and_emits_the_durations_of_its_steps(aws, capsys, log_lines):
    sample = generate_sales(items=2, stores=1, periods=120, seed=4, invalid=False)
    aws.put_object(Bucket=BUCKET, Key="raw/sales/a.csv", Body=sample.content)
    results = run_pipeline("raw/sales/a.csv").results
    outputs = {message: results[RESULT_OF[message]] for message in STEPS}
    logged = {log["message"]: log for log in log_lines() if log["message"] in STEPS}
    for message, steps in STEPS.items():
        durations = logged[message]["durations_ms"]
        assert set(durations) == steps, message
        assert all(isinstance(value, int | float) and value >= 0 for value in durations.values()), durations
        assert outputs[message]["durations_ms"] == durations  # the step's output carries them on
    emitted = emitted_metrics(capsys.readouterr().out)
    expected = {runtime.duration_metric(step) for steps in STEPS.values() for step in steps}
    assert {"ValidateDuration", "ReadFeaturesDuration", "FitDuration", "WriteItemsDuration", "AggregateDuration"} <= expected
    assert {name: emitted.get(name) for name in expected} == dict.fromkeys(expected, "Milliseconds")

    # A later file: its shard predicts with the latest model (loaded, not trained).
    later = generate_sales(items=2, stores=1, periods=125, seed=4, invalid=False).frame
    aws.put_object(Bucket=BUCKET, Key="raw/sales/b.csv", Body=csv_bytes(later[later["date"] > sample.frame["date"].max()]))
    again = run_pipeline("raw/sales/b.csv").results[("PredictionsFunction", "shard")]
    assert again["mode"] == "predict"
    assert set(again["durations_ms"]) == {
        "renew_lease",
        "read_features",
        "read_plan",
        "load_model",
        "forecast",
        "write_items",
        "write_csv",
        "report_slice",
    }
    assert emitted_metrics(capsys.readouterr().out)["LoadModelDuration"] == "Milliseconds"


def test_running_again_leaves_the_same_items(aws):
    sample = generate_sales(items=2, stores=1, periods=120, seed=4)
    aws.put_object(Bucket=BUCKET, Key="raw/sales/file.csv.gz", Body=__import__("gzip").compress(sample.content))
    run_pipeline("raw/sales/file.csv.gz")
    first = all_items()
    run_pipeline("raw/sales/file.csv.gz")
    assert all_items() == first


def test_api_reads_a_date_range_and_rejects_bad_requests(aws):
    from predictions.api import handler as api

    sample = generate_sales(items=1, stores=1, periods=90, seed=5)
    aws.put_object(Bucket=BUCKET, Key="raw/shop/a.csv", Body=sample.content)
    run_pipeline("raw/shop/a.csv")
    days = [item["date"] for item in all_items()]
    with open("events/api_get_predictions.json") as handle:
        event = json.load(handle)
    event.update(rawPath="/datasets/shop/predictions/ITEM-000", pathParameters={"dataset": "shop", "item_id": "ITEM-000"})
    event["queryStringParameters"] = {"store": "STORE-00", "from": days[2], "to": days[4]}
    response = api(event, FakeContext("PredictionsApi"))
    body = json.loads(response["body"])
    assert response["statusCode"] == 200
    assert [row["date"] for row in body["predictions"]] == days[2:5]
    event["queryStringParameters"] = {"from": "yesterday"}
    bad = api(event, FakeContext("PredictionsApi"))
    assert bad["statusCode"] == 400 and "'from' must be a date" in json.loads(bad["body"])["message"]
    event["queryStringParameters"] = None  # no store: the series without one, which this item has not
    missing = api(event, FakeContext("PredictionsApi"))
    assert missing["statusCode"] == 404 and "?store=" in json.loads(missing["body"])["message"]
    event["queryStringParameters"] = {"store": "STORE-00", "from": "1999-01-01", "to": "1999-01-31"}
    empty = api(event, FakeContext("PredictionsApi"))
    assert empty["statusCode"] == 200 and json.loads(empty["body"])["predictions"] == []


@pytest.mark.parametrize("where", ["config/mappings/export.json", "raw/export/_mapping.json", "event"])
def test_users_columns_are_mapped(aws, where):
    sample = generate_sales(items=2, stores=1, periods=100, seed=6, column_names=RENAMED_COLUMNS, delimiter=";")
    mapping_key = "config/custom.json" if where == "event" else where
    aws.put_object(Bucket=BUCKET, Key=mapping_key, Body=sample.mapping_json.encode())
    aws.put_object(Bucket=BUCKET, Key="raw/export/sales.csv", Body=sample.content)
    from data_validation.app import lambda_handler as validate

    event = (
        {"bucket": BUCKET, "key": "raw/export/sales.csv", "mapping_key": mapping_key}
        if where == "event"
        else object_created("raw/export/sales.csv")
    )
    validated = validate(event, FakeContext())
    assert validated["rows"] == {"in": sample.rows, "clean": len(sample.frame), "quarantined": len(sample.invalid_lines)}
    assert read_json(aws, validated["report_key"])["mapping"]["source"] == mapping_key
    _, _, predicted = run_shards(validated)
    assert [result["predictions_written"] for result in predicted] == [2 * 10]


def test_the_mapping_file_itself_is_not_validated_as_data(aws):
    from data_validation.app import lambda_handler as validate

    aws.put_object(Bucket=BUCKET, Key="raw/export/_mapping.json", Body=b'{"columns": {}}')
    result = validate(object_created("raw/export/_mapping.json"), FakeContext())
    assert result["skipped"] is True and "configuration" in result["reason"]
    assert aws.list_objects_v2(Bucket=BUCKET, Prefix="reports/").get("KeyCount") == 0


def test_a_broken_mapping_quarantines_the_file_and_says_why(aws):
    from data_validation.app import lambda_handler as validate

    sample = generate_sales(items=1, stores=1, periods=30, seed=8)
    aws.put_object(Bucket=BUCKET, Key="raw/shop/_mapping.json", Body=b'{"columns": {"price": "P"}}')
    aws.put_object(Bucket=BUCKET, Key="raw/shop/a.csv", Body=sample.content)
    result = validate(object_created("raw/shop/a.csv"), FakeContext())
    assert result["file_reason"] == "invalid_mapping" and result["skipped"] is True
    assert result["rows"] == {"in": sample.rows, "clean": 0, "quarantined": sample.rows}
    report = read_json(aws, result["report_key"])
    assert "raw/shop/_mapping.json" in report["file_detail"] and "unknown canonical columns" in report["file_detail"]


def test_a_dataset_too_short_to_backtest_is_skipped_with_the_reason(aws):
    sample = generate_sales(items=1, stores=1, periods=12, seed=9, invalid=False)
    aws.put_object(Bucket=BUCKET, Key="raw/new/a.csv", Body=sample.content)
    validated, featured, predicted = run_pipeline("raw/new/a.csv")
    assert validated["rows"]["clean"] == 12 and featured["shards_run"] == 1
    assert predicted["shards_skipped"] == 1 and predicted["series"] == 0 and predicted["metrics"] is None
    (skipped,) = read_json(__import__("boto3").client("s3"), predicted["run_report_key"])["shards_skipped"]
    assert skipped["shard"] == 0 and "not enough history" in skipped["reason"]
    assert all_items() == []


def test_a_garbage_file_is_quarantined_whole_not_crashed(aws):
    from data_validation.app import lambda_handler as validate

    aws.put_object(Bucket=BUCKET, Key="raw/sales/photo.csv", Body=bytes(range(256)) * 50)
    result = validate(object_created("raw/sales/photo.csv"), FakeContext())
    assert result["file_reason"] == "binary_content" and result["skipped"] is True
    assert result["rows"]["clean"] == 0 and result["rows"]["quarantined"] == result["rows"]["in"] > 0
    assert len(read_csv_gz(aws, result["quarantine_key"])) == result["rows"]["in"]
    # The backfill plans a run with only a dataset: no validated data is a skip, not a crash.
    skipped = plan({"dataset": "sales"})
    assert skipped["skipped"] is True and "no validated data" in skipped["reason"]


def test_re_uploading_a_fixed_file_replaces_its_outputs(aws):
    from data_validation.app import lambda_handler as validate

    bad = b"date,item_id,quantity\n2024-01-01,A,-1\n"
    good = b"date,item_id,quantity\n2024-01-01,A,1\n"
    aws.put_object(Bucket=BUCKET, Key="raw/sales/a.csv", Body=bad)
    first = validate(object_created("raw/sales/a.csv"), FakeContext())
    aws.put_object(Bucket=BUCKET, Key="raw/sales/a.csv", Body=good)
    second = validate(object_created("raw/sales/a.csv"), FakeContext())
    keys = {item["Key"] for item in aws.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert first["quarantine_key"] not in keys and "validated/sales/n=1/shard=00000/a.csv.parquet" in keys
    assert second["shards_written"] == [{"shard_count": 1, "shard": 0, "rows": 1}]


def test_objects_outside_raw_are_skipped_through_every_step(aws):
    from data_validation.app import lambda_handler as validate

    aws.put_object(Bucket=BUCKET, Key="reports/x.json", Body=b"{}")
    skipped = validate(object_created("reports/x.json"), FakeContext())
    assert skipped["skipped"] is True
    assert plan(skipped)["skipped"] is True  # the state machine's skip Choice stops before Plan; Plan skips too
    assert all_items() == [] and current("default") is None


@pytest.mark.parametrize("event", [{"dataset": "sales"}, {"dataset": "sales", "step": "predict"}, ["not", "an", "object"]])
def test_an_event_without_a_step_a_function_runs_is_refused_in_one_line(aws, event):
    """The whole-dataset runs without ``step`` are gone: the functions run only as state machine steps."""
    from feature_engineering.app import lambda_handler as build_features
    from item_prediction.steps.envelope import UnknownStep
    from predictions.app import lambda_handler as predict

    for handler, steps in ((build_features, "'plan', 'shard'"), (predict, "'shard', 'aggregate'")):
        with pytest.raises(UnknownStep, match=f"the event's 'step' must be one of {steps}, got ") as refused:
            handler(event, FakeContext())
        assert "\n" not in str(refused.value)
    table = __import__("boto3").resource("dynamodb").Table(TABLE)
    assert aws.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0 and table.scan()["Items"] == []  # no lease, nothing written


def test_weekly_data_is_recognised_and_forecast_in_weeks(aws, monkeypatch):
    monkeypatch.delenv("FORECAST_HORIZON")
    runtime.settings.cache_clear()
    sample = generate_sales(items=2, stores=2, periods=150, frequency="W", seed=12)
    aws.put_object(Bucket=BUCKET, Key="raw/weekly/sales.csv", Body=sample.content)
    validated, featured, predicted = run_pipeline("raw/weekly/sales.csv")
    assert validated["frequency"] == "W" and featured["frequency"] == "W"
    assert predicted["horizon"] == 8 and predicted["predictions_written"] == 4 * 8  # the weekly default
    import pandas as pd

    last = sample.frame.groupby(["item_id", "store_id"])["date"].max()
    for (item_id, store_id), last_day in last.items():  # 8 Mondays, starting the week after the series' last
        pk = table_keys.prediction_pk("weekly", predicted["run_id"], item_id, store_id)
        days = pd.to_datetime(sorted(item["date"] for item in all_items() if item["pk"] == pk))
        expected = pd.date_range(pd.Timestamp(last_day) + pd.Timedelta(weeks=1), periods=8, freq="W-MON")
        assert list(days) == list(expected), (item_id, store_id)


def test_two_datasets_with_the_same_item_ids_keep_both_forecasts(aws):
    from predictions.api import handler as api

    with open("events/api_get_predictions.json") as handle:
        event = json.load(handle)
    answers = {}
    for dataset, seed in (("north", 21), ("south", 22)):  # the same ITEM-000/STORE-00 ids, different sales
        sample = generate_sales(items=1, stores=1, periods=120, seed=seed)
        aws.put_object(Bucket=BUCKET, Key=f"raw/{dataset}/a.csv", Body=sample.content)
        predicted = run_pipeline(f"raw/{dataset}/a.csv")[2]
        answers[dataset] = predicted
    for dataset, predicted in answers.items():
        event.update(rawPath=f"/datasets/{dataset}/predictions/ITEM-000", queryStringParameters={"store": "STORE-00"})
        event["pathParameters"] = {"dataset": dataset, "item_id": "ITEM-000"}
        body = json.loads(api(event, FakeContext("PredictionsApi"))["body"])
        expected = read_csv_gz(aws, f"predictions/{dataset}/{predicted['run_id']}/shard=00000.csv.gz")
        assert body["forecast_id"] == predicted["run_id"] and current(dataset)["generation"] == predicted["run_id"]
        assert [row["prediction"] for row in body["predictions"]] == [round(float(value), 4) for value in expected["prediction"]]
    assert answers["north"]["run_id"] != answers["south"]["run_id"]
    assert len(all_items()) == 2 * 10


def test_a_step_that_fails_sends_its_input_and_error_to_the_dead_letter_queue(aws, monkeypatch):
    import predictions.app

    def broken(event, context):
        raise RuntimeError("disk full")

    sample = generate_sales(items=1, stores=1, periods=60, seed=13)
    aws.put_object(Bucket=BUCKET, Key="raw/sales/a.csv", Body=sample.content)
    monkeypatch.setattr(predictions.app, "lambda_handler", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        run_pipeline("raw/sales/a.csv")
    (letter,) = dead_letters()
    # A shard's failure fails the Distributed Map (no failure tolerated), its error in the cause.
    assert letter["error"]["Error"] == "States.ExceedToleratedFailureThreshold" and "disk full" in letter["error"]["Cause"]
    assert letter["dataset"] == "sales", "the failed step's input travels with its error"
    assert current("sales") is None


def test_a_run_failing_before_its_flip_leaves_the_previous_forecast_on_display(aws, monkeypatch):
    """Aggregate flips CURRENT last: a run that fails before (here the flip itself) has written its
    items, but the API goes on serving the previous generation."""
    from botocore.exceptions import ClientError
    from item_prediction.aws.storage import Storage

    aws.put_object(Bucket=BUCKET, Key="raw/sales/a.csv", Body=generate_sales(items=1, stores=1, periods=120, seed=31).content)
    first = run_pipeline("raw/sales/a.csv")[2]
    real = Storage.put_item

    def failing_flip(self, item):
        if item["sk"] == "CURRENT":
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "pointer write failed"}}, "PutItem")
        return real(self, item)

    monkeypatch.setattr(Storage, "put_item", failing_flip)
    aws.put_object(Bucket=BUCKET, Key="raw/sales/a.csv", Body=generate_sales(items=1, stores=1, periods=120, seed=32).content)
    with pytest.raises(ClientError, match="pointer write failed"):
        run_pipeline("raw/sales/a.csv")
    assert current("sales")["generation"] == first["run_id"]
    runs = Counter(item["forecast_id"] for item in all_items())
    assert runs[first["run_id"]] == 10 and len(runs) == 2 and sum(runs.values()) == 20  # the failed run's items, never shown
    from predictions.api import handler as api

    with open("events/api_get_predictions.json") as handle:
        event = json.load(handle)
    event.update(rawPath="/datasets/sales/predictions/ITEM-000", queryStringParameters={"store": "STORE-00"})
    event["pathParameters"] = {"dataset": "sales", "item_id": "ITEM-000"}
    body = json.loads(api(event, FakeContext("PredictionsApi"))["body"])
    assert body["forecast_id"] == first["run_id"] and len(body["predictions"]) == 10
