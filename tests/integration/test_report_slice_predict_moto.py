"""A predict-mode run's report slice on moto: the cheaper history read and report data (steps.report
``_dated`` and ``_encode``, domain.report ``_only`` and totals on two columns) write the very slice
document the former code wrote, so the page is the same. The former code is kept here as the reference."""

from __future__ import annotations

import boto3
import numpy as np
import pandas as pd
import pytest
from item_prediction.aws.settings import Settings
from item_prediction.aws.storage import ObjectRef, Storage
from item_prediction.domain import report
from item_prediction.steps import report as reporting
from item_prediction.steps import shard_store
from item_prediction.steps import validate as validate_step
from lambda_build.sample_data import generate_sales

from .conftest import BUCKET, TABLE, csv_bytes

SETTINGS = Settings(BUCKET, TABLE)
ITEM = {"dataset": "sales", "shard": 0, "shard_count": 1}


def former_history(storage: Storage, frame: pd.DataFrame, manifest: dict) -> pd.DataFrame:
    """The former ``report_history`` of a predict run: the stored rows, dates by ``pd.to_datetime``."""
    start = report.history_start(frame["date"].max(), manifest["frequency"]).strftime("%Y-%m-%d")
    rows, _ = shard_store.load_shard(storage, SETTINGS, "sales", 1, 0, since=start, columns=reporting.HISTORY_COLUMNS)
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
    stats = report.series_stats(history, backtest, forecast, frequency)
    return report.reduce_data(stats, history, backtest, forecast, totals, frequency)


def former_encode(frame):
    """The former ``_encode``: the whole frame to objects, NaN as None."""
    if frame is None:
        return None
    out = frame.assign(date=frame["date"].dt.strftime("%Y-%m-%d")) if "date" in frame else frame
    return {"columns": list(out.columns), "rows": out.astype(object).where(out.notna(), None).to_numpy().tolist()}


def uploads() -> list[pd.DataFrame]:
    """A long history (past the 400 days the page reaches), then a re-upload of its last 30 days with
    other quantities (it supersedes) plus a new week; one series starts late (the largest), one stops early."""
    frame = generate_sales(items=6, stores=4, periods=520, seed=8, invalid=False).frame
    days = sorted(frame["date"].unique())
    late = (frame["item_id"] == "ITEM-004") & (frame["store_id"] == "STORE-01") & (frame["date"] < days[-60])
    early = (frame["item_id"] == "ITEM-002") & (frame["store_id"] == "STORE-03") & (frame["date"] > days[-250])
    big = (frame["item_id"] == "ITEM-004") & (frame["store_id"] == "STORE-01")  # the late one: charted first
    frame = frame.assign(quantity=frame["quantity"].where(~big, frame["quantity"] * 50))[~late & ~early]
    again = frame[(frame["date"] > days[-38]) & (frame["date"] <= days[-8])]
    again = again.assign(quantity=(again["quantity"] * 3 + 1).round(2))  # different, so a stale row would show
    return [frame[frame["date"] <= days[-8]], pd.concat([again, frame[frame["date"] > days[-8]]])]


@pytest.fixture
def storage(aws):
    storage = Storage(BUCKET, TABLE, s3=boto3.client("s3"))
    for name, frame in zip(("a.csv", "b.csv"), uploads(), strict=True):
        storage.put_bytes(f"raw/sales/{name}", csv_bytes(frame), "text/csv")
        validate_step.validate_object(storage, SETTINGS, ObjectRef(BUCKET, f"raw/sales/{name}"))
    return storage


def test_a_predict_runs_slice_is_the_one_the_former_code_wrote(storage, monkeypatch):
    last = pd.Timestamp(shard_store.load_shard(storage, SETTINGS, "sales", 1, 0)[0]["date"].max())
    frame = pd.DataFrame({"date": [last - pd.Timedelta(days=29), last]})  # the window: the read needs its end
    manifest = {"since": frame["date"].min().strftime("%Y-%m-%d"), "frequency": "D"}
    keys = generate_sales(items=6, stores=4, periods=1, seed=8, invalid=False).frame[report.SERIES]
    forecast = keys.merge(pd.DataFrame({"date": pd.date_range(last + pd.Timedelta(days=1), periods=14)}), how="cross")
    forecast = forecast.assign(prediction=np.linspace(1, 40, len(forecast)))
    forecast = forecast.assign(p10=forecast["prediction"] * 0.5, p90=forecast["prediction"] * 2)

    history = reporting.report_history(storage, SETTINGS, ITEM, frame, manifest)
    reporting.write_slice(storage, "new.json", history, None, forecast, "D", {"shard": 0})
    with monkeypatch.context() as former:
        former.setattr(report, "_only", former_only)
        former.setattr(report, "report_data", former_report_data)
        former.setattr(reporting, "_encode", former_encode)
        reporting.write_slice(storage, "old.json", former_history(storage, frame, manifest), None, forecast, "D", {"shard": 0})

    new, old = storage.get_json("new.json"), storage.get_json("old.json")
    assert new == old
    assert len(old["history"]["rows"]) > 6 * 150 and len(old["total_history"]["rows"]) == 400, "charts and totals drawn"
    day = (last - pd.Timedelta(days=10)).strftime("%Y-%m-%d")
    again = uploads()[1]
    assert dict(map(tuple, old["total_history"]["rows"]))[day] == pytest.approx(again[again["date"] == day]["quantity"].sum())
    assert ["ITEM-004", "STORE-01"] in [row[:2] for row in old["history"]["rows"]], "the late series is charted"
    summary = {"dataset": "sales", "forecast_id": "r", "frequency": "D"}
    pages = [report.render_data(summary, reporting.read_slice(storage, key)[0]) for key in ("new.json", "old.json")]
    assert pages[0] == pages[1]
