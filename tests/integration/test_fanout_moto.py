"""The fan-out on moto through the real pipeline definition (conftest.run_pipeline): a dataset in
several shards, incremental uploads re-running only the shards they touch, duplicate uploads,
two uploads at once, and a retrain request."""

from __future__ import annotations

import re
import threading
from datetime import UTC, date, datetime

import boto3
import pytest
from item_prediction.aws import ledger, table_keys
from item_prediction.domain import schema
from lambda_build.sample_data import generate_sales

from .conftest import BUCKET, TABLE, all_items, csv_bytes, current, read_json, run_pipeline

pytestmark = pytest.mark.usefixtures("single_threaded")
SALES = generate_sales(items=8, stores=2, periods=130, seed=5, invalid=False).frame  # 16 series, about 2,000 rows


def upload(s3, key: str, frame) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=csv_bytes(frame))


def first_days(frame, cut: str = "2023-05-01"):
    return frame[frame["date"] < cut]


def generation(dataset: str) -> dict[int, str]:
    """The current generation's pointers: shard -> forecast id."""
    pointer = current(dataset)
    table = boto3.resource("dynamodb").Table(TABLE)
    found = {}
    for shard in range(int(pointer["shard_count"])):
        item = table.get_item(Key=table_keys.shard_pointer_key(dataset, pointer["generation"], shard)).get("Item")
        if item:
            found[shard] = item["forecast_id"]
    return found


def shown(dataset: str) -> dict[tuple[str, str], list[float]]:
    """Every series' predictions as the read path shows them (CURRENT -> shard -> pointer -> items)."""
    pointers, count = generation(dataset), int(current(dataset)["shard_count"])
    found: dict[tuple[str, str], list[float]] = {}
    for item in all_items():
        if item["dataset"] != dataset:
            continue
        shard = table_keys.series_shard(item["item_id"], item["store_id"], count)
        if pointers.get(shard) == item["forecast_id"]:
            found.setdefault((item["item_id"], item["store_id"]), []).append(float(item["prediction"]))
    return found


def page_of(s3, dataset: str) -> str:
    """The forecast report CURRENT names."""
    return s3.get_object(Bucket=BUCKET, Key=current(dataset)["report_key"])["Body"].read().decode()


def chart_titles(page: str) -> list[str]:
    return re.findall(r'"title":\{"text":"([^"]*)"', page)


def test_a_dataset_in_several_shards_predicts_what_one_shard_does(aws, monkeypatch):
    upload(aws, "raw/one/sales.csv", first_days(SALES))
    single = run_pipeline("raw/one/sales.csv")
    monkeypatch.setattr(schema, "SHARD_TARGET_ROWS", 500)
    upload(aws, "raw/many/sales.csv", first_days(SALES))
    many = run_pipeline("raw/many/sales.csv")

    assert single[1]["shard_count"] == 1 and many[0]["shard_count"] == many[1]["shard_count"] == 4
    assert many.shards_run("FeatureEngineeringFunction") == many.shards_run() == [0, 1, 2, 3]
    assert many[2]["predictions_written"] == single[2]["predictions_written"] == 16 * 10
    assert set(shown("many")) == set(shown("one")) and len(shown("many")) == 16
    assert all(len(values) == 10 for values in shown("many").values())
    # The dataset's metrics are exactly the sum of the shards' backtests.
    shards = read_json(aws, "models/many/latest.json")["shards"]
    sums = [read_json(aws, f"models/many/shard={s:05d}/latest.json")["metrics"]["sums"] for s in range(4)]
    assert [entry["sums"] for entry in shards.values()] == sums
    total = {name: sum(part[name] for part in sums) for name in ("abs_error", "count")}
    assert many[2]["metrics"]["model"]["mae"] == round(total["abs_error"] / total["count"], 6)
    assert read_json(aws, "validated/many/_dataset.json")["shard_count"] == 4
    # The report merged from the four shards' slices charts the same largest series as the one-shard run's.
    assert [entry["report_slice"] for entry in shards.values()] == [
        f"runs/many/{many[2]['run_id']}/report/shard={s:05d}.json" for s in range(4)
    ]
    assert many[2]["report_key"] == current("many")["report_key"] == f"reports/many/{many[2]['run_id']}/report.html"
    titles = chart_titles(page_of(aws, "many"))
    assert titles[:7] == chart_titles(page_of(aws, "one"))[:7] and len(titles) == 13, "whole dataset, 6 largest, 6 worst"


def test_an_upload_for_one_series_re_runs_only_its_shard_and_keeps_the_others(aws, monkeypatch):
    monkeypatch.setattr(schema, "SHARD_TARGET_ROWS", 500)
    upload(aws, "raw/sales/history.csv", first_days(SALES))
    first = run_pipeline("raw/sales/history.csv")
    before = shown("sales")
    series = SALES[(SALES["item_id"] == "ITEM-003") & (SALES["store_id"] == "STORE-01")]
    week = series[(series["date"] >= "2023-05-01") & (series["date"] < "2023-05-08")]
    upload(aws, "raw/sales/week.csv", week)
    second = run_pipeline("raw/sales/week.csv")

    shard = table_keys.series_shard("ITEM-003", "STORE-01", 4)
    assert second[1]["shards_run"] == 1 and second[1]["modes"] == {"train_and_predict": 0, "predict": 1}
    assert second.shards_run("FeatureEngineeringFunction") == second.shards_run() == [shard]
    pointers = generation("sales")
    assert pointers[shard] == second[2]["run_id"]
    assert {s: run for s, run in pointers.items() if s != shard} == dict.fromkeys(set(range(4)) - {shard}, first[2]["run_id"])
    after = shown("sales")
    assert set(after) == set(before)
    untouched = [key for key in before if table_keys.series_shard(*key, 4) != shard]
    assert untouched and all(after[key] == before[key] for key in untouched)
    features = read_json(aws, f"features/sales/shard={shard:05d}/manifest.json")
    assert features["since"] is not None and features["date_range"][0] >= features["since"]  # the recent window only
    # The report: the re-run shard's new slice (no backtest: it predicted), the others' from the first run.
    slices = {int(name): entry["report_slice"] for name, entry in read_json(aws, "models/sales/latest.json")["shards"].items()}
    assert slices[shard] == f"runs/sales/{second[2]['run_id']}/report/shard={shard:05d}.json"
    days = [row[0] for row in read_json(aws, slices[shard])["total_history"]["rows"]]
    assert min(days) < features["since"] <= "2023-05-01" <= max(days), "its history reaches before the features' window"
    assert all(key.startswith(f"runs/sales/{first[2]['run_id']}/") for s, key in slices.items() if s != shard)
    page = page_of(aws, "sales")
    assert current("sales")["report_key"] == second[2]["report_key"] != first[2]["report_key"]
    assert "1 of 4 shards forecast with their latest model" in page
    charted = [tuple(title.split(" @ ")) for title in chart_titles(page)[1:]]
    assert len({table_keys.series_shard(*key, 4) for key in charted} - {shard}) >= 2, "untouched shards' series charted"


def test_generation_pointers_expire_with_the_predictions_they_name(aws, monkeypatch):
    """Every generation's pointers carry the table's TTL attribute: a superseded generation's go
    with its items (the table does not grow by N pointers per run for ever), and no pointer of the
    current generation expires before the items it names."""
    monkeypatch.setattr(schema, "SHARD_TARGET_ROWS", 500)
    upload(aws, "raw/sales/history.csv", first_days(SALES))
    first = run_pipeline("raw/sales/history.csv")
    series = SALES[(SALES["item_id"] == "ITEM-003") & (SALES["store_id"] == "STORE-01")]
    upload(aws, "raw/sales/week.csv", series[(series["date"] >= "2023-05-01") & (series["date"] < "2023-05-08")])
    second = run_pipeline("raw/sales/week.csv")

    table = boto3.resource("dynamodb").Table(TABLE)
    pointers = [item for item in table.scan()["Items"] if item["sk"].startswith("SHARD#")]
    items_expiry: dict[str, int] = {}
    for item in all_items():
        items_expiry[item["forecast_id"]] = max(items_expiry.get(item["forecast_id"], 0), int(item["expires_at"]))
    generations = {item["pk"].rsplit("#", 1)[1] for item in pointers}
    assert generations == {first[2]["run_id"], second[2]["run_id"]} and len(pointers) == 8
    assert all("expires_at" in pointer for pointer in pointers), "every pointer has a TTL"
    for pointer in pointers:
        expiry, last = int(pointer["expires_at"]), pointer["forecast_range"][1]
        assert expiry >= items_expiry[pointer["forecast_id"]], "a pointer outlives the items it names"
        assert expiry == table_keys.expires_at(date.fromisoformat(last), datetime.now(UTC).date())
    kept = [p for p in pointers if p["pk"].endswith(second[2]["run_id"]) and p["forecast_id"] == first[2]["run_id"]]
    assert len(kept) == 3, "the untouched shards' pointers of the new generation name the first run's items"


def test_the_same_file_again_or_the_same_event_twice_changes_nothing(aws):
    aws.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})  # as deployed
    upload(aws, "raw/sales/a.csv", first_days(SALES))
    first = run_pipeline("raw/sales/a.csv")
    items, pointer = all_items(), current("sales")

    upload(aws, "raw/sales/a.csv", first_days(SALES))  # the same bytes: a new version of the key
    again = run_pipeline("raw/sales/a.csv")
    assert again[1]["skipped"] is True and "nothing changed" in again[1]["reason"] and again[2] is None
    version = aws.head_object(Bucket=BUCKET, Key="raw/sales/a.csv")["VersionId"]
    duplicate = run_pipeline("raw/sales/a.csv", version)  # S3 and EventBridge deliver at least once
    assert duplicate[0]["skipped"] is True and duplicate[1] is None
    assert all_items() == items and current("sales") == pointer and first[2]["run_id"] == pointer["generation"]
    assert not again.shards_run() and not duplicate.shards_run()


def test_two_uploads_at_once_both_land(aws):
    """The second run waits on the first's lease; its Plan then sees both files' parts and runs
    the shard the first run read before the second file's rows arrived."""
    upload(aws, "raw/sales/north.csv", first_days(SALES[SALES["store_id"] == "STORE-00"]))
    upload(aws, "raw/sales/south.csv", first_days(SALES[SALES["store_id"] == "STORE-01"]))
    first_done, waits, second = threading.Event(), [], {}

    def wait_for_the_first(seconds):
        waits.append(seconds)
        assert first_done.wait(120)

    def start_the_second():
        second["run"] = run_pipeline("raw/sales/south.csv", sleep=wait_for_the_first)

    thread = threading.Thread(target=start_the_second)
    import item_prediction.steps.plan as plan_module

    original = plan_module.plan

    def plan_then_start_the_other(*args, **kwargs):  # the first run's Plan has listed its parts
        result = original(*args, **kwargs)
        if not thread.is_alive() and "run" not in second:
            thread.start()
            while not waits:  # the second upload is validated and its Plan meets the lease
                assert thread.is_alive()
                thread.join(0.05)
        return result

    plan_module.plan = plan_then_start_the_other
    try:
        first = run_pipeline("raw/sales/north.csv")
    finally:
        plan_module.plan = original
        first_done.set()
        thread.join(180)
    later = second["run"]
    assert waits, "the second run's Plan met the first run's lease and waited"
    # The first run's Plan listed the north file's part only (its features may already read both);
    # the second's lists both, so it runs the shard again: the result holds both files' rows.
    signed = [read_json(aws, run[1]["plan_key"])["signatures"]["0"] for run in (first, later)]
    assert signed[0] != signed[1] and later[1]["shards_run"] == 1 and later[2]["series"] == 16
    assert {store for _, store in shown("sales")} == {"STORE-00", "STORE-01"} and len(shown("sales")) == 16
    assert boto3.resource("dynamodb").Table(TABLE).get_item(Key={"pk": "DS#sales", "sk": ledger.LEASE_SK}).get("Item") is None


def test_a_retrain_request_retrains_every_shard(aws, monkeypatch):
    monkeypatch.setattr(schema, "SHARD_TARGET_ROWS", 500)
    upload(aws, "raw/sales/a.csv", first_days(SALES))
    run_pipeline("raw/sales/a.csv")
    upload(aws, "raw/sales/b.csv", SALES[(SALES["date"] >= "2023-05-01") & (SALES["date"] < "2023-05-03")])
    plain = run_pipeline("raw/sales/b.csv")
    assert plain[1]["modes"]["train_and_predict"] == 0
    upload(aws, "raw/sales/c.csv", SALES[(SALES["date"] >= "2023-05-03") & (SALES["date"] < "2023-05-05")])
    retrained = run_pipeline("raw/sales/c.csv", extra={"mode": "retrain"})
    assert retrained[1]["modes"] == {"train_and_predict": 4, "predict": 0} and retrained.shards_run() == [0, 1, 2, 3]
    plan = read_json(aws, retrained[1]["plan_key"])
    assert {entry["reason"] for entry in plan["shards"].values()} == {"retrain requested"}
    assert all(read_json(aws, f"models/sales/shard={s:05d}/latest.json")["data_end"] == "2023-05-04" for s in range(4))


def test_an_unknown_mode_is_refused_in_one_line_and_the_next_run_goes_through(aws):
    upload(aws, "raw/sales/a.csv", first_days(SALES))
    with pytest.raises(ValueError, match="^mode must be 'retrain' \\(retrain every shard\\) or absent, got 'guess'$"):
        run_pipeline("raw/sales/a.csv", extra={"mode": "guess"})
    assert current("sales") is None  # nothing published
    assert run_pipeline("raw/sales/a.csv")[2]["run_id"] == current("sales")["generation"]  # the lease was given back


def test_the_backfill_validates_every_file_then_fans_out_once(aws, monkeypatch):
    from lambda_build import template as templatemod
    from lambda_build.offline import asl, definitions
    from lambda_build.offline.services import aws_services

    from .conftest import _in_process, _physical_ids

    monkeypatch.setattr(schema, "SHARD_TARGET_ROWS", 500)
    upload(aws, "raw/bf/north.csv", first_days(SALES[SALES["store_id"] == "STORE-00"]))
    upload(aws, "raw/bf/south.csv", first_days(SALES[SALES["store_id"] == "STORE-01"]))
    template = templatemod.load_template()
    definition = definitions.load(template, "BackfillStateMachine", _physical_ids(template), {"ShardConcurrency": "1"})
    results, calls = {}, []
    output = asl.run(
        definition,
        {"prefix": "raw/bf/", "dataset": "bf"},
        invoke=_in_process(template, results, [], calls),
        services=aws_services(),
        sleep=lambda seconds: None,
    )
    assert [step for function, step, _ in calls if function == "DataValidationFunction"] == [None, None]
    assert output["run_id"] == current("bf")["generation"] and output["series"] == 16
    assert results[("FeatureEngineeringFunction", "plan")]["lease_owner"] == "backfill#bf"
    assert len(shown("bf")) == 16
