"""self.lock() in one process (zato.server.locks) over a real ODB, SQLite and PostgreSQL: held for the
block, renewed past its TTL, waited for, given up on with LockTimeout, and LockLost once taken over.
tests/e2e/test_locks_cluster.py has two servers of a cluster contending for it."""

from __future__ import annotations

import time

import gevent
import pytest
from sqlalchemy import text

from tests.odb.lease_fixtures import lease_store
from zato.errors import LockLost, LockTimeout
from zato.server.locks import Locks
from zato.service.lock import lock_args

KINDS = ['sqlite', pytest.param('postgresql', marks=pytest.mark.postgresql)]


@pytest.fixture(params=KINDS)
def store(request, tmp_path):
    with lease_store(request.param, tmp_path) as s:
        yield s


@pytest.fixture
def locks(store):
    return Locks(store, 'server1')


def expire_now(store, name: str) -> None:
    """What a holder's pause past its TTL looks like from the ODB."""
    with store.engine.begin() as conn:
        conn.execute(text('UPDATE lease SET expires_at = 0 WHERE name = :n'), {'n': name})


def test_the_lock_is_held_for_the_block_and_free_at_its_end(locks, store):
    with locks.lock(lock_args('svc', 'orders'), cid='cid1') as lock:
        assert lock.token == 1
        assert store.acquire('orders', 'elsewhere', 5) is None
        assert store.state('orders').holder.startswith('server1:') and store.state('orders').holder.endswith(':cid1')
        lock.check()
    assert store.state('orders').is_free
    assert store.acquire('orders', 'elsewhere', 5) == 2


def test_a_block_that_raises_still_frees_the_lock(locks, store):
    with pytest.raises(KeyError), locks.lock(lock_args('svc', 'orders')):
        raise KeyError('x')
    assert store.state('orders').is_free


def test_a_block_longer_than_the_ttl_keeps_the_lock_by_renewing_it(locks, store):
    with locks.lock(lock_args('svc', 'orders', ttl=0.6)) as lock:
        gevent.sleep(1.5)  # two and a half TTLs
        assert store.acquire('orders', 'elsewhere', 5) is None
        lock.check()
    assert store.state('orders').is_free


def test_a_lock_held_elsewhere_raises_lock_timeout_once_block_has_passed(locks, store):
    store.acquire('orders', 'elsewhere', 30)
    started = time.monotonic()
    with pytest.raises(LockTimeout, match='Lock `orders` not acquired within 0.3 s: another holder has it'):
        with locks.lock(lock_args('svc', 'orders', block=0.3)):
            pytest.fail('the block must not run')
    assert 0.3 <= time.monotonic() - started < 0.6
    started = time.monotonic()
    with pytest.raises(LockTimeout), locks.lock(lock_args('svc', 'orders', block=0)):
        pass
    assert time.monotonic() - started < 0.1


def test_a_waiter_gets_the_lock_soon_after_a_holder_elsewhere_releases_it(locks, store):
    token = store.acquire('orders', 'elsewhere', 30)
    gevent.get_hub().loop.update_now()  # the hub's clock, stale after the fixture's blocking calls
    gevent.spawn_later(0.3, store.release, 'orders', token)
    started = time.monotonic()
    with locks.lock(lock_args('svc', 'orders', block=5)) as lock:
        waited = time.monotonic() - started
        assert lock.token == token + 1
    assert 0.3 <= waited < 0.5


def test_a_lock_taken_over_meanwhile_is_lost_on_check_fenced_and_the_end_of_the_block(locks, store):
    with pytest.raises(LockLost, match='Lock `orders` was lost'):
        with locks.lock(lock_args('svc', 'orders')) as lock:
            expire_now(store, 'orders')
            assert store.acquire('orders', 'elsewhere', 30) == lock.token + 1
            with pytest.raises(LockLost):
                lock.check()
            with pytest.raises(LockLost), lock.fenced():
                pytest.fail('a fenced block of a lost lock must not run')
    # The new holder keeps its lease: the old block's end did not release it
    assert store.state('orders').holder == 'elsewhere' and not store.state('orders').is_free


def test_a_renewal_that_finds_the_lease_gone_marks_the_lock_lost(locks, store):
    with pytest.raises(LockLost):
        with locks.lock(lock_args('svc', 'orders', ttl=0.6)) as lock:
            expire_now(store, 'orders')
            gevent.sleep(0.35)  # the renewal at 0.2 s found it expired
            assert lock.lost
    assert store.state('orders').is_free  # nobody took it, and nobody holds it


def test_an_exception_of_the_block_is_not_hidden_by_a_lost_lock(locks, store):
    with pytest.raises(ZeroDivisionError), locks.lock(lock_args('svc', 'orders')):
        expire_now(store, 'orders')
        1 / 0  # noqa: B018


def test_a_fenced_write_of_a_held_lock_commits(locks, store):
    with store.engine.begin() as conn:
        conn.execute(text('CREATE TABLE ledger (id INTEGER PRIMARY KEY, value INTEGER NOT NULL)'))
        conn.execute(text('INSERT INTO ledger (id, value) VALUES (1, 0)'))
    with locks.lock(lock_args('svc', 'ledger')) as lock, lock.fenced() as conn:
        conn.execute(text('UPDATE ledger SET value = :t WHERE id = 1'), {'t': lock.token})
    with store.engine.connect() as conn:
        assert conn.execute(text('SELECT value FROM ledger')).scalar() == 1


def test_greenlets_of_one_worker_take_turns_and_only_one_at_a_time_asks_the_odb(locks, store):
    counter, acquisitions = [0], []
    acquire = store.acquire

    def counting_acquire(*args):
        token = acquire(*args)
        acquisitions.append(token)
        return token

    store.acquire = counting_acquire

    def increment() -> None:
        with locks.lock(lock_args('svc', 'counter', block=10)):
            value = counter[0]
            gevent.sleep(0.005)
            counter[0] = value + 1

    gevent.joinall([gevent.spawn(increment) for _ in range(30)], raise_error=True)
    assert counter[0] == 30
    # The others waited on the worker's own gate: no failed attempt reached the ODB
    assert acquisitions == list(range(1, 31))
    assert locks._gates == {}


def test_a_lock_cannot_be_entered_twice_at_once_but_can_be_used_for_one_block_after_another(locks, store):
    lock = locks.lock(lock_args('svc', 'orders'))
    with lock, pytest.raises(RuntimeError), lock:
        pass
    with lock:
        assert lock.token == 2 and store.acquire('orders', 'elsewhere', 5) is None
    assert store.state('orders').is_free
    with pytest.raises(LockLost):
        lock.check()  # outside of a block it holds nothing


def test_a_renewal_that_fails_for_a_moment_is_tried_again_and_the_lock_kept(locks, store):
    renew, failures = store.renew, []

    def flaky_renew(*args):
        if not failures:
            failures.append(1)
            raise ConnectionError('the ODB is restarting')
        return renew(*args)

    store.renew = flaky_renew
    with locks.lock(lock_args('svc', 'orders', ttl=0.6)) as lock:
        gevent.sleep(1.2)
        assert failures and not lock.lost
        lock.check()


def test_an_odb_out_of_reach_for_a_whole_ttl_loses_the_lock(locks, store):
    def down(*args):
        raise ConnectionError('the ODB is down')

    store.renew = down
    with pytest.raises(LockLost), locks.lock(lock_args('svc', 'orders', ttl=0.6)) as lock:
        gevent.sleep(1.0)
        assert lock.lost
