"""GET /predictions/{item_id}?store=S&from=YYYY-MM-DD&to=YYYY-MM-DD : the read path, for the HTTP API.

Handler ``predictions.api.handler`` (API Gateway HTTP API, payload format 2.0). ``store`` is
optional (series without a store); ``from`` and ``to`` are optional and inclusive, at most 366
days apart. Answers 200 with ``{"item_id", "store_id", "predictions": [{"date", "prediction",
"model_version"}]}`` in date order, 400 with ``{"message"}`` for a bad request, 404 when the
series has no predictions at all.

Imports no pandas or scikit-learn: one DynamoDB Query (pk, sk BETWEEN) per request.
"""

import json

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from item_prediction import records
from item_prediction.handler_support import logger, storage


def _response(status: int, body: dict) -> dict:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    request = APIGatewayProxyEventV2(event)
    try:
        query = records.parse_query((request.path_parameters or {}).get("item_id"), request.query_string_parameters)
    except records.QueryError as exc:
        logger.info("bad request", extra={"reason": str(exc), "path": request.raw_path})
        return _response(400, {"message": str(exc)})
    logger.append_keys(pk=query["pk"])
    items = storage().query(query["pk"], query["sk_from"], query["sk_to"])
    if not items and not storage().query(query["pk"], records.date_sk("0000-00-00"), records.date_sk("9999-99-99"), limit=1):
        hint = "" if query["store_id"] != records.NO_STORE else "; for an item sold in stores, add ?store=<store_id>"
        return _response(404, {"message": f"no predictions for item {query['item_id']!r} in store {query['store_id']!r}{hint}"})
    return _response(200, {"item_id": query["item_id"], "store_id": query["store_id"], "predictions": records.present(items)})
