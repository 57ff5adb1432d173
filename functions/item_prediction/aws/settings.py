"""Runtime settings, read from the environment in one place (the template sets them).

=========================  ===================  ==================================================
Variable                   Default              Meaning
=========================  ===================  ==================================================
``BUCKET_NAME``            (required)           the data bucket
``TABLE_NAME``             (required)           the predictions table (pk, sk)
``RAW_PREFIX``             ``raw/``             uploads: ``raw/<dataset>/<file>.csv[.gz]``
``VALIDATED_PREFIX``       ``validated/``       clean rows, Parquet parts ``<dataset>/n=<N>/shard=<s>/<file>.parquet``
                                                (``<file>``: the upload's key below ``raw/<dataset>/``,
                                                extension and all; steps/shard_store.py)
``QUARANTINE_PREFIX``      ``quarantine/``      rejected rows with ``_reasons``, ``<dataset>/<file>.csv.gz``
``REPORTS_PREFIX``         ``reports/``         ``<dataset>/<file>.validation.json``
``FEATURES_PREFIX``        ``features/``        ``<dataset>/shard=<s>/features.parquet`` and ``manifest.json``
``MODELS_PREFIX``          ``models/``          ``<dataset>/shard=<s>/<version>/model.joblib``, ``latest.json``
``PREDICTIONS_PREFIX``     ``predictions/``     ``<dataset>/<run_id>/shard=<s>.csv.gz``
``MAPPINGS_PREFIX``        ``config/mappings/``  ``<dataset>.json`` or ``default.json``
``FORECAST_HORIZON``       ``0``                periods; 0 = 14 for daily, 8 for weekly data
``CHUNK_ROWS``             ``100000``           rows validated at a time (bounds memory)
``MAX_OBJECT_BYTES``       ``1073741824``       an upload as stored; larger: refused ``too_large``
``MAX_STREAM_BYTES``       ``1073741824``       gunzipped; larger: ``decompressed_too_large``
``MAX_RECORD_BYTES``       ``1048576``          one CSV record (characters): ``record_too_large``
``MAX_COLUMNS``            ``200``              header columns; more: ``too_many_columns``
=========================  ===================  ==================================================

Powertools reads its own: ``POWERTOOLS_SERVICE_NAME``, ``POWERTOOLS_METRICS_NAMESPACE``,
``POWERTOOLS_LOG_LEVEL``. boto3 reads ``AWS_ENDPOINT_URL`` (a local emulator) by itself.
A malformed number is a configuration error, raised when the settings are first read.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ..domain.schema import DATASET_PATTERN

DEFAULT_DATASET = "default"  # the dataset of files directly under the raw prefix; not allowed as a folder
_DATASET_NAME = re.compile(DATASET_PATTERN)


PLAN_FOLDER = "plan"  # raw/<dataset>/plan/: plan files, read at forecast time (not sales data)


class DatasetNameError(ValueError):
    """A dataset name outside :data:`schema.DATASET_PATTERN`, or the reserved folder ``default``."""


def validate_dataset_name(name: str) -> str:
    """``name`` when it is a valid dataset name, else DatasetNameError with the one-line reason.

    The offline main job checks its ``--dataset`` argument with this before anything starts.
    """
    if not isinstance(name, str) or not _DATASET_NAME.fullmatch(name):
        raise DatasetNameError(
            f"dataset name {name!r} is not allowed: use 1 to 64 of A-Z a-z 0-9 _ - "
            f"(files directly under raw/ are dataset {DEFAULT_DATASET!r})"
        )
    return name


def _int(name: str, default: int, *, minimum: int) -> int:
    value = os.environ.get(name, "").strip()
    try:
        number = int(value) if value else default
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {value!r}") from None
    if number < minimum:
        raise ValueError(f"environment variable {name} must be at least {minimum}, got {number}")
    return number


@dataclass(frozen=True)
class Settings:
    """Where data lives and how much of it a function may take on."""

    bucket: str
    table: str
    raw_prefix: str = "raw/"
    validated_prefix: str = "validated/"
    quarantine_prefix: str = "quarantine/"
    reports_prefix: str = "reports/"
    features_prefix: str = "features/"
    models_prefix: str = "models/"
    predictions_prefix: str = "predictions/"
    mappings_prefix: str = "config/mappings/"
    forecast_horizon: int = 0  # periods; 0 means the frequency's default (14 days, 8 weeks)
    retrain_every_days: int = 28  # a shard's model older than this is retrained on its next upload
    chunk_rows: int = 100_000  # rows validated at a time: memory stays bounded whatever the file's size
    max_object_bytes: int = 1 << 30  # the budgets of one upload (decoding.Budget): past one, the file is refused
    max_stream_bytes: int = 1 << 30
    max_record_bytes: int = 1 << 20
    max_columns: int = 200

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            bucket=os.environ.get("BUCKET_NAME", ""),
            table=os.environ.get("TABLE_NAME", ""),
            raw_prefix=os.environ.get("RAW_PREFIX", cls.raw_prefix),
            validated_prefix=os.environ.get("VALIDATED_PREFIX", cls.validated_prefix),
            quarantine_prefix=os.environ.get("QUARANTINE_PREFIX", cls.quarantine_prefix),
            reports_prefix=os.environ.get("REPORTS_PREFIX", cls.reports_prefix),
            features_prefix=os.environ.get("FEATURES_PREFIX", cls.features_prefix),
            models_prefix=os.environ.get("MODELS_PREFIX", cls.models_prefix),
            predictions_prefix=os.environ.get("PREDICTIONS_PREFIX", cls.predictions_prefix),
            mappings_prefix=os.environ.get("MAPPINGS_PREFIX", cls.mappings_prefix),
            forecast_horizon=_int("FORECAST_HORIZON", 0, minimum=0),
            retrain_every_days=_int("RETRAIN_EVERY_DAYS", cls.retrain_every_days, minimum=1),
            chunk_rows=_int("CHUNK_ROWS", cls.chunk_rows, minimum=1),
            max_object_bytes=_int("MAX_OBJECT_BYTES", cls.max_object_bytes, minimum=1),
            max_stream_bytes=_int("MAX_STREAM_BYTES", cls.max_stream_bytes, minimum=1),
            max_record_bytes=_int("MAX_RECORD_BYTES", cls.max_record_bytes, minimum=1),
            max_columns=_int("MAX_COLUMNS", cls.max_columns, minimum=1),
        )

    def dataset_of(self, raw_key: str) -> str:
        """``raw/<dataset>/<file>`` -> ``<dataset>``; a file directly under raw/ is dataset ``default``.

        The one place the naming rule lives: raises DatasetNameError for a folder name outside
        :data:`schema.DATASET_PATTERN` (``raw/../x.csv``, ``raw/a b/x.csv``, ``raw//x.csv``) and
        for a folder ``raw/default/``, which would share its outputs with the files directly under raw/.
        """
        relative = raw_key[len(self.raw_prefix) :] if raw_key.startswith(self.raw_prefix) else raw_key
        folder, separator, _ = relative.partition("/")
        if not separator:
            return DEFAULT_DATASET
        if folder == DEFAULT_DATASET:
            raise DatasetNameError(
                f"dataset name {folder!r} is not allowed as a folder: "
                f"it is reserved for the files directly under {self.raw_prefix}"
            )
        return validate_dataset_name(folder)

    def plan_prefix(self, dataset: str) -> str:
        """Where a dataset's plan files (future prices and promotions) go: ``raw/<dataset>/plan/``.
        They are not sales uploads: DataValidation skips them, the Predictions shards read the newest."""
        return f"{self.raw_prefix}{dataset}/{PLAN_FOLDER}/"

    def is_plan_key(self, raw_key: str) -> bool:
        """True for an object under some dataset's plan folder (``raw/<dataset>/plan/...``)."""
        relative = raw_key.removeprefix(self.raw_prefix)
        parts = relative.split("/")
        return raw_key.startswith(self.raw_prefix) and len(parts) >= 3 and parts[1] == PLAN_FOLDER
