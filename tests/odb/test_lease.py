"""The lease primitive (zato.odb.lease) on real SQLite and PostgreSQL: each rule of its docstring."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import column, table, text, update

from tests.odb.lease_fixtures import lease_store
from zato.errors import LeaseLost

KINDS = ['sqlite', pytest.param('postgresql', marks=pytest.mark.postgresql)]


@pytest.fixture(params=KINDS)
def store(request, tmp_path):
    with lease_store(request.param, tmp_path) as s:
        yield s


def test_a_free_lease_goes_to_its_first_caller_with_token_1_and_to_no_one_else(store):
    assert store.acquire('orders', 'server1:100', 5) == 1
    assert store.acquire('orders', 'server2:200', 5) is None
    assert store.acquire('orders', 'server1:100', 5) is None  # not re-entrant either
    state = store.state('orders')
    assert (state.holder, state.token, state.is_free) == ('server1:100', 1, False)
    assert 4 < state.expires_in <= 5


def test_leases_of_different_names_are_independent(store):
    assert store.acquire('a', 'h1', 5) == 1
    assert store.acquire('b', 'h2', 5) == 1
    assert store.state('never-acquired') is None


def test_an_expired_lease_is_taken_over_with_a_greater_token(store):
    first = store.acquire('orders', 'h1', 0.3)
    assert store.acquire('orders', 'h2', 5) is None
    time.sleep(0.4)
    second = store.acquire('orders', 'h2', 5)
    assert second == first + 1
    assert store.state('orders').holder == 'h2'


def test_a_released_lease_is_free_at_once_and_its_token_still_grows(store):
    tokens = []
    for holder in ('h1', 'h2', 'h1', 'h3'):
        token = store.acquire('orders', holder, 30)
        assert token is not None
        tokens.append(token)
        assert store.release('orders', token)
        assert store.state('orders').is_free
    assert tokens == [1, 2, 3, 4]


def test_a_renewal_keeps_the_lease_past_its_first_ttl(store):
    token = store.acquire('orders', 'h1', 0.4)
    for _ in range(4):
        time.sleep(0.2)
        assert store.renew('orders', token, 0.4)
    # 0.8 s after the acquisition, twice its TTL: still held, still refused to others
    assert store.holds('orders', token)
    assert store.acquire('orders', 'h2', 5) is None


def test_a_holder_past_its_ttl_can_neither_renew_release_nor_hold_once_another_took_over(store):
    old = store.acquire('orders', 'h1', 0.2)
    time.sleep(0.3)
    new = store.acquire('orders', 'h2', 5)
    assert new > old
    assert not store.renew('orders', old, 5)
    assert not store.release('orders', old)
    assert not store.holds('orders', old)
    with pytest.raises(LeaseLost):
        store.check('orders', old)
    # and the new holder's time was not touched by any of it
    assert store.holds('orders', new) and store.state('orders').expires_in > 4


def test_an_expired_lease_is_lost_even_when_nobody_took_it_yet(store):
    token = store.acquire('orders', 'h1', 0.2)
    time.sleep(0.3)
    assert not store.holds('orders', token)
    assert not store.renew('orders', token, 5)
    assert store.acquire('orders', 'h1', 5) == token + 1


def test_expiry_is_decided_by_the_odbs_clock_not_the_process_clock(store, monkeypatch):
    # The process's clock an hour ahead (or behind) changes nothing: the ODB's clock is the only one read
    real = time.time
    for shift in (3600, -3600):
        monkeypatch.setattr(time, 'time', lambda shift=shift: real() + shift)
        monkeypatch.setattr(time, 'monotonic', lambda shift=shift: real() + shift)
        token = store.acquire(f'clock{shift}', 'h1', 5)
        assert store.holds(f'clock{shift}', token)
        assert 4 < store.state(f'clock{shift}').expires_in <= 5
    monkeypatch.undo()
    with store.engine.connect() as conn:
        row = conn.execute(text('SELECT acquired_at, expires_at FROM lease WHERE name = :n'), {'n': 'clock3600'}).one()
    assert abs(row[0] - time.time()) < 5 and abs(row[1] - row[0] - 5) < 1e-3


def test_a_fenced_write_commits_only_with_the_current_token(store):
    with store.engine.begin() as conn:
        conn.execute(text('CREATE TABLE ledger (id INTEGER PRIMARY KEY, value INTEGER NOT NULL)'))
        conn.execute(text('INSERT INTO ledger (id, value) VALUES (1, 0)'))
    old = store.acquire('ledger', 'h1', 0.2)
    with store.fenced('ledger', old) as conn:
        conn.execute(text('UPDATE ledger SET value = 1 WHERE id = 1'))
    time.sleep(0.3)
    new = store.acquire('ledger', 'h2', 5)
    with pytest.raises(LeaseLost), store.fenced('ledger', old) as conn:
        conn.execute(text('UPDATE ledger SET value = 666 WHERE id = 1'))
    with store.fenced('ledger', new) as conn:
        conn.execute(text('UPDATE ledger SET value = value + 1 WHERE id = 1'))
    with store.engine.connect() as conn:
        assert conn.execute(text('SELECT value FROM ledger')).scalar() == 2


def test_a_fenced_block_that_raises_writes_nothing(store):
    with store.engine.begin() as conn:
        conn.execute(text('CREATE TABLE ledger (id INTEGER PRIMARY KEY, value INTEGER NOT NULL)'))
        conn.execute(text('INSERT INTO ledger (id, value) VALUES (1, 0)'))
    token = store.acquire('ledger', 'h1', 5)
    with pytest.raises(ZeroDivisionError), store.fenced('ledger', token) as conn:
        conn.execute(text('UPDATE ledger SET value = 5 WHERE id = 1'))
        1 / 0  # noqa: B018
    with store.engine.connect() as conn:
        assert conn.execute(text('SELECT value FROM ledger')).scalar() == 0
    assert store.holds('ledger', token)  # and the lease is not stuck behind the failed transaction


def test_no_one_takes_the_lease_over_while_a_fenced_transaction_is_open(store):
    # The holder's TTL runs out in the middle of its fenced transaction: a taker waits for the
    # transaction to end, so the old holder's write can never land after the new holder began
    token = store.acquire('ledger', 'h1', 0.3)
    taken_at: list[float] = []

    def taker() -> None:
        while True:
            if store.acquire('ledger', 'h2', 5) is not None:
                taken_at.append(time.monotonic())
                return
            time.sleep(0.01)

    with store.fenced('ledger', token):
        t = threading.Thread(target=taker)
        t.start()
        time.sleep(0.8)  # well past the TTL
        assert taken_at == []
        committed_at = time.monotonic()
    t.join(5)
    assert taken_at and taken_at[0] >= committed_at


def test_a_write_carrying_the_held_check_changes_nothing_with_an_old_token(store):
    with store.engine.begin() as conn:
        conn.execute(text('CREATE TABLE ledger (id INTEGER PRIMARY KEY, value INTEGER NOT NULL)'))
        conn.execute(text('INSERT INTO ledger (id, value) VALUES (1, 0)'))
    ledger = table('ledger', column('id'), column('value'))

    def add_one(token: int) -> int:
        with store.engine.begin() as conn:
            return conn.execute(update(ledger).where(ledger.c.id == 1, store.held('ledger', token))
                                .values(value=ledger.c.value + 1)).rowcount

    old = store.acquire('ledger', 'h1', 0.2)
    assert add_one(old) == 1
    time.sleep(0.3)
    assert add_one(old) == 0  # expired, though nobody took it yet
    new = store.acquire('ledger', 'h2', 5)
    assert add_one(old) == 0 and add_one(new) == 1
    with store.engine.connect() as conn:
        assert conn.execute(text('SELECT value FROM ledger')).scalar() == 2


def test_an_open_transaction_that_wrote_with_the_held_check_does_not_hold_up_a_takeover(store):
    if store.engine.dialect.name == 'sqlite':
        pytest.skip('SQLite has one writer at a time: a takeover waits for any open write')
    with store.engine.begin() as conn:
        conn.execute(text('CREATE TABLE ledger (id INTEGER PRIMARY KEY, value INTEGER NOT NULL)'))
        conn.execute(text('INSERT INTO ledger (id, value) VALUES (1, 0)'))
    ledger = table('ledger', column('id'), column('value'))
    token = store.acquire('ledger', 'h1', 0.3)
    with store.engine.begin() as conn:
        conn.execute(update(ledger).where(ledger.c.id == 1, store.held('ledger', token)).values(value=1))
        time.sleep(0.5)  # paused past the TTL in the middle of the transaction
        assert store.acquire('ledger', 'h2', 5) == token + 1


def test_racing_holders_never_hold_one_lease_at_once_and_each_gets_a_new_token(store):
    inside, overlaps, tokens = [0], [], []
    guard = threading.Lock()

    def contender(n: int) -> None:
        got = 0
        while got < 15:
            token = store.acquire('race', f'h{n}', 5)
            if token is None:
                time.sleep(0.001)
                continue
            with guard:
                inside[0] += 1
                if inside[0] != 1:
                    overlaps.append(token)
                tokens.append(token)
            time.sleep(0.001)
            with guard:
                inside[0] -= 1
            assert store.release('race', token)
            got += 1

    threads = [threading.Thread(target=contender, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert overlaps == []
    assert sorted(tokens) == list(range(1, 91)) and tokens == sorted(tokens)


@pytest.mark.parametrize('name, holder, ttl', [('', 'h', 5), ('x' * 401, 'h', 5), (None, 'h', 5),
                                               ('a', 'h' * 201, 5), ('a', 'h', 0), ('a', 'h', -1), ('a', 'h', True),
                                               ('a', 'h', '5'), ('a', 'h', 86400 * 366)])
def test_a_bad_name_holder_or_ttl_is_refused_before_the_odb_is_asked(store, name, holder, ttl):
    with pytest.raises(ValueError):
        store.acquire(name, holder, ttl)
