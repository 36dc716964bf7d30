"""The per-worker cache of verified sessions (zato.sso.verify_cache): two SSO cores over one ODB stand for
two workers (or servers), joined by a bus that delivers what one announces to the other, or loses it."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from tests.sso.conftest import Clock, make_sso
from tests.sso.test_core import APP, PASSWORD, refused, super_user
from zato.odb.models import SSOSession
from zato.sso.api import SSO
from zato.sso.config import parse_text
from zato.sso.context import SSOContext, ust_hash

VALID, INVALID = {'is_valid': True}, {'is_valid': False}
BOUND = 3  # [session] verify_cache_seconds by default


class Bus:
    """Delivers each worker's announcement to every other worker at once, unless `lost`."""

    def __init__(self) -> None:
        self.workers: list[SSO] = []
        self.lost = False

    def join(self, sso: SSO) -> SSO:
        self.workers.append(sso)

        def announce(msg: dict) -> None:
            if not self.lost:
                for other in self.workers:
                    if other is not sso:
                        other.ctx.verify_cache.forget(msg)
        sso.ctx.announce = announce
        return sso


def another_worker(sso: SSO) -> SSO:
    """A second core over the same ODB, cluster, key and clock, with a cache of its own."""
    ctx = sso.ctx
    return SSO(SSOContext(ctx.Session, ctx.cluster_id, ctx.config, ctx.cipher, ctx.hash_key, ctx.clock))


class Queries:
    """Counts the statements a block of code sends to the ODB."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.count = 0

    def _seen(self, *_args) -> None:
        self.count += 1

    def __enter__(self) -> Queries:
        event.listen(self.engine, 'before_cursor_execute', self._seen)
        return self

    def __exit__(self, *_exc) -> None:
        event.remove(self.engine, 'before_cursor_execute', self._seen)


@pytest.fixture
def bus():
    return Bus()


@pytest.fixture
def a(engine, clock, bus):
    return bus.join(make_sso(engine, clock=clock))


@pytest.fixture
def b(a, bus):
    return bus.join(another_worker(a))


def user(a: SSO, root: str, username: str = 'alice') -> str:
    """A regular user's UST; the user's id is `user_id_of[username]`."""
    created = a.user.create_user('cid', {'username': username, 'password': PASSWORD}, root, APP)
    user_id_of[username] = created['user_id']
    return a.user.login('cid', username, PASSWORD, APP).ust


user_id_of: dict[str, str] = {}


def test_a_second_verify_does_not_touch_the_odb(a, engine):
    root = super_user(a)
    alice = user(a, root)
    assert a.user.session.verify('cid', alice, alice, APP) == VALID
    assert a.user.session.verify('cid', alice, root, APP) == VALID
    with Queries(engine) as queries:
        assert a.user.session.verify('cid', alice, alice, APP) == VALID
        assert a.user.session.verify('cid', alice, root, APP) == VALID
    assert queries.count == 0


def test_the_cache_keeps_hashes_of_usts_never_usts(a):
    root = super_user(a)
    a.user.session.verify('cid', root, root, APP)
    assert list(a.ctx.verify_cache.entries) == [ust_hash(root)]


def test_zero_seconds_turns_the_cache_off(engine, clock):
    sso = make_sso(engine, parse_text('[session]\nverify_cache_seconds = 0\n', 'test'), clock)
    root = super_user(sso)
    sso.user.session.verify('cid', root, root, APP)
    with Queries(engine) as queries:
        sso.user.session.verify('cid', root, root, APP)
    assert queries.count > 0 and not sso.ctx.verify_cache.entries


def test_an_entry_is_read_again_from_the_odb_once_older_than_the_bound(a, engine, clock):
    root = super_user(a)
    a.user.session.verify('cid', root, root, APP)
    clock.advance(BOUND - 0.5)
    with Queries(engine) as queries:
        a.user.session.verify('cid', root, root, APP)
    assert queries.count == 0
    clock.advance(1)
    with Queries(engine) as queries:
        a.user.session.verify('cid', root, root, APP)
    assert queries.count > 0


def test_an_expired_session_is_refused_even_while_its_entry_is_fresh(engine):
    clock = Clock()
    config = parse_text('[session]\nexpiry = 1\nverify_cache_seconds = 3600\n', 'test')
    sso = make_sso(engine, config, clock)
    root = super_user(sso)
    assert sso.user.session.verify('cid', root, root, APP) == VALID
    clock.advance(61)
    assert refused(sso.user.session.verify, 'cid', root, root, APP) == ['E007002']


# What ends a session on one worker ends it on the other at once

def test_a_logout_on_one_worker_ends_the_session_on_the_other(a, b):
    root = super_user(a)
    assert b.user.session.verify('cid', root, root, APP) == VALID
    a.user.logout('cid', root, APP)
    assert refused(b.user.session.verify, 'cid', root, root, APP) == ['E007001']


def test_a_lock_on_one_worker_ends_the_users_sessions_on_the_other(a, b):
    root = super_user(a)
    alice = user(a, root)
    assert b.user.session.verify('cid', alice, alice, APP) == VALID
    assert b.user.session.verify('cid', alice, root, APP) == VALID
    a.user.lock_user('cid', user_id_of['alice'], root, APP)
    assert refused(b.user.session.verify, 'cid', alice, alice, APP) == ['E007001']
    assert b.user.session.verify('cid', alice, root, APP) == INVALID


def test_a_permanent_brute_force_lockout_refuses_the_users_sessions_on_the_other(engine, clock, bus):
    config = parse_text('[login]\nlockout_failures = 1\nlockout_permanent_after = 1\n', 'test')
    a = bus.join(make_sso(engine, config, clock))
    b = bus.join(another_worker(a))
    root = super_user(a)
    alice = user(a, root)
    assert b.user.session.verify('cid', alice, root, APP) == VALID
    refused(a.user.login, 'cid', 'alice', 'wrong password', APP)
    assert b.user.session.verify('cid', alice, root, APP) == INVALID


def test_a_password_change_on_one_worker_ends_the_other_sessions_on_the_other(a, b):
    super_user(a)
    other = a.user.login('cid', 'root1', PASSWORD, APP).ust
    mine = a.user.login('cid', 'root1', PASSWORD, APP).ust
    assert b.user.session.verify('cid', other, other, APP) == VALID
    a.user.change_password('cid', {'old_password': PASSWORD, 'new_password': 'another good one'}, mine, APP)
    assert refused(b.user.session.verify, 'cid', other, other, APP) == ['E007001']
    assert b.user.session.verify('cid', mine, mine, APP) == VALID


def test_a_new_totp_key_on_one_worker_ends_the_other_sessions_on_the_other(a, b):
    super_user(a)
    other = a.user.login('cid', 'root1', PASSWORD, APP).ust
    mine = a.user.login('cid', 'root1', PASSWORD, APP).ust
    assert b.user.session.verify('cid', other, other, APP) == VALID
    a.user.reset_totp_key('cid', mine, current_app=APP)
    assert refused(b.user.session.verify, 'cid', other, other, APP) == ['E007001']


def test_deleting_or_rejecting_a_user_on_one_worker_ends_their_sessions_on_the_other(a, b):
    root = super_user(a)
    alice, bob = user(a, root, 'alice'), user(a, root, 'bob')
    assert b.user.session.verify('cid', alice, root, APP) == VALID
    assert b.user.session.verify('cid', bob, root, APP) == VALID
    a.user.delete_user_by_id('cid', user_id_of['alice'], root, APP)
    a.user.reject_user('cid', user_id_of['bob'], root, APP)
    assert b.user.session.verify('cid', alice, root, APP) == INVALID
    assert b.user.session.verify('cid', bob, root, APP) == INVALID


def test_a_password_reset_on_one_worker_ends_the_sessions_on_the_other(a, b):
    root = super_user(a)
    alice = user(a, root)
    assert b.user.session.verify('cid', alice, root, APP) == VALID
    with a.ctx.Session() as session:
        user_pk = session.query(SSOSession.user_id).filter(SSOSession.ust_hash == ust_hash(alice)).scalar()
        token = a.user._reset.tokens.issue(session, user_pk, 'password_reset', 600, a.ctx.clock())
        session.commit()
    a.user.password_reset_complete('cid', token, 'a brand new password', APP)
    assert b.user.session.verify('cid', alice, root, APP) == INVALID


def test_a_renewal_on_one_worker_moves_the_expiry_on_the_other(engine):
    clock, bus = Clock(), Bus()
    config = parse_text('[session]\nexpiry = 1\nverify_cache_seconds = 3600\n', 'test')
    a = bus.join(make_sso(engine, config, clock))
    b = bus.join(another_worker(a))
    root = super_user(a)
    assert b.user.session.verify('cid', root, root, APP) == VALID
    clock.advance(50)
    a.user.session.renew('cid', root, APP)
    clock.advance(50)  # past the expiry b remembered, before the renewed one
    assert b.user.session.verify('cid', root, root, APP) == VALID


# When the bus loses the message

def test_a_lost_message_leaves_a_session_valid_elsewhere_at_most_for_the_bound(a, b, bus, clock):
    root = super_user(a)
    assert b.user.session.verify('cid', root, root, APP) == VALID
    bus.lost = True
    a.user.logout('cid', root, APP)
    assert refused(a.user.session.verify, 'cid', root, root, APP) == ['E007001']  # the worker that changed it
    clock.advance(BOUND)
    assert refused(b.user.session.verify, 'cid', root, root, APP) == ['E007001']


def test_a_reconnected_bus_clears_the_cache(a, b, bus):
    root = super_user(a)
    assert b.user.session.verify('cid', root, root, APP) == VALID
    bus.lost = True
    a.user.logout('cid', root, APP)
    b.ctx.verify_cache.clear()  # what a worker does when its bus reconnects (zato.server.sso)
    assert refused(b.user.session.verify, 'cid', root, root, APP) == ['E007001']


def test_a_read_overtaken_by_an_eviction_is_not_remembered(a):
    root = super_user(a)
    cache = a.ctx.verify_cache
    real = a.user.sessions.find

    def find_then_evict(*args, **kwargs):
        found = real(*args, **kwargs)
        cache.forget({'user_pks': [found.user.id]})  # a change committed while this read was on its way
        return found
    a.user.sessions.find = find_then_evict
    assert a.user.session.verify('cid', root, root, APP) == VALID
    assert not cache.entries
