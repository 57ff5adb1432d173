"""deploy.sh's smoke test, up to the AWS calls: which invocations it makes and how it judges them.

The Lambda client is a real botocore client with a Stubber: every request is checked against
Lambda's API model and answered with what a deployed function would answer.
"""

from __future__ import annotations

import io
import json
import urllib.error

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber
from lambda_build import deploy
from lambda_build.offline.emulator import REGION

STACK = "item-prediction-dev"
OUTPUTS = {"DataBucketName": "item-prediction-dev-data", "PredictionsApiUrl": f"https://abc.execute-api.{REGION}.amazonaws.com"}


def _body(payload: dict) -> StreamingBody:
    raw = json.dumps(payload).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


def _stub(answers: dict[str, tuple[dict, str | None]]):
    client = boto3.client("lambda", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(client)
    for function in ("DataValidation", "FeatureEngineering", "Predictions", "PredictionsApi"):
        payload, error = answers[function]
        response = {"StatusCode": 200, "Payload": _body(payload)}
        if error:
            response["FunctionError"] = error
        stubber.add_response("invoke", response, {"FunctionName": f"{STACK}-{function}", "Payload": ANY})
    return client, stubber


HEALTHY = {
    "DataValidation": ({"skipped": True, "reason": "not under raw/"}, None),
    "FeatureEngineering": ({"skipped": True, "reason": "smoke test"}, None),
    "Predictions": ({"skipped": True, "reason": "smoke test"}, None),
    "PredictionsApi": ({"statusCode": 404, "body": "{}"}, None),
}


class Opener:
    def __init__(self, status: int | None) -> None:
        self.status, self.urls = status, []

    def __call__(self, url: str, timeout: float):
        self.urls.append(url)
        if self.status is None:
            raise urllib.error.URLError("connection refused")
        raise urllib.error.HTTPError(url, self.status, "answer", {}, None)


@pytest.fixture(autouse=True)
def outputs(monkeypatch):
    monkeypatch.setattr(deploy, "stack_outputs", lambda stack, region: dict(OUTPUTS))


def test_a_healthy_stack_passes_and_every_function_is_invoked():
    client, stubber = _stub(HEALTHY)
    opener = Opener(403)  # IAM auth: an unsigned call is refused, which proves the route exists
    with stubber:
        assert deploy.smoke(STACK, REGION, lam=client, opener=opener) == []
        stubber.assert_no_pending_responses()
    assert opener.urls == [OUTPUTS["PredictionsApiUrl"] + "/datasets/sales/predictions/ITEM-000"]


def test_the_smoke_events_take_each_functions_no_op_path():
    from item_prediction.aws.settings import Settings
    from item_prediction.steps import validate as validate_step  # the handlers' own skip rule decides

    validation_event = deploy.SMOKE_EVENTS["DataValidation"]("bucket")
    assert validate_step.skip_reason(Settings.from_env(), validation_event["key"]) is not None
    from feature_engineering.app import lambda_handler as build_features
    from predictions.app import lambda_handler as predict

    from ...conftest import FakeContext

    for function, handler in (("FeatureEngineering", build_features), ("Predictions", predict)):
        answer = handler(deploy.SMOKE_EVENTS[function]("bucket"), FakeContext(function))  # no AWS call on this path
        assert answer["skipped"] is True and answer["reason"] == "smoke test", answer


@pytest.mark.parametrize(
    ("function", "answer", "expected"),
    [
        (
            "Predictions",
            ({"errorMessage": "No module named 'sklearn'", "errorType": "Runtime.ImportModuleError"}, "Unhandled"),
            "Predictions: Unhandled",
        ),
        ("DataValidation", ({"rows": {"in": 3}}, None), "DataValidation: unexpected answer"),
        ("PredictionsApi", ({"statusCode": 500, "body": "{}"}, None), "PredictionsApi: unexpected answer"),
    ],
)
def test_a_failing_function_is_named(function, answer, expected):
    client, stubber = _stub({**HEALTHY, function: answer})
    with stubber:
        problems = deploy.smoke(STACK, REGION, lam=client, opener=Opener(403))
    assert len(problems) == 1 and problems[0].startswith(expected), problems


@pytest.mark.parametrize(("status", "expected"), [(500, "HTTP 500"), (None, "connection refused")])
def test_an_api_that_does_not_answer_properly_is_a_problem(status, expected):
    client, stubber = _stub(HEALTHY)
    with stubber:
        problems = deploy.smoke(STACK, REGION, lam=client, opener=Opener(status))
    assert len(problems) == 1 and expected in problems[0]


def test_the_helper_commands_print_their_answer_and_exit_with_its_status(monkeypatch, capsys):
    assert deploy.main(["target", "--environment", "staging", "--arch", "arm64"]) == 0
    assert capsys.readouterr().out == "item-prediction-staging us-east-1 arm64\n"
    monkeypatch.setattr(deploy, "smoke", lambda stack, region: [f"{stack}: broken"])
    assert deploy.main(["smoke"]) == 1
    assert capsys.readouterr() == ("smoke test FAILED\n", "smoke test: item-prediction-dev: broken\n")
    monkeypatch.setattr(deploy, "credentials_problem", lambda region: "no AWS credentials")
    assert deploy.main(["check-credentials"]) == 2
    assert capsys.readouterr().err == "deploy.sh: error: no AWS credentials\n"
