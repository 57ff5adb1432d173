"""Event shapes the handlers accept, turned into one object reference.

Accepted: the EventBridge "Object Created" event (what the state machine is started with, as
its input), an S3 notification (``Records``), and a plain ``{"bucket": ..., "key": ...}``.
"""

from __future__ import annotations

from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, S3Event

from .storage import ObjectRef


class EventError(ValueError):
    """An event no handler can use, with what was expected."""


def object_ref(event: dict) -> ObjectRef:
    if not isinstance(event, dict):
        raise EventError("event must be a JSON object")
    if "detail" in event and event.get("detail-type") == "Object Created":
        detail = EventBridgeEvent(event).detail
        obj = detail.get("object", {})
        return ObjectRef(detail.get("bucket", {}).get("name", ""), obj.get("key", ""), obj.get("version-id"), obj.get("size"))
    if "Records" in event:
        record = next(S3Event(event).records)
        return ObjectRef(record.s3.bucket.name, unquote_plus(record.s3.get_object.key), record.s3.get_object.version_id, record.s3.get_object.size)
    if "bucket" in event and "key" in event:
        return ObjectRef(event["bucket"], event["key"], event.get("version_id"))
    raise EventError("expected an S3 Object Created event (EventBridge or S3 notification) or {bucket, key}")
