"""The scale benchmark's M5-shaped generator, at a tiny size: the shape the benchmark relies on
(intermittent demand, weekly price steps, promotion days, staggered starts, rows in date order),
determinism, bounded chunks, and that the pipeline's validator accepts every row."""

from __future__ import annotations

import datetime
import gzip

import numpy as np
import pandas as pd
import pytest
from item_prediction.domain import validation
from item_prediction.domain.schema import ColumnMapping
from lambda_build import m5_like

ROWS = 20_000
DAYS = 365


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    path = tmp_path_factory.mktemp("m5") / "sales.csv"
    facts = m5_like.write_csv(path, m5_like.shape_for(ROWS, days=DAYS), seed=3)
    frame = pd.read_csv(path, dtype={"item_id": str, "store_id": str})
    frame["day"] = (pd.to_datetime(frame["date"]) - pd.Timestamp(m5_like.DEFAULT_START)).dt.days
    return path, facts, frame


def test_shape_for_fills_ten_stores_and_lands_near_the_rows_asked():
    shape = m5_like.shape_for(1_000_000)
    assert shape.stores == 10 and shape.series == shape.items * 10
    assert m5_like.shape_for(500, days=100).stores == 6  # tiny: fewer stores than M5's ten, never empty ones


def test_rows_land_near_the_size_asked_and_facts_match_the_file(generated):
    path, facts, frame = generated
    assert abs(facts["rows"] - ROWS) / ROWS < 0.1
    assert facts["rows"] == len(frame)
    assert facts["series"] == frame.groupby(["item_id", "store_id"]).ngroups
    assert facts["bytes"] == path.stat().st_size


def test_rows_come_in_date_order_and_each_series_once_a_day(generated):
    _, _, frame = generated
    assert frame["day"].is_monotonic_increasing
    assert not frame.duplicated(["item_id", "store_id", "date"]).any()


def test_demand_is_intermittent(generated):
    _, facts, frame = generated
    zero_share = (frame["quantity"] == 0).mean()
    assert 0.4 < zero_share < 0.85 and facts["zero_share"] == pytest.approx(zero_share, abs=0.001)
    mostly_zero = frame.groupby(["item_id", "store_id"])["quantity"].apply(lambda q: (q == 0).mean() > 0.5)
    assert mostly_zero.mean() > 0.5  # most series sell nothing on most days
    assert frame["quantity"].max() > 10  # and some are lumpy


def test_prices_step_weekly_and_rarely(generated):
    _, _, frame = generated
    frame = frame.assign(week=frame["day"] // 7)
    assert (frame.groupby(["item_id", "store_id", "week"])["unit_price"].nunique() == 1).all()  # one price a week
    weekly = frame.groupby(["item_id", "store_id", "week"])["unit_price"].first()
    changed = weekly.groupby(level=[0, 1]).diff().fillna(0) != 0
    assert 0 < changed.mean() < 0.05  # sparse steps
    assert (weekly.groupby(level=[0, 1]).nunique() > 1).mean() > 0.3  # many series see at least one
    assert (frame["unit_price"] > 0).all()


def test_promotions_are_runs_of_days_from_the_week_start(generated):
    _, _, frame = generated
    promoted = frame["promotion"] == 1
    assert 0.005 < promoted.mean() < 0.1
    ordered = frame.sort_values(["item_id", "store_id", "day"])
    previous = ordered.groupby(["item_id", "store_id"])["promotion"].shift(1).fillna(0)
    starts = ordered[(ordered["promotion"] == 1) & (previous == 0)]
    first_day = ordered.groupby(["item_id", "store_id"])["day"].transform("min")[starts.index]
    assert ((starts["day"] % 7 == 0) | (starts["day"] == first_day)).all()  # Mondays, or the series' first day
    uplift = frame[promoted]["quantity"].mean() / frame[~promoted]["quantity"].mean()
    assert uplift > 1.1


def test_series_start_at_different_dates_and_run_without_gaps(generated):
    _, _, frame = generated
    spans = frame.groupby(["item_id", "store_id"])["day"].agg(["min", "max", "count"])
    late = spans["min"] > 0
    assert 0.1 < late.mean() < 0.6
    assert spans["min"][late].nunique() > 1
    assert (spans["count"] == spans["max"] - spans["min"] + 1).all()
    assert (spans["max"] == DAYS - 1).all()


def test_the_same_seed_gives_the_same_bytes_and_gzip_the_same_rows(tmp_path):
    shape = m5_like.Shape(items=7, stores=3, days=60)
    m5_like.write_csv(tmp_path / "a.csv", shape, seed=1)
    m5_like.write_csv(tmp_path / "b.csv", shape, seed=1)
    m5_like.write_csv(tmp_path / "c.csv", shape, seed=2)
    m5_like.write_csv(tmp_path / "a.csv.gz", shape, seed=1)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert (tmp_path / "a.csv").read_bytes() != (tmp_path / "c.csv").read_bytes()
    assert gzip.decompress((tmp_path / "a.csv.gz").read_bytes()) == (tmp_path / "a.csv").read_bytes()


def test_chunks_stay_bounded_and_the_frame_matches_the_csv(tmp_path, monkeypatch):
    monkeypatch.setattr(m5_like, "CHUNK_ROWS", 100)
    shape = m5_like.Shape(items=5, stores=4, days=40)
    chunks = list(m5_like.iter_chunks(shape, seed=0))
    assert len(chunks) == 8 and all(len(chunk.day) <= 100 for _, chunk in chunks)
    frames = pd.concat([m5_like.to_frame(series, chunk) for series, chunk in chunks], ignore_index=True)
    m5_like.write_csv(tmp_path / "s.csv", shape, seed=0)
    written = pd.read_csv(tmp_path / "s.csv", dtype={"item_id": str, "store_id": str})
    pd.testing.assert_frame_equal(written, frames, check_dtype=False)
    pd.testing.assert_frame_equal(m5_like.frame(shape, seed=0), frames)  # the whole dataset in one frame
    assert np.array_equal(np.unique(frames["store_id"]), sorted(m5_like.STORES[:4]))


def test_the_validator_accepts_every_row(generated):
    path, facts, _ = generated
    clean, quarantined = [], []
    with open(path, "rb") as handle:
        report = validation.validate(
            handle,
            ColumnMapping.identity(),
            clean_sink=clean.append,
            quarantine_sink=quarantined.append,
            today=datetime.date(2100, 1, 1),
        )
    assert report["rows_in"] == facts["rows"] and report["rows_quarantined"] == 0
    assert sum(len(frame) for frame in clean) == facts["rows"]


def test_a_later_week_continues_the_history_with_the_same_series(tmp_path, monkeypatch):
    monkeypatch.setattr(m5_like, "CHUNK_ROWS", 90)  # windows cut through chunks
    shape = m5_like.Shape(items=5, stores=3, days=40)
    whole = m5_like.write_csv(tmp_path / "whole.csv", shape, seed=4)
    history = m5_like.write_csv(tmp_path / "history.csv", shape, seed=4, window=range(0, 33))
    week = m5_like.write_csv(tmp_path / "week.csv", shape, seed=4, window=range(33, 40))
    header, *rows = (tmp_path / "whole.csv").read_text().splitlines(keepends=True)
    _, *first = (tmp_path / "history.csv").read_text().splitlines(keepends=True)
    _, *later = (tmp_path / "week.csv").read_text().splitlines(keepends=True)
    assert first + later == rows and history["rows"] + week["rows"] == whole["rows"]
    assert (history["days"], week["days"]) == (33, 7)
    assert min(line[:10] for line in later) == "2023-02-04" > max(line[:10] for line in first)  # day 33 from 2023-01-02
