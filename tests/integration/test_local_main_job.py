"""The main job end to end, offline: emulator, template-created stack, the Step Functions runner,
the Lambda-like sandbox on the built layers; a kept stack reused, queried and read by --logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import boto3
import pytest
from item_prediction.aws import series_item, table_keys
from lambda_build.offline.emulator import REGION

from ..conftest import REPO_ROOT

pytestmark = [pytest.mark.layers, pytest.mark.slow]
ENV = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
ENV.pop("ITEM_PREDICTION_LOCAL_ENV", None)


def deploy_local(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["./deploy.sh", "--local", *args], cwd=REPO_ROOT, capture_output=True, text=True, env={**ENV, **(env or {})}, timeout=1200
    )


def main_job(*args: str, expect: int = 0, env: dict | None = None) -> dict:
    completed = deploy_local("--format", "json", "--keep-running", *args, env=env)
    assert completed.returncode == expect, completed.stderr[-3000:]
    return json.loads(completed.stdout)


@pytest.fixture
def stop_emulator():
    deploy_local("--stop")
    yield
    deploy_local("--stop")


def dynamodb_items(summary: dict) -> list[dict]:
    client = boto3.client(
        "dynamodb",
        endpoint_url=summary["endpoint"],
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    items, start = [], None
    while True:
        page = client.scan(TableName=summary["table"], **({"ExclusiveStartKey": start} if start else {}))
        items += [item for item in page["Items"] if item["sk"]["S"] == table_keys.SERIES_SK]
        start = page.get("LastEvaluatedKey")
        if not start:
            return items


def server_pid() -> int:
    return json.loads((REPO_ROOT / ".local-aws" / "server.json").read_text())["pid"]


def test_sample_data_runs_through_the_whole_pipeline_and_the_kept_stack_answers(built_layers, stop_emulator, tmp_path):
    page = tmp_path / "report.html"
    summary = main_job("--items", "3", "--stores", "2", "--periods", "300", "--horizon", "7", "--report", str(page))
    assert summary["failure"] is None and summary["exit_code"] == 0 and summary["reused"] is False
    validation = summary["validation"]
    assert validation["rows_clean"] + validation["rows_quarantined"] == validation["rows_in"] > 0
    assert validation["rows_quarantined"] == sum(validation["rules"].values()) > 0
    metrics = summary["result"]["metrics"]
    assert {"mae", "wape"} <= metrics["model"].keys() and {"mae", "wape"} <= metrics["seasonal_naive"].keys()
    assert metrics["model"]["coverage_p10_p90"] is not None  # the shards' intervals, aggregated
    assert summary["plan"] == {"used": "assumed_last_price_no_promotion", "key": None}
    items = dynamodb_items(summary)  # one per series, its 7 dates and predictions in one JSON string
    series = {(i["item_id"]["S"], i["store_id"]["S"]) for i in items}
    assert len(series) == len(items) == 6 and all(i["sk"]["S"] == "SERIES" for i in items)
    forecasts = [json.loads(i[series_item.ATTRIBUTE]["S"]) for i in items]
    assert all(len(f["dates"]) == len(f["prediction"]) == len(f["p10"]) == 7 for f in forecasts)
    assert len(summary["predictions"]) == 6 * 7  # the summary's rows: one per series and date
    assert summary["report_file"] == str(page) and "ITEM-000 @ STORE-00" in page.read_text(), "the run's report, copied"
    invoked = [(call["function"], call["shard"]) for call in summary["invocations"]]
    assert invoked == [
        ("DataValidationFunction", None),
        ("FeatureEngineeringFunction", None),  # the plan
        ("FeatureEngineeringFunction", 0),  # the Distributed Map's one shard
        ("PredictionsFunction", 0),
        ("PredictionsFunction", None),  # the aggregate
    ]
    assert all(call["error"] is None and call["memory_size_mb"] >= call["max_memory_mb"] > 0 for call in summary["invocations"])
    assert summary["validation"]["rows_in"] == validation["rows_in"]
    timed = {(call["function"], call["shard"]): call["durations_ms"] for call in summary["invocations"]}  # steps, in ms
    assert {"validate", "write_outputs"} == set(timed[("DataValidationFunction", None)])
    assert {"take_lease", "plan"} == set(timed[("FeatureEngineeringFunction", None)])
    assert {"read_validated", "build_features", "write_features"} <= set(timed[("FeatureEngineeringFunction", 0)])
    assert {"read_features", "backtest", "fit", "forecast", "write_items"} <= set(timed[("PredictionsFunction", 0)])
    assert {"aggregate"} <= set(timed[("PredictionsFunction", None)])

    # The query hint names a series of this run and runs as printed, against the kept stack.
    first = summary["predictions"][0]
    assert (first["item_id"], first["store_id"]) in series
    assert summary["query"] == f"./deploy.sh --local --query {first['item_id']} --store {first['store_id']} --dataset sales"
    answer = subprocess.run(summary["query"], shell=True, cwd=REPO_ROOT, capture_output=True, text=True, env=ENV, timeout=300)
    assert answer.returncode == 0, answer.stderr[-2000:]
    body = json.loads(answer.stdout)
    assert body["item_id"] == first["item_id"] and len(body["predictions"]) == 7
    assert all(row["p10"] <= row["p50"] == row["prediction"] <= row["p90"] for row in body["predictions"])

    # The logs command the summary prints runs as printed.
    everything = deploy_local("--logs")
    assert everything.returncode == 0, everything.stderr[-2000:]
    for function, message in (
        ("DataValidation", "validated"),
        ("FeatureEngineering", "shard features built"),
        ("Predictions", "aggregated"),
    ):
        assert f"item-prediction-local-{function}" in everything.stdout and f'"message": "{message}"' in everything.stdout, (
            function
        )
    reports = deploy_local("--logs", "--name", "PredictionsFunction")
    assert reports.stdout.count("REPORT RequestId:") == 2 and "Init Duration:" in reports.stdout  # shard 0, aggregate


def test_a_second_run_reuses_the_kept_stack_and_a_failure_says_where_its_record_is(built_layers, stop_emulator):
    first = main_job("--skip-build", "--items", "2", "--stores", "1", "--periods", "200")
    pid = server_pid()
    # Predictions pointed at a table that does not exist: it fails after validation and features ran.
    broken = {"ITEM_PREDICTION_LOCAL_ENV": json.dumps({"PredictionsFunction": {"TABLE_NAME": "no-such-table"}})}
    # Other data (the same file again would change nothing: the run would end at the Plan).
    second = main_job("--skip-build", "--items", "2", "--stores", "1", "--periods", "200", "--seed", "8", expect=1, env=broken)
    assert (second["endpoint"], second["bucket"], second["table"]) == (first["endpoint"], first["bucket"], first["table"])
    assert second["reused"] is True and server_pid() == pid, "no second emulator"
    failure = second["failure"]
    assert failure["state"] == "Shards" and failure["error"] == "States.ExceedToleratedFailureThreshold"
    assert "1 of 1 items failed" in failure["cause"]  # the shard's Predictions error, inside the map's
    assert failure["cause"] and failure["ended_in"] == "PipelineFailed"
    assert failure["state_machine_log_group"] and failure["dead_letter"]["message_id"]
    assert second["validation"]["rows_in"] > 0, "counts already known are reported"
    sqs = boto3.client(
        "sqs", endpoint_url=second["endpoint"], region_name=REGION, aws_access_key_id="local", aws_secret_access_key="local"
    )
    messages = sqs.receive_message(QueueUrl=failure["dead_letter"]["queue"], MaxNumberOfMessages=10)["Messages"]
    letter = next(json.loads(m["Body"]) for m in messages if m["MessageId"] == failure["dead_letter"]["message_id"])
    assert letter["error"]["Error"] == failure["error"] and letter["dataset"] == "sales"

    text = deploy_local("--skip-build", "--items", "2", "--stores", "1", "--periods", "200", "--seed", "8", env=broken)
    assert text.returncode == 1 and text.stdout.splitlines()[0].startswith(f"PIPELINE FAILED in Shards: {failure['error']}: ")
    assert "dead-letter message" in text.stdout and "Validation: " in text.stdout
    stopped = deploy_local("--stop")
    assert stopped.stdout.strip() == "local emulator stopped" and not (REPO_ROOT / ".local-aws" / "server.json").exists()


def test_uploads_in_sequence_on_the_kept_stack_re_run_only_what_changed(built_layers, tmp_path, stop_emulator):
    sys.path.insert(0, str(REPO_ROOT / "functions"))
    from lambda_build.sample_data import generate_sales

    sales = generate_sales(items=3, stores=2, periods=160, seed=4, invalid=False).frame
    sales[sales["date"] < "2023-05-20"].to_csv(tmp_path / "history.csv", index=False)
    recent = sales[(sales["date"] >= "2023-05-20") & (sales["date"] < "2023-05-23")]
    recent.to_csv(tmp_path / "days.csv", index=False)
    first = main_job("--skip-build", "--input", str(tmp_path / "history.csv"), "--horizon", "7")
    assert first["result"]["shards_run"] == first["result"]["shard_count"] == 1
    days = main_job("--skip-build", "--input", str(tmp_path / "days.csv"), "--horizon", "7")
    assert days["validation"]["rows_in"] == len(recent) and days["reused"] is True
    shard = [call for call in days["invocations"] if call["shard"] is not None]
    assert [(call["function"], call["shard"]) for call in shard] == [
        ("FeatureEngineeringFunction", 0),
        ("PredictionsFunction", 0),
    ]
    assert "load_model" in shard[1]["durations_ms"] and "fit" not in shard[1]["durations_ms"]  # predicted, not trained
    again = main_job("--skip-build", "--input", str(tmp_path / "days.csv"), "--horizon", "7")
    assert again["result"]["skipped"] is True and "nothing changed" in again["result"]["reason"]
    assert [call["function"] for call in again["invocations"]] == ["DataValidationFunction", "FeatureEngineeringFunction"]
    retrained = main_job("--skip-build", "--input", str(tmp_path / "days.csv"), "--horizon", "7", "--retrain")
    assert "fit" in next(call for call in retrained["invocations"] if call["function"] == "PredictionsFunction")["durations_ms"]


def test_a_users_csv_with_its_own_column_names_runs_with_a_mapping(built_layers, tmp_path, stop_emulator):
    sys.path.insert(0, str(REPO_ROOT / "functions"))
    import pandas as pd
    from lambda_build.sample_data import generate_sales

    names = {
        "date": "Day",
        "item_id": "Article",
        "quantity": "Sold",
        "store_id": "Branch",
        "unit_price": "Unit Price",
        "promotion": "Promo?",
    }
    sample = generate_sales(items=2, stores=1, periods=200, seed=9, column_names=names, delimiter=";")
    (tmp_path / "export.csv").write_bytes(sample.content)
    mapping = {**json.loads(sample.mapping_json), "known_in_advance": ["unit_price", "promotion"]}
    (tmp_path / "mapping.json").write_text(json.dumps(mapping))
    # The plan: the next 14 days of both series on promotion, in the export's own columns and delimiter.
    days = pd.date_range(str(sample.frame["date"].max()), periods=15, freq="D")[1:].strftime("%Y-%m-%d")
    series = sorted(set(zip(sample.frame["item_id"], sample.frame["store_id"], strict=True)))
    lines = ["Day;Article;Branch;Unit Price;Promo?", *(f"{day};{item};{store};1.5;1" for day in days for item, store in series)]
    (tmp_path / "june-plan.csv").write_text("\n".join(lines) + "\n")
    summary = main_job(
        "--skip-build",
        "--input",
        str(tmp_path / "export.csv"),
        "--mapping",
        str(tmp_path / "mapping.json"),
        "--plan",
        str(tmp_path / "june-plan.csv"),
        "--dataset",
        "export",
    )
    assert summary["failure"] is None
    assert summary["plan"] == {"used": "file", "key": "raw/export/plan/june-plan.csv"}
    assert {"mae", "wape", "coverage_p10_p90"} <= summary["result"]["metrics"]["model"].keys()
    assert summary["validation"]["rows_clean"] == len(sample.frame)
    assert summary["result"]["series"] == 2 and summary["result"]["predictions_written"] == 2 * 14
    assert summary["predictions"][0]["item_id"] in {row["item_id"] for row in sample.frame.to_dict("records")}


def test_a_file_quarantined_whole_exits_3_with_its_reason_and_loses_nothing(built_layers, tmp_path, stop_emulator):
    (tmp_path / "photo.csv").write_bytes(bytes(range(256)) * 20)
    summary = main_job("--skip-build", "--input", str(tmp_path / "photo.csv"), expect=3)
    validation = summary["validation"]
    assert validation["file_reason"] == "binary_content" and validation["rows_quarantined"] == validation["rows_in"] > 0
    assert summary["failure"] is None and summary["result"]["skipped"] is True and summary["query"] is None


def _aws_sam_state() -> list[tuple[str, int]]:
    root = REPO_ROOT / ".aws-sam"
    return sorted(
        (str(path), path.stat().st_mtime_ns) for path in [root, *root.glob("*"), *root.glob("build/*")] if path.exists()
    )


@pytest.mark.parametrize(
    ("args", "files", "message"),
    [
        (
            ["--mapping", "{m}", "--input", "{i}"],
            {"m": '{"columns": {"date": "Day",'},
            "--mapping {m}: mapping file is not valid JSON",
        ),
        (
            ["--mapping", "{m}", "--input", "{i}"],
            {"m": '{"columns": {"item_id": "Article"}}'},
            "names columns not in the header of {i}: 'Article' (for item_id)",
        ),
        (["--horizon", "-3"], {}, "--horizon -3: periods to predict must be 1 to 366"),
        (["--horizon", "10000"], {}, "--horizon 10000"),
        (["--dataset", ".."], {}, "--dataset: dataset name '..' is not allowed"),
        (["--query", "ITEM-000"], {}, "--query needs the stack a --keep-running run left up"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_built_or_started(args, files, message, tmp_path, stop_emulator):
    (tmp_path / "sales.csv").write_text("Day,SKU,Units\n2024-01-01,A,3\n")
    (tmp_path / "m.json").write_text(files.get("m", "{}"))
    paths = {"m": str(tmp_path / "m.json"), "i": str(tmp_path / "sales.csv")}
    before = _aws_sam_state()
    completed = deploy_local(*(arg.format(**paths) for arg in args))
    assert completed.returncode == 2
    assert (
        completed.stderr.strip().splitlines()[-1]
        == f"./deploy.sh --local: error: {completed.stderr.split('error: ', 1)[1].strip()}"
    )
    assert message.format(**paths) in completed.stderr and "Traceback" not in completed.stderr
    assert "==>" not in completed.stderr, "no build or emulator was announced"
    assert _aws_sam_state() == before, "no build started"
    assert not (REPO_ROOT / ".local-aws" / "server.json").exists()


def test_a_missing_input_file_is_one_clear_line():
    completed = deploy_local("--skip-build", "--input", "/nonexistent/sales.csv")
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines()[-1] == "./deploy.sh --local: error: --input /nonexistent/sales.csv: no such file"
    assert "Traceback" not in completed.stderr
