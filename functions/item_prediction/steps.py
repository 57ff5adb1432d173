"""The pipeline's steps as the handlers run them: read from S3, call the domain, write results.

Validation and feature steps import no scikit-learn (their functions run without the
ml-libraries layer); the prediction step lives in :mod:`item_prediction.prediction_step`.
"""

from __future__ import annotations

import posixpath
import re
from datetime import date

import pandas as pd

from . import decoding, features, schema, validation
from .schema import ColumnMapping, MappingError
from .settings import Settings
from .storage import CsvGzipWriter, ObjectRef, Storage

_SUFFIXES = re.compile(r"(\.csv|\.txt|\.tsv)?(\.gz)?$", re.IGNORECASE)
MAPPING_FILE = "_mapping.json"


class NothingToDo(Exception):
    """The step has no work for this input (said in the output as ``skipped`` with the reason)."""


def skip_reason(settings: Settings, key: str) -> str | None:
    """Why an object is not a sales file to validate, or None when it is one.

    Only objects under the raw prefix are data; a name starting with ``_`` or ``.`` (such as the
    dataset's ``_mapping.json``), a folder marker or a JSON file is not.
    """
    if not key.startswith(settings.raw_prefix):
        return f"not under {settings.raw_prefix}"
    name = posixpath.basename(key)
    if not name or key.endswith("/"):
        return "a folder, not a file"
    if name.startswith(("_", ".")) or name.lower().endswith(".json"):
        return f"{name} is configuration or hidden, not sales data"
    return None


def file_stem(settings: Settings, dataset: str, key: str) -> str:
    """``raw/sales/2024/jan.csv.gz`` -> ``2024/jan``: where this file's outputs go."""
    relative = key[len(settings.raw_prefix):] if key.startswith(settings.raw_prefix) else key
    if relative.startswith(dataset + "/"):
        relative = relative[len(dataset) + 1:]
    return _SUFFIXES.sub("", relative) or "input"


def mapping_candidates(settings: Settings, dataset: str, key: str) -> list[str]:
    """Where a raw object's mapping may be, in order: next to the file, at the dataset's root,
    then ``config/mappings/<dataset>.json`` and ``config/mappings/default.json``."""
    folder = posixpath.dirname(key)
    root = f"{settings.raw_prefix}{dataset}" if dataset != "default" else settings.raw_prefix.rstrip("/")
    places = [f"{folder}/{MAPPING_FILE}", f"{root}/{MAPPING_FILE}"]
    places += [f"{settings.mappings_prefix}{dataset}.json", f"{settings.mappings_prefix}default.json"]
    return list(dict.fromkeys(places))


def load_mapping(storage: Storage, settings: Settings, dataset: str, key: str, mapping_key: str | None = None) -> tuple[ColumnMapping, str | None]:
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


def validate_object(storage: Storage, settings: Settings, ref: ObjectRef, *, today: date | None = None, mapping_key: str | None = None) -> dict:
    """Validate one raw object; write clean rows, quarantined rows and the report next to each other.

    Returns the step's output (see ``data_validation.app``); ``skipped`` is set when the file
    brought no clean rows and removed none, as there is then nothing new to learn from.
    """
    dataset = settings.dataset_of(ref.key)
    stem = file_stem(settings, dataset, ref.key)
    mapping_error = None
    try:
        mapping, mapping_source = load_mapping(storage, settings, dataset, ref.key, mapping_key)
    except MappingError as exc:
        mapping, mapping_source, mapping_error = ColumnMapping.identity(), None, str(exc)
    body, version, stored_size = storage.open(ref)  # a GET's headers: no byte of the body is read yet
    clean, quarantined = CsvGzipWriter(), CsvGzipWriter(escape_formulas=True)  # quarantine rows are for people
    report = validation.validate(
        body, mapping, clean_sink=clean, quarantine_sink=quarantined, today=today, chunk_rows=settings.chunk_rows, mapping_error=mapping_error,
        budget=decoding.Budget.of(settings), sizes=(ref.size, stored_size),
    )  # fmt: skip
    refused = report["file_reason"] in validation.REFUSED  # refused part-way: what the writers got is void
    keys = {
        "validated_key": f"{settings.validated_prefix}{dataset}/{stem}.csv.gz",
        "quarantine_key": f"{settings.quarantine_prefix}{dataset}/{stem}.csv.gz",
        "report_key": f"{settings.reports_prefix}{dataset}/{stem}.validation.json",
    }
    removed_clean = False
    for writer, key in ((clean, keys["validated_key"]), (quarantined, keys["quarantine_key"])):
        with writer.finish() as handle:
            if writer.rows and not refused:
                storage.put_file(key, handle)
            elif storage.exists(key):  # a re-upload of the same file name must not leave old rows behind
                storage.delete(key)
                removed_clean = removed_clean or writer is clean
    report["source"] = {"bucket": ref.bucket, "key": ref.key, "version_id": version or ref.version_id}
    report["mapping"] = {"source": mapping_source, **mapping.describe()} if not mapping_error else {"source": None, "error": mapping_error}
    storage.put_json(keys["report_key"], report)
    result = {
        "bucket": storage.bucket,
        "dataset": dataset,
        "source_key": ref.key,
        "source_version": version or ref.version_id,
        **{k: v for k, v in keys.items() if k == "report_key" or (k == "validated_key" and report["rows_clean"]) or (k == "quarantine_key" and report["rows_quarantined"])},
        "rows": {"in": report["rows_in"], "clean": report["rows_clean"], "quarantined": report["rows_quarantined"]},
        "rules": report["rules"],
        "file_reason": report["file_reason"],
        "frequency": report["frequency"],
        "frequency_source": report["frequency_source"],
    }
    if not report["rows_clean"] and not removed_clean:
        result.update(skipped=True, reason="no clean rows in this file: nothing new to learn from")
    return result


def load_validated(storage: Storage, settings: Settings, dataset: str) -> pd.DataFrame:
    """Every validated file of a dataset (canonical columns), later files winning where the same
    row key repeats. Raises NothingToDo when the dataset has none."""
    keys = [key for key in storage.list_keys(f"{settings.validated_prefix}{dataset}/") if key.endswith(".csv.gz")]
    if not keys:
        raise NothingToDo(f"dataset {dataset!r} has no validated data under {settings.validated_prefix}{dataset}/")
    dtypes = {schema.ITEM: "str", schema.STORE: "str", schema.DATE: "str", schema.QUANTITY: "float64", schema.PRICE: "float64", schema.PROMOTION: "int8"}
    frames = [
        storage.read_csv(key, usecols=list(schema.CANONICAL_COLUMNS), dtype=dtypes, keep_default_na=False, na_values={schema.PRICE: [""]})
        for key in keys
    ]
    combined = pd.concat(frames, ignore_index=True)
    return combined.drop_duplicates(subset=list(schema.ROW_KEY), keep="last").reset_index(drop=True)


def build_feature_set(storage: Storage, settings: Settings, dataset: str, frequency: str | None = None) -> dict:
    """Rebuild the dataset's feature set from all its validated files.

    ``frequency`` is the configured one (the mapping's); None infers it from the whole dataset.
    """
    clean = load_validated(storage, settings, dataset)
    frequency = frequency or validation.infer_frequency(clean[schema.DATE].unique(), None)
    frame, manifest = features.build_features(clean, frequency)
    prefix = f"{settings.features_prefix}{dataset}/"
    features_key = storage.write_csv(prefix + "features.csv.gz", frame)
    manifest_key = storage.put_json(prefix + "manifest.json", {**manifest, "features_key": features_key})
    return {
        "bucket": storage.bucket,
        "dataset": dataset,
        "features_key": features_key,
        "manifest_key": manifest_key,
        "rows": manifest["rows"],
        "series": manifest["series"],
        "gaps": manifest["gaps"],
        "date_range": manifest["date_range"],
        "frequency": frequency,
    }
