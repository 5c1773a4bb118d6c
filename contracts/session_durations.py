"""Session durations as log-scale histograms (schema.SESSION_DURATIONS): how the sessions
projection files each session's duration and how the query side reads a percentile back.

A duration d > 0 seconds falls in bin 1 + ceil(log_g(d / SMALLEST)), g = (1 + a) / (1 - a), so
a bin covers (SMALLEST * g^(k-1), SMALLEST * g^k]; bin 0 holds the sessions of one instant. Any
value of bin k read as 2 * SMALLEST * g^k / (g + 1) is off by at most a = RELATIVE_ERROR of
itself (DDSketch's bound: Masson, Rim and Lee, VLDB 2019). A percentile interpolated between
two such reads (as percentile_cont does) keeps the bound, since both reads keep it and both are
positive. Counts and sums beside the bins are exact.

SQL files a duration (bin_sql) and Python reads it (value_of): the one formula lives here.
"""

import math
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

RELATIVE_ERROR = 0.01
SMALLEST = 1e-6
"""Seconds: timestamps' precision, so the shortest duration that is not zero."""
_GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
_LN_GAMMA = math.log(_GAMMA)
TOP_BIN = 32_000
"""Far past any session (SMALLEST * g^32000 is over 10^270 s); the clamp only keeps int4 safe."""


def bin_sql(seconds: str) -> str:
    """The bin of a duration in seconds (a float8 SQL expression). The same expression files
    sessions and recomputes them in `verify`, so their floating point agrees to the last bit."""
    return (
        f"CASE WHEN {seconds} <= 0 THEN 0 ELSE 1 + least({TOP_BIN}, greatest(0,"
        f" ceil(ln({seconds} / {SMALLEST!r}::float8) / {_LN_GAMMA!r}::float8)))::int4 END"
    )


def value_of(bin_index: int) -> float:
    """The duration read back from a bin: within RELATIVE_ERROR of every duration in it."""
    if bin_index <= 0:
        return 0.0
    return 2 * SMALLEST * _GAMMA ** (bin_index - 1) / (_GAMMA + 1)


Histogram = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]
"""Bins ascending and their counts (no zero count): one histogram row's, or many merged."""


def merge_histograms(rows: Iterable[tuple[Sequence[int], Sequence[int]]]) -> Histogram:
    """The sum of histogram rows given as (bins, counts)."""
    listed = list(rows)
    if not listed:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    bins = np.concatenate([np.asarray(row[0], dtype=np.int64) for row in listed])
    counts = np.concatenate([np.asarray(row[1], dtype=np.int64) for row in listed])
    merged, where = np.unique(bins, return_inverse=True)
    summed = np.zeros(len(merged), np.int64)
    np.add.at(summed, where, counts)
    kept = summed != 0
    return merged[kept], summed[kept]


def percentile(histogram: Histogram, fraction: float) -> float | None:
    """percentile_cont(fraction) of the durations a histogram holds: the values at ranks floor
    and ceil of fraction * (n - 1), each read back from its bin, interpolated. None when empty."""
    bins, counts = histogram
    if len(bins) == 0:
        return None
    cumulative = np.cumsum(counts)
    position = fraction * (int(cumulative[-1]) - 1)
    low_rank = math.floor(position)
    # The bin holding rank r is the first whose cumulative count exceeds r.
    low, high = np.searchsorted(cumulative, [low_rank, low_rank + 1], side="right")
    low_value, high_value = value_of(int(bins[low])), value_of(int(bins[min(high, len(bins) - 1)]))
    return low_value + (position - low_rank) * (high_value - low_value)
