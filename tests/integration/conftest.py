"""Lambda sets these before the handler module is imported; so do the tests."""

import os

os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "ItemPredictionTest")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "item-prediction")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
