"""The events AWS would send, built from the repository's samples in events/ (one place)."""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus, urlencode

from ..config import REPO_ROOT

API_ROUTE = "GET /datasets/{dataset}/predictions/{item_id}"


def _s3_event(sample: str, bucket: str, key: str, version: str | None) -> dict:
    """An EventBridge S3 event from ``events/<sample>`` for ``bucket``/``key``; the key URL-encoded as S3 sends it."""
    event = json.loads((REPO_ROOT / "events" / sample).read_text())
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"].update({"key": quote_plus(key, safe="/"), "version-id": version})
    event["resources"] = [f"arn:aws:s3:::{bucket}"]
    return event


def object_created(bucket: str, key: str, version: str | None = None, size: int | None = None) -> dict:
    """EventBridge's S3 ``Object Created`` event."""
    event = _s3_event("object_created.json", bucket, key, version)
    if size is not None:
        event["detail"]["object"]["size"] = size
    return event


def object_deleted(bucket: str, key: str, version: str | None = None, reason: str = "DeleteObject") -> dict:
    """EventBridge's S3 ``Object Deleted`` event (``reason`` "Lifecycle Expiration" when a lifecycle rule deleted it)."""
    event = _s3_event("object_deleted.json", bucket, key, version)
    event["detail"]["reason"] = reason
    return event


def api_request(dataset: str, item_id: str, store: str | None = None) -> dict:
    """An HTTP API (payload v2) ``GET /datasets/{dataset}/predictions/{item_id}[?store=]`` event."""
    event = json.loads((REPO_ROOT / "events" / "api_get_predictions.json").read_text())
    path = f"/datasets/{quote(dataset, safe='')}/predictions/{quote(item_id, safe='')}"
    query = {"store": store} if store is not None else None
    event.update(
        routeKey=API_ROUTE,
        rawPath=path,
        rawQueryString=urlencode(query or {}),
        queryStringParameters=query,
        pathParameters={"dataset": dataset, "item_id": item_id},
    )
    event["requestContext"].update(routeKey=API_ROUTE, http={**event["requestContext"]["http"], "method": "GET", "path": path})
    return event
