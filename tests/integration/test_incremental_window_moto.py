"""An incremental upload's predict-mode shard on moto: the recent window plus the prior the training
run stored give the full history's features where forecasts start, and the same series are
forecast as a training run forecasts (one whose last row is before the window included)."""

from __future__ import annotations

import boto3
import pandas as pd
import pytest
from item_prediction.aws import series_item
from item_prediction.aws.settings import Settings
from item_prediction.aws.storage import ObjectRef, Storage
from item_prediction.domain import features
from item_prediction.steps import features as feature_step
from item_prediction.steps import predict as predict_step
from item_prediction.steps import validate as validate_step
from lambda_build.sample_data import generate_sales

from .conftest import BUCKET, TABLE, csv_bytes

pytestmark = pytest.mark.usefixtures("single_threaded")
SETTINGS = Settings(BUCKET, TABLE)
SERIES = ["item_id", "store_id"]
KNOWN = ["unit_price", "promotion"]


@pytest.fixture
def storage(aws):
    aws.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return Storage(BUCKET, TABLE, s3=boto3.client("s3"))


def sales() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the history a model trains on, the next week's upload): six daily series, one of which
    stopped selling before the predict window, one with no rows across the window's start."""
    frame = generate_sales(items=3, stores=2, periods=150, seed=4, invalid=False).frame
    days = sorted(frame["date"].unique())
    start = len(days) - 8 - features.history_needed("D")  # the window of a model trained up to days[-8]
    dormant = (frame["item_id"] == "ITEM-001") & (frame["store_id"] == "STORE-01")
    gapped = (frame["item_id"] == "ITEM-002") & (frame["store_id"] == "STORE-00")
    frame = frame[~(dormant & (frame["date"] >= days[start - 20])) & ~(gapped & frame["date"].isin(days[start - 3 : start + 3]))]
    return frame[frame["date"] <= days[-8]], frame[frame["date"] > days[-8]]


def upload(storage: Storage, key: str, frame: pd.DataFrame) -> None:
    storage.put_bytes(key, csv_bytes(frame), "text/csv")
    validate_step.validate_object(storage, SETTINGS, ObjectRef(BUCKET, key))


def shard_item(mode: str, **extra) -> dict:
    item = {"dataset": "sales", "shard": 0, "shard_count": 1, "frequency": "D", "horizon": 7, "known_in_advance": KNOWN}
    return {**item, "mode": mode, "run_id": f"run-{mode}", **extra}


def built(storage: Storage, item: dict) -> tuple[dict, pd.DataFrame]:
    result = feature_step.build_shard(storage, SETTINGS, item)
    return result, storage.read_parquet(result["features_key"], version_id=result["features_version"])


def origins(frame: pd.DataFrame) -> pd.DataFrame:
    """Each series' last row (where its forecast starts), indexed by series."""
    return features.sort_grid(frame).groupby(SERIES).tail(1).set_index(SERIES).sort_index()


def window_features(storage, item: dict) -> pd.DataFrame:
    """The features of a predict build's window continued from the stored prior (what the forecast
    computes from the window's inputs), built in the domain from the rows and prior the build reads."""
    from item_prediction.aws.runtime import StepTimer

    clean, _, decided, prior = feature_step._load_for(storage, SETTINGS, item, StepTimer())
    assert decided["mode"] == "predict" and prior is not None
    return features.build_features(clean, "D", known_in_advance=KNOWN, prior=prior)[0]


def trained_history(storage) -> tuple[dict, str, str, pd.DataFrame]:
    """The history uploaded and its shard built to train: (the build's result, its data end, the
    key of the prior it stored, the next week's rows, not yet uploaded)."""
    history, week = sales()
    upload(storage, "raw/sales/history.csv", history)
    trained, _ = built(storage, shard_item("train_and_predict"))
    data_end = trained["date_range"][1]
    return trained, data_end, feature_step.prior_key(SETTINGS, trained, data_end), week


def test_a_predict_window_with_the_stored_prior_gives_the_full_historys_features_and_series(storage):
    trained, data_end, prior_key, week = trained_history(storage)
    assert storage.exists(prior_key), "training stores the prior of its model"
    assert len(storage.read_parquet(prior_key)) == 6, "one row per series"
    predict_step.run_shard(storage, SETTINGS, trained)  # the shard's model, trained up to data_end
    upload(storage, "raw/sales/week.csv", week)

    full_result, full = built(storage, shard_item("train_and_predict"))  # training's view: the whole history
    window_result, window = built(storage, shard_item("predict", data_end=data_end))

    assert window_result["mode"] == "predict" and window_result["since"] == feature_step.window_start(data_end, "D")
    assert len(window) < len(full) / 2, "the predict build read the recent window, not the history"
    assert list(window.columns) == features.BASE_COLUMNS, "a window holds the forecast's inputs only"
    assert storage.get_json(window_result["manifest_key"])["inputs_only"] is True
    expected, got = origins(full), origins(window)
    assert list(got.index) == list(expected.index) and ("ITEM-001", "STORE-01") in got.index
    assert got.loc[("ITEM-001", "STORE-01"), "date"] < pd.Timestamp(window_result["since"]), "its last row is before the window"
    pd.testing.assert_frame_equal(got, expected[got.columns], check_dtype=False, check_index_type=False)
    names = features.feature_names("D", KNOWN)  # the prior continues the history where forecasts start
    continued = origins(window_features(storage, shard_item("predict", data_end=data_end)))
    pd.testing.assert_frame_equal(
        continued[["date", *names]], expected[["date", *names]], check_dtype=False, check_index_type=False, rtol=1e-9
    )

    # The forecast set does not depend on the mode: every series, each from its own last period.
    predicted = predict_step.run_shard(storage, SETTINGS, window_result)
    with pytest.raises(ValueError, match="holds a predict window's inputs, not features to train on"):
        predict_step.run_shard(storage, SETTINGS, {**window_result, "mode": "train_and_predict"})
    full_result, _ = built(storage, shard_item("train_and_predict"))  # the window's build replaced the shard's features
    retrained = predict_step.run_shard(storage, SETTINGS, full_result)
    assert predicted["mode"] == "predict" and predicted["series"] == retrained["series"] == 6
    starts = {}
    for result in (predicted, retrained):
        forecast = storage.read_csv(result["predictions_key"], dtype={"item_id": str, "store_id": str})
        starts[result["mode"]] = forecast.groupby(SERIES)["date"].min().to_dict()
    assert starts["predict"] == starts["train_and_predict"]


def test_without_a_stored_prior_a_predict_build_reads_the_whole_history_once_and_stores_it(storage):
    trained, data_end, prior_key, week = trained_history(storage)
    storage.delete(prior_key)  # a model trained before priors were stored
    upload(storage, "raw/sales/week.csv", week)

    first, whole = built(storage, shard_item("predict", data_end=data_end))
    assert first["mode"] == "predict" and first["since"] is None and storage.exists(prior_key)
    second, window = built(storage, shard_item("predict", data_end=data_end))
    assert second["since"] is not None and len(window) < len(whole) / 2
    got = origins(window)
    pd.testing.assert_frame_equal(got, origins(whole)[got.columns], check_dtype=False, check_index_type=False)
    names = features.feature_names("D", KNOWN)
    continued = origins(window_features(storage, shard_item("predict", data_end=data_end)))
    pd.testing.assert_frame_equal(continued[names], origins(whole)[names], check_dtype=False, check_index_type=False, rtol=1e-9)


def test_a_predict_mode_forecast_from_the_window_equals_the_same_models_from_the_whole_history(storage):
    from item_prediction.ml import model

    history, week = sales()
    upload(storage, "raw/sales/history.csv", history)
    trained, _ = built(storage, shard_item("train_and_predict"))
    predict_step.run_shard(storage, SETTINGS, trained)
    bundle, _ = predict_step.load_latest_model(storage, f"{SETTINGS.models_prefix}sales/shard=00000/")
    upload(storage, "raw/sales/week.csv", week)
    _, full = built(storage, shard_item("train_and_predict"))
    window_result, _ = built(storage, shard_item("predict", data_end=trained["date_range"][1]))

    predicted = predict_step.run_shard(storage, SETTINGS, window_result)
    got = storage.read_csv(predicted["predictions_key"], dtype={"item_id": str, "store_id": str})
    full["date"] = pd.to_datetime(full["date"])
    expected = model.forecast(bundle, full, 7)
    key = ["item_id", "store_id", "date"]
    got = got.assign(date=pd.to_datetime(got["date"])).sort_values(key).reset_index(drop=True)
    expected = expected.sort_values(key).reset_index(drop=True)
    # The CSV part holds series_item.PLACES decimals: equal to that place (a value within 1e-6 of
    # the other's may round to the neighbouring last digit, hence one unit of it).
    expected["prediction"] = expected["prediction"].round(series_item.PLACES)
    places = 10.0**-series_item.PLACES
    pd.testing.assert_frame_equal(
        got[[*key, "prediction"]], expected[[*key, "prediction"]], check_dtype=False, rtol=0, atol=places * 1.001
    )
