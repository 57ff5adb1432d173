"""The forecast report's page: self-contained, bounded, and showing what a planner asks first."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pandas as pd
from item_prediction.domain import report

from tests.report_frames import report_frames, summary


class Page(HTMLParser):
    """The page's elements as a browser's parser sees them: tags with attributes, JSON specs, text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.specs: dict[str, dict] = {}
        self.text: list[str] = []
        self._spec: str | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        self._spec = attributes.get("id") if attributes.get("type") == "application/json" else None

    def handle_data(self, data):
        if self._spec:
            self.specs[self._spec] = json.loads(data)
            self._spec = None
        elif self.tags and self.tags[-1][0] not in ("script", "style"):
            self.text.append(data)


def specs_of(page: Page) -> list[dict]:
    return [page.specs[attrs["data-spec"]] for tag, attrs in page.tags if tag == "div" and attrs.get("class") == "chart"]


def titles(page: Page) -> list[str]:
    return [spec["title"]["text"] for spec in specs_of(page)]


def test_the_page_requests_nothing_and_inlines_its_library():
    history, backtest, forecast = report_frames()
    text = report.render_report(summary(), history, backtest, forecast)
    page = Page(text)
    assert not [attrs for _, attrs in page.tags if {"src", "href"} & attrs.keys()], "no external script, style or link"
    policy = next(attrs["content"] for tag, attrs in page.tags if attrs.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in policy and "connect-src 'none'" in policy and "http" not in policy
    assert report.library() in text and "vegaEmbed" in report.library()


def test_the_asset_is_the_pinned_vega_builds():
    header = report.library().splitlines()[0]
    assert "vega@6.4.0, vega-lite@6.5.0, vega-embed@7.3.0" in header and "BSD-3-Clause" in header


def test_charts_show_the_whole_dataset_the_largest_and_the_worst_series_each_once():
    history, backtest, forecast = report_frames(items=4, stores=2)
    page = Page(report.render_report(summary(), history, backtest, forecast))
    names = titles(page)
    largest, worst = report.pick_series(report.series_stats(history, backtest, forecast, "W"))
    assert names == ["Whole dataset (sum of every series)"] + [report.series_label(*key) for key in largest + worst]
    assert len(largest) == report.MAX_LARGEST and len(worst) == 2 and not set(largest) & set(worst)
    assert len(set(names)) == len(names)


def test_a_series_chart_holds_its_history_backtest_forecast_and_band():
    history, backtest, forecast = report_frames(items=1, stores=1)
    chart = specs_of(Page(report.render_report(summary(), history, backtest, forecast)))[1]
    rows = chart["data"]["values"]
    kinds = {row.get("k") for row in rows}
    assert kinds == {"actual", "backtest forecast", "seasonal naive", "forecast", None}  # None: the band's rows
    assert sum(row.get("k") == "forecast" for row in rows) == len(forecast)
    assert sum("lo" in row for row in rows) == len(forecast) and chart["layer"][0]["mark"]["type"] == "area"
    assert sum(row.get("k") == "actual" for row in rows) == report.HISTORY_PERIODS["W"], "history capped"


def test_without_a_band_or_a_backtest_the_charts_leave_them_out():
    history, _, forecast = report_frames(items=2, stores=1, band=False)
    page = Page(report.render_report(summary(), history, None, forecast))
    for chart in specs_of(page):
        assert [layer["mark"]["type"] for layer in chart["layer"]] == ["line"]
        assert {row["k"] for row in chart["data"]["values"]} == {"actual", "forecast"}
    assert "Largest backtest error" not in "".join(page.text)


def test_a_big_dataset_gives_a_bounded_page():
    history, backtest, forecast = report_frames(items=200, stores=5, periods=160, frequency="D")
    text = report.render_report(summary("D"), history, backtest, forecast)
    page = Page(text)
    assert len(specs_of(page)) == 1 + report.MAX_LARGEST + report.MAX_WORST
    assert len(text.encode()) < 2_000_000, len(text.encode())
    rows_in_tables = sum(1 for tag, _ in page.tags if tag == "tr")
    assert rows_in_tables <= 2 * (report.TABLE_ROWS + 1) + 30


def test_the_summary_says_what_came_in_and_how_the_model_did_against_naive():
    history, backtest, forecast = report_frames()
    text = " ".join(Page(report.render_report(summary(), history, backtest, forecast)).text)
    for fact in ("1,000", "990", "quarantined: negative_quantity", "0123456789abcdef-deadbeef", "weekly", "3.21", "4.50"):
        assert fact in text, fact
    assert "12.3%" in text and "17.0%" in text and "28.7% lower" in text
    assert "coverage" not in text, "no interval in the backtest nor in the metrics: no coverage line"
    with_coverage = {**summary(), "metrics": {**summary()["metrics"], "interval_coverage": 0.81}}
    text = " ".join(Page(report.render_report(with_coverage, history, backtest, forecast)).text)
    assert "P10-P90 coverage (80% expected) 81.0%" in text
    with_sums = {**summary(), "metrics": {**summary()["metrics"], "sums": {"inside_p10_p90": 30, "count": 40}}}
    text = " ".join(Page(report.render_report(with_sums, history, backtest, forecast)).text)
    assert "P10-P90 coverage (80% expected) 75.0%" in text


def test_interval_coverage_is_counted_from_the_backtest_band():
    history, backtest, forecast = report_frames(items=1, stores=1, horizon=4)
    backtest = backtest.assign(p10=backtest["actual"] - 1, p90=backtest["actual"] + 1)
    backtest.loc[backtest.index[0], "p90"] = backtest["actual"].iloc[0] - 0.5  # one of four outside
    text = " ".join(Page(report.render_report(summary(), history, backtest, forecast)).text)
    assert "P10-P90 coverage (80% expected)" in text and "75.0%" in text


def test_the_change_against_last_year_compares_the_same_weeks():
    history = pd.DataFrame(
        {"item_id": ["A", "B"], "store_id": ["_", "S1"], "date": pd.to_datetime(["2024-01-01"] * 2), "quantity": [100.0, 10.0]}
    )
    forecast = pd.DataFrame(
        {
            "item_id": ["A", "B", "C"],
            "store_id": ["_", "S1", "S1"],
            "date": pd.to_datetime(["2024-12-30"] * 3),  # 52 weeks after 2024-01-01
            "prediction": [150.0, 9.0, 5.0],
        }
    )
    table = report.change_table(report.series_stats(history, None, forecast, "W"))
    assert list(table["item_id"]) == ["A", "B"], "C has no last year: left out"
    assert table["change"].round(3).tolist() == [0.5, -0.1]
    assert report.series_label("A", "_") == "A" and report.series_label("B", "S1") == "B @ S1"


def test_ids_cannot_inject_markup_or_close_the_spec_script():
    history, backtest, forecast = report_frames(items=1, stores=1)
    hostile = "</script><script>alert(1)</script><b>"
    frames = [frame.assign(item_id=hostile) for frame in (history, backtest, forecast)]
    text = report.render_report({**summary(), "dataset": "<i>x</i>"}, *frames)
    assert hostile not in text and "<i>x</i>" not in text
    page = Page(text)
    assert hostile in titles(page)[1] and not [tag for tag, _ in page.tags if tag in ("b", "i")]


def _split(frame, shard_of):
    return [
        frame[[shard_of(item, store) == s for item, store in zip(frame["item_id"], frame["store_id"], strict=True)]]
        for s in range(3)
    ]


def test_slices_of_disjoint_series_merge_into_the_page_of_all_of_them():
    history, backtest, forecast = report_frames(items=10, stores=3)  # 30 series: more than the charts and tables show
    whole = report.render_report(summary(), history, backtest, forecast)
    shard_of = lambda item, store: (int(item[-3:]) * 7 + int(store[1:])) % 3  # noqa: E731 - three uneven "shards"
    parts = [
        report.report_data(*frames, "W")
        for frames in zip(*(_split(f, shard_of) for f in (history, backtest, forecast)), strict=True)
    ]
    assert all(
        len(part["stats"]) < 15 and part["history"][["item_id", "store_id"]].drop_duplicates().shape[0] <= 12 for part in parts
    )
    merged = parts[0]
    for part in parts[1:]:  # one at a time, as the Aggregate step folds them
        merged = report.merge_data([merged, part], "W")
    page, expected = Page(report.render_data(summary(), merged)), Page(whole)
    assert specs_of(page) == specs_of(expected) and page.text == expected.text


def test_a_slice_without_backtest_drops_the_dataset_backtest_line_but_keeps_its_series():
    history, backtest, forecast = report_frames(items=2, stores=2)
    first = report.report_data(
        history[history["item_id"] == "SKU-001"],
        backtest[backtest["item_id"] == "SKU-001"],
        forecast[forecast["item_id"] == "SKU-001"],
        "W",
    )
    second = report.report_data(history[history["item_id"] == "SKU-002"], None, forecast[forecast["item_id"] == "SKU-002"], "W")
    merged = report.merge_data([first, second], "W")
    assert merged["total_backtest"] is None and set(merged["stats"]["item_id"]) == {"SKU-001", "SKU-002"}
    kinds = {row.get("k") for row in specs_of(Page(report.render_data(summary(), merged)))[0]["data"]["values"]}
    assert kinds == {"actual", "forecast"}, "the whole dataset's chart has no partial backtest line"


def test_only_keeps_the_rows_of_exactly_those_series_in_the_frames_order():
    """``_only`` (a membership test) keeps what the inner merge it replaced kept: the rows of the
    keys, not the other stores of their items, in the frame's order, on a fresh index."""
    history, _, _ = report_frames(items=3, stores=3)
    shuffled = history.sample(frac=1, random_state=1)
    keys = [("SKU-002", "S3"), ("SKU-001", "S1"), ("SKU-009", "S1")]
    merged = shuffled[shuffled["item_id"].isin({"SKU-001", "SKU-002"})].merge(
        pd.DataFrame(keys, columns=report.SERIES), on=report.SERIES
    )
    kept = report._only(shuffled, keys)
    pd.testing.assert_frame_equal(kept, merged, check_dtype=False)
    assert set(map(tuple, kept[report.SERIES].to_numpy())) == {("SKU-002", "S3"), ("SKU-001", "S1")}
    assert report._only(None, keys) is None
    none = report._only(shuffled, [])
    assert none.empty and list(none.columns) == list(shuffled.columns), "no series: no rows, every column"
