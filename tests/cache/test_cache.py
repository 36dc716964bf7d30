"""The built-in cache in one process: LRU eviction, expiry with an injected clock, the item size cap,
every method of 3.1's API, and the rule that decides between two changes of one key (last writer wins
by stamp), with several workers simulated as several caches exchanging their ops in any order."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zato.cache import Cache, CacheDeleted, CacheStore, Clock, Entry, ItemTooLarge
from zato.cache.variants import PatternVariants
from zato.service.cache import CacheFacade


class FakeTime:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(member: str = 'w1', time: FakeTime | None = None, ops: list | None = None, **config: Any) -> Cache:
    clock = Clock(member, time or FakeTime())
    spread = (lambda cache_id, op: ops.append(op)) if ops is not None else None
    return Cache(1, CacheStore('test', clock, **config), spread)


# LRU and the size cap

def test_a_full_cache_evicts_the_least_recently_used_entry():
    cache = make(max_size=3)
    for key in 'abc':
        cache.set(key, key)
    cache.get('a')  # now b is the least recently used
    cache.set('d', 'd')
    assert cache.keys() == ['c', 'a', 'd']


def test_a_set_of_an_existing_key_makes_it_the_most_recent_and_evicts_nothing():
    cache = make(max_size=2)
    cache.set('a', 1)
    cache.set('b', 2)
    cache.set('a', 3)
    assert cache.items() == [('b', 2), ('a', 3)]


@given(st.integers(1, 20), st.lists(st.tuples(st.sampled_from(['get', 'set']), st.integers(0, 30)), max_size=300))
@settings(max_examples=50, deadline=None)
def test_it_never_holds_more_than_max_size_and_matches_a_reference_lru(size, ops):
    cache = make(max_size=size)
    reference: list[int] = []  # least recent first
    for op, key in ops:
        skey = str(key)
        if op == 'set':
            cache.set(skey, key)
            if key in reference:
                reference.remove(key)
            reference.append(key)
            if len(reference) > size:
                reference.pop(0)
        else:
            assert cache.get(skey) == (key if key in reference else None)
            if key in reference:
                reference.remove(key)
                reference.append(key)
        assert len(cache) <= size
    assert cache.keys() == [str(k) for k in reference]


def test_a_value_larger_than_max_item_size_is_refused_and_changes_nothing():
    ops: list = []
    cache = make(ops=ops, max_item_size=10)
    cache.set('k', 'ok')
    with pytest.raises(ItemTooLarge):
        cache.set('k', 'x' * 20)
    with pytest.raises(ItemTooLarge):
        cache.set('b', b'x' * 11)
    assert cache.get('k') == 'ok' and 'b' not in cache and len(ops) == 1
    cache.set('b', b'x' * 10)  # bytes count as themselves, JSON as its encoding
    assert cache.get('b') == b'x' * 10


def test_what_json_cannot_carry_is_refused_with_type_error():
    cache = make()
    with pytest.raises(TypeError):
        cache.set('k', object())
    with pytest.raises(TypeError):
        cache.set(1, 'v')  # type: ignore[arg-type]
    assert len(cache) == 0


# Expiry, with the clock moved by hand

def test_an_entry_expires_after_its_expiry():
    time = FakeTime()
    cache = make(time=time, extend_expiry_on_get=False)
    cache.set('k', 'v', 10)
    time.now += 9.9
    assert cache.get('k') == 'v'
    time.now += 0.1
    assert cache.get('k') is None and 'k' not in cache


def test_extend_expiry_on_get_slides_the_expiry_and_without_it_a_get_does_not():
    time = FakeTime()
    sliding, fixed = make(time=time), make(time=time, extend_expiry_on_get=False)
    for cache in (sliding, fixed):
        cache.set('k', 'v', 10)
    for _ in range(3):
        time.now += 6
        sliding.get('k')
    assert sliding.get('k') == 'v' and fixed.get('k') is None


def test_extend_expiry_on_set_keeps_the_lifetime_of_a_key_set_again_without_one():
    time = FakeTime()
    keeping, forgetting = make(time=time), make(time=time, extend_expiry_on_set=False)
    for cache in (keeping, forgetting):
        cache.set('k', 1, 10)
        time.now += 5
        cache.set('k', 2)
    assert keeping.get('k', details=True).expires_at == time.now + 10
    assert forgetting.get('k', details=True).expires_at == 0


def test_expire_sets_a_new_expiry_and_zero_expires_at_once():
    time = FakeTime()
    cache = make(time=time)
    cache.set('a', 1)
    cache.set('b', 2)
    assert cache.expire('a', 5) is True and cache.expire('missing', 5) is False
    time.now += 5
    assert cache.get('a') is None
    cache.expire('b')
    assert 'b' not in cache


def test_delete_expired_drops_what_expired():
    time = FakeTime()
    cache = make(time=time)
    cache.set('a', 1, 1)
    cache.set('b', 2)
    time.now += 2
    assert cache.store.delete_expired() == ['a'] and len(cache) == 1


# The API, method by method

def test_get_set_delete_and_details():
    cache = make()
    assert cache.get('k') is None and cache.get('k', 'dflt') == 'dflt'
    assert cache.set('k', 1) is None
    assert cache.set('k', 2) == 1
    entry = cache.get('k', details=True)
    assert isinstance(entry, Entry) and entry.value == 2 and entry.hits >= 1 and entry.prev_write > 0
    cache['x'] = 'y'
    assert cache['x'] == 'y' and len(cache) == 2 and 'x' in cache
    assert cache.delete('x') == 'y'
    with pytest.raises(KeyError):
        cache.delete('x')
    with pytest.raises(KeyError):
        cache['x']
    del cache['k']
    assert len(cache) == 0


def test_keys_values_items_and_clear():
    cache = make()
    for i in range(3):
        cache.set(f'k{i}', i)
    assert cache.keys() == ['k0', 'k1', 'k2'] and cache.values() == [0, 1, 2]
    assert cache.items() == [('k0', 0), ('k1', 1), ('k2', 2)]
    cache.clear()
    assert cache.keys() == [] and len(cache) == 0


KEYS = ['user:1:name', 'user:2:name', 'user:1:mail', 'order:7', 'order:8:user:1']

# variant, what it is given, the keys it matches among KEYS
MATCHES = [
    ('by_prefix', 'user:', {'user:1:name', 'user:2:name', 'user:1:mail'}),
    ('by_suffix', ':name', {'user:1:name', 'user:2:name'}),
    ('by_regex', r'^order:\d+$', {'order:7'}),
    ('contains', 'user:1', {'user:1:name', 'user:1:mail', 'order:8:user:1'}),
    ('not_contains', 'user', {'order:7'}),
    ('contains_all', ['user', 'mail'], {'user:1:mail'}),
    ('contains_any', ['mail', 'order:7'], {'user:1:mail', 'order:7'}),
]


def filled() -> Cache:
    cache = make()
    for key in KEYS:
        cache.set(key, key.upper())
    return cache


def test_there_are_28_by_pattern_methods():
    names = [n for n in vars(PatternVariants) if not n.startswith('_')]
    assert len(names) == 28


@pytest.mark.parametrize('variant, what, expected', MATCHES, ids=[m[0] for m in MATCHES])
def test_each_by_pattern_variant_of_get_set_delete_and_expire(variant, what, expected):
    cache = filled()
    assert getattr(cache, f'get_{variant}')(what) == {k: k.upper() for k in expected}
    assert set(getattr(cache, f'get_{variant}')(what, limit=1)) <= expected
    assert len(getattr(cache, f'get_{variant}')(what, limit=1)) == 1

    found = getattr(cache, f'set_{variant}')(what, 'new', return_found=True)
    assert found == {k: k.upper() for k in expected}
    assert {k for k, v in cache.items() if v == 'new'} == expected

    cache = filled()
    assert getattr(cache, f'delete_{variant}')(what, return_found=True) == {k: k.upper() for k in expected}
    assert set(cache.keys()) == set(KEYS) - expected

    cache = filled()
    assert set(getattr(cache, f'expire_{variant}')(what)) == expected
    assert set(cache.keys()) == set(KEYS) - expected


def test_by_pattern_input_of_the_wrong_type_is_a_type_error():
    cache = filled()
    with pytest.raises(TypeError):
        cache.get_contains_all('user')
    with pytest.raises(TypeError):
        cache.get_by_prefix(['user'])


def test_a_deleted_cache_refuses_writes_and_the_facade_names_what_is_missing():
    facade = CacheFacade()
    with pytest.raises(KeyError, match='No default cache'):
        facade.default  # noqa: B018
    cache = make()
    facade.builtin.by_name['test'] = cache
    with pytest.raises(CacheDeleted, match='did you mean `test`'):
        facade.builtin['tset']
    cache.is_deleted = True
    with pytest.raises(CacheDeleted):
        cache.set('k', 'v')


# Spreading: several workers, each a cache, exchanging ops

def exchange(caches: list[Cache], outboxes: list[list], shuffle: random.Random | None = None) -> None:
    """Delivers each cache's ops to every other cache (shuffled, if asked: the bus keeps no order
    between messages), then empties the outboxes."""
    deliveries = [(target, op) for i, ops in enumerate(outboxes) for op in ops
                  for j, target in enumerate(caches) if j != i]
    if shuffle is not None:
        shuffle.shuffle(deliveries)
    for target, op in deliveries:
        target.apply(_wire(op))
    for ops in outboxes:
        ops.clear()


def _wire(op: list) -> list:
    """The op as another worker receives it: through JSON, as the bus carries it."""
    import orjson
    return orjson.loads(orjson.dumps(op))


def workers(n: int, time: FakeTime | None = None) -> tuple[list[Cache], list[list]]:
    time = time or FakeTime()
    outboxes: list[list] = [[] for _ in range(n)]
    return [make(f'w{i}', time, outboxes[i]) for i in range(n)], outboxes


def test_a_set_delete_expire_and_clear_reach_the_other_workers():
    (a, b), outboxes = workers(2)
    a.set('k', {'v': 1}, 30)
    a.set('bin', b'\x00\xff')
    exchange([a, b], outboxes)
    assert b.get('k') == {'v': 1} and b.get('bin') == b'\x00\xff'
    assert b.get('k', details=True).expires_at == a.get('k', details=True).expires_at
    a.delete('k')
    exchange([a, b], outboxes)
    assert 'k' not in b
    b.clear()
    exchange([a, b], outboxes)
    assert len(a) == 0


@given(st.lists(st.tuples(st.integers(0, 2), st.sampled_from(['set', 'delete', 'clear', 'expire']),
                          st.sampled_from(['k1', 'k2', 'k3']), st.integers(0, 100)), max_size=40),
       st.integers(0, 2 ** 32))
@settings(max_examples=100, deadline=None)
def test_workers_converge_whatever_order_the_changes_arrive_in(changes, seed):
    time = FakeTime()
    caches, outboxes = workers(3, time)
    rng = random.Random(seed)
    for who, op, key, value in changes:
        cache = caches[who]
        time.now += 0.001
        if op == 'set':
            cache.set(key, value)
        elif op == 'delete':
            cache.store.get(key) is not None and cache.delete(key)
        elif op == 'expire':
            cache.expire(key, 1000)
        else:
            cache.clear()
        if rng.random() < 0.3:  # sometimes the bus delivers in between, in any order
            exchange(caches, outboxes, rng)
    exchange(caches, outboxes, rng)
    states = [sorted(c.items()) for c in caches]
    assert states[0] == states[1] == states[2]


def test_the_later_of_two_concurrent_sets_wins_on_every_worker():
    time = FakeTime()
    (a, b), outboxes = workers(2, time)
    a.set('k', 'from a')
    time.now += 0.01
    b.set('k', 'from b')
    exchange([a, b], outboxes, random.Random(1))
    assert a.get('k') == b.get('k') == 'from b'


def test_a_set_made_after_seeing_another_wins_even_with_a_clock_behind():
    (a, b), outboxes = workers(2)
    a.clock.now = FakeTime(2_000_000.0)  # a's clock is far ahead
    a.set('k', 'from a')
    exchange([a, b], outboxes)
    b.set('k', 'from b, who saw a')  # b's clock is behind, but b saw a's stamp
    exchange([a, b], outboxes)
    assert a.get('k') == b.get('k') == 'from b, who saw a'


def test_a_delete_arriving_before_the_older_set_it_follows_keeps_the_key_deleted():
    (a, b, c), outboxes = workers(3)
    a.set('k', 'v')
    set_op = _wire(outboxes[0][0])
    b.apply(set_op)  # only b hears of the set for now
    b.delete('k')
    c.apply(_wire(outboxes[1][0]))  # c gets the delete first ...
    c.apply(set_op)                 # ... then the older set it followed
    assert 'k' not in c and 'k' not in b


def test_a_read_that_does_not_extend_leaves_the_expiry_alone():
    time = FakeTime()
    cache = make(time=time)  # extend_expiry_on_get is on
    cache.set('k', 'v', 10)
    for _ in range(3):
        time.now += 4
        entry = cache.store.get('k', extend=False)
    assert entry is None
