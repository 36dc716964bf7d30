"""The one bounded cache type of the request path."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zato.bounded_cache import BoundedCache


@given(st.integers(2, 50), st.lists(st.integers(0, 200), max_size=500))
def test_it_never_holds_more_than_its_bound_and_always_keeps_what_was_just_added(size, keys):
    cache: BoundedCache[int, int] = BoundedCache(size)
    for key in keys:
        cache.remember(key, key * 2)
        assert len(cache) <= size
        assert cache.get(key) == key * 2


def test_a_full_cache_drops_its_older_half_not_everything():
    cache: BoundedCache[int, str] = BoundedCache(10)
    for key in range(10):
        cache.remember(key, str(key))
    cache.remember(10, '10')
    assert sorted(cache) == [5, 6, 7, 8, 9, 10]


def test_updating_a_key_of_a_full_cache_drops_nothing():
    cache: BoundedCache[int, int] = BoundedCache(4)
    for key in range(4):
        cache.remember(key, key)
    cache.remember(2, 20)
    assert cache == {0: 0, 1: 1, 2: 20, 3: 3}


def test_forget_where_drops_what_the_predicate_names():
    cache: BoundedCache[tuple[int, str], int] = BoundedCache(10)
    for key in ((1, 'a'), (2, 'b'), (1, 'c')):
        cache.remember(key, 0)
    cache.forget_where(lambda key: key[0] == 1)
    assert list(cache) == [(2, 'b')]


def test_a_bound_below_two_is_refused():
    with pytest.raises(ValueError):
        BoundedCache(1)
