"""item-prediction's domain: validation, features and models on pandas frames.

Pure Python on pandas; nothing here talks to AWS except :mod:`item_prediction.storage`, the
adapter the handlers use. Modules that DataValidation and FeatureEngineering import never import
scikit-learn: those functions run without the ml-libraries layer.
"""

__version__ = "1.0.0"
