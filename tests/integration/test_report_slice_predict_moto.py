"""A run's report slice on moto: the cheaper history read and report data (steps.report ``_dated``
and ``_encode``; the history read coded, ``shard_store.load_shard(coded=True)``; domain.report
``_only``, ``_coded_only``, ``_keys``, the stats from the rows they read, totals on two columns)
write the very slice document the former code wrote, so the page is the same: predict runs (late,
early and superseded series, no stores, weekly data, parts written before dictionary encoding) and
a training run's slice. The former code is kept here as the reference."""

from __future__ import annotations

import tempfile

import boto3
import numpy as np
import pandas as pd
import pytest
from item_prediction.aws import columnar
from item_prediction.aws.settings import Settings
from item_prediction.aws.storage import ObjectRef, Storage
from item_prediction.domain import report
from item_prediction.steps import report as reporting
from item_prediction.steps import shard_store
from item_prediction.steps import validate as validate_step
from lambda_build.sample_data import generate_sales

from .conftest import BUCKET, TABLE, csv_bytes

SETTINGS = Settings(BUCKET, TABLE)


def former_history(storage: Storage, dataset: str, frame: pd.DataFrame, manifest: dict) -> pd.DataFrame:
    """The former ``report_history`` of a predict run: the stored rows as text, dates by ``pd.to_datetime``."""
    start = report.history_start(frame["date"].max(), manifest["frequency"]).strftime("%Y-%m-%d")
    rows, _ = shard_store.load_shard(storage, SETTINGS, dataset, 1, 0, since=start, columns=reporting.HISTORY_COLUMNS)
    return rows.assign(date=pd.to_datetime(rows["date"], format="%Y-%m-%d"))


def former_only(frame, keys):
    """The former ``_only``: an item pre-filter, then an inner merge on the keys."""
    if frame is None:
        return None
    candidates = frame[frame["item_id"].isin({key[0] for key in keys})]
    return candidates.merge(pd.DataFrame(keys, columns=report.SERIES, dtype="object"), on=report.SERIES)


def former_report_data(history, backtest, forecast, frequency: str) -> dict:
    """The former ``report_data``: the totals from every column of the recent history."""
    recent = report._last_periods(history, report.TOTAL_HISTORY_PERIODS[frequency], frequency)
    totals = {
        "total_history": report._total(recent, ["quantity"]),
        "total_backtest": report._backtest_total(backtest),
        "total_forecast": report._total(forecast, ["prediction"]),
    }
    stats = report.series_stats(history, backtest, forecast, frequency)  # from the whole history
    return report.reduce_data(stats, history, backtest, forecast, totals, frequency)


def former_keys(frame):
    """The former ``_keys``: the frame's ids by ``itertuples``."""
    return list(frame[report.SERIES].itertuples(index=False, name=None))


def former_encode(frame):
    """The former ``_encode``: the whole frame to objects, NaN as None."""
    if frame is None:
        return None
    out = frame.assign(date=frame["date"].dt.strftime("%Y-%m-%d")) if "date" in frame else frame
    return {"columns": list(out.columns), "rows": out.astype(object).where(out.notna(), None).to_numpy().tolist()}


def uploads(frequency: str = "D", stores: int = 4) -> list[pd.DataFrame]:
    """A long history (past the periods the page reaches), then a re-upload of its last periods with
    other quantities (it supersedes) plus new ones; one series starts late (the largest), one stops early."""
    periods, late_at, early_at = (520, 60, 250) if frequency == "D" else (200, 12, 60)
    frame = generate_sales(items=6, stores=max(stores, 1), periods=periods, frequency=frequency, seed=8, invalid=False).frame
    frame = frame if stores else frame.drop(columns="store_id")  # an upload without stores: the series are the items
    store = frame["store_id"] if stores else pd.Series("_", index=frame.index)
    days = sorted(frame["date"].unique())
    late = (frame["item_id"] == "ITEM-004") & (store.isin(["STORE-01", "_"])) & (frame["date"] < days[-late_at])
    early = (frame["item_id"] == "ITEM-002") & (store.isin(["STORE-03", "_"])) & (frame["date"] > days[-early_at])
    big = (frame["item_id"] == "ITEM-004") & (store.isin(["STORE-01", "_"]))  # the late one: charted first
    frame = frame.assign(quantity=frame["quantity"].where(~big, frame["quantity"] * 50))[~late & ~early]
    again = frame[
        (frame["date"] > days[-38 if frequency == "D" else -10]) & (frame["date"] <= days[-8 if frequency == "D" else -2])
    ]
    again = again.assign(quantity=(again["quantity"] * 3 + 1).round(2))  # different, so a stale row would show
    newer = days[-8 if frequency == "D" else -2]
    return [frame[frame["date"] <= newer], pd.concat([again, frame[frame["date"] > newer]])]


def upload(storage: Storage, dataset: str, frames: list[pd.DataFrame], first: int = 0) -> None:
    for number, frame in enumerate(frames, start=first):
        key = f"raw/{dataset}/{number}.csv"
        storage.put_bytes(key, csv_bytes(frame), "text/csv")
        validate_step.validate_object(storage, SETTINGS, ObjectRef(BUCKET, key))


@pytest.fixture
def storage(aws):
    storage = Storage(BUCKET, TABLE, s3=boto3.client("s3"))
    upload(storage, "sales", uploads())
    return storage


def forecast_of(history: pd.DataFrame, frequency: str) -> pd.DataFrame:
    """A forecast of every series (a band too) over the periods after the history's last."""
    keys = history[report.SERIES].drop_duplicates().astype(object)
    step = report.STEP[frequency]
    dates = pd.DataFrame({"date": [history["date"].max() + step * (n + 1) for n in range(14 if frequency == "D" else 8)]})
    forecast = keys.merge(dates, how="cross")
    forecast = forecast.assign(prediction=np.linspace(1, 40, len(forecast)))
    return forecast.assign(p10=forecast["prediction"] * 0.5, p90=forecast["prediction"] * 2)


def write_both(storage: Storage, monkeypatch, history, former_history, backtest, forecast, frequency: str) -> tuple[dict, dict]:
    """(the slice written now, the slice the former code writes), each as stored and read back."""
    reporting.write_slice(storage, "new.json", history, backtest, forecast, frequency, {"shard": 0})
    with monkeypatch.context() as former:
        former.setattr(report, "_only", former_only)
        former.setattr(report, "_keys", former_keys)
        former.setattr(report, "report_data", former_report_data)
        former.setattr(reporting, "_encode", former_encode)
        reporting.write_slice(storage, "old.json", former_history, backtest, forecast, frequency, {"shard": 0})
    return storage.get_json("new.json"), storage.get_json("old.json")


def same_page(storage: Storage, frequency: str) -> None:
    summary = {"dataset": "sales", "forecast_id": "r", "frequency": frequency}
    pages = [report.render_data(summary, reporting.read_slice(storage, key)[0]) for key in ("new.json", "old.json")]
    assert pages[0] == pages[1]


def predict_slices(storage: Storage, monkeypatch, dataset: str, frequency: str) -> tuple[dict, dict, pd.Timestamp]:
    """A predict run's slice of ``dataset`` (its feature window: the last 30 periods), now and formerly."""
    last = pd.Timestamp(shard_store.load_shard(storage, SETTINGS, dataset, 1, 0)[0]["date"].max())
    frame = pd.DataFrame({"date": [last - 29 * report.STEP[frequency], last]})  # the window: the read needs its end
    manifest = {"since": frame["date"].min().strftime("%Y-%m-%d"), "frequency": frequency}
    item = {"dataset": dataset, "shard": 0, "shard_count": 1}
    history = reporting.report_history(storage, SETTINGS, item, frame, manifest)
    assert isinstance(history["item_id"].dtype, pd.CategoricalDtype), "the predict run reads its history coded"
    former = former_history(storage, dataset, frame, manifest)
    new, old = write_both(storage, monkeypatch, history, former, None, forecast_of(former, frequency), frequency)
    return new, old, last


def test_a_predict_runs_slice_is_the_one_the_former_code_wrote(storage, monkeypatch):
    new, old, last = predict_slices(storage, monkeypatch, "sales", "D")
    assert new == old
    assert len(old["history"]["rows"]) > 6 * 150 and len(old["total_history"]["rows"]) == 400, "charts and totals drawn"
    day = (last - pd.Timedelta(days=10)).strftime("%Y-%m-%d")
    again = uploads()[1]
    assert dict(map(tuple, old["total_history"]["rows"]))[day] == pytest.approx(again[again["date"] == day]["quantity"].sum())
    assert ["ITEM-004", "STORE-01"] in [row[:2] for row in old["history"]["rows"]], "the late series is charted"
    assert any(row[7] is not None for row in old["stats"]["rows"]), "a change against last year is measured"
    same_page(storage, "D")


@pytest.mark.parametrize(("frequency", "stores"), [("W", 4), ("D", 0)], ids=["weekly", "no-stores"])
def test_a_weekly_or_storeless_predict_slice_is_the_former_one(aws, monkeypatch, frequency, stores):
    storage = Storage(BUCKET, TABLE, s3=boto3.client("s3"))
    upload(storage, "sales", uploads(frequency, stores))
    new, old, _ = predict_slices(storage, monkeypatch, "sales", frequency)
    assert new == old
    assert len(old["history"]["rows"]) > 6 * 20 and len(old["total_history"]["rows"]) > 100, "charts and totals drawn"
    assert ({row[1] for row in old["history"]["rows"]} == {"_"}) == (not stores), "storeless series have the store _"
    same_page(storage, frequency)


def test_parts_written_before_dictionary_encoding_read_coded_give_the_former_slice(aws, monkeypatch):
    """The history's first upload as a plain part (as validation wrote it before), the re-upload
    dictionary-encoded: the coded read takes the text of the one and the dictionary of the other."""
    storage = Storage(BUCKET, TABLE, s3=boto3.client("s3"))
    first, second = uploads()
    with monkeypatch.context() as plain:
        plain.setattr(columnar, "dictionary_encoded", lambda frame, columns: frame)
        upload(storage, "sales", [first])
    upload(storage, "sales", [second], first=1)  # key 1.csv: after 0.csv
    parts = sorted(shard_store.list_parts(storage, SETTINGS, "sales"), key=lambda part: part.key)
    encoded = []
    for part in parts:
        with tempfile.TemporaryFile() as handle:
            storage.download(part.key, handle)
            encoded.append(isinstance(next(columnar.iter_row_groups(handle, coded=("date",)))["date"].array, pd.Categorical))
    assert encoded == [False, True], "one plain part, one dictionary-encoded"
    rows, _ = shard_store.load_shard(storage, SETTINGS, "sales", 1, 0, columns=reporting.HISTORY_COLUMNS, coded=True)
    text, _ = shard_store.load_shard(storage, SETTINGS, "sales", 1, 0, columns=reporting.HISTORY_COLUMNS)
    assert rows.astype(str).equals(text.astype(str)), "the same rows, superseded alike"
    cuts = pd.Series(["2024-05-01"], index=pd.MultiIndex.from_tuples([("ITEM-001", "STORE-02")]))
    rows, _ = shard_store.load_shard(storage, SETTINGS, "sales", 1, 0, since="2024-03-01", cuts=cuts, coded=True)
    text, _ = shard_store.load_shard(storage, SETTINGS, "sales", 1, 0, since="2024-03-01", cuts=cuts)
    assert rows.astype(str).equals(text.astype(str)) and isinstance(rows["date"].dtype, pd.CategoricalDtype), "with cuts too"
    cut = text[(text["item_id"] == "ITEM-001") & (text["store_id"] == "STORE-02")]
    assert text["date"].min() == "2024-03-01" and cut["date"].min() == "2024-05-01", "each series from its own cut"
    new, old, _ = predict_slices(storage, monkeypatch, "sales", "D")
    assert new == old
    same_page(storage, "D")


def test_a_training_runs_slice_is_the_one_the_former_code_wrote(storage, monkeypatch):
    """A training run's history is its feature frame (ids as text) and its slice has the backtest."""
    rows, _ = shard_store.load_shard(storage, SETTINGS, "sales", 1, 0)
    frame = rows.assign(date=pd.to_datetime(rows["date"]), lag_7=1.0)
    cutoff = frame["date"].max() - pd.Timedelta(days=14)
    held = frame[frame["date"] > cutoff]
    backtest = held[report.SERIES + ["date"]].assign(
        actual=held["quantity"], prediction=held["quantity"] * 1.1 + 0.3, naive=held["quantity"].shift(1, fill_value=0.0)
    )
    backtest = backtest.assign(p10=backtest["prediction"] - 2, p90=backtest["prediction"] + 2)
    manifest = {"frequency": "D"}  # no "since": the feature frame is the history
    history = reporting.report_history(storage, SETTINGS, {"dataset": "sales", "shard": 0, "shard_count": 1}, frame, manifest)
    assert history is frame
    new, old = write_both(storage, monkeypatch, history, frame, backtest, forecast_of(frame, "D"), "D")
    assert new == old
    assert old["backtest"] is not None and old["total_backtest"]["columns"][-1] == "rows", "the backtest is drawn"
    same_page(storage, "D")
