"""The offline main job's pieces that need no emulator: argument checks, the failure report, the
exit codes, the query hint, the state machine's substitutions, the events."""

from __future__ import annotations

import gzip
import json

import pytest
from lambda_build import local
from lambda_build import template as templatemod
from lambda_build.offline import checks, definitions, events, report
from lambda_build.offline.emulator import arn


@pytest.fixture
def nothing_starts(monkeypatch):
    """Fail the test if the main job gets past its checks (build, emulator, stack)."""

    def started(*args, **kwargs):
        raise AssertionError("something started before the arguments were checked")

    monkeypatch.setattr(local, "_run", started)
    monkeypatch.setattr(local.Emulator, "start", started)


def sales(tmp_path, text: str = "Day;Article;Units\n2024-01-01;A;3\n", name: str = "sales.csv", encoding: str = "utf-8"):
    path = tmp_path / name
    data = text.encode(encoding)
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return path


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--horizon", "-3"], "--horizon -3: periods to predict must be 1 to 366"),
        (["--horizon", "10000"], "--horizon 10000: periods to predict must be 1 to 366"),
        (["--dataset", ".."], "--dataset: dataset name '..' is not allowed"),
        (["--dataset", "a b"], "--dataset: dataset name 'a b' is not allowed"),
        (["--dataset", "x" * 65], "is not allowed: use 1 to 64"),
        (["--query", "ITEM-000"], "--query needs the stack a --keep-running run left up"),
        (["--logs"], "--logs needs the stack a --keep-running run left up"),
        (["--store", "S1"], "--store goes with --query"),
        (["--name", "PredictionsFunction"], "--name goes with --logs"),
        (["--mapping", "m.json"], "--mapping goes with --input"),
        (["--input", "/nonexistent/sales.csv"], "--input /nonexistent/sales.csv: no such file"),
        (["--concurrency", "-1"], "--concurrency -1: shards at once must be 0 (the CPU count) to 10000"),
        (["--report", "/nonexistent/report.html"], "--report /nonexistent/report.html: no such directory /nonexistent"),
        (["--report", "r.html", "--logs"], "--report goes with a pipeline run"),
        (["--plan", "/nonexistent/plan.csv"], "--plan /nonexistent/plan.csv: no such file"),
        (["--plan", "/nonexistent/plan.csv", "--dataset", "default"], "--plan needs a named --dataset"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2_before_anything_starts(
    argv, message, nothing_starts, monkeypatch, tmp_path, capsys
):
    monkeypatch.setattr(local.Emulator, "kept", lambda self: None)
    assert local.main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("./deploy.sh --local: error: ") and message in err


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ('{"columns": {"date": "Day",', "mapping file is not valid JSON"),
        ('{"columns": {"price": "P"}}', "unknown canonical columns"),
        ('["Day"]', "must hold a JSON object"),
        ('{"columns": {"date": "Day", "item_id": "SKU", "quantity": "Units"}}', "names columns not in the header of"),
    ],
)
def test_a_mapping_is_checked_against_the_rules_and_the_inputs_header(mapping, message, nothing_starts, tmp_path, capsys):
    (tmp_path / "m.json").write_text(mapping)
    assert local.main(["--input", str(sales(tmp_path)), "--mapping", str(tmp_path / "m.json")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    if "header" in message:
        assert "'SKU' (for item_id)" in err and "['Day', 'Article', 'Units']" in err and "Day" not in err.split("header of")[0]


@pytest.mark.parametrize(
    ("name", "text", "encoding"),
    [
        ("sales.csv", "Day;Article;Units\n2024-01-01;A;3\n", "utf-8"),  # semicolons
        ("sales.csv.gz", "Day,Article,Units\n2024-01-01,A,3\n", "utf-8"),  # gzip
        ("sales.csv", "Day\tArticle\tUnits\n2024-01-01\tA\t3\n", "utf-16"),  # UTF-16 with tabs
        ("sales.csv", "Day;Article;Units;Café\n2024-01-01;A;3;x\n", "latin-1"),
    ],
)
def test_the_header_is_read_the_way_validation_reads_it(name, text, encoding, tmp_path):
    path = sales(tmp_path, text, name, encoding)
    assert checks.read_header(path)[:3] == ["Day", "Article", "Units"]
    (tmp_path / "m.json").write_text('{"columns": {"date": " day ", "item_id": "ARTICLE", "quantity": "Units"}}')
    checks.check_mapping(tmp_path / "m.json", path)  # names match case- and space-insensitively, as in validation


def test_the_default_horizon_and_the_bounds_pass():
    for horizon in (0, 1, 366):
        checks.check_horizon(horizon)
    for name in ("default", "shop_1", "A-b", "x" * 64):
        checks.check_dataset(name)


FAILURE = {
    "state": "Predict",
    "error": "ValueError",
    "cause": "horizon must be 1..366",
    "ended_in": "PipelineFailed",
    "dead_letter": {"queue": "https://sqs/dlq", "message_id": "m-1"},
    "log_group": "/aws/lambda/stack-Predictions",
    "state_machine_log_group": "/aws/vendedlogs/states/stack-pipeline",
}


def summary(**extra) -> dict:
    base = {
        "bucket": "b",
        "dataset": "shop 1",
        "kept": True,
        "invocations": [],
        "sizes": [],
        "steps": {},
        "failure": None,
        "result": None,
        "validation": None,
        "predictions": [],
    }
    return {**base, **extra}


def test_a_failure_names_the_state_error_message_and_where_the_record_is():
    counts = {
        "rows_in": 10,
        "rows_clean": 8,
        "rows_quarantined": 2,
        "rules": {"invalid_date": 2},
        "file_reason": None,
        "report_key": "reports/s/a.validation.json",
        "quarantine_key": "quarantine/s/a.csv.gz",
    }
    text = report.render(summary(failure=FAILURE, validation=counts))
    assert text.splitlines()[0] == "PIPELINE FAILED in Predict: ValueError: horizon must be 1..366"
    for part in (
        "dead-letter message m-1 in https://sqs/dlq",
        "/aws/lambda/stack-Predictions",
        "/aws/vendedlogs/states/stack-pipeline",
        "10 rows in, 8 clean, 2 quarantined (invalid_date 2)",
        "s3://b/quarantine/s/a.csv.gz",
    ):
        assert part in text
    assert report.exit_code(summary(failure=FAILURE)) == 1


def test_the_error_message_is_taken_from_lambdas_error_json():
    assert report.error_message(json.dumps({"errorType": "ValueError", "errorMessage": "bad", "stackTrace": []})) == "bad"
    assert report.error_message("plain words") == "plain words"


def test_exit_codes_for_a_refused_file():
    assert report.exit_code(summary(validation={"file_reason": "binary_content"})) == 3
    assert report.exit_code(summary(steps={"DataValidationFunction": {"skipped": True, "reason": "superseded"}})) == 3
    assert (
        report.exit_code(
            summary(steps={"DataValidationFunction": {"rows": {}}}, result={"skipped": True, "reason": "not enough history"})
        )
        == 0
    )


def test_the_query_hint_names_a_series_of_this_run_or_none():
    rows = [{"item_id": "SKU 1", "store_id": "=S", "date": "2024-01-01", "prediction": 1.0}]
    command = report.query_command(summary(predictions=rows))
    assert command == "./deploy.sh --local --query 'SKU 1' --store =S --dataset 'shop 1'"
    assert "GET /datasets/shop 1/predictions/SKU 1?store==S" in report.render(summary(predictions=rows, query=command))
    assert report.query_command(summary()) is None
    assert "Query: no series was predicted in this run" in report.render(summary(query=None))
    assert "rerun with --keep-running" in report.render(summary(kept=False))
    logs = next(line for line in report.render(summary()).splitlines() if line.startswith("Logs:"))
    assert logs.split("   ")[0] == "Logs:  ./deploy.sh --local --logs", "the command runs as printed"


def test_the_report_path_is_the_last_line_when_asked_for():
    assert report.render(summary(report_file="/tmp/r.html")).splitlines()[-1] == "Report: /tmp/r.html"
    assert report.render(summary(report_file=None)).splitlines()[-1] == "Report: none written (this run made no forecast)"
    assert "Report:" not in report.render(summary())


def test_the_text_summary_names_each_invocations_slowest_steps_on_its_own_line():
    def call(function: str, durations: dict | None) -> dict:
        return {"function": function, "init_ms": None, "duration_ms": 9000.0, "max_memory_mb": 300, "durations_ms": durations}

    invocations = [
        call("FeatureEngineeringFunction", {"take_lease": 4.0, "read_validated": 310.0, "write_features": 7600.4}),
        call("PredictionsFunction", {"read_features": 95.0, "backtest": 2900.0, "fit": 3400.0, "flip": 2.0, "forecast": 1200.0}),
        call("PredictionsApiFunction", None),
    ]
    lines = report.render(summary(invocations=invocations)).splitlines()
    rows = {line.split()[0]: line for line in lines if line.split() and line.split()[0].endswith("Function")}
    assert rows["PredictionsFunction"].endswith("  fit 3,400 · backtest 2,900 · forecast 1,200")
    assert rows["FeatureEngineeringFunction"].endswith("  write_features 7,600 · read_validated 310 · take_lease 4")
    assert rows["PredictionsApiFunction"].endswith("300")  # nothing timed: no steps column
    assert sum(1 for line in lines if line.startswith("PredictionsFunction")) == 1


def test_the_pipelines_substitutions_come_from_the_template():
    template = templatemod.load_template()
    physical = {logical_id: f"p-{logical_id}" for logical_id in template["Resources"]}
    definition = definitions.load(template, "PipelineStateMachine", physical)
    tasks = [
        state["Parameters"]["FunctionName"]
        for state in definition["States"].values()
        if "FunctionName" in state.get("Parameters", {})
    ]
    assert tasks and all(name.startswith(arn("lambda", "function:p-")) for name in tasks)
    assert "${" not in json.dumps(definition)


def test_events_are_encoded_as_aws_sends_them():
    created = events.object_created("bkt", "raw/shop/jan sales+1.csv", "v1", 10)
    assert (
        created["detail"]["object"]["key"] == "raw/shop/jan+sales%2B1.csv" and created["detail"]["object"]["version-id"] == "v1"
    )
    deleted = events.object_deleted("bkt", "raw/shop/jan sales+1.csv", "m1", reason="Lifecycle Expiration")
    assert (deleted["detail-type"], deleted["detail"]["bucket"]["name"], deleted["resources"]) == (
        "Object Deleted",
        "bkt",
        ["arn:aws:s3:::bkt"],
    )
    assert deleted["detail"]["object"] | {"reason": deleted["detail"]["reason"]} == {
        "key": "raw/shop/jan+sales%2B1.csv",
        "version-id": "m1",
        "sequencer": "00617F0835D5D2A0B4",
        "reason": "Lifecycle Expiration",
    }
    request = events.api_request("shop", "SKU#1", "S 1")
    assert request["rawPath"] == "/datasets/shop/predictions/SKU%231" and request["pathParameters"] == {
        "dataset": "shop",
        "item_id": "SKU#1",
    }
    assert (
        request["queryStringParameters"] == {"store": "S 1"}
        and request["routeKey"] == "GET /datasets/{dataset}/predictions/{item_id}"
    )


def test_substitutions_resolve_parameters_and_attributes():
    template = {
        "Parameters": {"Tolerated": {"Type": "Number", "Default": 0}},
        "Resources": {
            "Machine": {
                "Type": "AWS::Serverless::StateMachine",
                "Properties": {
                    "DefinitionSubstitutions": {
                        "Tolerated": {"Ref": "Tolerated"},
                        "Table": {"Ref": "Table"},
                        "Fn": {"Fn::GetAtt": ["Fn", "Arn"]},
                        "Fixed": "x",
                    }
                },
            },
            "Table": {"Type": "AWS::DynamoDB::Table"},
            "Fn": {"Type": "AWS::Serverless::Function"},
        },
    }
    physical = {"Table": "stack-table", "Fn": "stack-Fn"}
    assert definitions.substitutions(template, "Machine", physical) == {
        "Tolerated": "0",
        "Table": "stack-table",
        "Fn": arn("lambda", "function:stack-Fn"),
        "Fixed": "x",
    }
    assert definitions.substitutions(template, "Machine", physical, {"Tolerated": 5})["Tolerated"] == "5"


def test_help_documents_the_fan_out_the_retrain_flag_and_the_concurrency(capsys):
    with pytest.raises(SystemExit):
        local.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for part in ("Distributed Map", "labelled with its shard", "--retrain", "--concurrency", "the CPU count", "--keep-running"):
        assert part in text, part
    args = local.build_parser().parse_args(["--retrain"])
    assert args.retrain is True and args.concurrency == 0


def test_the_text_summary_labels_each_shards_invocation_with_its_shard():
    calls = [
        {"function": "FeatureEngineeringFunction", "shard": None, "init_ms": 900.0, "duration_ms": 40.0, "max_memory_mb": 120},
        {"function": "PredictionsFunction", "shard": 3, "init_ms": None, "duration_ms": 2000.0, "max_memory_mb": 400},
    ]
    lines = report.render(summary(invocations=calls)).splitlines()
    header = next(line for line in lines if line.startswith("function"))
    assert header.split()[:3] == ["function", "shard", "init"]
    rows = [line.split() for line in lines if line.split() and line.split()[0].endswith("Function")]
    assert [row[1] for row in rows] == ["-", "3"]


def test_the_local_run_sets_the_maps_concurrency_from_the_option():
    template = templatemod.load_template()
    physical = {logical_id: f"p-{logical_id}" for logical_id in template["Resources"]}
    definition = definitions.load(template, "PipelineStateMachine", physical, {"ShardConcurrency": "3"})
    assert '\'{"step": "plan", "shard_concurrency": 3}\'' in definition["States"]["Plan"]["Parameters"]["Payload.$"]


def test_help_documents_the_plan_file(capsys):
    with pytest.raises(SystemExit):
        local.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--plan FILE" in text and "raw/<dataset>/plan/<name> before the sales file" in text


def test_the_summary_says_which_plan_the_forecast_used_and_the_intervals_coverage():
    metrics = {
        "horizon": 8,
        "mae_improvement": 0.2,
        "beats_baseline": True,
        "model": {"mae": 1.5, "wape": 0.3, "coverage_p10_p90": 0.81},
        "seasonal_naive": {"mae": 2.0, "wape": 0.4},
    }
    result = {"metrics": metrics, "predictions_written": 8, "series": 1, "horizon": 8, "model_version": "v"}
    planned = {**result, "plan": "file", "plan_key": "raw/shop/plan/june.csv"}
    assert local.plan_summary(planned) == {"used": "file", "key": "raw/shop/plan/june.csv"}
    assert local.plan_summary(None) is None
    text = report.render(summary(result=planned))
    assert "P10-P90 coverage 0.810" in text and "Plan: raw/shop/plan/june.csv" in text
    assumed = {**result, "plan": "assumed_last_price_no_promotion", "plan_key": None}
    assert "Plan: none (assumed the last price and no promotion)" in report.render(summary(result=assumed))


def test_the_summary_says_how_many_dynamodb_items_held_the_predictions():
    metrics = {
        "horizon": 14,
        "mae_improvement": 0.2,
        "beats_baseline": True,
        "model": {"mae": 1.5, "wape": 0.3},
        "seasonal_naive": {"mae": 2.0, "wape": 0.4},
    }
    result = {"metrics": metrics, "predictions_written": 14_560, "series": 1040, "horizon": 14, "model_version": "v"}
    text = report.render(summary(result={**result, "items_written": 1040}))
    assert "Predictions: 14,560 written for 1040 series x 14 periods as 1,040 DynamoDB items (model v)" in text
    assert "DynamoDB items" not in report.render(summary(result=result))  # a result from before items were counted
