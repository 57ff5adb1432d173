"""PLACEHOLDER until the shards branch lands (its shard_store.py replaces this file at the merge).

Reads a dataset's validated Parquet parts ``validated/<ds>/n=<N>/shard=<s:05d>/<relative>.parquet``
as DESIGN12.md describes them; only what the fan-out needs to run against the contract.
"""

from __future__ import annotations

import re

import pandas as pd

from ..aws.settings import Settings
from ..aws.storage import Storage
from ..domain import schema, shards

_PART = re.compile(r"n=(\d+)/shard=(\d+)/.+\.parquet$")


def list_parts(storage: Storage, settings: Settings, dataset: str) -> list[dict]:
    """Every part: the listing's entry plus ``count`` and ``shard`` parsed from its key."""
    prefix = f"{settings.validated_prefix}{dataset}/"
    parts = []
    for entry in storage.list_objects(prefix):
        match = _PART.match(entry["key"][len(prefix) :])
        if match:
            parts.append({**entry, "count": int(match.group(1)), "shard": int(match.group(2))})
    return parts


def load_shard(storage: Storage, settings: Settings, dataset: str, count: int, shard: int, *, since=None):
    """The shard's rows (later parts winning per row key) and the ``{key, version_id}`` read."""
    frames, inputs = [], []
    parts = [p for p in list_parts(storage, settings, dataset) if shards.reads_part(shard, count, p["shard"], p["count"])]
    for part in sorted(parts, key=lambda p: p["last_modified"]):
        head = storage.head(part["key"])
        if head is None:
            continue
        frame = storage.read_parquet(part["key"], version_id=head.get("VersionId"))
        if shards.needs_filter(count, part["count"]):
            frame = frame[shards.shard_of(frame[schema.ITEM], frame[schema.STORE], count) == shard]
        if since is not None:
            frame = frame[frame[schema.DATE] >= since]
        frames.append(frame)
        inputs.append({"key": part["key"], "version_id": head.get("VersionId")})
    if not frames:
        return pd.DataFrame(columns=list(schema.CANONICAL_COLUMNS)), inputs
    combined = pd.concat(frames, ignore_index=True)
    return combined.drop_duplicates(subset=list(schema.ROW_KEY), keep="last").reset_index(drop=True), inputs


def dataset_shard_rows(storage: Storage, settings: Settings, dataset: str, count: int) -> dict[int, int]:
    """Rows per shard under ``count`` (before superseding)."""
    rows: dict[int, int] = {}
    for part in list_parts(storage, settings, dataset):
        frame = storage.read_parquet(part["key"], columns=[schema.ITEM, schema.STORE])
        for shard, number in pd.Series(shards.shard_of(frame[schema.ITEM], frame[schema.STORE], count)).value_counts().items():
            rows[int(shard)] = rows.get(int(shard), 0) + int(number)
    return rows
