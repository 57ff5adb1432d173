"""The model: the only room that imports scikit-learn and joblib (the Predictions function's
ml-libraries layer). DataValidation's and FeatureEngineering's artifacts leave it out."""
