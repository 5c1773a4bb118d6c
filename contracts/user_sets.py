"""Sets of users as compressed bitmaps (Roaring, through pyroaring) of their dense numbers in the
user directory (schema.USER_NUMBERS): how the projections store unique users and how the query
side unions, intersects and counts them. Exact: a set holds every number, never an estimate.

One encoding for both sides: Roaring's portable serialization, run-optimized first.
"""

import hashlib

from pyroaring import BitMap

__all__ = ["BitMap", "decode", "encode", "fingerprint"]


def encode(users: BitMap) -> bytes:
    """The set as bytes for a bytea column. Runs compress sequential numbers (a day's new users)."""
    users.run_optimize()
    return bytes(users.serialize())


def decode(blob: bytes | memoryview) -> BitMap:
    return BitMap.deserialize(bytes(blob))


def fingerprint(numbers: BitMap) -> str:
    """md5 of the sorted numbers joined by commas: what `verify` compares a stored set by, with
    the same md5 computed in SQL from the raw events (`md5(string_agg(number::text, ','
    ORDER BY number))`), since SQL cannot build a bitmap."""
    return hashlib.md5(",".join(map(str, numbers)).encode(), usedforsecurity=False).hexdigest()
