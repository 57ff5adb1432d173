"""Event shapes the handlers accept, turned into one object reference.

Accepted: the EventBridge "Object Created" and "Object Deleted" events (what the state machine is
started with, as its input), an S3 notification (``Records``), and a plain ``{"bucket": ...,
"key": ...}``. Object keys arrive URL-encoded in both S3 shapes (a space as ``+``, a plus as
``%2B``) and are decoded here, once.
"""

from __future__ import annotations

from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, S3Event

from .storage import ObjectRef

EVENTBRIDGE_TYPES = ("Object Created", "Object Deleted")
LIFECYCLE_EXPIRATION = "Lifecycle Expiration"  # the "reason" of a deletion made by a lifecycle rule


class EventError(ValueError):
    """An event no handler can use, with what was expected."""


def _size(value) -> int | None:
    return int(value) if isinstance(value, (int, str)) and str(value).isdigit() else None


def object_ref(event: dict) -> ObjectRef:
    if not isinstance(event, dict):
        raise EventError("event must be a JSON object")
    if "detail" in event and event.get("detail-type") in EVENTBRIDGE_TYPES:
        detail = EventBridgeEvent(event).detail
        obj = detail.get("object", {})
        deleted = event["detail-type"] == "Object Deleted"
        return ObjectRef(
            detail.get("bucket", {}).get("name", ""),
            unquote_plus(obj.get("key", "")),
            obj.get("version-id"),
            _size(obj.get("size")),
            deleted,
        )
    if "Records" in event:
        record = next(S3Event(event).records)
        return ObjectRef(
            record.s3.bucket.name,
            unquote_plus(record.s3.get_object.key),
            record.s3.get_object.version_id,
            record.s3.get_object.size,
        )
    if "bucket" in event and "key" in event:
        return ObjectRef(event["bucket"], event["key"], event.get("version_id"))
    raise EventError("expected an S3 Object Created or Object Deleted event (EventBridge or S3 notification) or {bucket, key}")


def is_lifecycle_expiration(event: dict) -> bool:
    """True for a deletion made by the bucket's lifecycle rules (retention), not by a person."""
    return (
        isinstance(event, dict)
        and isinstance(event.get("detail"), dict)
        and event["detail"].get("reason") == LIFECYCLE_EXPIRATION
    )
