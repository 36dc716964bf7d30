"""The latency histogram of service statistics: fixed log-scale buckets, so that histograms of any
workers and minutes merge by adding counts, and percentiles are read from the merged counts.

The one place that knows the buckets: the server records into them (zato.server.stats) and the
queries merge them and read percentiles (zato.odb.stats_query).

Bucket bounds are half-octaves (each bound is sqrt(2) times the one before) from 10 µs to 84 s:
bucket 0 holds durations under 10 µs, bucket i (1 to 46) those in [BOUNDS[i-1], BOUNDS[i]), and
bucket 47 everything from 84 s up. 10 µs, because a trivial Python service takes 10-30 µs and
should still have a p50 apart from its p99. A percentile is exact to the bucket and interpolated
within it (geometrically, as the buckets are), so it is off by at most the bucket's width, 41 %,
and in practice far less; it is never above the largest duration seen.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence

# Upper bounds of buckets 0 to 46, in seconds
BOUNDS: tuple[float, ...] = tuple(10e-6 * 2 ** (i / 2) for i in range(47))

# Buckets: one below each bound, and one above the last
SIZE = len(BOUNDS) + 1


def bucket_of(seconds: float) -> int:
    """The bucket a duration falls into (a negative one, from a clock step, into bucket 0)."""
    return bisect_right(BOUNDS, seconds)


def empty() -> list[int]:
    """Dense counts with nothing in them."""
    return [0] * SIZE


def to_sparse(counts: Sequence[int]) -> dict[str, int]:
    """Dense counts as stored in the ODB: {"bucket index": count} for non-empty buckets only."""
    return {str(i): c for i, c in enumerate(counts) if c}


def merge(into: list[int], sparse: Mapping[str, int] | None) -> list[int]:
    """Adds a stored histogram to dense counts, in place; returns them. Unknown buckets (a histogram
    written with other bounds) go to the nearest end rather than being lost."""
    if sparse:
        last = SIZE - 1
        for key, count in sparse.items():
            index = int(key)
            into[0 if index < 0 else last if index > last else index] += int(count)
    return into


def merged(histograms: Iterable[Mapping[str, int] | None]) -> list[int]:
    """Dense counts of all the stored histograms together."""
    counts = empty()
    for sparse in histograms:
        merge(counts, sparse)
    return counts


def percentile(counts: Sequence[int], q: float, max_seconds: float = 0.0) -> float | None:
    """The q-quantile (0 < q <= 1) of dense counts, in seconds; None when there are no counts.

    The nearest-rank sample is located in its bucket and placed within it by its rank among the
    bucket's samples; `max_seconds`, the largest duration seen (if known), caps the result.
    """
    if not 0 < q <= 1:
        raise ValueError(f'expected a quantile in (0, 1], got {q}')
    total = sum(counts)
    if total <= 0:
        return None
    # 1e-9: 0.99 * 100 is 99.00000000000001 in floats, and its nearest rank is 99, not 100
    rank = max(1, math.ceil(q * total - 1e-9))
    seen = 0
    for index, count in enumerate(counts):
        if count <= 0:
            continue
        if seen + count >= rank:
            fraction = (rank - seen) / count
            if index == 0:
                value = BOUNDS[0] * fraction
            elif index >= len(BOUNDS):
                value = max_seconds or BOUNDS[-1]
            else:
                low, high = BOUNDS[index - 1], BOUNDS[index]
                value = low * (high / low) ** fraction
            return min(value, max_seconds) if max_seconds > 0 else value
        seen += count
    return None  # pragma: no cover - the loop always reaches the rank
