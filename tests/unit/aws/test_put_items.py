"""Storage.put_items: concurrent BatchWriteItem requests in DynamoDB's wire form, exactly what the
former path (the resource's ``Table.batch_writer`` of :func:`storage._decimals` items) wrote."""

from __future__ import annotations

import threading
from decimal import Decimal
from types import SimpleNamespace

import boto3
import pandas as pd
import pytest
from boto3.dynamodb.types import TypeSerializer
from item_prediction.aws import storage
from item_prediction.aws.storage import ItemsNotWritten, Storage, UnwritableValue
from item_prediction.steps import predict

from tests.conftest import create_predictions_table


def former_put_items(table_name: str, items) -> int:
    """The code put_items replaced, kept here as the reference of what lands."""
    count = 0
    with boto3.resource("dynamodb").Table(table_name).batch_writer(overwrite_by_pkeys=["pk", "sk"]) as batch:
        for item in items:
            batch.put_item(Item=storage._decimals(item))
            count += 1
    return count


def scan(table_name: str) -> list[dict]:
    found = boto3.resource("dynamodb").Table(table_name).scan(ConsistentRead=True)["Items"]
    return sorted(found, key=lambda item: (item["pk"], item["sk"]))


def series_items(count: int, run: str = "run-1") -> list[dict]:
    """Real series items (steps.predict) of ``count`` series, 3 days with quantiles."""
    dates = pd.date_range("2024-03-01", periods=3)
    frame = pd.DataFrame(
        [(f"I{i}", "S1", day, 1.23456 * i, 0.5 * i, 1.23456 * i, 2.0 * i) for i in range(count) for day in dates],
        columns=["item_id", "store_id", "date", "prediction", "p10", "p50", "p90"],
    )
    return predict.prediction_items(frame, "v1", "sales", run, 2_000_000_000)


VALUES = [
    "",
    "text é ✓",
    0,
    -7,
    10**37,
    True,
    False,
    None,
    1.5,
    0.1,
    -0.0,
    1e20,
    1e-7,
    123456789.123456789,
    2.0,
    Decimal("1.10"),
    Decimal("-3E+5"),
    [1.25, 2, "x", None, True],
    [[0.1, [2.5]], []],
    (1, "a"),
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_a_value_goes_out_as_the_resource_serializer_made_it(value):
    assert storage._wire(value, "a") == TypeSerializer().serialize(storage._decimal(value))


def test_every_item_lands_as_the_former_batch_writer_wrote_it_with_the_same_count(moto_aws):
    mixed = [
        {"pk": f"P{i}", "sk": "SHARD#1", "shard": i, "ratio": i / 7, "range": ["2024-03-01", "2024-03-14"], "note": None}
        for i in range(30)
    ]
    mixed.append({"pk": "P0", "sk": "SHARD#1", "flag": True, "values": [0.1, 2, Decimal("3.50")]})  # a key again
    again = [{**item, "model_version": "v2"} for item in series_items(3)]  # the first 3 series again: kept
    items = series_items(45) + mixed + again
    for name in ("former", "new"):
        create_predictions_table(name)
    assert Storage("unused", "new").put_items(iter(items)) == former_put_items("former", items) == len(items)
    landed = scan("new")
    assert landed == scan("former") and len(landed) == 45 + 30
    versions = {item["item_id"]: item["model_version"] for item in landed if "item_id" in item}
    assert versions == {f"I{i}": "v2" if i < 3 else "v1" for i in range(45)}
    assert next(item for item in landed if item["pk"] == "P0") == {**mixed[-1], "values": [Decimal("0.1"), 2, Decimal("3.50")]}


def test_of_items_sharing_a_key_the_last_is_written_and_no_request_holds_a_key_twice(moto_aws):
    create_predictions_table("t")
    client = RecordingClient(boto3.client("dynamodb"))
    items = [{"pk": f"P{i % 40}", "sk": "S", "version": i} for i in range(100)]  # 40 keys, each 2-3 times
    assert Storage("unused", "t", dynamodb_client=client).put_items(items) == 100
    last = {f"P{k}": 80 + k if k < 20 else 40 + k for k in range(40)}
    assert {item["pk"]: item["version"] for item in scan("t")} == last
    for requests in client.requests:
        keys = [(r["PutRequest"]["Item"]["pk"]["S"], r["PutRequest"]["Item"]["sk"]["S"]) for r in requests]
        assert 0 < len(keys) <= storage.BATCH_ITEMS and len(set(keys)) == len(keys)
    assert sum(map(len, client.requests)) == 40


def test_a_rerun_overwrites_and_never_duplicates(moto_aws):
    create_predictions_table("t")
    table = Storage("unused", "t")
    table.put_items(series_items(60))
    again = [{**item, "model_version": "v2"} for item in series_items(60)]
    assert table.put_items(again) == 60
    landed = scan("t")
    assert len(landed) == 60 and {item["model_version"] for item in landed} == {"v2"}


def test_batches_go_out_concurrently_at_most_writers_at_a_time(moto_aws):
    create_predictions_table("t")
    client = RecordingClient(boto3.client("dynamodb"), meet=True)
    assert Storage("unused", "t", dynamodb_client=client).put_items(series_items(10 * storage.BATCH_ITEMS)) == 250
    assert 2 <= client.most_in_flight <= storage.WRITERS and len(scan("t")) == 250


def test_unprocessed_items_are_sent_again_after_a_growing_wait_until_written(moto_aws, monkeypatch):
    create_predictions_table("t")
    waits = record_sleeps(monkeypatch)
    client = RecordingClient(boto3.client("dynamodb"), unprocessed=[10, 4, 1])  # left over by the first 3 calls
    assert Storage("unused", "t", dynamodb_client=client).put_items(series_items(20)) == 20
    assert [len(requests) for requests in client.requests] == [20, 10, 4, 1]
    assert waits == [storage.BACKOFF_SECONDS, 2 * storage.BACKOFF_SECONDS, 4 * storage.BACKOFF_SECONDS]
    assert [(item["pk"], item["sk"]) for item in scan("t")] == sorted((item["pk"], item["sk"]) for item in series_items(20))


def test_items_still_unprocessed_after_the_attempts_are_one_clear_error(moto_aws, monkeypatch):
    create_predictions_table("t")
    waits = record_sleeps(monkeypatch)
    client = RecordingClient(boto3.client("dynamodb"), unprocessed=[3] * 100)
    with pytest.raises(ItemsNotWritten) as refused:
        Storage("unused", "t", dynamodb_client=client).put_items(series_items(20))
    assert str(refused.value) == "3 item(s) still unprocessed by DynamoDB after 8 BatchWriteItem calls (throttled or failing)"
    assert len(client.requests) == storage.WRITE_ATTEMPTS and len(waits) == storage.WRITE_ATTEMPTS - 1
    assert waits == sorted(waits) and max(waits) == storage.BACKOFF_CAP_SECONDS
    assert len(scan("t")) == 17  # what was processed is written


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({"a": 1}, "attribute 'bad' is a dict; put_items writes str, int, float, Decimal, bool, None and lists"),
        ({1, 2}, "attribute 'bad' is a set; put_items writes str, int, float, Decimal, bool, None and lists"),
        (float("nan"), "attribute 'bad' is NaN; DynamoDB takes finite numbers only"),
        ([1.0, float("-inf")], "attribute 'bad' is -Infinity; DynamoDB takes finite numbers only"),
        (10**40 + 1, "attribute 'bad' is 10000000000000000000000000000000000000001: more than DynamoDB's 38 significant digits"),
    ],
    ids=["dict", "set", "nan", "inf-in-list", "41-digits"],
)
def test_a_value_it_does_not_write_is_refused_in_one_line_before_any_write(moto_aws, value, reason):
    create_predictions_table("t")
    items = [*series_items(30), {"pk": "P", "sk": "S", "bad": value}]
    with pytest.raises(UnwritableValue) as refused:
        Storage("unused", "t").put_items(items)
    assert str(refused.value) == reason and scan("t") == []


def test_no_items_make_no_request(moto_aws):
    client = RecordingClient(None)
    assert Storage("unused", "t", dynamodb_client=client).put_items([]) == 0 and client.requests == []


class RecordingClient:
    """A DynamoDB client's batch_write_item that records each call's requests; it can leave the
    last ``unprocessed[n]`` requests of its n-th call unwritten (as DynamoDB does when throttled),
    and hold each call until two are in flight at once (``meet``; at most 10 s, so that sequential
    calls fail the test instead of hanging it)."""

    def __init__(self, client, unprocessed=(), meet: bool = False) -> None:
        self.client, self.unprocessed, self.meet = client, list(unprocessed), meet
        self.together = threading.Event()
        self.requests: list[list[dict]] = []
        self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()

    def batch_write_item(self, RequestItems):  # noqa: N803 - botocore's parameter name
        ((table, requests),) = RequestItems.items()
        with self.lock:
            self.requests.append(requests)
            left = self.unprocessed.pop(0) if self.unprocessed else 0
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            if self.in_flight >= 2:
                self.together.set()
        try:
            if self.meet:
                self.together.wait(timeout=10)
            written, kept = requests[: len(requests) - left], requests[len(requests) - left :]
            if written:
                self.client.batch_write_item(RequestItems={table: written})
            return {"UnprocessedItems": {table: kept} if kept else {}}
        finally:
            with self.lock:
                self.in_flight -= 1


def record_sleeps(monkeypatch) -> list[float]:
    waits: list[float] = []
    monkeypatch.setattr(storage, "time", SimpleNamespace(sleep=waits.append))  # storage's waits only
    return waits
