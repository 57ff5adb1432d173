"""The predictions table's keys (one table, ``pk`` and ``sk`` strings). Standard library only, so
the read API's function needs no data-science layer.

* a prediction: ``pk = DS#<dataset>#RUN#<forecast_id>#ITEM#<esc item>#STORE#<esc store>``,
  ``sk = DATE#<yyyy-mm-dd>``; every run writes its own items, which expire by TTL;
* the dataset's current forecast: ``pk = DS#<dataset>``, ``sk = CURRENT``, written after all of a
  run's items (the flip): the API reads it first and shows that run only.

``esc`` percent-encodes ``%`` and ``#`` in ids, so an id holding the separator can never produce
another series' key; the items themselves carry the original ids. (The ingest ledger's and the
lease's keys are in :mod:`.ledger`.)
"""

from __future__ import annotations

import hashlib
import json
import re

from ..domain.schema import NO_STORE

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


def date_sk(day: str) -> str:
    return f"DATE#{day}"


ALL_DATES = (date_sk("0000-00-00"), date_sk("9999-99-99"))  # sk bounds taking every date


def current_key(dataset: str) -> dict:
    """The key of the dataset's current-forecast pointer."""
    return {"pk": f"DS#{esc(dataset)}", "sk": "CURRENT"}


def forecast_id(model_version: str, features_fingerprint: str, horizon: int) -> str:
    """Names a run by what it forecast from: the same model, features and horizon give the same id
    (a re-run overwrites its own items), anything else a new one."""
    digest = hashlib.sha256(json.dumps([model_version, features_fingerprint, horizon]).encode()).hexdigest()
    return f"{model_version}-{digest[:8]}"
