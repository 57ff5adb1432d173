"""Prediction records: DynamoDB keys and the API's query contract. Standard library only, so the
API function needs no data-science layer."""

from __future__ import annotations

from datetime import date

from .schema import MAX_ID_LENGTH, NO_STORE

MAX_QUERY_DAYS = 366


class QueryError(ValueError):
    """A request the API answers with 400 and this message."""


def series_pk(item_id: str, store_id: str | None) -> str:
    return f"ITEM#{item_id}#STORE#{store_id or NO_STORE}"


def date_sk(day: str) -> str:
    return f"DATE#{day}"


def _date(name: str, text: str | None) -> date | None:
    if text in (None, ""):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise QueryError(f"'{name}' must be a date like 2024-05-31, got {text!r}") from None


def parse_query(item_id: str | None, params: dict | None) -> dict:
    """Validate ``GET /predictions/{item_id}?store=S&from=YYYY-MM-DD&to=YYYY-MM-DD``."""
    params = params or {}
    unknown = set(params) - {"store", "from", "to"}
    if unknown:
        raise QueryError(f"unknown query parameters {sorted(unknown)}; use store, from, to")
    if not item_id or len(item_id) > MAX_ID_LENGTH:
        raise QueryError("item_id is required (at most 128 characters)")
    store = params.get("store") or None
    start, end = _date("from", params.get("from")), _date("to", params.get("to"))
    if start and end and start > end:
        raise QueryError("'from' is after 'to'")
    if start and end and (end - start).days > MAX_QUERY_DAYS:
        raise QueryError(f"at most {MAX_QUERY_DAYS} days per request")
    return {
        "item_id": item_id,
        "store_id": store or NO_STORE,
        "pk": series_pk(item_id, store),
        "sk_from": date_sk(start.isoformat() if start else "0000-00-00"),
        "sk_to": date_sk(end.isoformat() if end else "9999-99-99"),
    }


def present(items: list[dict]) -> list[dict]:
    """DynamoDB items as the API returns them, in date order."""
    return [
        {"date": item["date"], "prediction": float(item["prediction"]), "model_version": item.get("model_version")}
        for item in sorted(items, key=lambda item: item["sk"])
    ]
