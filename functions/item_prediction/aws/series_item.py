"""How a series' forecast item (``sk = SERIES``, keys in :mod:`.table_keys`) holds its forecast:
the one rule that writes it (:func:`encode`, for ``steps.predict.prediction_items``) and reads it
(:func:`decode`, for the read API, the offline runner's ``--query`` and the tests). Standard
library only, so the read API's function needs no data-science layer.

The forecast is ONE string attribute, ``forecast``: compact JSON
``{"dates": [...], "prediction": [...], "p10": [...], "p50": [...], "p90": [...]}`` in date order
(ISO days; numbers as the writer rounded them; the quantiles only when the forecast has them,
``p50`` left out when it equals ``prediction``, as the model makes it: :func:`decode` restores it),
with ``forecast_format`` (:data:`FORMAT`) naming that layout. One string instead of five lists
of up to 366 numbers each: the writer's client serializes one value instead of ~70 Decimals for a
14-day series (writing to the emulator is ~3x cheaper per item, a BatchWriteItem request 1.7x
smaller, 2.4x at 366 days), and the API parses one JSON instead of deserializing the Decimals.
DynamoDB bills the text's bytes: an item is about 15% larger than the lists were (a 14-day series
stays under 1 KB, one write unit), hence ``p50`` stored once.

Items written before it (no ``forecast`` attribute) hold the same content as lists: ``dates``,
``prediction`` and the quantiles as attributes of their own (numbers as Decimals). They stay
readable until their TTL (35 days, ``table_keys.EXPIRY_DAYS``) removes them.
"""

from __future__ import annotations

import json

FORMAT = 1  # the layout of the ``forecast`` attribute; a reader refuses a layout it does not know
ATTRIBUTE = "forecast"
FORMAT_ATTRIBUTE = "forecast_format"
QUANTILES = ("p10", "p50", "p90")  # stored beside ``prediction`` when the forecast has them
VALUES = ("prediction", *QUANTILES)  # the number lists a forecast may hold, in this order
PLACES = 4  # decimal places of a forecast's numbers, in its items and in the CSV parts alike


class UnknownFormat(ValueError):
    """A series item in a layout this code does not read (written by a newer version)."""


def encode(dates: list[str], values: dict[str, list[float]]) -> dict:
    """The item's forecast attributes for ``dates`` and its number lists (``prediction`` and, when
    the forecast has them, ``p10``/``p50``/``p90``, each as long as ``dates``). NaN and infinity
    are refused (ValueError): JSON has no such numbers, and DynamoDB took none as Decimals either."""
    kept = [name for name in VALUES if name in values and not (name == "p50" and values[name] == values["prediction"])]
    ordered = {"dates": dates, **{name: values[name] for name in kept}}
    return {FORMAT_ATTRIBUTE: FORMAT, ATTRIBUTE: json.dumps(ordered, separators=(",", ":"), allow_nan=False)}


def decode(item: dict) -> dict[str, list]:
    """``{"dates", "prediction"[, "p10", "p50", "p90"]}`` (lists in date order) of a series item,
    as read from the table: the ``forecast`` string (numbers as floats), or the lists of an item
    written before it (numbers as the reader gives them, e.g. Decimals)."""
    if ATTRIBUTE not in item:  # the lists an earlier version wrote, live until their TTL
        return {name: list(item[name]) for name in ("dates", *VALUES) if name in item}
    if item.get(FORMAT_ATTRIBUTE) != FORMAT:
        raise UnknownFormat(f"a series item has {FORMAT_ATTRIBUTE} {item.get(FORMAT_ATTRIBUTE)}; this code reads {FORMAT} only")
    forecast = json.loads(item[ATTRIBUTE])
    if "p10" in forecast and "p50" not in forecast:
        forecast["p50"] = forecast["prediction"]  # left out by encode: the median is the prediction
    return {name: forecast[name] for name in ("dates", *VALUES) if name in forecast}
