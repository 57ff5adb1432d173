"""Issue 13 through the sharded pipeline on moto (conftest.run_pipeline): the mapping's
known_in_advance columns reach the shard features, a plan file under ``raw/<ds>/plan/`` is skipped
by validation and read by the forecast (a refused one fails the run with one line), each
prediction carries P10/P50/P90 in DynamoDB, the CSV and the API, the run reports the dataset's
interval coverage, and a monthly export runs end to end, also incrementally."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from item_prediction.domain import schema
from item_prediction.domain.plan import PlanError
from lambda_build.accuracy_corpus import generate

from .conftest import BUCKET, all_items, csv_bytes, current, dead_letters, predictions_csv, read_json, run_pipeline

pytestmark = pytest.mark.usefixtures("single_threaded")
HORIZON = 10  # the aws fixture's FORECAST_HORIZON
KNOWN = {"known_in_advance": ["unit_price", "promotion"]}
WEEKLY = generate(frequency="W", series=6, periods=110, seed=7, stores=2)  # price changes and promotions


def upload(s3, key: str, body: bytes) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)


def future_plan(frame: pd.DataFrame) -> pd.DataFrame:
    """Every series' next HORIZON weeks at half its last price, on promotion."""
    last = frame.sort_values(schema.DATE).groupby([schema.ITEM, schema.STORE]).tail(1)
    end = pd.Timestamp(frame[schema.DATE].max())
    rows = [
        {
            schema.DATE: (end + pd.Timedelta(weeks=step)).strftime("%Y-%m-%d"),
            schema.ITEM: row[schema.ITEM],
            schema.STORE: row[schema.STORE],
            schema.PRICE: round(row[schema.PRICE] / 2, 2),
            schema.PROMOTION: 1,
        }
        for row in last.to_dict("records")
        for step in range(1, HORIZON + 1)
    ]
    return pd.DataFrame(rows)


def keys_under(s3, prefix: str) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]


def forecasts(dataset: str) -> dict[tuple[str, str, str], dict]:
    return {(i["item_id"], i["store_id"], i["date"]): i for i in all_items() if i["dataset"] == dataset}


def test_a_plan_file_is_not_validated_but_read_by_the_forecast(aws, monkeypatch):
    monkeypatch.setattr(schema, "SHARD_TARGET_ROWS", 300)  # several shards: each keeps its own plan rows
    for dataset in ("shop", "assumed"):
        upload(aws, f"raw/{dataset}/_mapping.json", json.dumps(KNOWN).encode())
    upload(aws, "raw/shop/plan/next-weeks.csv", csv_bytes(future_plan(WEEKLY)))
    validated, planned, aggregated = run_pipeline("raw/shop/plan/next-weeks.csv")
    assert validated["skipped"] and validated["reason"] == "a plan file, read at forecast time"
    assert planned is None and aggregated is None
    assert not keys_under(aws, "quarantine/") and not keys_under(aws, "reports/") and not keys_under(aws, "validated/")

    for dataset in ("shop", "assumed"):
        upload(aws, f"raw/{dataset}/sales.csv", csv_bytes(WEEKLY))
    shop, assumed = run_pipeline("raw/shop/sales.csv"), run_pipeline("raw/assumed/sales.csv")

    assert shop[1]["known_in_advance"] == ["unit_price", "promotion"] and shop[1]["shard_count"] > 1
    manifests = [key for key in keys_under(aws, "features/shop/") if key.endswith("manifest.json")]
    assert len(manifests) > 1
    for key in manifests:
        manifest = read_json(aws, key)
        assert manifest["known_in_advance"] == ["unit_price", "promotion"]
        assert {"unit_price", "promotion"} & set(manifest["features"])
    assert {k: shop[2][k] for k in ("plan", "plan_key")} == {"plan": "file", "plan_key": "raw/shop/plan/next-weeks.csv"}
    assert read_json(aws, shop[2]["run_report_key"])["plan"] == "file"
    assert {k: assumed[2][k] for k in ("plan", "plan_key")} == {"plan": "assumed_last_price_no_promotion", "plan_key": None}
    assert read_json(aws, "validated/shop/_dataset.json")["known_in_advance"] == ["unit_price", "promotion"]
    # Same data, same models: only the plan differs, and it moves the forecast.
    planned_items, assumed_items = forecasts("shop"), forecasts("assumed")
    assert planned_items.keys() == assumed_items.keys() and len(planned_items) == 6 * HORIZON
    moved = [key for key in planned_items if planned_items[key]["prediction"] != assumed_items[key]["prediction"]]
    assert len(moved) > len(planned_items) // 2


def test_a_refused_plan_fails_the_run_with_one_line_and_publishes_nothing(aws):
    upload(aws, "raw/bad/plan/next.csv", b"date,unit_price\n2025-01-06,2.5\n")  # no item_id column
    upload(aws, "raw/bad/sales.csv", csv_bytes(WEEKLY))
    with pytest.raises(PlanError) as refused:
        run_pipeline("raw/bad/sales.csv")
    message = str(refused.value)
    assert message == "plan file raw/bad/plan/next.csv refused (missing_columns): the plan file has no item_id column"
    assert "\n" not in message and current("bad") is None and not all_items()
    assert not keys_under(aws, "models/bad/")  # refused before any training
    assert "missing_columns" in json.dumps(dead_letters())


def test_each_prediction_carries_p10_p50_p90_and_the_run_its_coverage(aws):
    upload(aws, "raw/sales/sales.csv", csv_bytes(WEEKLY))
    _, _, aggregated = run_pipeline("raw/sales/sales.csv")
    model = aggregated["metrics"]["model"]
    sums = read_json(aws, "models/sales/latest.json")["metrics"]["sums"]
    assert (
        model["coverage_p10_p90"] == aggregated["metrics"]["coverage_p10_p90"] == round(sums["inside_p10_p90"] / sums["count"], 4)
    )
    assert 0.5 <= model["coverage_p10_p90"] <= 1.0
    items = all_items()
    assert items and all(float(i["p10"]) <= float(i["p50"]) <= float(i["p90"]) for i in items)
    assert all(i["p50"] == i["prediction"] for i in items)
    frame = predictions_csv(aws, aggregated)
    assert {"p10", "p50", "p90"} <= set(frame.columns) and len(frame) == len(items)

    from predictions.api import handler

    from ..conftest import FakeContext

    first = items[0]
    event = json.loads(open("events/api_get_predictions.json").read())
    path = f"/datasets/sales/predictions/{first['item_id']}"
    event.update(rawPath=path, pathParameters={"dataset": "sales", "item_id": first["item_id"]})
    event.update(queryStringParameters={"store": first["store_id"]})
    event["requestContext"]["http"]["path"] = path
    body = json.loads(handler(event, FakeContext())["body"])
    assert len(body["predictions"]) == HORIZON
    assert all(set(row) == {"date", "prediction", "p10", "p50", "p90"} for row in body["predictions"])
    assert body["predictions"][0]["p90"] == float(first["p90"])


def test_a_monthly_export_runs_through_the_shards_and_then_incrementally(aws, monkeypatch):
    monkeypatch.setattr(schema, "SHARD_TARGET_ROWS", 150)
    monthly = generate(frequency="M", series=8, periods=60, seed=5, start="2019-01-01", stores=2)
    dates = sorted(monthly[schema.DATE].unique())
    upload(aws, "raw/monthly/_mapping.json", json.dumps({"frequency": "M"}).encode())
    upload(aws, "raw/monthly/history.csv", csv_bytes(monthly[monthly[schema.DATE] < dates[-3]]))
    first = run_pipeline("raw/monthly/history.csv")
    assert first[1]["frequency"] == "M" and first[1]["shard_count"] > 1
    assert set(first[1]["modes"]) == {"train_and_predict", "predict"} and first[1]["modes"]["predict"] == 0
    assert first[2]["forecast_range"][0] == dates[-3] and first[2]["predictions_written"] == 8 * HORIZON
    assert first[2]["metrics"]["model"]["mae"] is not None

    upload(aws, "raw/monthly/latest.csv", csv_bytes(monthly[monthly[schema.DATE] >= dates[-3]]))
    second = run_pipeline("raw/monthly/latest.csv")
    assert second[1]["modes"]["predict"] == second[1]["shards_run"]  # three new months: within the horizon
    ran = read_json(aws, second[2]["run_report_key"])["shards_run"]
    assert ran and all(entry["mode"] == "predict" for entry in ran)
    assert second[2]["forecast_range"][0] == (pd.Timestamp(dates[-1]) + pd.DateOffset(months=1)).strftime("%Y-%m-%d")
