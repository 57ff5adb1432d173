"""The read API's request contract: ``GET /datasets/{dataset}/predictions/{item_id}`` with
``store``, ``from``, ``to``, ``limit`` and ``next_token``, checked into a :class:`Query` on the
predictions table (keys in :mod:`.table_keys`), and the :func:`page` it takes from a series'
item. Standard library only, so the read API's function needs no data-science layer.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import date, timedelta

from ..domain.schema import DATASET_PATTERN, MAX_ID_LENGTH, NO_STORE
from . import series_item
from .table_keys import ALL_DATES, date_sk, prediction_pk

MAX_QUERY_DAYS = 366  # dates per request, inclusive, whether one or both bounds are given
MAX_LIMIT = 366  # predictions per page
DEFAULT_LIMIT = 100
MAX_TOKEN_LENGTH = 2048
PARAMETERS = ("store", "from", "to", "limit", "next_token")
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_SK = re.compile(r"DATE#\d{4}-\d{2}-\d{2}")


class QueryError(ValueError):
    """A request the API answers with 400 and this message."""


def encode_token(key: dict) -> str:
    """The opaque ``next_token`` for a page that ends at ``key`` (a DynamoDB key, pk and sk)."""
    return base64.urlsafe_b64encode(json.dumps({"pk": key["pk"], "sk": key["sk"]}).encode()).decode().rstrip("=")


def _decode_token(text: str) -> dict:
    refusal = QueryError("'next_token' is not one this API gave out: repeat the request without it")
    if len(text) > MAX_TOKEN_LENGTH:
        raise refusal
    try:
        key = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError):
        raise refusal from None
    if not isinstance(key, dict) or set(key) != {"pk", "sk"} or not all(isinstance(v, str) for v in key.values()):
        raise refusal
    if not _DATE_SK.fullmatch(key["sk"]):
        raise refusal
    return key


def _date(name: str, text: str | None) -> date | None:
    if text in (None, ""):
        return None
    try:
        if not _ISO_DAY.fullmatch(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise QueryError(f"'{name}' must be a date like 2024-05-31, got {text!r}") from None


def _date_range(params: dict) -> tuple[date | None, date | None]:
    """The inclusive range asked for; one bound alone covers MAX_QUERY_DAYS days from it."""
    start, end = _date("from", params.get("from")), _date("to", params.get("to"))
    span = timedelta(days=MAX_QUERY_DAYS - 1)
    if start and end:
        if start > end:
            raise QueryError("'from' is after 'to'")
        if end - start > span:
            raise QueryError(f"at most {MAX_QUERY_DAYS} days per request (from {start} to {end} is {(end - start).days + 1})")
    elif start:
        end = start + span if start <= date.max - span else date.max
    elif end:
        start = end - span if end >= date.min + span else date.min
    return start, end


def _limit(text: str | None) -> int:
    if text in (None, ""):
        return DEFAULT_LIMIT
    if not re.fullmatch("[0-9]{1,4}", text) or not 1 <= int(text) <= MAX_LIMIT:
        raise QueryError(f"'limit' must be a whole number from 1 to {MAX_LIMIT}, got {text!r}")
    return int(text)


@dataclass(frozen=True)
class Query:
    """A validated request for one series' predictions in the dataset's current forecast."""

    dataset: str
    item_id: str
    store_id: str
    sk_from: str
    sk_to: str
    limit: int
    token: dict | None = None

    def pk(self, forecast_id: str) -> str:
        return prediction_pk(self.dataset, forecast_id, self.item_id, self.store_id)

    def start_key(self, forecast_id: str) -> dict | None:
        """Where the page starts: the token's key, refused unless it continues this very request
        (same series and forecast, inside the dates asked for)."""
        if self.token is None:
            return None
        if self.token["pk"] != self.pk(forecast_id) or not self.sk_from <= self.token["sk"] <= self.sk_to:
            raise QueryError(
                "'next_token' belongs to another request or to a forecast since replaced: repeat the request without it"
            )
        return self.token


def parse_query(dataset: str | None, item_id: str | None, params: dict | None) -> Query:
    """Validate ``GET /datasets/{dataset}/predictions/{item_id}?store=&from=&to=&limit=&next_token=``."""
    params = params or {}
    unknown = set(params) - set(PARAMETERS)
    if unknown:
        raise QueryError(f"unknown query parameters {sorted(unknown)}; use {', '.join(PARAMETERS)}")
    if not dataset or not re.fullmatch(DATASET_PATTERN, dataset):
        raise QueryError(f"dataset {dataset!r} is not a dataset name: 1 to 64 of A-Z a-z 0-9 _ -")
    if not item_id or len(item_id) > MAX_ID_LENGTH:
        raise QueryError(f"item_id is required (at most {MAX_ID_LENGTH} characters)")
    store = params.get("store") or None
    if store is not None and len(store) > MAX_ID_LENGTH:
        raise QueryError(f"'store' has at most {MAX_ID_LENGTH} characters")
    start, end = _date_range(params)
    token = _decode_token(params["next_token"]) if params.get("next_token") else None
    return Query(
        dataset=dataset,
        item_id=item_id,
        store_id=store or NO_STORE,
        sk_from=date_sk(start.isoformat()) if start else ALL_DATES[0],
        sk_to=date_sk(end.isoformat()) if end else ALL_DATES[1],
        limit=_limit(params.get("limit")),
        token=token,
    )


QUANTILES = series_item.QUANTILES  # returned when the forecast stored them


def page(query: Query, series: dict) -> tuple[list[dict], dict | None]:
    """The page of a series item (``table_keys.SERIES_SK``, read by :func:`series_item.decode`: its
    forecast in date order) this request asks for: its dates from ``from`` to ``to``, after the
    token's date, at most ``limit`` of them, each as ``{"date", "prediction", "p10", "p50", "p90"}``
    (the quantiles when stored); and the token key (pk, ``DATE#<last date returned>``) when more
    dates follow, else None. Call :meth:`Query.start_key` first: it refuses a token that does not
    continue this request."""
    after = query.token["sk"] if query.token else None
    forecast = series_item.decode(series)
    dates, names = forecast["dates"], [name for name in series_item.VALUES if name in forecast]
    chosen = [
        index
        for index, day in enumerate(dates)
        if query.sk_from <= date_sk(day) <= query.sk_to and (after is None or date_sk(day) > after)
    ]
    rows = [{"date": dates[index], **{name: forecast[name][index] for name in names}} for index in chosen[: query.limit]]
    more = len(chosen) > query.limit
    return rows, ({"pk": series["pk"], "sk": date_sk(rows[-1]["date"])} if more else None)


def present(rows: list[dict]) -> list[dict]:
    """A page's rows as the API returns them, in date order: ``date``, ``prediction`` and, when
    stored, ``p10``, ``p50`` and ``p90`` (numbers as floats)."""
    return [
        {
            "date": row["date"],
            "prediction": float(row["prediction"]),
            **{name: float(row[name]) for name in QUANTILES if name in row},
        }
        for row in sorted(rows, key=lambda row: row["date"])
    ]
