"""The stable hash that places a series (item, store) in a shard: standard library only, so the
read API (no pandas) and the pipeline (:mod:`.shards`) share one definition.

BLAKE2b of the UTF-8 key ``item<US>store`` (ASCII unit separator), its 8 bytes read big-endian:
the same in every process, Python and pandas version (Python's ``hash`` is salted per process;
pandas' hashing is not promised stable), and well mixed in its low bits, which pick the shard
(``hash % count``, count a power of two). CRC-32, tried first, is linear: ids that differ in one
character (``SKU-0001``, ``SKU-0002`` ...) crowded into a few shards.
"""

from __future__ import annotations

import hashlib

from .schema import NO_STORE

SEPARATOR = "\x1f"  # cannot occur in validated ids, so ("a|b", "c") and ("a", "b|c") stay apart


def series_hash(item: str, store: str | None) -> int:
    """The series' 64-bit hash (a missing store is schema.NO_STORE, as everywhere)."""
    key = f"{item}{SEPARATOR}{store if store is not None else NO_STORE}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")


def shard_of_series(item: str, store: str | None, count: int) -> int:
    """The shard (0 .. count-1) of one series."""
    return series_hash(item, store) % count
