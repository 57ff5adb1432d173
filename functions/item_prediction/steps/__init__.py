"""The pipeline's steps as the handlers run them: read from S3, apply the domain, write results.

:mod:`.validate` and :mod:`.features` import no scikit-learn (their functions run without the
ml-libraries layer); :mod:`.predict` is the Predictions step and the only one that imports ml.
"""
