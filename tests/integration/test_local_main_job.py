"""The main job end to end, offline: emulator, template-created stack, local runner, built layers."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import boto3
import pytest

from ..conftest import REPO_ROOT

pytestmark = [pytest.mark.layers, pytest.mark.slow]
ENV = {**os.environ, "SAM_CLI_TELEMETRY": "0"}


def main_job(*args: str) -> dict:
    completed = subprocess.run(["./deploy.sh", "--local", "--format", "json", "--keep-running", *args],
                               cwd=REPO_ROOT, capture_output=True, text=True, env=ENV, timeout=1200)  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout)


@pytest.fixture
def stop_emulator():
    yield
    subprocess.run(["./deploy.sh", "--local", "--stop"], cwd=REPO_ROOT, capture_output=True, env=ENV)


def sam_logs(summary: dict, *args: str) -> str:
    """``sam logs --stack-name ...``, as in the README, against the kept emulator."""
    env = {**ENV, "AWS_ENDPOINT_URL": summary["endpoint"], "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
    completed = subprocess.run([str(REPO_ROOT / ".tools/sam/bin/sam"), "logs", "--stack-name", summary["stack"], "--region", "us-east-1", *args],
                               capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


def dynamodb_items(summary: dict) -> list[dict]:
    client = boto3.client("dynamodb", endpoint_url=summary["endpoint"], region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local")  # fmt: skip
    items, start = [], None
    while True:
        page = client.scan(TableName=summary["table"], **({"ExclusiveStartKey": start} if start else {}))
        items += [item for item in page["Items"] if item["sk"]["S"].startswith("DATE#")]  # predictions, not the CURRENT pointer
        start = page.get("LastEvaluatedKey")
        if not start:
            return items


def test_sample_data_runs_through_the_whole_pipeline(built_layers, stop_emulator):
    summary = main_job("--items", "3", "--stores", "2", "--periods", "300", "--horizon", "7")
    assert summary["failure"] is None
    validation = summary["validation"]
    assert validation["rows_clean"] + validation["rows_quarantined"] == validation["rows_in"] > 0
    assert validation["rows_quarantined"] == sum(validation["rules"].values()) > 0
    metrics = summary["result"]["metrics"]
    assert {"mae", "wape"} <= metrics["model"].keys() and {"mae", "wape"} <= metrics["seasonal_naive"].keys()
    items = dynamodb_items(summary)
    series = {(i["item_id"]["S"], i["store_id"]["S"]) for i in items}
    assert len(series) == 6
    for key in series:
        assert sum(1 for i in items if (i["item_id"]["S"], i["store_id"]["S"]) == key) == 7
    invoked = [call["function"] for call in summary["invocations"]]
    assert invoked == ["DataValidationFunction", "FeatureEngineeringFunction", "PredictionsFunction"]
    assert all(call["init_ms"] and call["error"] is None for call in summary["invocations"])

    # the operations command users run against AWS, here against the emulator the run kept
    everything = sam_logs(summary)
    for function, message in (("DataValidation", "validated"), ("FeatureEngineering", "features built"), ("Predictions", "predicted")):
        assert f"item-prediction-local-{function}" in everything and f'"message": "{message}"' in everything, function
    assert everything.count("REPORT RequestId:") == 3
    reports = sam_logs(summary, "--name", "PredictionsFunction", "--filter", "REPORT")
    assert reports.count("REPORT RequestId:") == 1 and "Init Duration:" in reports


def test_a_users_csv_with_its_own_column_names_runs_with_a_mapping(built_layers, tmp_path, stop_emulator):
    sys.path.insert(0, str(REPO_ROOT / "functions"))
    from item_prediction.sample_data import generate_sales

    names = {"date": "Day", "item_id": "Article", "quantity": "Sold", "store_id": "Branch", "unit_price": "Unit Price", "promotion": "Promo?"}
    sample = generate_sales(items=2, stores=1, periods=200, seed=9, column_names=names, delimiter=";")
    (tmp_path / "export.csv").write_bytes(sample.content)
    (tmp_path / "mapping.json").write_text(sample.mapping_json)
    summary = main_job("--skip-build", "--input", str(tmp_path / "export.csv"), "--mapping", str(tmp_path / "mapping.json"), "--dataset", "export")
    assert summary["failure"] is None
    assert summary["validation"]["rows_clean"] == len(sample.frame)
    assert summary["result"]["series"] == 2 and summary["result"]["predictions_written"] == 2 * 14


def test_a_broken_mapping_quarantines_the_file_with_its_reason_and_loses_nothing(built_layers, tmp_path, stop_emulator):
    (tmp_path / "sales.csv").write_text("Day,SKU,Units\n2024-01-01,A,3\n2024-01-02,A,4\n")
    (tmp_path / "mapping.json").write_text('{"columns": {"date": "Day",')  # cut off mid-way
    summary = main_job("--skip-build", "--input", str(tmp_path / "sales.csv"), "--mapping", str(tmp_path / "mapping.json"))
    validation = summary["validation"]
    assert (validation["rows_in"], validation["rows_clean"], validation["rows_quarantined"]) == (2, 0, 2)
    assert validation["file_reason"] == "invalid_mapping" and "not valid JSON" in validation["file_detail"]
    assert summary["failure"] is None and summary["result"]["skipped"] is True


def test_a_missing_input_file_is_one_clear_line():
    completed = subprocess.run(["./deploy.sh", "--local", "--skip-build", "--input", "/nonexistent/sales.csv"],
                               cwd=REPO_ROOT, capture_output=True, text=True, env=ENV, timeout=300)  # fmt: skip
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines()[-1] == "./deploy.sh --local: error: --input /nonexistent/sales.csv: no such file"
    assert "Traceback" not in completed.stderr
