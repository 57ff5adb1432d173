"""GET /datasets/{dataset}/report against moto: a presigned link to the current report, 400, 404, 503."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from botocore.exceptions import ClientError
from item_prediction.aws import table_keys

from .conftest import BUCKET, FakeContext

EVENT = json.loads((Path(__file__).resolve().parents[3] / "events" / "api_get_predictions.json").read_text())


def call(dataset: str = "sales", *, path_parameters: bool = True) -> tuple[int, dict, dict]:
    from predictions.api import handler

    event = copy.deepcopy(EVENT)
    path = f"/datasets/{dataset}/report"
    event.update(rawPath=path, pathParameters={"dataset": dataset} if path_parameters else None, queryStringParameters=None)
    event["requestContext"]["http"]["path"] = path
    event["routeKey"] = "GET /datasets/{dataset}/report"
    response = handler(event, FakeContext())
    return response["statusCode"], json.loads(response["body"]), response.get("headers") or {}


def flip(storage, dataset: str, run: str, report_key: str | None) -> None:
    pointer = {**table_keys.current_key(dataset), "forecast_id": run, "dataset": dataset}
    storage.put_item({**pointer, **({"report_key": report_key} if report_key else {})})


@pytest.mark.parametrize("path_parameters", [True, False])
def test_the_current_reports_presigned_link_opens_the_page(table, path_parameters):
    key = "reports/sales/run-2/report.html"
    table.put_bytes("reports/sales/run-1/report.html", b"<html>old</html>", "text/html")
    table.put_bytes(key, b"<html>new</html>", "text/html")
    flip(table, "sales", "run-2", key)
    status, body, _ = call(path_parameters=path_parameters)
    assert status == 200 and body["expires_in"] == 300 and body["forecast_id"] == "run-2"
    url = urlparse(body["url"])
    assert url.path.endswith(f"/{key}") or url.path == f"/{key}"
    assert f"{BUCKET}" in body["url"] and parse_qs(url.query)["X-Amz-Expires"] == ["300"]
    import requests  # moto (active in the fixture) answers the presigned GET as S3 would

    assert requests.get(body["url"], timeout=5).content == b"<html>new</html>"


def test_no_forecast_no_report_or_an_expired_page_is_a_404(table):
    status, body, _ = call("other")
    assert status == 404 and "has no current forecast" in body["message"]
    flip(table, "sales", "run-1", None)
    status, body, _ = call()
    assert status == 404 and "(run-1) has no report" in body["message"]
    flip(table, "sales", "run-2", "reports/sales/run-2/report.html")  # named, never written (or expired)
    status, body, _ = call()
    assert status == 404 and "no longer exists" in body["message"]


def test_a_bad_dataset_name_is_a_400(table):
    status, body, _ = call("bad$name")
    assert status == 400 and "not a dataset name" in body["message"]


def test_dynamodb_failing_is_a_503_to_retry(table, monkeypatch):
    def fail(*args, **kwargs):
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "GetItem")

    monkeypatch.setattr(type(table), "get_item", fail)
    status, body, headers = call()
    assert status == 503 and headers["Retry-After"] == "2"
