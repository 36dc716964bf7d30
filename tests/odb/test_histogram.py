"""The latency histogram: buckets, the stored (sparse) form, merging and percentiles."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, strategies as st

from zato.odb.histogram import BOUNDS, SIZE, bucket_of, empty, merge, merged, percentile, to_sparse


def counts_of(durations) -> list[int]:
    counts = empty()
    for d in durations:
        counts[bucket_of(d)] += 1
    return counts


def test_the_buckets_are_half_octaves_from_10_microseconds_past_60_seconds():
    assert BOUNDS[0] == pytest.approx(10e-6)
    assert 60 < BOUNDS[-1] < 90
    assert SIZE == len(BOUNDS) + 1 == 48
    for low, high in zip(BOUNDS, BOUNDS[1:], strict=False):
        assert high / low == pytest.approx(math.sqrt(2))


@pytest.mark.parametrize('seconds, bucket', [
    (-0.001, 0), (0.0, 0), (9e-6, 0), (10e-6, 1), (BOUNDS[1] - 1e-12, 1), (BOUNDS[1], 2),
    (BOUNDS[-1] - 1e-9, len(BOUNDS) - 1), (BOUNDS[-1], len(BOUNDS)), (3600.0, len(BOUNDS)),
])
def test_a_duration_falls_into_the_bucket_below_its_upper_bound(seconds, bucket):
    assert bucket_of(seconds) == bucket


def test_no_counts_have_no_percentile():
    assert percentile(empty(), 0.5) is None
    assert percentile(empty(), 0.99, 1.0) is None


@pytest.mark.parametrize('q', [0, -0.5, 1.01])
def test_a_quantile_outside_0_to_1_is_refused(q):
    with pytest.raises(ValueError):
        percentile(counts_of([0.01]), q)


def test_one_sample_is_every_percentile_and_is_capped_by_the_max_seen():
    counts = counts_of([0.0123])
    assert percentile(counts, 0.5, 0.0123) == pytest.approx(0.0123)
    assert percentile(counts, 0.99, 0.0123) == pytest.approx(0.0123)
    # Without the max, the sample's bucket's upper bound
    assert percentile(counts, 0.5) == pytest.approx(BOUNDS[bucket_of(0.0123)])


def test_a_sample_under_10_microseconds_has_a_positive_percentile():
    assert 0 < percentile(counts_of([3e-6]), 0.5) <= 10e-6


def test_a_sample_past_the_last_bound_is_read_as_the_max_seen():
    assert percentile(counts_of([100.0]), 0.99, 100.0) == 100.0


def test_p50_and_p99_of_a_known_distribution_are_within_a_bucket_of_the_true_values():
    rng = random.Random(7)
    durations = sorted(rng.lognormvariate(math.log(0.005), 1.0) for _ in range(10_000))
    counts = counts_of(durations)
    for q in (0.5, 0.9, 0.99):
        true = durations[math.ceil(q * len(durations)) - 1]
        got = percentile(counts, q, durations[-1])
        assert true / math.sqrt(2) <= got <= true * math.sqrt(2), (q, true, got)


def test_99_fast_calls_and_one_slow_put_p99_among_the_fast_and_p100_at_the_slow():
    counts = counts_of([0.001] * 99 + [2.0])
    assert percentile(counts, 0.99, 2.0) < 0.0015
    assert percentile(counts, 1.0, 2.0) == pytest.approx(2.0)


def test_the_sparse_form_keeps_only_non_empty_buckets_and_merges_back_to_the_same_counts():
    counts = counts_of([0.001, 0.001, 0.5, 0.00001])
    sparse = to_sparse(counts)
    assert sum(sparse.values()) == 4 and len(sparse) == 3
    assert all(isinstance(k, str) for k in sparse)
    assert merge(empty(), sparse) == counts


def test_merging_adds_counts_and_ignores_an_empty_or_missing_histogram():
    a, b = counts_of([0.001, 0.002]), counts_of([0.002, 3.0])
    assert merged([to_sparse(a), None, {}, to_sparse(b)]) == [x + y for x, y in zip(a, b, strict=True)]


def test_a_bucket_index_from_other_bounds_lands_at_the_nearest_end():
    counts = merge(empty(), {'-3': 1, '0': 1, str(SIZE + 10): 2})
    assert counts[0] == 2 and counts[-1] == 2


@given(st.lists(st.floats(min_value=0, max_value=200, allow_nan=False), min_size=1, max_size=300),
       st.lists(st.floats(min_value=0, max_value=200, allow_nan=False), max_size=300))
def test_merging_two_histograms_equals_the_histogram_of_all_samples(first, second):
    assert merged([to_sparse(counts_of(first)), to_sparse(counts_of(second))]) == counts_of(first + second)


@given(st.lists(st.floats(min_value=0, max_value=200, allow_nan=False), min_size=1, max_size=300))
def test_percentiles_never_decrease_with_q_and_never_pass_the_max(durations):
    counts = counts_of(durations)
    top = max(durations)
    values = [percentile(counts, q, top) for q in (0.01, 0.25, 0.5, 0.9, 0.99, 1.0)]
    assert values == sorted(values)
    assert values[-1] <= top or top == 0
    assert all(v is not None and v >= 0 for v in values)

