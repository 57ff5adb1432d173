"""A saved model bundle is a plain pickle (protocol 5): it loads through the C unpickler as the very
model that was saved, ``joblib.load`` reads it too (the object is ``model.joblib``), and a bundle
saved by the former joblib code still loads and forecasts as it did."""

from __future__ import annotations

import io
import pickle
from functools import cache

import joblib
import numpy as np
import pandas as pd
import pytest
from item_prediction.domain import features
from item_prediction.ml import model
from lambda_build.sample_data import generate_sales


@cache
def trained():
    """(bundle, features): a model trained on a few series with gaps, prices and promotions."""
    frame, manifest = features.build_features(
        generate_sales(items=3, stores=2, periods=200, seed=4, gap_rate=0.08, invalid=False).frame,
        "D",
        known_in_advance=("unit_price", "promotion"),
    )
    return model.train(frame, manifest, horizon=7), frame


def former_dumps(bundle: model.ModelBundle) -> bytes:
    """The bytes ModelBundle.dumps wrote before (joblib, compress=3)."""
    buffer = io.BytesIO()
    joblib.dump(bundle, buffer, compress=3)
    return buffer.getvalue()


def same(a, b) -> bool:
    """Whether two object graphs hold the same values bit for bit (whatever objects they share:
    an unpickled graph shares strings differently from the one pickled)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        values = (a.tolist(), b.tolist()) if a.dtype.hasobject else (a.tobytes(), b.tobytes())
        return a.dtype == b.dtype and a.shape == b.shape and same(*values)
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[key], b[key]) for key in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if hasattr(a, "__dict__"):
        return same(vars(a), vars(b))
    return pickle.dumps(a, protocol=5) == pickle.dumps(b, protocol=5)  # floats bit for bit, bytes, Cython objects


def test_a_bundle_loads_through_the_c_pickle_as_the_very_model_saved(monkeypatch):
    bundle, frame = trained()
    data = bundle.dumps()
    assert data.startswith(model.PICKLE_5)
    assert same(joblib.load(io.BytesIO(data)), bundle), "whoever loads model.joblib with joblib gets the bundle"
    monkeypatch.setattr(joblib, "load", lambda *_: pytest.fail("joblib's unpickler read a bundle saved by dumps"))
    restored = model.ModelBundle.loads(data)
    assert same(restored, bundle)
    pd.testing.assert_frame_equal(model.forecast(restored, frame, 7), model.forecast(bundle, frame, 7), check_exact=True)


def test_a_bundle_saved_by_the_former_joblib_code_loads_and_forecasts_as_it_did():
    bundle, frame = trained()
    restored = model.ModelBundle.loads(former_dumps(bundle))
    assert same(restored, bundle)
    pd.testing.assert_frame_equal(model.forecast(restored, frame, 7), model.forecast(bundle, frame, 7), check_exact=True)
    assert model.ModelBundle.loads(restored.dumps()).metadata == bundle.metadata  # and saves in the new format
