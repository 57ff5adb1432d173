"""The FeatureEngineering step: rebuild a dataset's feature set from all its validated files."""

from __future__ import annotations

import pandas as pd

from ..aws.runtime import StepTimer
from ..aws.settings import Settings
from ..aws.storage import CsvGzipWriter, Storage
from ..domain import features, schema, validation
from .envelope import NothingToDo

MAX_INPUTS_IN_OUTPUT = 100  # a step's output stays far below Step Functions' 256 KB payload limit


def load_validated(storage: Storage, settings: Settings, dataset: str) -> tuple[pd.DataFrame, list[dict]]:
    """Every validated file of a dataset (canonical columns), later files winning where the same
    row key repeats, and the ``{key, version_id}`` of each object read (each read by exactly that
    version). Raises NothingToDo when the dataset has none."""
    keys = [key for key in storage.list_keys(f"{settings.validated_prefix}{dataset}/") if key.endswith(".csv.gz")]
    dtypes = {
        schema.ITEM: "str",
        schema.STORE: "str",
        schema.DATE: "str",
        schema.QUANTITY: "float64",
        schema.PRICE: "float64",
        schema.PROMOTION: "int8",
    }
    frames, inputs = [], []
    for key in keys:
        head = storage.head(key)
        if head is None:  # retracted between the listing and now
            continue
        version = head.get("VersionId")
        frames.append(
            storage.read_csv(
                key,
                version_id=version,
                usecols=list(schema.CANONICAL_COLUMNS),
                dtype=dtypes,
                keep_default_na=False,
                na_values={schema.PRICE: [""]},
            )
        )
        inputs.append({"key": key, "version_id": version})
    if not frames:
        raise NothingToDo(f"dataset {dataset!r} has no validated data under {settings.validated_prefix}{dataset}/")
    combined = pd.concat(frames, ignore_index=True)
    return combined.drop_duplicates(subset=list(schema.ROW_KEY), keep="last").reset_index(drop=True), inputs


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
