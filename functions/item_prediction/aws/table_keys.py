"""The predictions table's keys (one table, ``pk`` and ``sk`` strings). Standard library only, so
the read API's function needs no data-science layer.

* a series' forecast: ``pk = DS#<dataset>#RUN#<forecast_id>#ITEM#<esc item>#STORE#<esc store>``,
  ``sk = SERIES`` (:data:`SERIES_SK`): one item per run and series holding the whole forecast in
  date order (``dates``, ``prediction``, and ``p10``/``p50``/``p90`` when the forecast has them) as
  one JSON string (:mod:`.series_item`), as Amazon Forecast's QueryForecast returns a series; every
  run writes its own items, which expire by TTL. ``DATE#<yyyy-mm-dd>`` (:func:`date_sk`) names no item: it is the position in a
  series that the read API's ``next_token`` carries (the last date a page returned);
* a generation's shard pointer: ``pk = DS#<dataset>#GEN#<run_id>``, ``sk = SHARD#<s:05d>`` ->
  the ``forecast_id`` whose items hold that shard's series (the run's own for a shard it re-ran,
  an earlier run's for a shard it left as it was);
* the dataset's current forecast: ``pk = DS#<dataset>``, ``sk = CURRENT``, written after all of a
  run's items and pointers (the flip): ``generation`` (the run id) and ``shard_count``. The API
  reads it, then the pointer of the series' shard, then the items: that generation only. (A
  pointer written before shards existed names a ``forecast_id`` and no generation: it is read as
  the one forecast of the whole dataset.)

Predictions and generation pointers carry ``expires_at`` (the table's TTL attribute, epoch
seconds, :func:`expires_at`): EXPIRY_DAYS after the last forecast date they hold or point to,
counted from the day written when that date is past. A pointer is written after the items it
names, with the same rule, so it never expires before them; a superseded generation's pointers
go with its items (the table does not grow by N pointers per run for ever).

``esc`` percent-encodes ``%`` and ``#`` in ids, so an id holding the separator can never produce
another series' key; the items themselves carry the original ids. (The ingest ledger's and the
lease's keys are in :mod:`.ledger`.)
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, date, datetime, timedelta

from ..domain import shard_hash
from ..domain.schema import NO_STORE

EXPIRY_DAYS = 35  # a run's items and pointers live this long after its last forecast date (or the day written, if later)
_ESCAPES = {"%": "%25", "#": "%23"}
_UNESCAPES = {value: key for key, value in _ESCAPES.items()}


def esc(text: str) -> str:
    """``%`` -> ``%25`` and ``#`` -> ``%23``; every other character is kept."""
    return re.sub("[%#]", lambda match: _ESCAPES[match.group()], text)


def unesc(text: str) -> str:
    """The inverse of :func:`esc` (one pass: in escaped text every ``%`` starts an escape)."""
    return re.sub("%2[35]", lambda match: _UNESCAPES[match.group()], text)


def prediction_pk(dataset: str, forecast_id: str, item_id: str, store_id: str | None) -> str:
    return f"DS#{esc(dataset)}#RUN#{esc(forecast_id)}#ITEM#{esc(item_id)}#STORE#{esc(store_id or NO_STORE)}"


SERIES_SK = "SERIES"  # the sort key of a series' forecast item (one per run and series)


def series_key(dataset: str, forecast_id: str, item_id: str, store_id: str | None) -> dict:
    """The key of run ``forecast_id``'s forecast item for one series."""
    return {"pk": prediction_pk(dataset, forecast_id, item_id, store_id), "sk": SERIES_SK}


def date_sk(day: str) -> str:
    """A position in a series' dates (the read API's paging token), not an item's key."""
    return f"DATE#{day}"


ALL_DATES = (date_sk("0000-00-00"), date_sk("9999-99-99"))  # positions bounding every date


def generation_pk(dataset: str, run_id: str) -> str:
    return f"DS#{esc(dataset)}#GEN#{esc(run_id)}"


def shard_sk(shard: int) -> str:
    return f"SHARD#{shard:05d}"


def shard_pointer_key(dataset: str, run_id: str, shard: int) -> dict:
    """The key of generation ``run_id``'s pointer for ``shard``."""
    return {"pk": generation_pk(dataset, run_id), "sk": shard_sk(shard)}


def current_key(dataset: str) -> dict:
    """The key of the dataset's current-forecast pointer."""
    return {"pk": f"DS#{esc(dataset)}", "sk": "CURRENT"}


def forecast_id(model_version: str, features_fingerprint: str, horizon: int) -> str:
    """Names a run by what it forecast from: the same model, features and horizon give the same id
    (a re-run overwrites its own items), anything else a new one."""
    digest = hashlib.sha256(json.dumps([model_version, features_fingerprint, horizon]).encode()).hexdigest()
    return f"{model_version}-{digest[:8]}"


def series_shard(item_id: str, store_id: str | None, count: int) -> int:
    """The shard of one series among ``count`` (:mod:`item_prediction.domain.shard_hash`, which
    ``domain.shards.shard_of`` uses too; standard library only: the read API has no pandas)."""
    return shard_hash.shard_of_series(item_id, store_id or NO_STORE, count)


def expires_at(last_day: date, today: date) -> int:
    """TTL (epoch seconds): EXPIRY_DAYS after the last forecast date, counted from today when the
    forecast lies in the past (a backfill), so a current run is not deleted as it is published."""
    end = max(last_day, today) + timedelta(days=EXPIRY_DAYS)
    return int(datetime(end.year, end.month, end.day, tzinfo=UTC).timestamp())
