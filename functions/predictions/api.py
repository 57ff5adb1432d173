"""GET /datasets/{dataset}/predictions/{item_id}?store=S&from=YYYY-MM-DD&to=YYYY-MM-DD&limit=N&next_token=T

Handler ``predictions.api.handler`` (API Gateway HTTP API, payload format 2.0), on Powertools'
``APIGatewayHttpResolver``. ``store`` is optional (series without a store); ``from`` and ``to``
are optional and inclusive, at most 366 days apart (one bound alone covers 366 days from it);
``limit`` is 1 to 366 predictions per page (default 100); ``next_token`` continues a page.

* 200 ``{"dataset", "item_id", "store_id", "forecast_id", "model_version", "predictions":
  [{"date", "prediction", "p10", "p50", "p90"}], "next_token"}`` in date order (the quantiles when
  the forecast stored them), from the dataset's current forecast
  only (``next_token`` is null on the last page);
* 400 ``{"message"}`` for a bad request; 404 when the dataset has no current forecast or the
  series has none in it; 503 with ``Retry-After`` when DynamoDB fails.

Reads the dataset's CURRENT pointer (GetItem, consistent): its generation and shard count; then
the generation's pointer for the series' shard (``table_keys.series_shard``, GetItem): the
forecast holding the series; then that forecast's item of the series (``sk = SERIES``: its whole
forecast in one JSON string, or as lists when an earlier version wrote it, read by
:mod:`item_prediction.aws.series_item`; GetItem), from which ``from``/``to``, ``limit`` and
``next_token`` take the page (:func:`item_prediction.aws.api_query.page`): three consistent
GetItems in all. An item in a layout this code does not know (a newer writer) is a 500 that says so. A CURRENT written
before shards existed names its forecast itself. Imports no pandas or scikit-learn.
``GET /datasets/{dataset}/report`` (a link to the dataset's forecast report) is :mod:`predictions.report_api`, included here.
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import BadRequestError, NotFoundError
from aws_lambda_powertools.logging import correlation_paths
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError
from item_prediction.aws import api_query, series_item, table_keys
from item_prediction.aws.runtime import initialise, logger, storage
from item_prediction.domain.schema import NO_STORE

from . import report_api

initialise(parquet=False)  # clients made at init, outside the handler (item_prediction.aws.runtime.initialise)

RETRY_AFTER_SECONDS = 2
app = APIGatewayHttpResolver()
app.include_router(report_api.router)  # GET /datasets/{dataset}/report


def _path_parameter(name: str, position: int) -> str | None:
    """A path parameter as API Gateway decoded it, else that segment of the path (events made by
    hand). The route below is a regex rather than ``<name>`` because Powertools' ``<name>``
    excludes characters such as ``#`` that ids may hold: our own checks decide."""
    given = app.current_event.path_parameters or {}
    if name in given:
        return given[name]
    segments = app.current_event.path.split("/")
    return segments[position] if len(segments) > position else None


@app.get("/datasets/[^/]+/predictions/[^/]+")
def get_predictions() -> dict:
    try:
        query = api_query.parse_query(
            _path_parameter("dataset", 2), _path_parameter("item_id", 4), app.current_event.query_string_parameters
        )
    except api_query.QueryError as exc:
        logger.info("bad request", extra={"reason": str(exc)})
        raise BadRequestError(str(exc)) from None
    current = storage().get_item(table_keys.current_key(query.dataset))
    if current is None:
        raise NotFoundError(f"dataset {query.dataset!r} has no current forecast")
    run, model_version = _forecast_of(query, current)
    logger.append_keys(dataset=query.dataset, forecast_id=run)
    try:
        query.start_key(run)  # a token must continue this very request
    except api_query.QueryError as exc:
        raise BadRequestError(str(exc)) from None
    series = storage().get_item({"pk": query.pk(run), "sk": table_keys.SERIES_SK})
    if series is None:
        raise _no_series(query)
    rows, last = api_query.page(query, series)
    return {
        "dataset": query.dataset,
        "item_id": query.item_id,
        "store_id": query.store_id,
        "forecast_id": run,
        "model_version": model_version,
        "predictions": api_query.present(rows),
        "next_token": api_query.encode_token(last) if last else None,
    }


def _forecast_of(query: api_query.Query, current: dict) -> tuple[str, str | None]:
    """The forecast that holds the series and its model: the current generation's pointer for the
    series' shard (one more consistent read), or the pointer's own forecast (written before shards)."""
    if "generation" not in current:
        return current["forecast_id"], current.get("model_version")
    shard = table_keys.series_shard(query.item_id, query.store_id, int(current["shard_count"]))
    pointer = storage().get_item(table_keys.shard_pointer_key(query.dataset, current["generation"], shard))
    if pointer is None:
        raise _no_series(query)
    return pointer["forecast_id"], pointer.get("model_version")


def _no_series(query: api_query.Query) -> NotFoundError:
    """The 404 for a series the forecast on display does not hold (with the store hint when none was given)."""
    hint = "" if query.store_id != NO_STORE else "; for an item sold in stores, add ?store=<store_id>"
    return NotFoundError(
        f"no predictions for item {query.item_id!r} in store {query.store_id!r} in dataset {query.dataset!r}{hint}"
    )


@app.exception_handler([ClientError, BotocoreConnectionError, HTTPClientError])
def dynamodb_unavailable(exc: Exception) -> Response:
    """DynamoDB (or S3, for the report's link) failed or could not be reached: a 503 the client may retry, not a 500."""
    code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
    logger.warning("DynamoDB unavailable", extra={"error": code})
    return Response(
        status_code=503,
        content_type=content_types.APPLICATION_JSON,
        body={"message": f"predictions are unavailable for a moment ({code}): retry after {RETRY_AFTER_SECONDS} seconds"},
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


@app.exception_handler(series_item.UnknownFormat)
def unknown_item_format(exc: series_item.UnknownFormat) -> Response:
    """A series item this version cannot read (written by a newer one): a 500 naming it, not a crash."""
    logger.error("unknown series item format", extra={"reason": str(exc)})
    return Response(status_code=500, content_type=content_types.APPLICATION_JSON, body={"message": str(exc)})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
def handler(event, context):
    return app.resolve(event, context)
