"""Series shards: which shard of a dataset each series lives in.

A dataset's validated rows are split by a stable hash of the series key (item, store) into
``count`` shards, ``count`` a power of two, so that every series lives in exactly one shard and
a shard's features, model and forecast need nothing from another shard. The hash
(:mod:`.shard_hash`) is the same in every process and version, so a row written today lands
where a reader next year looks for it.

Powers of two make re-sharding cheap: shard ``s`` of ``N`` is contained in shard ``s % n`` of any
``n <= N``, so rows written under a smaller count stay where they are and a reader of shard
``(N, s)`` picks them out of part ``(n, s % n)`` (:func:`reads_part`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import schema
from .shard_hash import series_hash


def check_count(count: int) -> int:
    """``count`` when it is a power of two from 1 to MAX_SHARDS, else ValueError."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1 or count & (count - 1):
        raise ValueError(f"a shard count is a power of two from 1 to {schema.MAX_SHARDS}, got {count!r}")
    if count > schema.MAX_SHARDS:
        raise ValueError(f"a shard count is a power of two from 1 to {schema.MAX_SHARDS}, got {count!r}")
    return count


def shard_of(items: pd.Series, stores: pd.Series, count: int) -> np.ndarray:
    """The shard (0 .. count-1) of each row's series, as int32.

    Hashed once per distinct series (a dataset has thousands of series for millions of rows),
    then mapped back to the rows.
    """
    check_count(count)
    if len(items) == 0:
        return np.zeros(0, dtype=np.int32)
    item_codes, item_names = pd.factorize(np.asarray(items, dtype=object), use_na_sentinel=False)
    store_codes, store_names = pd.factorize(np.asarray(stores, dtype=object), use_na_sentinel=False)
    codes, pairs = pd.factorize(item_codes.astype(np.int64) * len(store_names) + store_codes)  # a series' key as one integer
    items_of, stores_of = divmod(pairs, len(store_names))
    names = zip(item_names[items_of], store_names[stores_of], strict=True)
    hashes = np.fromiter((series_hash(str(item), str(store)) for item, store in names), dtype=np.uint64, count=len(pairs))
    return (hashes % count).astype(np.int32)[codes]


def shard_count_for(rows: int) -> int:
    """The smallest power of two that keeps ``rows`` at or under SHARD_TARGET_ROWS per shard."""
    count = 1
    while rows > count * schema.SHARD_TARGET_ROWS and count < schema.MAX_SHARDS:
        count *= 2
    return count


def reads_part(shard: int, count: int, part_shard: int, part_count: int) -> bool:
    """Whether shard ``(count, shard)`` needs rows from a part written as ``(part_count, part_shard)``.

    A part of a coarser split (``part_count <= count``) holds this shard's rows when
    ``shard % part_count == part_shard`` (the reader then keeps its own rows, see
    :func:`needs_filter`); a part of a finer split belongs to this shard when
    ``part_shard % count == shard``.
    """
    check_count(count)
    check_count(part_count)
    if part_count <= count:
        return shard % part_count == part_shard
    return part_shard % count == shard


def needs_filter(count: int, part_count: int) -> bool:
    """A part written under a smaller count also holds other shards' series."""
    return part_count < count
