"""The forecast report in a real browser (headless Chromium): every chart drawn, each series named,
no console message and no network request, a screenshot of it."""

from __future__ import annotations

import struct
from html.parser import HTMLParser
from pathlib import Path

import pytest
from item_prediction.domain import report

from tests.report_frames import report_frames, summary

from . import chromium

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        chromium.find() is None,
        reason="NO CHROMIUM ON THIS MACHINE: the report's browser test did not run. "
        "Install Debian's package (apt-get install chromium) or run scripts/bootstrap.sh --with-browser as root.",
    ),
]


class Rendered(HTMLParser):
    """The DOM after scripts ran: per chart container, whether Vega drew an SVG in it and its texts."""

    def __init__(self, dom: str) -> None:
        super().__init__()
        self.charts: list[dict] = []
        self.state: str | None = None
        self._depth = 0  # open elements inside the current chart container
        self._in_text = False
        self.feed(dom)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "body":
            self.state = attributes.get("data-charts")
        if tag == "div" and "chart" in (attributes.get("class") or "").split() and not self._depth:
            self.charts.append({"svg": False, "texts": []})
            self._depth = 1
            return
        if self._depth:
            self._depth += tag not in ("path", "rect", "line", "circle", "br", "img", "input")
            self.charts[-1]["svg"] |= tag == "svg" and "marks" in (attributes.get("class") or "")
            self._in_text = tag == "text"

    def handle_endtag(self, tag):
        if self._depth and tag not in ("path", "rect", "line", "circle", "br", "img", "input"):
            self._depth -= 1
        self._in_text = False

    def handle_data(self, data):
        if self._depth and self._in_text:
            self.charts[-1]["texts"].append(data)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("frequency", ["W", "D"])
def test_every_chart_is_drawn_with_its_series_name_offline(tmp_path, frequency):
    history, backtest, forecast = report_frames(items=5, stores=3, periods=150, frequency=frequency)
    page = tmp_path / "report.html"
    page.write_text(report.render_report(summary(frequency), history, backtest, forecast))
    largest, worst = report.pick_series(report.series_stats(history, backtest, forecast, frequency))

    visit = chromium.open_page(page, tmp_path)

    rendered = Rendered(visit.dom)
    assert rendered.state == "rendered", visit.console
    assert len(rendered.charts) == 1 + len(largest) + len(worst) == 1 + report.MAX_LARGEST + report.MAX_WORST
    assert all(chart["svg"] for chart in rendered.charts), "Vega drew an SVG in every container"
    titles = ["Whole dataset (sum of every series)"] + [report.series_label(*key) for key in largest + worst]
    assert [title in chart["texts"] for title, chart in zip(titles, rendered.charts, strict=True)] == [True] * len(titles)
    assert all("forecast" in chart["texts"] and "actual" in chart["texts"] for chart in rendered.charts), "legends"
    assert visit.console == [], "the page printed nothing: no error, no warning"
    assert visit.requests == [], "the page asked the network for nothing"

    png = tmp_path / "report.png"
    chromium.screenshot(page, png, tmp_path, width=1000, height=1600)
    assert png_size(png) == (1000, 1600)


def test_the_checks_see_a_console_error_a_request_and_an_undrawn_chart(tmp_path):
    """The control: a page that logs an error, asks for a remote image and fails its chart."""
    page = tmp_path / "bad.html"
    page.write_text(
        '<!doctype html><html><body data-charts="failed"><div class="chart"></div>'
        '<img src="http://example.invalid/logo.png"><script>console.error("boom")</script></body></html>'
    )
    visit = chromium.open_page(page, tmp_path)
    assert any("boom" in message for message in visit.console)
    assert visit.requests == ["http://example.invalid/logo.png"]
    rendered = Rendered(visit.dom)
    assert rendered.state == "failed" and rendered.charts == [{"svg": False, "texts": []}]
