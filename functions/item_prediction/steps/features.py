"""The FeatureEngineering step: rebuild a dataset's feature set from all its validated files."""

from __future__ import annotations

import pandas as pd

from ..aws.runtime import StepTimer
from ..aws.settings import Settings
from ..aws.storage import CsvGzipWriter, Storage
from ..domain import features, schema, validation
from . import shard_store
from .envelope import NothingToDo

MAX_INPUTS_IN_OUTPUT = 100  # a step's output stays far below Step Functions' 256 KB payload limit


def load_validated(storage: Storage, settings: Settings, dataset: str) -> tuple[pd.DataFrame, list[dict]]:
    """Every validated row of a dataset (all its shard parts, canonical columns; the later part
    wins where the same row key repeats, see :mod:`.shard_store`), and the ``{key, version_id}``
    of each part read (each read by exactly that version). Raises NothingToDo when there is none."""
    clean, inputs = shard_store.load_shard(storage, settings, dataset, 1, 0)
    if not inputs:
        raise NothingToDo(f"dataset {dataset!r} has no validated data under {settings.validated_prefix}{dataset}/")
    return clean, inputs


def build_feature_set(
    storage: Storage, settings: Settings, dataset: str, frequency: str | None = None, *, timer: StepTimer | None = None
) -> dict:
    """Rebuild the dataset's feature set from all its validated files.

    ``frequency`` is the configured one (the mapping's); None infers it from the whole dataset.
    The manifest records the versions read (``inputs``) and written (``features_version``), so
    Predictions reads exactly these features and a run can be traced to its inputs. ``timer``
    gets ``read_validated``, ``build_features`` and ``write_features`` (the CSV's encoding too).
    """
    timer = timer or StepTimer()
    with timer("read_validated"):
        clean, inputs = load_validated(storage, settings, dataset)
    with timer("build_features"):
        frequency = frequency or validation.infer_frequency(clean[schema.DATE].unique(), None)
        frame, manifest = features.build_features(clean, frequency)
    prefix = f"{settings.features_prefix}{dataset}/"
    features_key = prefix + "features.csv.gz"
    with timer("write_features"):
        writer = CsvGzipWriter()
        writer(frame)
        with writer.finish() as handle:
            features_version = storage.put_file_version(features_key, handle)
        manifest_key = storage.put_json(
            prefix + "manifest.json",
            {**manifest, "features_key": features_key, "features_version": features_version, "inputs": inputs},
        )
    return {
        "bucket": storage.bucket,
        "dataset": dataset,
        "features_key": features_key,
        "features_version": features_version,
        "manifest_key": manifest_key,
        "input_count": len(inputs),
        **({"inputs": inputs} if len(inputs) <= MAX_INPUTS_IN_OUTPUT else {}),  # all of them are in the manifest
        "rows": manifest["rows"],
        "series": manifest["series"],
        "gaps": manifest["gaps"],
        "date_range": manifest["date_range"],
        "frequency": frequency,
    }
