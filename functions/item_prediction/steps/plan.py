"""The Plan step (FeatureEngineering, ``"step": "plan"``): which shards this run rebuilds, and how.

Runs under the dataset's lease (taken by the handler). From the dataset manifest
``validated/<ds>/_dataset.json`` and the listing of the validated parts it decides:

* the shard count N: the manifest's (1 for a new dataset), raised to the largest count a part was
  written under, then doubled while any shard holds more than ``schema.SHARD_MAX_ROWS`` rows;
* the shards to run: every shard whose parts changed since the forecast on display was made
  (a shard's *signature* is the SHA-256 of its parts' keys and ETags, so the same bytes written
  again, a duplicate upload, change nothing), or all of them on a first run, a re-shard or a
  retrain request. Nothing changed: NothingToDo (the run ends, the forecast stays);
* each shard's mode: ``train_and_predict`` when retraining is due (no model for the shard, an
  explicit ``mode: retrain``, a re-shard, a model older than RETRAIN_EVERY_DAYS), else
  ``predict`` with the shard's latest model (retraining too when the mapping's
  ``known_in_advance`` columns changed: the model's inputs do); the shard's FeatureEngineering also switches to
  training when the new data ends more than the horizon after the model's data.

It writes the shard list ``runs/<ds>/<run_id>/shards.json`` (the Distributed Map's ItemReader
reads it) and the plan ``runs/<ds>/<run_id>/plan.json`` (the Aggregate step reads it), and
returns their keys: the state's payload stays small whatever the number of shards.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from ..aws import table_keys
from ..aws.settings import Settings
from ..aws.storage import Storage
from ..domain import schema, validation
from . import shard_store, upload_catalog
from .envelope import NothingToDo

MAX_HORIZON = 366  # as ml.model.MAX_HORIZON
RETRAIN, TRAIN, PREDICT = "retrain", "train_and_predict", "predict"


def resolve_horizon(requested, settings: Settings, frequency: str) -> int:
    """The event's horizon, else FORECAST_HORIZON, else the frequency's default, checked as
    ``model.check_horizon`` does (without importing the model: this step runs without scikit-learn)."""
    value = requested if requested not in (None, "", 0) else (settings.forecast_horizon or schema.DEFAULT_HORIZON[frequency])
    value = int(value) if isinstance(value, str) and value.strip().isdigit() else value
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_HORIZON:
        raise ValueError(f"horizon must be a whole number of periods from 1 to {MAX_HORIZON}, got {value!r}")
    return value


def dataset_manifest_key(settings: Settings, dataset: str) -> str:
    return shard_store.manifest_key(settings, dataset)


def run_prefix(dataset: str, run_id: str) -> str:
    return f"runs/{dataset}/{run_id}/"


def shard_prefix(base: str, dataset: str, shard: int) -> str:
    """``<base><ds>/shard=<s:05d>/``: where a shard's features or models live."""
    return f"{base}{dataset}/shard={shard:05d}/"


def new_run_id(owner: str, now: datetime) -> str:
    """Sortable by time, distinct per lease owner: ``20260105T120000.123456Z-1a2b3c4d``. Down to
    the microsecond: the same owner (an object re-uploaded to an unversioned key, or a backfill)
    can run twice within a second, and the second run must not write over the first's items."""
    return f"{now:%Y%m%dT%H%M%S.%fZ}-{hashlib.sha256(owner.encode()).hexdigest()[:8]}"


def listed_parts(storage: Storage, settings: Settings, dataset: str) -> list[dict]:
    """The dataset's parts from one listing: ``key``, ``etag``, ``source`` (the upload's key below
    ``raw/<dataset>/``), ``count`` and ``shard`` (the part's n and s)."""
    return [
        {"key": part.key, "etag": part.etag, "source": part.source, "count": part.part_count, "shard": part.part_shard}
        for part in shard_store.list_parts(storage, settings, dataset)
    ]


def shard_count(manifest: dict, parts: list[dict], rows_of) -> tuple[int, dict[int, int]]:
    """N (see the module) and the rows per shard under it; ``rows_of(count)`` counts them."""
    count = max([int(manifest.get("shard_count") or 1), *(part["count"] for part in parts)])
    rows = rows_of(count)
    while rows and max(rows.values()) > schema.SHARD_MAX_ROWS and count < schema.MAX_SHARDS:
        count *= 2
        rows = rows_of(count)
    return count, rows


def shard_members(parts: list[dict], count: int) -> dict[int, list[dict]]:
    """Per shard of ``count`` with parts: the parts holding its rows, in one pass over the listing
    (part ``(n, s)`` holds rows of shards s, s + n, ...; one pass, where asking every part for
    every shard cost shards x parts: 13 M checks, about 4 s, for 512 shards after a year of weekly files)."""
    members: dict[int, list[dict]] = {}
    for part in parts:
        if part["count"] > count:  # never listed: N is at least every part's count
            continue
        for shard in range(part["shard"], count, part["count"]):
            members.setdefault(shard, []).append(part)
    return members


def signatures(members: dict[int, list[dict]]) -> dict[str, str]:
    """Per shard (``"0"``...) with parts (:func:`shard_members`): the SHA-256 of its parts' sorted keys and ETags."""
    keys = {shard: sorted(f"{part['key']}\x1f{part.get('etag')}" for part in parts) for shard, parts in members.items()}
    return {str(shard): hashlib.sha256("\n".join(named).encode()).hexdigest() for shard, named in keys.items()}


def touched_shards(current: dict[str, str], manifest: dict, count: int, *, everything: bool) -> list[int]:
    """The shards to run: all with data when ``everything``, else those whose parts changed
    (or vanished: a retraction) since the manifest's signatures."""
    previous = manifest.get("signatures", {}) if manifest.get("shard_count") == count else {}
    if everything:
        return sorted(int(shard) for shard in current)
    return sorted(int(shard) for shard in set(current) | set(previous) if current.get(shard) != previous.get(shard))


def shard_mode(
    latest: dict | None, *, requested: bool, count: int, now: datetime, max_age_days: int, known: list[str] | None = None
) -> tuple[str, str]:
    """``(mode, reason)`` for one shard given its model's latest.json (None: no model) and the
    run's ``known`` (known-in-advance columns; None: not compared)."""
    if requested:
        return TRAIN, "retrain requested"
    if latest is None:
        return TRAIN, "no model for this shard yet"
    if latest.get("shard_count") != count:
        return TRAIN, f"re-sharded from {latest.get('shard_count')} to {count} shards"
    if known is not None and list(latest.get("known_in_advance") or []) != list(known):
        return TRAIN, f"known_in_advance changed to {list(known)}"
    trained = datetime.fromisoformat(latest.get("trained_at") or "1970-01-01T00:00:00+00:00")
    if (now - trained).days >= max_age_days:
        return TRAIN, f"model older than {max_age_days} days"
    return PREDICT, "latest model"


def frequency_of(storage: Storage, event: dict, manifest: dict, parts: list[dict]) -> str:
    """The mapping's frequency when it set one, else the dataset's (manifest), else inferred from a part."""
    if event.get("frequency") and event.get("frequency_source", "mapping") == "mapping":
        return event["frequency"]
    if manifest.get("frequency"):
        return manifest["frequency"]
    if event.get("frequency"):
        return event["frequency"]
    sample = storage.read_parquet(parts[-1]["key"], columns=[schema.DATE])
    return validation.infer_frequency(sample[schema.DATE].astype(str).unique(), None)


def known_in_advance_of(event: dict, manifest: dict) -> list[str]:
    """The mapping's ``known_in_advance`` columns as DataValidation read them for this upload,
    else the dataset's (manifest: the last run's), else none."""
    known = event.get("known_in_advance")
    if not isinstance(known, list):
        known = manifest.get("known_in_advance") or []
    return [column for column in schema.KNOWN_IN_ADVANCE_COLUMNS if column in known]  # one order, as the features'


def _latest(storage: Storage, settings: Settings, dataset: str, shard: int) -> dict | None:
    key = shard_prefix(settings.models_prefix, dataset, shard) + "latest.json"
    return storage.get_json_if_any(key)


def plan(storage: Storage, settings: Settings, dataset: str, event: dict, *, now: datetime | None = None) -> dict:
    """Decide and write the run's shard list and plan (see the module); NothingToDo when no shard
    changed; ValueError (one line, before anything is read) for a ``mode`` other than ``retrain``."""
    if event.get("mode") not in (None, "", RETRAIN):
        raise ValueError(f"mode must be {RETRAIN!r} (retrain every shard) or absent, got {event['mode']!r}")
    now = now or datetime.now(UTC)
    key = dataset_manifest_key(settings, dataset)
    manifest = storage.get_json_if_any(key, {})
    parts = listed_parts(storage, settings, dataset)
    if not parts:
        raise NothingToDo(f"dataset {dataset!r} has no validated data under {settings.validated_prefix}{dataset}/")
    uploads = upload_catalog.upload_catalog(storage, settings, dataset)
    count, rows = shard_count(manifest, parts, lambda n: upload_catalog.shard_rows(uploads, n))
    members = shard_members(parts, count)
    current = signatures(members)
    requested = event.get("mode") == RETRAIN
    everything = requested or not manifest or manifest.get("shard_count") != count
    touched = touched_shards(current, manifest, count, everything=everything)
    if not touched:
        raise NothingToDo(f"nothing changed: every shard of {dataset!r} was forecast from the parts it has now")
    frequency = frequency_of(storage, event, manifest, parts)
    horizon = resolve_horizon(event.get("horizon"), settings, frequency)
    known = known_in_advance_of(event, manifest)
    owner, run_id = event["lease_owner"], new_run_id(event["lease_owner"], now)
    items = []
    for shard in touched:
        latest = _latest(storage, settings, dataset, shard)
        mode, reason = shard_mode(
            latest, requested=requested, count=count, now=now, max_age_days=settings.retrain_every_days, known=known
        )
        item = {"dataset": dataset, "bucket": storage.bucket, "shard": shard, "shard_count": count, "run_id": run_id}
        item.update(mode=mode, reason=reason, horizon=horizon, frequency=frequency, known_in_advance=known, lease_owner=owner)
        if mode == PREDICT:
            item["data_end"] = latest.get("data_end")
            # its window skips the parts that end before it
            item["part_ends"] = shard_store.part_ends(members.get(shard, []), uploads["indexes"])
        items.append(item)
    prefix = run_prefix(dataset, run_id)
    previous = storage.get_item(table_keys.current_key(dataset)) or {}
    storage.put_json(
        prefix + "plan.json",
        {
            "run_id": run_id,
            "dataset": dataset,
            "shard_count": count,
            "previous_shard_count": manifest.get("shard_count"),
            "previous_generation": previous.get("generation"),
            "shard_rows": {str(shard): value for shard, value in sorted(rows.items())},
            "signatures": current,
            "frequency": frequency,
            "known_in_advance": known,
            "horizon": horizon,
            "shards": {str(item["shard"]): {"mode": item["mode"], "reason": item["reason"]} for item in items},
            "planned_at": now.isoformat(timespec="seconds"),
        },
    )
    shards_key = storage.put_json(prefix + "shards.json", items)  # a JSON array: the ItemReader's input
    modes = {mode: sum(item["mode"] == mode for item in items) for mode in (TRAIN, PREDICT)}
    return {
        "run_id": run_id,
        "shard_count": count,
        "shards_run": len(items),
        "modes": modes,
        "shards_key": shards_key,
        "plan_key": prefix + "plan.json",
        "results_prefix": prefix + "results/",
        "frequency": frequency,
        "known_in_advance": known,
        "horizon": horizon,
    }
