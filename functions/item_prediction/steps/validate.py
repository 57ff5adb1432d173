"""The DataValidation step: which objects are sales files, where one upload's outputs go, pinning
the event's version, validating it (clean, quarantined, report) and retracting a deleted upload."""

from __future__ import annotations

import posixpath
import tempfile
from dataclasses import replace
from datetime import UTC, date, datetime

from ..aws.runtime import StepTimer
from ..aws.settings import DEFAULT_DATASET, Settings
from ..aws.storage import CsvGzipWriter, ObjectRef, Storage
from ..domain import decoding, validation
from ..domain.schema import ColumnMapping, MappingError
from . import shard_store
from .envelope import NothingToDo

MAPPING_FILE = "_mapping.json"
MAX_KEYS_IN_OUTPUT = 100
PLAN_FILE_REASON = "a plan file, read at forecast time"  # a retraction's removed_keys in the output (removed_count has them all)


def skip_reason(settings: Settings, key: str) -> str | None:
    """Why an object is not a sales file to validate, or None when it is one.

    Only objects under the raw prefix are data; a name starting with ``_`` or ``.`` (such as the
    dataset's ``_mapping.json``), a folder marker, a JSON file or a plan file
    (``raw/<dataset>/plan/...``: future prices and promotions, read by the Predictions step) is not.
    """
    if not key.startswith(settings.raw_prefix):
        return f"not under {settings.raw_prefix}"
    name = posixpath.basename(key)
    if not name or key.endswith("/"):
        return "a folder, not a file"
    if name.startswith(("_", ".")) or name.lower().endswith(".json"):
        return f"{name} is configuration or hidden, not sales data"
    if settings.is_plan_key(key):
        return PLAN_FILE_REASON
    return None


def output_keys(settings: Settings, dataset: str, key: str) -> dict[str, str]:
    """Where one upload's outputs go, from its full key (the only place this mapping lives).

    ``relative`` is the key after ``raw/<dataset>/`` (after ``raw/`` for dataset ``default``),
    kept verbatim with its extension: ``raw/sales/2024/jan.csv.gz`` -> clean rows in the parts
    ``validated/sales/n=<N>/shard=<s>/2024/jan.csv.gz.parquet`` (:mod:`.shard_store`) indexed by
    ``validated/sales/_parts/2024/jan.csv.gz.json``, ``quarantine/sales/2024/jan.csv.gz.csv.gz``
    and ``reports/sales/2024/jan.csv.gz.validation.json``. Distinct uploads (``jan.csv``,
    ``jan.CSV``, ``jan``, ``raw/jan.csv`` and ``raw/x/jan.csv``) never share an output, so one
    file's outputs are only ever replaced or removed by a later version of the same file.
    """
    if settings.dataset_of(key) != dataset:
        raise ValueError(f"{key} is not in dataset {dataset!r}")
    relative = key.removeprefix(settings.raw_prefix)
    if dataset != DEFAULT_DATASET:
        relative = relative.removeprefix(dataset + "/")
    return {
        "relative": relative,
        "index_key": shard_store.index_key(settings, dataset, relative),
        "quarantine_key": f"{settings.quarantine_prefix}{dataset}/{relative}.csv.gz",
        "report_key": f"{settings.reports_prefix}{dataset}/{relative}.validation.json",
    }


def pin_current_version(storage: Storage, ref: ObjectRef) -> ObjectRef:
    """The event's object pinned to its version, which must still be the current one.

    A late event (the key was overwritten or deleted since) raises NothingToDo ``superseded``:
    the newer version's own event brings the newer data. An event without a version (a manual
    re-run) is pinned to the current version, so the whole run reads one version.
    """
    head = storage.head(ref.key)
    if head is None:
        raise NothingToDo(f"superseded: {ref.key} no longer exists (deleted since this event)")
    current = head.get("VersionId")
    if ref.version_id and current and ref.version_id != current:
        raise NothingToDo(f"superseded: a newer version of {ref.key} exists")
    return replace(ref, version_id=ref.version_id or current, size=head.get("ContentLength", ref.size))


def survivor_after_delete(storage: Storage, settings: Settings, dataset: str, ref: ObjectRef) -> ObjectRef | None:
    """After an "Object Deleted" event: None when the key is gone (its rows are to be retracted);
    the now current version when the deleted one was current (to be validated in its place);
    NothingToDo when the outputs already come from the current version (an old version went)."""
    head = storage.head(ref.key)
    if head is None:
        return None
    current = head.get("VersionId")
    report_key = output_keys(settings, dataset, ref.key)["report_key"]
    validated_from = (storage.get_json_if_any(report_key) or {}).get("source", {}).get("version_id")
    if validated_from and validated_from == current:
        raise NothingToDo(f"nothing to retract: the current version {current} of {ref.key} is the one validated")
    return replace(ref, version_id=current, deleted=False, size=head.get("ContentLength"))


def retract_source(storage: Storage, settings: Settings, dataset: str, ref: ObjectRef, *, now: datetime) -> dict:
    """Remove a deleted upload's validated parts (and index) and quarantined rows; mark its report ``retracted``.

    Returns the step's output (the run goes on: the shards in ``shards_removed`` are rebuilt
    without those rows); raises NothingToDo when there was nothing to retract or no validated rows
    went (features unchanged). Older versions of the outputs stay in the versioned bucket.
    """
    keys = output_keys(settings, dataset, ref.key)
    parts = shard_store.drop_source(storage, settings, dataset, keys["relative"])
    quarantined = storage.exists(keys["quarantine_key"])
    if quarantined:
        storage.delete(keys["quarantine_key"])
    report = storage.get_json_if_any(keys["report_key"])
    if not parts and not quarantined and (report is None or report.get("retracted")):
        raise NothingToDo(f"already retracted: {ref.key}" if report else f"nothing to retract: {ref.key} has no outputs")
    report = report or {"source": {"bucket": ref.bucket, "key": ref.key}}
    report.update(retracted=True, retracted_at=now.isoformat(timespec="seconds"), retracted_by={"version_id": ref.version_id})
    storage.put_json(keys["report_key"], report)
    if not parts:
        raise NothingToDo(f"retracted {ref.key}: it had no validated rows, so the features stay as they are")
    removed = [part.key for part in parts] + ([keys["quarantine_key"]] if quarantined else [])
    return {
        "bucket": storage.bucket,
        "dataset": dataset,
        "source_key": ref.key,
        "source_version": ref.version_id,
        "retracted": True,
        "removed_count": len(removed),
        "removed_keys": removed[:MAX_KEYS_IN_OUTPUT],
        "report_key": keys["report_key"],
        **shard_store.shard_lists(
            storage, dataset, keys["relative"], {"shards_written": [], "shards_removed": shard_store.removed_shards(parts)}
        ),
        "frequency": None,
        "frequency_source": None,
    }


def mapping_candidates(settings: Settings, dataset: str, key: str) -> list[str]:
    """Where a raw object's mapping may be, in order: next to the file, at the dataset's root,
    then ``config/mappings/<dataset>.json`` and ``config/mappings/default.json``."""
    folder = posixpath.dirname(key)
    root = f"{settings.raw_prefix}{dataset}" if dataset != "default" else settings.raw_prefix.rstrip("/")
    places = [f"{folder}/{MAPPING_FILE}", f"{root}/{MAPPING_FILE}"]
    places += [f"{settings.mappings_prefix}{dataset}.json", f"{settings.mappings_prefix}default.json"]
    return list(dict.fromkeys(places))


def load_mapping(
    storage: Storage, settings: Settings, dataset: str, key: str, mapping_key: str | None = None
) -> tuple[ColumnMapping, str | None]:
    """The mapping for a raw object and where it came from (None: identity).

    ``mapping_key`` (named by the event) must exist; otherwise the first of
    :func:`mapping_candidates` that exists is used. Raises MappingError for a mapping that
    cannot be used: the user's file is then quarantined with that reason, not misread.
    """
    if mapping_key:
        if not storage.exists(mapping_key):
            raise MappingError(f"the mapping {mapping_key} named by the event does not exist")
        return ColumnMapping.from_json(storage.get_bytes(mapping_key)), mapping_key
    for candidate in mapping_candidates(settings, dataset, key):
        if storage.exists(candidate):
            try:
                return ColumnMapping.from_json(storage.get_bytes(candidate)), candidate
            except MappingError as exc:
                raise MappingError(f"{candidate}: {exc}") from None
    return ColumnMapping.identity(), None


def write_quarantine(storage: Storage, key: str, writer: CsvGzipWriter, *, refused: bool) -> None:
    """Store the quarantined rows; without rows, or for a file refused part-way (what the writer got
    is void), remove what the key held from an earlier version of the same upload."""
    with writer.finish() as handle:
        if writer.rows and not refused:
            storage.put_file(key, handle)
        elif storage.exists(key):
            storage.delete(key)


def write_clean(
    storage: Storage, settings: Settings, dataset: str, ref: ObjectRef, sink, *, refused: bool, date_range: list | None = None
) -> dict:
    """Store the clean rows as shard parts (:func:`shard_store.store_parts`; ``date_range``: the
    first and last date of the clean rows, the report's, for the upload's index); without clean rows, or
    for a refused file, remove the upload's parts of an earlier version. Returns ``shard_count``,
    ``shards_written`` and ``shards_removed``."""
    relative = output_keys(settings, dataset, ref.key)["relative"]
    if sink.rows and not refused:
        return shard_store.store_parts(storage, settings, dataset, ref.key, relative, sink, date_range)
    removed = shard_store.drop_source(storage, settings, dataset, relative)
    return {"shard_count": sink.count, "shards_written": [], "shards_removed": shard_store.removed_shards(removed)}


def _run_validation(storage: Storage, settings: Settings, ref: ObjectRef, mapping_key: str | None, sinks: tuple, today) -> dict:
    """The mapping, then the upload read as it streams through the rules into ``sinks``; the report."""
    dataset = settings.dataset_of(ref.key)
    mapping_error = None
    try:
        mapping, mapping_source = load_mapping(storage, settings, dataset, ref.key, mapping_key)
    except MappingError as exc:
        mapping, mapping_source, mapping_error = ColumnMapping.identity(), None, str(exc)
    body, version, stored_size = storage.open(ref)  # a GET's headers: no byte of the body is read yet
    report = validation.validate(
        body,
        mapping,
        clean_sink=sinks[0],
        quarantine_sink=sinks[1],
        today=today,
        chunk_rows=settings.chunk_rows,
        mapping_error=mapping_error,
        budget=decoding.Budget.of(settings),
        sizes=(ref.size, stored_size),
    )
    report["source"] = {"bucket": ref.bucket, "key": ref.key, "version_id": version or ref.version_id}
    report["mapping"] = (
        {"source": mapping_source, **mapping.describe()} if not mapping_error else {"source": None, "error": mapping_error}
    )
    return report


def known_in_advance_of(report: dict) -> dict:
    """``{"known_in_advance": [...]}`` from the mapping the upload was read with (the Plan step
    records it for the run), or nothing when the mapping could not be used."""
    mapping = report.get("mapping") or {}
    return {} if mapping.get("error") else {"known_in_advance": list(mapping.get("known_in_advance") or [])}


def validate_object(
    storage: Storage,
    settings: Settings,
    ref: ObjectRef,
    *,
    today: date | None = None,
    mapping_key: str | None = None,
    timer: StepTimer | None = None,
) -> dict:
    """Validate one raw object; write its clean rows as shard parts, its quarantined rows and report.

    Returns the step's output (see ``data_validation.app``); ``skipped`` is set when the file
    brought no clean rows and removed none, as there is then nothing new to learn from.
    ``timer`` gets ``validate`` (the mapping, reading the upload as it streams, the rules, the
    local parts) and ``write_outputs`` (parts, quarantined rows, the report).
    """
    timer = timer or StepTimer()
    dataset = settings.dataset_of(ref.key)
    keys = output_keys(settings, dataset, ref.key)
    with tempfile.TemporaryDirectory(prefix="parts-") as directory:
        clean = shard_store.ShardSink(shard_store.manifest_shard_count(storage, settings, dataset), directory)
        quarantined = CsvGzipWriter(escape_formulas=True)  # quarantine rows are for people
        with timer("validate"):
            report = _run_validation(storage, settings, ref, mapping_key, (clean, quarantined), today)
        refused = report["file_reason"] in validation.REFUSED
        with timer("write_outputs"):
            lists = write_clean(storage, settings, dataset, ref, clean, refused=refused, date_range=report["date_range"])
            write_quarantine(storage, keys["quarantine_key"], quarantined, refused=refused)
            storage.put_json(keys["report_key"], report)
    result = {
        "bucket": storage.bucket,
        "dataset": dataset,
        "source_key": ref.key,
        "source_version": report["source"]["version_id"],
        "report_key": keys["report_key"],
        **({"quarantine_key": keys["quarantine_key"]} if report["rows_quarantined"] else {}),
        "rows": {"in": report["rows_in"], "clean": report["rows_clean"], "quarantined": report["rows_quarantined"]},
        "rules": report["rules"],
        "file_reason": report["file_reason"],
        "frequency": report["frequency"],
        "frequency_source": report["frequency_source"],
        **known_in_advance_of(report),
        "shard_count": lists.pop("shard_count"),
        **shard_store.shard_lists(storage, dataset, keys["relative"], lists),
    }
    if not report["rows_clean"] and not lists["shards_removed"]:
        result.update(skipped=True, reason="no clean rows in this file: nothing new to learn from")
    return result


def validate_current(
    storage: Storage,
    settings: Settings,
    ref: ObjectRef,
    *,
    mapping_key: str | None = None,
    attempts: int = 3,
    timer: StepTimer | None = None,
) -> dict:
    """:func:`validate_object`, then make sure the outputs come from the key's current version.

    Two events for one key can be validated at once; if a newer version arrived (or the upload was
    deleted) while this one was read, the newer one's run may have written first, and these older
    rows would stay. So the outputs are redone from the current version (or retracted). The output
    keeps the event's ``source_version`` (the run's identity, its lease owner) and names the
    version whose rows were written in ``validated_version``.
    """
    event_version, dataset = ref.version_id, settings.dataset_of(ref.key)
    for _ in range(attempts):
        result = validate_object(storage, settings, ref, mapping_key=mapping_key, timer=timer)
        head = storage.head(ref.key)
        if not ref.version_id or (head is not None and head.get("VersionId") == ref.version_id):
            break
        if head is None:
            result = retract_source(storage, settings, dataset, ref, now=datetime.now(UTC))
            break
        ref = replace(ref, version_id=head.get("VersionId"), size=head.get("ContentLength"))
    return {**result, "validated_version": result["source_version"], "source_version": event_version}
