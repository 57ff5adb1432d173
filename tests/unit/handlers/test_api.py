"""The read API's handler against a moto table: current run only, pages, 400, 404 and 503 answers."""

from __future__ import annotations

import base64
import copy
import json
from datetime import date, timedelta
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from item_prediction.aws import series_item, table_keys

from .conftest import FakeContext

EVENT = json.loads((Path(__file__).resolve().parents[3] / "events" / "api_get_predictions.json").read_text())


def seed(
    storage, dataset: str, run: str, series: dict[tuple[str, str], float], *, days: int = 5, first: str = "2024-03-01"
) -> None:
    """A run's item for each (item, store) series (``sk = SERIES``): ``days`` dates from ``first``,
    prediction = base + day index, in date order (``series_item.encode``)."""
    start = date.fromisoformat(first)
    dates = [(start + timedelta(days=offset)).isoformat() for offset in range(days)]
    storage.put_items(
        {
            **table_keys.series_key(dataset, run, item, store),
            "item_id": item,
            "store_id": store,
            **series_item.encode(dates, {"prediction": [base + offset for offset in range(days)]}),
            "model_version": run.split("-")[0],
            "forecast_id": run,
            "dataset": dataset,
        }
        for (item, store), base in series.items()
    )


def flip(storage, dataset: str, run: str) -> None:
    storage.put_item(
        {**table_keys.current_key(dataset), "forecast_id": run, "model_version": run.split("-")[0], "dataset": dataset}
    )


def call(
    dataset: str = "sales", item: str = "ITEM-000", params: dict | None = None, *, path_parameters: bool = True
) -> tuple[int, dict, dict]:
    from predictions.api import handler

    event = copy.deepcopy(EVENT)
    path = f"/datasets/{dataset}/predictions/{item}"
    event.update(
        rawPath=path,
        pathParameters={"dataset": dataset, "item_id": item} if path_parameters else None,
        queryStringParameters=params,
    )
    event["requestContext"]["http"]["path"] = path
    response = handler(event, FakeContext())
    return response["statusCode"], json.loads(response["body"]), response.get("headers") or {}


def test_only_the_current_run_is_shown(table):
    seed(table, "sales", "old-11111111", {("ITEM-000", "STORE-00"): 100.0})
    seed(table, "sales", "new-22222222", {("ITEM-000", "STORE-00"): 1.0}, first="2024-03-03")
    flip(table, "sales", "new-22222222")
    status, body, _ = call(params={"store": "STORE-00"})
    assert status == 200
    assert body["forecast_id"] == "new-22222222" and body["model_version"] == "new" and body["next_token"] is None
    assert body["predictions"] == [{"date": f"2024-03-0{3 + n}", "prediction": 1.0 + n} for n in range(5)]
    assert {"dataset": "sales", "item_id": "ITEM-000", "store_id": "STORE-00"}.items() <= body.items()


def test_dates_are_inclusive_bounds(table):
    seed(table, "sales", "run-1", {("ITEM-000", "STORE-00"): 0.0})
    flip(table, "sales", "run-1")
    status, body, _ = call(params={"store": "STORE-00", "from": "2024-03-02", "to": "2024-03-04"})
    assert status == 200 and [row["date"] for row in body["predictions"]] == ["2024-03-02", "2024-03-03", "2024-03-04"]
    status, body, _ = call(params={"store": "STORE-00", "from": "1999-01-01", "to": "1999-01-31"})
    assert status == 200 and body["predictions"] == [] and body["next_token"] is None


def test_pages_follow_next_token_to_the_end(table):
    seed(table, "sales", "run-1", {("ITEM-000", "_"): 0.0}, days=7)
    flip(table, "sales", "run-1")
    dates, token, pages = [], None, 0
    while True:
        status, body, _ = call(params={"limit": "3", **({"next_token": token} if token else {})})
        assert status == 200 and len(body["predictions"]) <= 3
        dates += [row["date"] for row in body["predictions"]]
        pages, token = pages + 1, body["next_token"]
        if token is None:
            break
    assert pages == 3 and dates == [(date(2024, 3, 1) + timedelta(days=n)).isoformat() for n in range(7)]


def test_an_exact_last_page_gives_no_token(table):
    seed(table, "sales", "run-1", {("ITEM-000", "_"): 0.0}, days=6)
    flip(table, "sales", "run-1")
    first = call(params={"limit": "3"})[1]
    second = call(params={"limit": "3", "next_token": first["next_token"]})[1]
    assert len(second["predictions"]) == 3 and second["next_token"] is None


def test_a_token_from_a_replaced_forecast_is_refused(table):
    seed(table, "sales", "run-1", {("ITEM-000", "_"): 0.0})
    flip(table, "sales", "run-1")
    token = call(params={"limit": "2"})[1]["next_token"]
    seed(table, "sales", "run-2", {("ITEM-000", "_"): 0.0})
    flip(table, "sales", "run-2")
    status, body, _ = call(params={"limit": "2", "next_token": token})
    assert status == 400 and "forecast since replaced" in body["message"]


def test_two_datasets_with_the_same_ids_keep_their_own_forecasts(table):
    seed(table, "shop_a", "a-1", {("1001", "_"): 10.0})
    seed(table, "shop-b", "b-1", {("1001", "_"): 500.0})
    flip(table, "shop_a", "a-1")
    flip(table, "shop-b", "b-1")
    a, b = call("shop_a", "1001")[1], call("shop-b", "1001")[1]
    assert a["predictions"][0]["prediction"] == 10.0 and b["predictions"][0]["prediction"] == 500.0
    assert (a["forecast_id"], b["forecast_id"]) == ("a-1", "b-1")


def test_ids_with_the_separator_are_served_as_they_are(table):
    seed(table, "sales", "run-1", {("A#STORE#B", "_"): 1.0, ("A", "B#STORE#_"): 2.0, ("50%", "_"): 3.0})
    flip(table, "sales", "run-1")
    assert call(item="A#STORE#B")[1]["predictions"][0]["prediction"] == 1.0
    assert call(item="A", params={"store": "B#STORE#_"})[1]["predictions"][0]["prediction"] == 2.0
    status, body, _ = call(item="50%")
    assert status == 200 and body["item_id"] == "50%" and body["predictions"][0]["prediction"] == 3.0


def test_an_event_without_path_parameters_is_read_from_its_path(table):
    seed(table, "sales", "run-1", {("ITEM-000", "_"): 4.0})
    flip(table, "sales", "run-1")
    status, body, _ = call(path_parameters=False)
    assert status == 200 and (body["dataset"], body["item_id"]) == ("sales", "ITEM-000")
    assert call("sales", "ITEM-000/extra", path_parameters=False)[0] == 404  # not a route of this API


@pytest.mark.parametrize(
    ("dataset", "item", "params", "message"),
    [
        ("a b", "ITEM-000", None, "not a dataset name"),
        ("sales", "I" * 129, None, "item_id is required"),
        ("sales", "ITEM-000", {"store": "S" * 129}, "'store' has at most 128"),
        ("sales", "ITEM-000", {"from": "yesterday"}, "'from' must be a date"),
        ("sales", "ITEM-000", {"from": "2024-01-01", "to": "2025-06-01"}, "at most 366 days"),
        ("sales", "ITEM-000", {"limit": "1000"}, "'limit' must be"),
        ("sales", "ITEM-000", {"next_token": "garbage"}, "'next_token' is not one"),
        ("sales", "ITEM-000", {"shop": "x"}, "unknown query parameters"),
    ],
)
def test_bad_requests_are_400_with_the_reason(table, dataset, item, params, message):
    flip(table, "sales", "run-1")
    status, body, _ = call(dataset, item, params)
    assert status == 400 and message in body["message"]


def test_a_dataset_without_a_current_forecast_is_404(table):
    seed(table, "sales", "run-1", {("ITEM-000", "_"): 0.0})  # items written, pointer never flipped
    status, body, _ = call()
    assert status == 404 and "has no current forecast" in body["message"]


def test_a_series_the_forecast_lacks_is_404_with_a_hint(table):
    seed(table, "sales", "run-1", {("ITEM-000", "STORE-00"): 0.0})
    flip(table, "sales", "run-1")
    status, body, _ = call()  # no store: the series without one, which this item has not
    assert status == 404 and "no predictions for item 'ITEM-000'" in body["message"] and "?store=" in body["message"]
    assert call(item="OTHER", params={"store": "STORE-00"})[0] == 404


@pytest.mark.parametrize(
    "error",
    [
        ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "GetItem"),
        EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
    ],
)
def test_a_dynamodb_failure_is_503_with_retry_after(table, monkeypatch, error):
    def failing(*args, **kwargs):
        raise error

    monkeypatch.setattr(type(table), "get_item", failing)
    status, body, headers = call()
    assert status == 503 and int(headers["Retry-After"]) > 0 and "retry" in body["message"]


def test_a_failing_read_of_the_series_item_is_503_too(table, monkeypatch):
    seed(table, "sales", "run-1", {("ITEM-000", "_"): 0.0})
    flip(table, "sales", "run-1")
    read = type(table).get_item

    def failing(self, key):
        if key["sk"] == table_keys.SERIES_SK:  # CURRENT is read, the series' item fails
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "boom"}}, "GetItem")
        return read(self, key)

    monkeypatch.setattr(type(table), "get_item", failing)
    status, body, headers = call()
    assert status == 503 and "Retry-After" in headers and "InternalServerError" in body["message"]


def test_a_table_dynamodb_cannot_find_is_503_not_500(table):
    boto3.client("dynamodb").delete_table(TableName=table.table_name)  # moto answers ResourceNotFoundException
    status, body, headers = call()
    assert status == 503 and "ResourceNotFoundException" in body["message"] and headers["Retry-After"] == "2"


def test_reads_are_strongly_consistent(table):
    """A flip just made, and the items written before it, are what the next request sees: two
    strongly consistent GetItems, no Query."""
    seed(table, "sales", "run-1", {("ITEM-000", "_"): 0.0})
    flip(table, "sales", "run-1")
    sent = []
    events = table.table.meta.client.meta.events
    events.register("provide-client-params.dynamodb.*", lambda params, model, **_: sent.append((model.name, params)))
    assert call()[0] == 200
    assert [name for name, _ in sent] == ["GetItem", "GetItem"]  # CURRENT, then the series' one item
    assert sent[1][1]["Key"] == table_keys.series_key("sales", "run-1", "ITEM-000", "_")
    assert all(params.get("ConsistentRead") is True for _, params in sent)


def publish_generation(storage, dataset: str, generation: str, count: int, forecasts: dict[int, str]) -> None:
    """A sharded generation: one pointer per shard (shard -> the forecast holding its series), then CURRENT."""
    storage.put_items(
        {**table_keys.shard_pointer_key(dataset, generation, shard), "forecast_id": run, "model_version": f"m{shard}"}
        for shard, run in forecasts.items()
    )
    storage.put_item({**table_keys.current_key(dataset), "generation": generation, "shard_count": count, "dataset": dataset})


def test_a_sharded_generation_serves_each_series_from_its_shards_forecast(table):
    """CURRENT names the generation; the series' shard's pointer names the forecast: an untouched
    shard's older forecast and a re-run shard's new one are both on display."""
    series = {(f"ITEM-{n:03d}", "S1"): float(n) for n in range(12)}
    shard_of = {key: table_keys.series_shard(key[0], key[1], 4) for key in series}
    assert len(set(shard_of.values())) > 1
    for shard in set(shard_of.values()):
        run = "old-run" if shard % 2 else "new-run"
        seed(table, "sales", run, {key: base for key, base in series.items() if shard_of[key] == shard})
    seed(table, "sales", "stale-run", series)  # items of a generation no pointer names any more
    publish_generation(table, "sales", "gen-2", 4, {s: "old-run" if s % 2 else "new-run" for s in range(4)})
    for (item, store), base in series.items():
        status, body, _ = call(item=item, params={"store": store})
        assert status == 200, body
        assert body["forecast_id"] == ("old-run" if shard_of[(item, store)] % 2 else "new-run")
        assert body["model_version"] == f"m{shard_of[(item, store)]}"
        assert body["predictions"][0]["prediction"] == base


def test_a_shard_without_a_pointer_in_the_generation_is_404(table):
    seed(table, "sales", "run", {("ITEM-000", "S1"): 1.0})
    shard = table_keys.series_shard("ITEM-000", "S1", 2)
    publish_generation(table, "sales", "gen-1", 2, {1 - shard: "run"})
    status, body, _ = call(item="ITEM-000", params={"store": "S1"})
    assert status == 404 and "no predictions for item 'ITEM-000'" in body["message"]


def test_p10_p50_p90_are_served_when_the_forecast_stored_them(table):
    import pandas as pd
    from item_prediction.steps import predict

    forecast = pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-03-01", "2024-03-02"]),
            "item_id": ["ITEM-000", "ITEM-000"],
            "store_id": ["STORE-00", "STORE-00"],
            "prediction": [5.123456, 6.0],
            "p10": [2.0, 3.33333333],
            "p50": [5.123456, 6.0],
            "p90": [9.5, 10.0],
        }
    )
    table.put_items(predict.prediction_items(forecast, "v1", "sales", "run-1", 2_000_000_000))
    table.put_items(predict.prediction_items(forecast.drop(columns=["p10", "p50", "p90"]), "v1", "plain", "run-1", 1))
    flip(table, "sales", "run-1")
    flip(table, "plain", "run-1")
    status, body, _ = call(params={"store": "STORE-00"})
    assert status == 200 and body["predictions"] == [
        {"date": "2024-03-01", "prediction": 5.1235, "p10": 2.0, "p50": 5.1235, "p90": 9.5},
        {"date": "2024-03-02", "prediction": 6.0, "p10": 3.3333, "p50": 6.0, "p90": 10.0},
    ]
    status, body, _ = call(dataset="plain", params={"store": "STORE-00"})  # a forecast without intervals
    assert status == 200 and body["predictions"][0] == {"date": "2024-03-01", "prediction": 5.1235}


def test_an_item_written_in_the_earlier_list_layout_is_served_as_before(table):
    """An item an earlier version wrote (lists of numbers, live until its TTL) answers the same contract."""
    key = table_keys.series_key("sales", "run-1", "ITEM-000", "_")
    old = {"dates": ["2024-03-01", "2024-03-02"], "prediction": [1.5, 2.0], "p50": [1.5, 2.0]}
    old |= {"p10": [1.0, 1.0], "p90": [3.0, 4.0]}
    table.put_items([{**key, "item_id": "ITEM-000", "store_id": "_", "forecast_id": "run-1", "dataset": "sales", **old}])
    flip(table, "sales", "run-1")
    status, body, _ = call(params={"limit": "1"})
    assert status == 200
    assert body["predictions"] == [{"date": "2024-03-01", "prediction": 1.5, "p10": 1.0, "p50": 1.5, "p90": 3.0}]
    assert decoded(body["next_token"]) == {"pk": key["pk"], "sk": "DATE#2024-03-01"}


def test_an_item_in_a_layout_this_version_cannot_read_is_a_500_that_says_so(table):
    seed(table, "sales", "run-1", {("ITEM-000", "_"): 0.0})
    key = table_keys.series_key("sales", "run-1", "ITEM-000", "_")
    table.table.update_item(Key=key, UpdateExpression="SET forecast_format = :f", ExpressionAttributeValues={":f": 2})
    flip(table, "sales", "run-1")
    status, body, _ = call()
    assert status == 500 and body["message"] == "a series item has forecast_format 2; this code reads 1 only"


def decoded(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))


def test_pages_of_one_series_item_within_from_and_to(table):
    """``from``/``to`` filter the item's dates, ``limit`` pages them, the token names the last date returned."""
    seed(table, "sales", "run-1", {("ITEM-000", "_"): 0.0}, days=10)
    flip(table, "sales", "run-1")
    asked = {"from": "2024-03-03", "to": "2024-03-07", "limit": "2"}
    first = call(params=asked)[1]
    assert [row["date"] for row in first["predictions"]] == ["2024-03-03", "2024-03-04"]
    assert decoded(first["next_token"]) == {
        "pk": table_keys.prediction_pk("sales", "run-1", "ITEM-000", "_"),
        "sk": "DATE#2024-03-04",
    }
    second = call(params={**asked, "next_token": first["next_token"]})[1]
    third = call(params={**asked, "next_token": second["next_token"]})[1]
    assert [row["date"] for row in second["predictions"]] == ["2024-03-05", "2024-03-06"]
    assert [row["prediction"] for row in third["predictions"]] == [6.0] and third["next_token"] is None


def test_a_token_for_another_series_or_outside_the_dates_asked_is_refused(table):
    seed(table, "sales", "run-1", {("ITEM-000", "_"): 0.0, ("ITEM-001", "_"): 5.0}, days=6)
    flip(table, "sales", "run-1")
    token = call(params={"limit": "2"})[1]["next_token"]  # ITEM-000, ends at 2024-03-02
    status, body, _ = call(item="ITEM-001", params={"limit": "2", "next_token": token})
    assert status == 400 and "belongs to another request" in body["message"]
    status, body, _ = call(params={"from": "2024-03-04", "limit": "2", "next_token": token})
    assert status == 400 and "belongs to another request" in body["message"]
    assert call(params={"limit": "2", "next_token": token})[0] == 200  # the request it continues


def test_dates_outside_the_forecast_are_an_empty_page_an_unknown_series_is_404(table):
    seed(table, "sales", "run-1", {("ITEM-000", "STORE-00"): 0.0})
    flip(table, "sales", "run-1")
    outside = {"store": "STORE-00", "from": "2025-01-01", "to": "2025-01-31"}
    status, body, _ = call(params=outside)
    assert status == 200 and body["predictions"] == [] and body["next_token"] is None
    status, body, _ = call(item="ITEM-999", params=outside)
    assert status == 404 and body["message"] == "no predictions for item 'ITEM-999' in store 'STORE-00' in dataset 'sales'"
