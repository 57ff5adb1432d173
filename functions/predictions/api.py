"""GET /predictions/{item_id}?store=&from=&to= : the read path, for the HTTP API.

Imports no pandas or scikit-learn: the API function mounts only the aws-utilities layer.
"""

import json

from item_prediction import records
from item_prediction.handler_support import logger, storage


def _response(status: int, body: dict) -> dict:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    try:
        query = records.parse_query((event.get("pathParameters") or {}).get("item_id"), event.get("queryStringParameters"))
    except records.QueryError as exc:
        return _response(400, {"message": str(exc)})
    items = storage().query(query["pk"], query["sk_from"], query["sk_to"])
    return _response(200, {"item_id": query["item_id"], "store_id": query["store_id"], "predictions": records.present(items)})
