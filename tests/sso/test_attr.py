"""Attributes of SSO users and sessions (zato.sso.attr) over a real ODB, SQLite and PostgreSQL, with
an injected clock: each operation and its errors, encryption at rest, expiry, the purge, attributes
going with their session or user, who may reach whose, and concurrent writers."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest
from sqlalchemy import select

from tests.sso.test_core import APP, PASSWORD, refused, super_user
from zato.odb.models import SSOAttr
from zato.sso.attr import MANY_MAX, NAME_MAX, VALUE_MAX


def regular(sso, root: str, username: str = 'alice') -> tuple[str, str]:
    """(user_id, UST) of a new regular user."""
    created = sso.user.create_user('cid', {'username': username, 'password': PASSWORD}, root, APP)
    return created['user_id'], sso.user.login('cid', username, PASSWORD, APP).ust


@pytest.fixture
def root(sso):
    return super_user(sso)


@pytest.fixture
def alice(sso, root):
    user_id, ust = regular(sso, root)
    return sso.user.get_current_user('cid', ust, APP).attr


def rows(sso) -> list[SSOAttr]:
    with sso.ctx.Session() as session:
        return list(session.scalars(select(SSOAttr).order_by(SSOAttr.id)))


# Each operation

def test_create_get_exists_names_update_set_and_delete_one_attribute(alice, clock):
    alice.create('colour', {'fg': 'blue', 'n': [1, 2.5, None, True]})
    got = alice.get('colour')
    assert got.value == {'fg': 'blue', 'n': [1, 2.5, None, True]} and got.name == 'colour'
    assert got.is_encrypted is False and got.expiration_time is None
    assert isinstance(got.creation_time, datetime) and got.creation_time.timestamp() == clock.now
    assert alice.exists('colour') and not alice.exists('size')
    assert alice.get('size') is None
    clock.advance(10)
    alice.update('colour', 'red')
    got = alice.get('colour', serialize_dt=True)
    assert got.value == 'red' and got.last_modified > got.creation_time
    assert got.to_dict()['creation_time'].endswith('+00:00')
    alice.set('colour', 'green')
    alice.set('size', 42)
    assert alice.names() == ['colour', 'size']
    assert alice.get('colour').value == 'green'
    alice.delete('colour')
    assert alice.names() == ['size']


def test_create_of_an_existing_attribute_is_e009001_and_changes_nothing(alice):
    alice.create('a', 1)
    assert refused(alice.create, 'a', 2) == ['E009001']
    assert alice.get('a').value == 1


def test_update_and_delete_of_a_missing_attribute_are_e009002(alice):
    assert refused(alice.update, 'nope', 1) == ['E009002']
    assert refused(alice.delete, 'nope') == ['E009002']
    assert alice.names() == []


def test_the_many_forms_create_get_update_set_check_and_delete_several_at_once(alice):
    alice.create_many([{'name': 'a', 'value': 1}, {'name': 'b', 'value': 'two', 'encrypt': True}])
    got = alice.get_many(['a', 'b', 'c'])
    assert got['a'].value == 1 and got['b'].value == 'two' and got['b'].is_encrypted and got['c'] is None
    assert alice.exists_many(['a', 'c']) == {'a': True, 'c': False}
    alice.update_many([{'name': 'a', 'value': 10}, {'name': 'b', 'value': 20}])
    alice.set_many([{'name': 'b', 'value': 21}, {'name': 'c', 'value': 30}])
    assert {name: attr.value for name, attr in alice.get_many(['a', 'b', 'c']).items()} == {'a': 10, 'b': 21, 'c': 30}
    alice.delete_many(['a', 'c'])
    assert alice.names() == ['b']


def test_a_many_call_is_all_or_nothing(alice):
    alice.create('b', 'old')
    assert refused(alice.create_many, [{'name': 'a', 'value': 1}, {'name': 'b', 'value': 2}]) == ['E009001']
    assert alice.names() == ['b'] and alice.get('b').value == 'old'
    assert refused(alice.update_many, [{'name': 'b', 'value': 'new'}, {'name': 'zz', 'value': 2}]) == ['E009002']
    assert alice.get('b').value == 'old'
    assert refused(alice.delete_many, ['b', 'zz']) == ['E009002']
    assert alice.names() == ['b']


@pytest.mark.parametrize('call, args, code', [
    ('create', ('', 1), 'E008003'),
    ('create', (None, 1), 'E008003'),
    ('create', (7, 1), 'E008002'),
    ('create', ('x' * (NAME_MAX + 1), 1), 'E008002'),
    ('create', ('new\nline', 1), 'E008002'),
    ('create', ('big', 'x' * VALUE_MAX), 'E008002'),
    ('create', ('nan', float('nan')), 'E008002'),
    ('create', ('obj', object()), 'E008002'),
    ('create', ('exp', 1, 0), 'E008002'),
    ('create', ('exp', 1, -5), 'E008002'),
    ('create', ('exp', 1, '60'), 'E008002'),
    ('create', ('exp', 1, True), 'E008002'),
    ('create', ('enc', 1, None, 'yes'), 'E008002'),
    ('create_many', ([],), 'E008002'),
    ('create_many', ([{'name': f'n{i}', 'value': i} for i in range(MANY_MAX + 1)],), 'E008002'),
    ('create_many', ([{'name': 'a', 'value': 1}, {'name': 'a', 'value': 2}],), 'E008002'),
    ('create_many', ([{'name': 'a'}],), 'E008003'),
    ('create_many', (['a'],), 'E008002'),
    ('create_many', ('a',), 'E008002'),
    ('get_many', (['a', 'a'],), 'E008002'),
    ('get', ('a', 'yes'), 'E008002'),
])
def test_bad_input_is_a_clear_e008002_or_e008003(alice, call, args, code):
    assert refused(getattr(alice, call), *args) == [code]
    assert alice.names() == []


def test_a_value_just_under_the_limit_is_kept(alice):
    value = 'x' * (VALUE_MAX - 2)  # its two quotes make VALUE_MAX bytes of JSON
    alice.create('big', value)
    assert alice.get('big').value == value


# Encryption

def test_an_encrypted_value_is_not_in_the_odb_in_the_clear_and_reads_back_decrypted(sso, alice):
    alice.create('secret', {'pin': '8642-unique-plain'}, encrypt=True)
    [row] = rows(sso)
    assert row.is_encrypted and '8642-unique-plain' not in row.value and 'pin' not in row.value
    assert alice.get('secret').value == {'pin': '8642-unique-plain'}
    # Without decrypting, the stored ciphertext, as 3.1 answered
    assert alice.get('secret', decrypt=False).value == row.value


def test_updating_without_encrypt_stores_the_new_value_in_the_clear_and_says_so(sso, alice):
    alice.create('s', 'one', encrypt=True)
    alice.update('s', 'two')
    assert alice.get('s').value == 'two' and alice.get('s').is_encrypted is False
    alice.set('s', 'three', encrypt=True)
    assert 'three' not in rows(sso)[0].value and alice.get('s').value == 'three'


# Expiry

def test_an_expired_attribute_does_not_exist_for_any_call(alice, clock):
    alice.create('otp', 123, expiration=60)
    assert alice.get('otp').expiration_time.timestamp() == clock.now + 60
    clock.advance(59.9)
    assert alice.exists('otp')
    clock.advance(0.1)
    assert alice.get('otp') is None and not alice.exists('otp') and alice.names() == []
    assert refused(alice.update, 'otp', 1) == ['E009002']
    assert refused(alice.delete, 'otp') == ['E009002']
    alice.create('otp', 456)  # made anew over the expired one
    got = alice.get('otp')
    assert got.value == 456 and got.expiration_time is None and got.creation_time.timestamp() == clock.now


def test_update_and_set_keep_the_expiry_unless_given_one(alice, clock):
    alice.create('a', 1, expiration=100)
    alice.update('a', 2)
    alice.set('a', 3)
    assert alice.get('a').expiration_time.timestamp() == clock.now + 100
    alice.update('a', 4, expiration=10)
    assert alice.get('a').expiration_time.timestamp() == clock.now + 10
    alice.set('a', 5, expiration=None)
    assert alice.get('a').expiration_time is None


def test_set_over_an_expired_attribute_makes_a_new_one_that_does_not_expire(alice, clock):
    alice.create('a', 1, expiration=10)
    clock.advance(11)
    alice.set('a', 2)
    got = alice.get('a')
    assert got.value == 2 and got.expiration_time is None and got.creation_time.timestamp() == clock.now


def test_the_purge_deletes_expired_attributes_and_only_them(sso, alice, clock):
    alice.create('short', 1, expiration=10)
    alice.create('long', 2, expiration=1000)
    alice.create('forever', 3)
    clock.advance(10)
    assert sso.purge().attrs == 1
    assert sorted(row.name for row in rows(sso)) == ['forever', 'long']


# Owners

def test_session_attributes_are_the_sessions_own_and_go_with_it(sso, root):
    user_id, ust = regular(sso, root)
    other_ust = sso.user.login('cid', 'alice', PASSWORD, APP).ust
    mine = sso.user.session.get('cid', None, ust, APP).attr
    other = sso.user.session.get('cid', None, other_ust, APP).attr
    user = sso.user.get_current_user('cid', ust, APP).attr
    mine.create('cart', [1, 2])
    other.create('cart', [3])
    user.create('cart', 'the user\'s own')
    assert mine.get('cart').value == [1, 2] and other.get('cart').value == [3]
    assert user.get('cart').value == 'the user\'s own' and user.names() == ['cart']
    sso.user.logout('cid', ust, APP)
    assert sorted(row.value for row in rows(sso)) == ['"the user\'s own"', '[3]']
    # Writing to a session that has gone is E007001, never a database error
    assert refused(mine.set, 'cart', 1) == ['E007001']


def test_an_expired_sessions_attributes_go_when_the_purge_deletes_it(sso, root, clock):
    user_id, ust = regular(sso, root)
    sso.user.session.get('cid', None, ust, APP).attr.create('a', 1)
    clock.advance(3601)
    assert sso.purge().sessions == 2  # alice's and the super-user's
    assert rows(sso) == []


def test_a_users_attributes_and_their_sessions_attributes_go_with_the_user(sso, root):
    user_id, ust = regular(sso, root)
    sso.user.get_current_user('cid', ust, APP).attr.create('a', 1)
    sso.user.session.get('cid', None, ust, APP).attr.create('b', 2)
    sso.user.delete_user_by_id('cid', user_id, root, APP)
    assert rows(sso) == []


def test_a_user_cannot_reach_another_users_attributes_or_sessions_but_a_super_user_can(sso, root):
    alice_id, alice_ust = regular(sso, root, 'alice')
    bob_id, bob_ust = regular(sso, root, 'bob')
    sso.user.get_current_user('cid', alice_ust, APP).attr.create('private', 'alice only')
    sso.user.session.get('cid', None, alice_ust, APP).attr.create('private', 'alice session')
    assert refused(sso.user.get_user_by_id, 'cid', alice_id, bob_ust, APP) == ['E005005']
    assert refused(sso.user.session.get, 'cid', alice_ust, bob_ust, APP) == ['E005005']
    # Bob's own attributes are his: Alice's of the same name are not among them
    assert sso.user.get_current_user('cid', bob_ust, APP).attr.get('private') is None
    assert sso.user.get_user_by_id('cid', bob_id, bob_ust, APP).attr.names() == []
    # A super-user reaches any user's and any session's
    assert sso.user.get_user_by_id('cid', alice_id, root, APP).attr.get('private').value == 'alice only'
    assert sso.user.session.get('cid', alice_ust, root, APP).attr.get('private').value == 'alice session'


# Concurrency

@pytest.mark.parametrize('method', ['set', 'create'])
def test_writers_racing_on_one_attribute_leave_one_row_and_no_database_error(sso, alice, method):
    """Many threads, each its own connection, write one attribute at the same moment: `set` always
    succeeds and one of the values stays; `create` succeeds once and is E009001 for the others."""
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def write(n: int) -> None:
        barrier.wait()
        try:
            getattr(alice, method)('shared', n)
            outcomes.append('ok')
        except Exception as e:  # noqa: BLE001 - what each racer got is the point
            outcomes.append(getattr(e, 'sub_status', [repr(e)])[0])

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(rows(sso)) == 1 and alice.get('shared').value in range(8)
    if method == 'set':
        assert outcomes == ['ok'] * 8
    else:
        assert sorted(outcomes) == ['E009001'] * 7 + ['ok']
