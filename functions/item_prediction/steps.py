"""The pipeline's steps as the handlers run them: read from S3, call the domain, write results.

Validation and feature steps import no scikit-learn (their functions run without the
ml-libraries layer); the prediction step lives in :mod:`item_prediction.prediction_step`.
"""

from __future__ import annotations

import re
from datetime import date

import pandas as pd

from . import features, schema, validation
from .schema import ColumnMapping
from .settings import Settings
from .storage import CsvGzipWriter, ObjectRef, Storage

_SUFFIXES = re.compile(r"(\.csv|\.txt|\.tsv)?(\.gz)?$", re.IGNORECASE)


def file_stem(settings: Settings, dataset: str, key: str) -> str:
    """``raw/sales/2024/jan.csv.gz`` -> ``2024/jan``: where this file's outputs go."""
    relative = key[len(settings.raw_prefix):] if key.startswith(settings.raw_prefix) else key
    if relative.startswith(dataset + "/"):
        relative = relative[len(dataset) + 1:]
    return _SUFFIXES.sub("", relative) or "input"


def load_mapping(storage: Storage, settings: Settings, dataset: str) -> ColumnMapping:
    """The dataset's mapping (``config/mappings/<dataset>.json``), else the default one, else identity."""
    for name in (dataset, "default"):
        key = f"{settings.mappings_prefix}{name}.json"
        if storage.exists(key):
            return ColumnMapping.from_json(storage.get_bytes(key))
    return ColumnMapping.identity()


def validate_object(storage: Storage, settings: Settings, ref: ObjectRef, *, today: date | None = None) -> dict:
    """Validate one raw object; write clean rows, quarantined rows and the report next to each other."""
    dataset = settings.dataset_of(ref.key)
    stem = file_stem(settings, dataset, ref.key)
    mapping = load_mapping(storage, settings, dataset)
    body, version, _ = storage.open(ref)
    clean, quarantined = CsvGzipWriter(), CsvGzipWriter()
    report = validation.validate(body, mapping, clean_sink=clean, quarantine_sink=quarantined, today=today, chunk_rows=settings.chunk_rows)
    keys = {
        "validated_key": f"{settings.validated_prefix}{dataset}/{stem}.csv.gz",
        "quarantine_key": f"{settings.quarantine_prefix}{dataset}/{stem}.csv.gz",
        "report_key": f"{settings.reports_prefix}{dataset}/{stem}.validation.json",
    }
    for writer, key in ((clean, keys["validated_key"]), (quarantined, keys["quarantine_key"])):
        with writer.finish() as handle:
            if writer.rows:
                storage.put_file(key, handle)
            elif storage.exists(key):  # a re-run of a fixed file must not leave the old rows behind
                storage.s3.delete_object(Bucket=storage.bucket, Key=key)
    report["source"] = {"bucket": ref.bucket, "key": ref.key, "version_id": version or ref.version_id}
    storage.put_json(keys["report_key"], report)
    return {
        "bucket": storage.bucket,
        "dataset": dataset,
        "source_key": ref.key,
        "source_version": version or ref.version_id,
        **{k: v for k, v in keys.items() if k == "report_key" or (k == "validated_key" and clean.rows) or (k == "quarantine_key" and quarantined.rows)},
        "rows": {"in": report["rows_in"], "clean": report["rows_clean"], "quarantined": report["rows_quarantined"]},
        "rules": report["rules"],
        "file_reason": report["file_reason"],
        "frequency": mapping.frequency or report["frequency"],
    }


def load_validated(storage: Storage, settings: Settings, dataset: str) -> pd.DataFrame:
    """Every validated file of a dataset, later files winning where the same row key repeats."""
    keys = [key for key in storage.list_keys(f"{settings.validated_prefix}{dataset}/") if key.endswith(".csv.gz")]
    if not keys:
        raise ValueError(f"dataset {dataset!r} has no validated data under {settings.validated_prefix}{dataset}/")
    dtypes = {schema.ITEM: "str", schema.STORE: "str", schema.DATE: "str"}
    frames = [storage.read_csv(key, dtype=dtypes, keep_default_na=False, na_values={schema.PRICE: [""]}) for key in keys]
    combined = pd.concat(frames, ignore_index=True)
    return combined.drop_duplicates(subset=list(schema.ROW_KEY), keep="last").reset_index(drop=True)


def build_feature_set(storage: Storage, settings: Settings, dataset: str, frequency: str | None = None) -> dict:
    clean = load_validated(storage, settings, dataset)
    frequency = frequency or validation.infer_frequency(set(clean[schema.DATE]), None)
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
        "frequency": frequency,
    }
