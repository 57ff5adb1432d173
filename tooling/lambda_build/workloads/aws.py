"""aws-utilities workload: clients for every kept service and Powertools, all offline."""

import io
import json
import os


def run(params):
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "verify")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "verify")
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "layer-verify")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "LayerVerify")
    import boto3
    import botocore
    from aws_lambda_powertools import Logger, Metrics
    from aws_lambda_powertools.metrics import MetricUnit
    from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, S3Event
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    session = boto3.session.Session(region_name="us-east-1")
    available = set(session.get_available_services())
    missing = sorted(set(params["aws_services"]) - available)
    assert not missing, f"service models missing: {missing}"
    for service in params["aws_services"]:
        client = session.client(service)  # loads the service model and endpoint rules
        assert client.meta.region_name == "us-east-1", service
    url = session.client("s3").generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"}, ExpiresIn=60)
    assert "Signature=" in url, url
    table = session.resource("dynamodb").Table("predictions")  # resource models are kept for dynamodb
    assert table.name == "predictions"

    value = TypeDeserializer().deserialize(TypeSerializer().serialize({"qty": 3}))
    assert value == {"qty": 3}

    stream = io.StringIO()
    logger = Logger(service="layer-verify", logger_handler=__import__("logging").StreamHandler(stream))
    logger.info("verified", extra={"rows": 3})
    record = json.loads(stream.getvalue().splitlines()[-1])
    assert record["message"] == "verified" and record["rows"] == 3

    metrics = Metrics(namespace="LayerVerify", service="layer-verify")
    metrics.add_metric(name="RowsIn", unit=MetricUnit.Count, value=3)
    emf = metrics.serialize_metric_set()
    assert emf["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"] == "RowsIn"
    metrics.clear_metrics()

    s3_event = S3Event({"Records": [{"s3": {"bucket": {"name": "b"}, "object": {"key": "raw/a.csv", "size": 1}}}]})
    assert s3_event.bucket_name == "b" and next(s3_event.records).s3.get_object.key == "raw/a.csv"
    bridge = EventBridgeEvent({"detail-type": "Object Created", "detail": {"bucket": {"name": "b"}}, "source": "aws.s3"})
    assert bridge.detail["bucket"]["name"] == "b"
    return {"services": sorted(params["aws_services"]), "boto3": boto3.__version__, "botocore": botocore.__version__}
