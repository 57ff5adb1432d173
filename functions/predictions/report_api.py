"""GET /datasets/{dataset}/report: a short-lived link to the dataset's current forecast report.

Included in the read API (:mod:`predictions.api`, same function, same IAM auth) as a Powertools
router. The dataset's CURRENT pointer names the report (``report_key``, a page under
``reports/<dataset>/``); the answer is ``{"dataset", "forecast_id"`` (the generation on display),
``"url", "expires_in"}``: a presigned S3 GET of that page,
valid for :data:`URL_SECONDS`, which a browser opens as it is (the page needs nothing else).

* 400 ``{"message"}`` for a dataset name outside the allowed pattern;
* 404 when the dataset has no current forecast, its forecast has no report, or the page is gone
  (the bucket's retention of reports/ expired it);
* 503 with ``Retry-After`` when DynamoDB or S3 fails (the API's handler for botocore errors).
"""

from __future__ import annotations

import re

from aws_lambda_powertools.event_handler.exceptions import BadRequestError, NotFoundError
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from item_prediction.aws import table_keys
from item_prediction.aws.runtime import logger, storage
from item_prediction.domain.schema import DATASET_PATTERN

URL_SECONDS = 300  # long enough to open the page, short enough that a leaked link soon stops working
router = APIGatewayHttpRouter()


def _dataset() -> str:
    """The path's dataset (API Gateway's path parameter, else the path's second segment)."""
    given = router.current_event.path_parameters or {}
    segments = router.current_event.path.split("/")
    dataset = given.get("dataset") or (segments[2] if len(segments) > 2 else "")
    if not re.fullmatch(DATASET_PATTERN, dataset):
        raise BadRequestError(f"dataset {dataset!r} is not a dataset name: 1 to 64 of A-Z a-z 0-9 _ -")
    return dataset


@router.get("/datasets/[^/]+/report")
def get_report() -> dict:
    dataset = _dataset()
    current = storage().get_item(table_keys.current_key(dataset))
    if current is None:
        raise NotFoundError(f"dataset {dataset!r} has no current forecast")
    key, run = current.get("report_key"), current.get("generation") or current.get("forecast_id")  # or a pre-fan-out forecast
    logger.append_keys(dataset=dataset, forecast_id=run, report_key=key)
    if not key:
        raise NotFoundError(f"the current forecast of dataset {dataset!r} ({run}) has no report")
    if storage().head(key) is None:
        raise NotFoundError(f"the report of dataset {dataset!r} ({key}) no longer exists: run the pipeline again")
    return {
        "dataset": dataset,
        "forecast_id": run,
        "url": storage().presigned_url(key, URL_SECONDS),
        "expires_in": URL_SECONDS,
    }
