"""Step Functions' service integrations for the runner, on boto3 (the emulator or moto's mock).

Each callable takes a state's resolved Parameters and returns the API's response; an AWS error
becomes ``TaskFailed("<Service>.<ErrorCode>", message)``, the names Step Functions gives them
(e.g. ``DynamoDB.ConditionalCheckFailedException``), so Retry and Catch match as in AWS.
"""

from __future__ import annotations

import json

from .errors import TaskFailed

PREFIX = "arn:aws:states:::"


def _client(service: str):
    from .stack import boto

    return boto(service)


def _calling(service: str, label: str, method: str, adapt=None):
    def call(params: dict):
        from botocore.exceptions import ClientError

        params = adapt(dict(params)) if adapt else dict(params)
        try:
            response = getattr(_client(service), method)(**params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise TaskFailed(f"{label}.{error.get('Code', 'ServiceException')}", error.get("Message", str(exc))) from exc
        response.pop("ResponseMetadata", None)
        return response

    return call


def _message(params: dict) -> dict:
    if not isinstance(params.get("MessageBody"), str):  # Step Functions sends a JSON body as its text
        params["MessageBody"] = json.dumps(params.get("MessageBody"), default=str)
    return params


def _get_body(params: dict) -> bytes:
    return _calling("s3", "S3", "get_object")(params)["Body"].read()


def _list_all(params: dict) -> list[dict]:
    entries, token = [], None
    while True:
        page = _calling("s3", "S3", "list_objects_v2")({**params, **({"ContinuationToken": token} if token else {})})
        entries += [{**entry, "LastModified": str(entry.get("LastModified"))} for entry in page.get("Contents", [])]
        token = page.get("NextContinuationToken")
        if not token:
            return entries


def aws_services() -> dict:
    """resource -> callable for every integration the runner implements."""
    return {
        PREFIX + "sqs:sendMessage": _calling("sqs", "SQS", "send_message", _message),
        PREFIX + "dynamodb:deleteItem": _calling("dynamodb", "DynamoDB", "delete_item"),
        PREFIX + "dynamodb:putItem": _calling("dynamodb", "DynamoDB", "put_item"),
        PREFIX + "dynamodb:getItem": _calling("dynamodb", "DynamoDB", "get_item"),
        PREFIX + "s3:getObject": _get_body,
        PREFIX + "s3:listObjectsV2": _list_all,
        PREFIX + "s3:putObject": _calling("s3", "S3", "put_object"),
    }
