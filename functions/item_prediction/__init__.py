"""item-prediction's code shared by the functions, in four rooms (each imports only those before it):

* :mod:`item_prediction.domain`: the rules on pandas frames and the standard library (the CSV
  contract, decoding, validation, features, CSV cells for people); no AWS, testable alone;
* :mod:`item_prediction.ml`: the model; the only place scikit-learn and joblib are imported, so
  DataValidation and FeatureEngineering run without the ml-libraries layer (their artifacts leave
  this room out);
* :mod:`item_prediction.aws`: the adapters: S3 and DynamoDB storage, the table's keys, the ingest
  ledger and lease, events, settings and the Powertools objects each handler shares;
* :mod:`item_prediction.steps`: the pipeline's steps as the handlers run them (domain + aws; only
  :mod:`item_prediction.steps.predict` imports ml).
"""

__version__ = "1.0.0"
