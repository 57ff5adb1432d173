"""The run's forecast report: one self-contained HTML page a planner opens in any browser, offline.

Pure: a summary dict and frames in, the page's text out (no AWS). The charts are Vega-Lite
specifications rendered in the page by Vega, Vega-Lite and vega-embed, inlined from
``report_assets/vega-bundle.js.gz`` (vendored by scripts/vendor_report_assets.py). A
Content-Security-Policy forbids every request (scripts, styles, fonts, images, data): the page
cannot reach the network even if a library tried.

Inputs (canonical columns of :mod:`.schema`):

* ``history``: item_id, store_id, date (datetime), quantity: the series' past periods;
* ``backtest`` (optional): item_id, store_id, date, ``actual``, ``prediction``, ``naive`` (the
  seasonal-naive baseline), optionally ``p10``, ``p90``: the held-out periods of the backtest;
* ``forecast``: item_id, store_id, date, ``prediction``, optionally ``p10``, ``p90``;
* ``summary``: ``dataset``, ``forecast_id``, ``model_version``, ``frequency``, ``horizon``,
  ``generated_at``; ``validation`` {rows_in, rows_clean, rows_quarantined, rules: {reason: rows}};
  ``metrics`` (the model's backtest: ``model``/``seasonal_naive`` {mae, wape}, ``cutoff``,
  ``mae_improvement``; the P10-P90 coverage from ``interval_coverage``, else the additive ``sums``
  ``inside_p10_p90`` / ``count``, else the backtest frame's p10/p90). Missing parts show as "n/a".

Bounded: at most :data:`MAX_LARGEST` + :data:`MAX_WORST` series charts, each with the last
:data:`HISTORY_PERIODS` periods of history, and tables of :data:`TABLE_ROWS` rows: a few MB at
most whatever the dataset's size (the library itself is 0.84 MB).
"""

from __future__ import annotations

import gzip
import html
import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from . import schema

ASSET = Path(__file__).parent / "report_assets" / "vega-bundle.js.gz"
BACKTEST_COLUMNS = (schema.ITEM, schema.STORE, schema.DATE, "actual", "prediction", "naive")
MAX_LARGEST = 6  # charts of the largest series (by quantity over the last season of history)
MAX_WORST = 6  # charts of the series with the largest backtest error (not already among the largest)
TABLE_ROWS = 15
HISTORY_PERIODS = {"D": 182, "W": 104, "M": 36}  # per series chart: half a year of days, two years of weeks
TOTAL_HISTORY_PERIODS = {"D": 400, "W": 156, "M": 60}  # the dataset chart: a year and more, to compare
YEAR = {"D": pd.DateOffset(days=364), "W": pd.DateOffset(weeks=52), "M": pd.DateOffset(months=12)}
KINDS = ("actual", "backtest forecast", "seasonal naive", "forecast")
COLOURS = ("#1f2937", "#d97706", "#9ca3af", "#2563eb")
DASHES = ([1, 0], [5, 3], [2, 2], [1, 0])
SERIES = [schema.ITEM, schema.STORE]
CSP = (
    "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
    "img-src data: blob:; connect-src 'none'; font-src 'none'"
)


@cache
def library() -> str:
    """The inlined charting library (Vega, Vega-Lite, vega-embed), read once per process."""
    return gzip.decompress(ASSET.read_bytes()).decode()


def series_label(item: str, store: str) -> str:
    """How a series is named on the page: ``item @ store``, or the item alone without a store."""
    return str(item) if store == schema.NO_STORE else f"{item} @ {store}"


STEP = {"D": pd.DateOffset(days=1), "W": pd.DateOffset(weeks=1), "M": pd.DateOffset(months=1)}


def history_start(last: pd.Timestamp, frequency: str) -> pd.Timestamp:
    """The earliest date of history the page can show (the whole dataset's chart reaches furthest)."""
    return last - TOTAL_HISTORY_PERIODS.get(frequency, 60) * STEP[frequency]


def _last_periods(frame: pd.DataFrame, periods: int, frequency: str) -> pd.DataFrame:
    """The rows of ``frame`` in its last ``periods`` periods (by the latest date of the dataset)."""
    if frame.empty:
        return frame
    return frame[frame[schema.DATE] > frame[schema.DATE].max() - periods * STEP[frequency]]


STAT_COLUMNS = ("volume", "error", "naive_error", "actual", "prediction", "last_year")


def series_stats(history: pd.DataFrame, backtest: pd.DataFrame | None, forecast: pd.DataFrame, frequency: str) -> pd.DataFrame:
    """Per series (item, store): what the tables and the picks rank by (NaN where a series has none).

    ``volume``: quantity over the last season of history; ``error``, ``naive_error``, ``actual``: sums
    of the backtest's absolute errors (model, seasonal naive) and actuals; ``prediction``: the
    forecast's total; ``last_year``: the quantity over the same periods a year before the forecast.
    """
    recent = _last_periods(history, schema.SEASON_LENGTH.get(frequency, 12), frequency)
    parts = [recent.groupby(SERIES)[schema.QUANTITY].sum().rename("volume")]
    if backtest is not None and not backtest.empty:
        errors = backtest.assign(
            error=(backtest["actual"] - backtest["prediction"]).abs(), naive_error=(backtest["actual"] - backtest["naive"]).abs()
        )
        parts.append(errors.groupby(SERIES)[["error", "naive_error", "actual"]].sum())
    ago = forecast[[*SERIES, schema.DATE, "prediction"]].assign(**{schema.DATE: _year_before(forecast, frequency)})
    year_ago = history[history[schema.DATE].isin(ago[schema.DATE].unique())]  # a few periods, not the whole history
    ago = ago.merge(year_ago[[*SERIES, schema.DATE, schema.QUANTITY]], on=[*SERIES, schema.DATE], how="left")
    ago = ago.rename(columns={schema.QUANTITY: "last_year"})
    parts.append(ago.groupby(SERIES)[["prediction", "last_year"]].sum(min_count=1))
    stats = pd.concat(parts, axis=1).reindex(columns=list(STAT_COLUMNS)).astype(float).reset_index()
    return stats.rename(columns={"level_0": schema.ITEM, "level_1": schema.STORE})


def _year_before(forecast: pd.DataFrame, frequency: str) -> pd.Series:
    """The forecast's dates a year earlier: the periods its change against last year compares with."""
    return forecast[schema.DATE] - YEAR[frequency]


def _stat_rows(history: pd.DataFrame, forecast: pd.DataFrame, frequency: str) -> pd.DataFrame:
    """The rows of ``history`` :func:`series_stats` reads (the last season, by the latest date,
    and the periods a year before the forecast's), in their order, ids as text: the same stats as
    from the whole history, from a few periods of it instead of a year."""
    if history.empty:
        return _plain(history)
    dates = history[schema.DATE]
    season = schema.SEASON_LENGTH.get(frequency, 12)
    wanted = (dates > dates.max() - season * STEP[frequency]) | dates.isin(_year_before(forecast, frequency).unique())
    return _plain(history[wanted])


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with ids read coded (pandas Categoricals, see ``shard_store.load_shard``) as text."""
    coded = [name for name in SERIES if isinstance(frame[name].dtype, pd.CategoricalDtype)]
    return frame.astype(dict.fromkeys(coded, "str")) if coded else frame


def _keys(frame: pd.DataFrame) -> list[tuple]:
    return list(zip(frame[schema.ITEM].tolist(), frame[schema.STORE].tolist(), strict=True))  # itertuples' values, cheaper


def pick_series(stats: pd.DataFrame) -> tuple[list, list]:
    """(the largest series, the worst-backtest ones not among them), as (item, store) tuples.

    Largest: by ``volume`` (quantity over the last season); worst: by ``error`` (the sum of absolute
    backtest errors). Ties break by the series' key, so the same data picks the same series. Applied
    to each shard's series, the picks hold every series the same picks over all shards choose.
    """
    volume = stats[stats["volume"].notna()].sort_values(["volume", *SERIES], ascending=[False, True, True])
    largest = _keys(volume)[:MAX_LARGEST]
    worst = [key for key in _keys(error_table(stats)) if key not in largest]
    return largest, worst[:MAX_WORST]


def error_table(stats: pd.DataFrame) -> pd.DataFrame:
    """Series with a backtest: absolute error (model, naive), actual total and WAPE; worst first."""
    table = stats[stats["error"].notna()]
    table = table.assign(wape=table["error"] / table["actual"].where(table["actual"] > 0))
    return table.sort_values(["error", *SERIES], ascending=[False, True, True]).reset_index(drop=True)


def change_table(stats: pd.DataFrame) -> pd.DataFrame:
    """The forecast's total against the same periods a year earlier (``change``); biggest change first.

    Series without sales in those periods a year earlier are left out (no change to measure).
    """
    table = stats[stats["last_year"] > 0]
    table = table.assign(change=table["prediction"] / table["last_year"] - 1, size=lambda t: t["change"].abs())
    return table.sort_values(["size", *SERIES], ascending=[False, True, True]).drop(columns="size").reset_index(drop=True)


def _only(frame: pd.DataFrame | None, keys: list[tuple]) -> pd.DataFrame | None:
    """The rows of ``frame`` whose series is one of ``keys``; None for None."""
    if frame is None:
        return None
    if all(isinstance(frame[name].dtype, pd.CategoricalDtype) for name in SERIES):
        return _plain(_coded_only(frame, keys))
    wanted = set(keys)
    candidates = frame[frame[schema.ITEM].isin({key[0] for key in wanted})]  # a cheap pre-filter: a few series' rows
    ids = (candidates[column].to_numpy(dtype=object) for column in SERIES)  # plain objects: iterating a string array is slow
    keep = [key in wanted for key in zip(*ids, strict=True)]
    return candidates[pd.array(keep, dtype=bool)].reset_index(drop=True)  # in the frame's order, as an inner merge kept them


def _coded_only(frame: pd.DataFrame, keys: list[tuple]) -> pd.DataFrame:
    """:func:`_only` of a frame whose ids are Categoricals: the keys matched as pairs of codes."""
    items, stores = frame[schema.ITEM].array, frame[schema.STORE].array
    width = len(stores.categories) + 1  # a pair as one integer; code -1 (no id) as 0
    item_codes = items.categories.get_indexer([key[0] for key in keys])
    store_codes = stores.categories.get_indexer([key[1] for key in keys])
    wanted = [(i + 1) * width + s + 1 for i, s in zip(item_codes, store_codes, strict=True) if i >= 0 and s >= 0]
    pairs = (items.codes.astype(np.int64) + 1) * width + stores.codes + 1
    return frame[np.isin(pairs, wanted)].reset_index(drop=True)


def _tails(history: pd.DataFrame, frequency: str) -> pd.DataFrame:
    """Each series' last HISTORY_PERIODS periods (by its own latest date): what its chart shows."""
    last = history.groupby(SERIES)[schema.DATE].transform("max")
    return history[history[schema.DATE] > last - HISTORY_PERIODS.get(frequency, 36) * STEP[frequency]]


def reduce_data(stats, history, backtest, forecast, totals: dict, frequency: str) -> dict:
    """Report data cut to what the page can show: stats of the series the tables and charts may
    pick, history tails, backtest and forecast rows of the charted series, the dataset's totals."""
    largest, worst = pick_series(stats)
    wanted = set(largest + worst) | set(_keys(error_table(stats).head(TABLE_ROWS)))
    wanted |= set(_keys(change_table(stats).head(TABLE_ROWS)))
    charted = largest + worst
    return {
        "stats": _only(stats, sorted(wanted)),
        "history": _tails(_only(history, charted), frequency)[[*SERIES, schema.DATE, schema.QUANTITY]],
        "backtest": _only(backtest, charted),
        "forecast": _only(forecast, charted),
        **totals,
    }


BACKTEST_TOTALS = ("actual", "prediction", "naive", "inside_p10_p90", "rows")


def _backtest_total(backtest: pd.DataFrame | None) -> pd.DataFrame | None:
    """The backtest summed by date; with a band, also the rows inside P10-P90 and all rows (coverage adds up)."""
    if backtest is None or backtest.empty or not {"p10", "p90"} <= set(backtest.columns):
        return _total(backtest, ["actual", "prediction", "naive"])
    inside = backtest["actual"].between(backtest["p10"], backtest["p90"]).astype(float)
    return _total(backtest.assign(inside_p10_p90=inside, rows=1.0), list(BACKTEST_TOTALS))


def report_data(history: pd.DataFrame, backtest: pd.DataFrame | None, forecast: pd.DataFrame, frequency: str) -> dict:
    """What the page is drawn from, small whatever the number of series (see :func:`reduce_data`):
    the whole report of these series, or one shard's slice of a dataset's (:func:`merge_data`)."""
    dated = history[[schema.DATE, schema.QUANTITY]]  # all the totals need: cutting the ids too would cost more
    recent = _last_periods(dated, TOTAL_HISTORY_PERIODS.get(frequency, 60), frequency)
    totals = {
        "total_history": _total(recent, [schema.QUANTITY]),
        "total_backtest": _backtest_total(backtest),
        "total_forecast": _total(forecast, ["prediction"]),
    }
    stats = series_stats(_stat_rows(history, forecast, frequency), backtest, forecast, frequency)
    return reduce_data(stats, history, backtest, forecast, totals, frequency)


def _concat(frames: list) -> pd.DataFrame | None:
    frames = [frame for frame in frames if frame is not None and not frame.empty]
    return pd.concat(frames, ignore_index=True) if frames else None


def merge_data(parts: list[dict], frequency: str) -> dict:
    """Slices of disjoint series (a dataset's shards) as one: stats and rows concatenated, totals
    summed by date, then cut again (:func:`reduce_data`). The dataset's backtest line needs every
    slice to have backtested the same periods; otherwise it is left out (``total_backtest`` None)."""
    totals = {
        name: _total(_concat([part.get(name) for part in parts]), columns)
        for name, columns in (("total_history", [schema.QUANTITY]), ("total_forecast", ["prediction"]))
    }
    backtests = [part.get("total_backtest") for part in parts]
    same = all(frame is not None and not frame.empty for frame in backtests)
    same = same and len({frame[schema.DATE].min() for frame in backtests}) == 1
    merged = _concat(backtests) if same else None
    totals["total_backtest"] = _total(merged, [name for name in BACKTEST_TOTALS if merged is not None and name in merged])
    stats = _concat([part["stats"] for part in parts])
    stats = stats if stats is not None else pd.DataFrame(columns=[*SERIES, *STAT_COLUMNS])
    rows = [_concat([part.get(name) for part in parts]) for name in ("history", "backtest", "forecast")]
    history = rows[0] if rows[0] is not None else pd.DataFrame(columns=[*SERIES, schema.DATE, schema.QUANTITY])
    forecast = rows[2] if rows[2] is not None else pd.DataFrame(columns=[*SERIES, schema.DATE, "prediction"])
    return reduce_data(stats, history, rows[1], forecast, totals, frequency)


def _points(frame: pd.DataFrame, value: str, kind: str) -> list[dict]:
    """Chart rows ``{"d": date, "v": value, "k": kind}`` (values rounded: the page stays small)."""
    days = frame[schema.DATE].dt.strftime("%Y-%m-%d")
    return [{"d": d, "v": round(float(v), 3), "k": kind} for d, v in zip(days, frame[value], strict=True) if pd.notna(v)]


def _band(frame: pd.DataFrame) -> list[dict]:
    """Chart rows ``{"d", "lo", "hi"}`` of a P10-P90 band (none when the frame has no p10/p90)."""
    if not {"p10", "p90"} <= set(frame.columns):
        return []
    days = frame[schema.DATE].dt.strftime("%Y-%m-%d")
    return [
        {"d": d, "lo": round(float(lo), 3), "hi": round(float(hi), 3)}
        for d, lo, hi in zip(days, frame["p10"], frame["p90"], strict=True)
        if pd.notna(lo) and pd.notna(hi)
    ]


def chart_rows(history: pd.DataFrame, backtest: pd.DataFrame | None, forecast: pd.DataFrame, periods: int, frequency: str):
    """One chart's rows: recent history, the backtest's forecast and baseline, the forecast and its band."""
    rows = _points(_last_periods(history, periods, frequency), schema.QUANTITY, "actual")
    if backtest is not None and not backtest.empty:
        rows += _points(backtest, "prediction", "backtest forecast") + _points(backtest, "naive", "seasonal naive")
    return rows + _points(forecast, "prediction", "forecast") + _band(forecast)


def chart_spec(title: str, rows: list[dict], *, width: int, height: int, subtitle: str = "") -> dict:
    """A Vega-Lite specification: a line per kind of row (colour and dash by kind), the band as an area."""
    present = [kind for kind in KINDS if any(row.get("k") == kind for row in rows)]
    scale = {"domain": present, "range": [COLOURS[KINDS.index(kind)] for kind in present]}
    x = {"field": "d", "type": "temporal", "title": None}
    layers = []
    if any("lo" in row for row in rows):
        subtitle = f"{subtitle}  shaded: P10-P90 of the forecast".strip()
        tooltip = [
            {"field": "d", "type": "temporal", "title": "date"},
            {"field": "lo", "title": "P10"},
            {"field": "hi", "title": "P90"},
        ]
        layers.append(
            {
                "transform": [{"filter": "isValid(datum.lo)"}],
                "mark": {"type": "area", "color": "#93c5fd", "opacity": 0.5},
                "encoding": {"x": x, "y": {"field": "lo", "type": "quantitative"}, "y2": {"field": "hi"}, "tooltip": tooltip},
            }
        )
    dash = {"domain": present, "range": [DASHES[KINDS.index(kind)] for kind in present]}
    tooltip = [
        {"field": "d", "type": "temporal", "title": "date"},
        {"field": "k", "title": "line"},
        {"field": "v", "title": "quantity", "format": ",.2f"},
    ]
    layers.append(
        {
            "transform": [{"filter": "isValid(datum.v)"}],
            "mark": {"type": "line", "strokeWidth": 1.6},
            "encoding": {
                "x": x,
                "y": {"field": "v", "type": "quantitative", "title": "quantity"},
                "color": {"field": "k", "type": "nominal", "title": None, "scale": scale, "legend": {"orient": "top"}},
                "strokeDash": {"field": "k", "type": "nominal", "title": None, "scale": dash, "legend": {"orient": "top"}},
                "tooltip": tooltip,
            },
        }
    )
    return {
        "title": {"text": title, "subtitle": subtitle, "anchor": "start"},
        "width": width,
        "height": height,
        "data": {"values": rows},
        "layer": layers,
    }


def _total(frame: pd.DataFrame | None, columns: list[str]) -> pd.DataFrame | None:
    """The frame summed over series by date (the whole dataset's line), None for None."""
    if frame is None or frame.empty:
        return frame
    return frame.groupby(schema.DATE, as_index=False)[columns].sum(min_count=1)


def dataset_chart(data: dict, frequency: str) -> dict:
    """The whole dataset (sum over series): history, backtest and forecast; no band, as quantiles do not add up."""
    rows = chart_rows(
        data["total_history"], data["total_backtest"], data["total_forecast"], TOTAL_HISTORY_PERIODS.get(frequency, 60), frequency
    )
    return chart_spec("Whole dataset (sum of every series)", rows, width=920, height=260)


def _of(frame: pd.DataFrame | None, key: tuple) -> pd.DataFrame | None:
    """The rows of one series (item, store) of ``frame``; None for None."""
    if frame is None:
        return None
    return frame[(frame[schema.ITEM] == key[0]) & (frame[schema.STORE] == key[1])]


def series_charts(keys: list, data: dict, frequency: str) -> list[dict]:
    """One chart per series of ``keys`` (item, store), from the data's rows of the charted series."""
    periods = HISTORY_PERIODS.get(frequency, 36)
    return [
        chart_spec(
            series_label(*key),
            chart_rows(_of(data["history"], key), _of(data["backtest"], key), _of(data["forecast"], key), periods, frequency),
            width=440,
            height=200,
        )
        for key in keys
    ]


def _fmt(value, digits: int = 2, *, percent: bool = False) -> str:
    """A number for people: ``1,234.57``, ``12.3%``; "n/a" when there is none."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "n/a"
    return f"{value * 100:,.1f}%" if percent else f"{value:,.{digits}f}"


def _table(headers: list[str], rows: list[list], caption: str = "") -> str:
    """An HTML table, every cell escaped; no header row when ``headers`` is empty."""
    head = "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in headers) + "</tr></thead>" if headers else ""
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}{head}<tbody>{body}</tbody></table>"


def _accuracy(metrics: dict, total: pd.DataFrame | None) -> list[list]:
    """The backtest's scores against seasonal naive, and the P10-P90 coverage where there is one."""
    model, naive = metrics.get("model") or {}, metrics.get("seasonal_naive") or {}
    improvement = metrics.get("mae_improvement")
    verdict = "n/a" if improvement is None else f"{abs(improvement) * 100:.1f}% {'lower' if improvement >= 0 else 'HIGHER'}"
    rows = [
        ["MAE", _fmt(model.get("mae")), _fmt(naive.get("mae")), verdict],
        ["WAPE", _fmt(model.get("wape"), percent=True), _fmt(naive.get("wape"), percent=True), ""],
    ]
    coverage, sums = metrics.get("interval_coverage"), metrics.get("sums") or {}
    if coverage is None and sums.get("inside_p10_p90") is not None and sums.get("count"):  # the shards' additive sums
        coverage = sums["inside_p10_p90"] / sums["count"]
    if coverage is None and total is not None and "rows" in total.columns and total["rows"].sum():  # the backtest's band
        coverage = float(total["inside_p10_p90"].sum() / total["rows"].sum())
    if coverage is not None:
        rows.append(["P10-P90 coverage (80% expected)", _fmt(coverage, percent=True), "", ""])
    return rows


def summary_html(summary: dict, total_backtest: pd.DataFrame | None) -> str:
    """The run's facts: data in and out of validation, the model, the backtest's accuracy (and the
    ``notes``, e.g. when some shards' backtest is not this run's)."""
    validation = summary.get("validation") or {}
    metrics = summary.get("metrics") or {}
    data = [
        ["rows in", _fmt(validation.get("rows_in"), 0)],
        ["rows clean", _fmt(validation.get("rows_clean"), 0)],
        ["rows quarantined", _fmt(validation.get("rows_quarantined"), 0)],
        *[[f"  quarantined: {reason}", _fmt(rows, 0)] for reason, rows in sorted((validation.get("rules") or {}).items())],
    ]
    run = [
        ["model version", summary.get("model_version", "n/a")],
        ["frequency", schema.FREQUENCIES.get(summary.get("frequency"), summary.get("frequency") or "n/a")],
        ["horizon (periods)", summary.get("horizon", "n/a")],
        ["backtest from", metrics.get("cutoff", "n/a")],
        ["series", _fmt(summary.get("series"), 0)],
    ]
    headers = ["backtest", "model", "seasonal naive", "model against naive"]
    accuracy = _table(headers, _accuracy(metrics, total_backtest), "Accuracy")
    note = "".join(f'<p class="note">{html.escape(text)}</p>' for text in summary.get("notes") or [])
    return f'<div class="facts">{accuracy}{_table([], run, "Model")}{_table([], data, "Data")}</div>{note}'


def attention_html(stats: pd.DataFrame) -> str:
    """The series a planner should look at first: largest backtest error; biggest change against last year."""
    parts = []
    errors = error_table(stats).head(TABLE_ROWS)
    if not errors.empty:
        rows = [
            [
                series_label(r[schema.ITEM], r[schema.STORE]),
                _fmt(r["error"]),
                _fmt(r["naive_error"]),
                _fmt(r["actual"]),
                _fmt(r["wape"], percent=True),
            ]
            for _, r in errors.iterrows()
        ]
        headers = ["series", "abs. error (model)", "abs. error (naive)", "actual", "WAPE"]
        parts.append(_table(headers, rows, "Largest backtest error"))
    changes = change_table(stats).head(TABLE_ROWS)
    rows = [
        [
            series_label(r[schema.ITEM], r[schema.STORE]),
            _fmt(r["prediction"]),
            _fmt(r["last_year"]),
            f"{r['change'] * 100:+,.1f}%",
        ]
        for _, r in changes.iterrows()
    ]
    parts.append(
        _table(["series", "forecast total", "same periods last year", "change"], rows, "Biggest change against last year")
    )
    return "".join(parts)


STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:24px;color:#111827;max-width:1000px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}
.meta{color:#6b7280;font-size:13px;margin:0}.facts{display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start}
table{border-collapse:collapse;font-size:13px;margin:8px 16px 8px 0}caption{text-align:left;font-weight:600;padding:4px 0}
th,td{border-bottom:1px solid #e5e7eb;padding:3px 10px 3px 0;text-align:right}th:first-child,td:first-child{text-align:left}
.grid{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:12px}.chart{min-height:120px}
.error{color:#b91c1c;font-weight:600}.note{color:#6b7280;font-size:13px}
"""

RENDER = """
(function () {
  var options = {mode: "vega-lite", renderer: "svg", actions: {export: true, source: false, compiled: false, editor: false}};
  var charts = Array.prototype.slice.call(document.querySelectorAll("div.chart"));
  Promise.all(charts.map(function (el) {
    return vegaEmbed(el, JSON.parse(document.getElementById(el.getAttribute("data-spec")).textContent), options);
  })).then(function () { document.body.setAttribute("data-charts", "rendered"); })
    .catch(function (error) {
      document.body.setAttribute("data-charts", "failed");
      console.error("a chart could not be drawn: " + error);
    });
})();
"""


def _script_json(value) -> str:
    """JSON safe inside a <script> element (no ``</script>`` or ``<!--`` can close or open anything)."""
    return json.dumps(value, separators=(",", ":")).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _charts(specs: list[dict], start: int) -> tuple[str, str]:
    """(the charts' containers, their specifications as JSON script elements), numbered from ``start``."""
    divs = "".join(f'<div class="chart" id="chart-{start + i}" data-spec="spec-{start + i}"></div>' for i in range(len(specs)))
    data = "".join(
        f'<script type="application/json" id="spec-{start + i}">{_script_json(spec)}</script>' for i, spec in enumerate(specs)
    )
    return divs, data


def render_report(summary: dict, history: pd.DataFrame, backtest: pd.DataFrame | None, forecast: pd.DataFrame) -> str:
    """The whole page of these frames (see the module's docstring for the inputs)."""
    return render_data(summary, report_data(history, backtest, forecast, summary.get("frequency") or "D"))


def render_data(summary: dict, data: dict) -> str:
    """The page from report data (:func:`report_data`, or shards' slices merged by :func:`merge_data`)."""
    frequency = summary.get("frequency") or "D"
    largest, worst = pick_series(data["stats"])
    groups = [
        ("Whole dataset", [dataset_chart(data, frequency)], ""),
        ("Largest series", series_charts(largest, data, frequency), "by quantity over the last season"),
        ("Largest backtest error", series_charts(worst, data, frequency), "not already shown above"),
    ]
    sections, specs, count = [], [], 0
    for title, charts, note in groups:
        if not charts:
            continue
        divs, spec = _charts(charts, count)
        specs.append(spec)
        count += len(charts)
        css = "" if title == "Whole dataset" else ' class="grid"'
        sections.append(f'<h2>{html.escape(title)}</h2><p class="note">{html.escape(note)}</p><div{css}>{divs}</div>')
    dataset = html.escape(str(summary.get("dataset", "")))
    meta = f"forecast {summary.get('forecast_id', 'n/a')} · generated {summary.get('generated_at', 'n/a')}"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>Forecast report: {dataset}</title><style>{STYLE}</style><script>{library()}</script></head>"
        f'<body data-charts="pending"><h1>Forecast report: {dataset}</h1><p class="meta">{html.escape(meta)}</p>'
        f"{summary_html(summary, data['total_backtest'])}{''.join(sections)}"
        f"<h2>Series to look at first</h2>{attention_html(data['stats'])}"
        f"{''.join(specs)}<script>{RENDER}</script></body></html>"
    )
