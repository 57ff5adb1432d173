"""A dataset's plan file as one shard's forecast reads it (known-in-advance prices and promotions).

Plan files are uploaded to ``raw/<dataset>/plan/`` (``Settings.plan_prefix``) under the same
column mapping as the sales files (found as DataValidation finds it:
:func:`.validate.load_mapping` on the plan's key). DataValidation skips them; each Predictions
shard reads the newest one (by S3 LastModified, then key) and keeps its own series' rows
(:func:`item_prediction.domain.shards.shard_of`). No plan file: None (the forecast assumes the
last price and no promotion, and says so). A plan that cannot be used fails the shard with one
line naming the file and the reason: a forecast is never silently made on the assumption when
the user gave a plan.
"""

from __future__ import annotations

import posixpath

import pandas as pd

from ..aws.settings import Settings
from ..aws.storage import Storage
from ..domain import schema
from ..domain.plan import PlanError, read_plan
from ..domain.schema import MappingError
from ..domain.shards import shard_of
from .validate import load_mapping


def newest_plan_key(storage: Storage, settings: Settings, dataset: str) -> str | None:
    """The dataset's newest plan file (hidden files, ``_mapping.json`` and JSON left out), or None."""
    candidates = [
        entry
        for entry in storage.list_objects(settings.plan_prefix(dataset))
        if not posixpath.basename(entry["key"]).startswith(("_", "."))
        and not entry["key"].lower().endswith(".json")
        and not entry["key"].endswith("/")
    ]
    return max(candidates, key=lambda entry: (entry["last_modified"], entry["key"]))["key"] if candidates else None


def shard_plan(storage: Storage, settings: Settings, item: dict, manifest: dict) -> tuple[pd.DataFrame | None, dict]:
    """``(plan rows of this shard or None, {"plan_key", "plan_rows"})`` for one shard's forecast.

    ``manifest``: the shard's features manifest (its ``frequency`` and ``grid_freq`` put the
    plan's dates on the model's periods). Raises PlanError (one line) for a plan file that
    cannot be read or used.
    """
    dataset = item["dataset"]
    key = newest_plan_key(storage, settings, dataset)
    if key is None:
        return None, {"plan_key": None, "plan_rows": 0}
    try:
        mapping, _ = load_mapping(storage, settings, dataset, key)
        raw = storage.read_csv(key, dtype=str, keep_default_na=False, sep=None, engine="python")
        plan, _ = read_plan(raw, mapping, manifest["frequency"], manifest["grid_freq"])
    except PlanError as exc:
        raise PlanError(exc.reason, f"plan file {key} refused ({exc.reason}): {exc}") from None
    except (MappingError, ValueError, pd.errors.ParserError) as exc:
        raise PlanError("unreadable", f"plan file {key} refused (unreadable): {exc}") from None
    mine = shard_of(plan[schema.ITEM], plan[schema.STORE], int(item["shard_count"])) == int(item["shard"])
    plan = plan[mine].reset_index(drop=True)
    return plan, {"plan_key": key, "plan_rows": len(plan)}
