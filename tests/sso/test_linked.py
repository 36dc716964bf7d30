"""Linked credentials in the SSO core (zato.sso.linked), on SQLite and PostgreSQL with an injected
clock: linking (super-users only, one user per definition), listing, removing, the links going with
their user or definition, and the session a linked credential opens and extends."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select

from tests.sso.conftest import make_sso
from tests.sso.test_core import APP, PASSWORD, refused, super_user
from zato.odb.models import SecurityDef, SSOLinkedAuth, SSOSession
from zato.sso.config import parse_text


def sec_def(sso, name: str, kind: str = 'basic_auth', username: str | None = None) -> int:
    with sso.ctx.Session() as session:
        row = SecurityDef(cluster_id=sso.ctx.cluster_id, name=name, kind=kind, username=username or name,
                          password_hash='x', is_active=True, is_internal=False, realm='Zato', version=1, opaque={})
        session.add(row)
        session.commit()
        return row.id


def alice(sso, root: str, **extra) -> str:
    return sso.user.create_user('cid', {'username': 'alice', 'password': PASSWORD, **extra}, root, APP)['user_id']


def test_a_super_user_links_a_basic_auth_and_a_jwt_definition_and_lists_them(sso):
    root = super_user(sso)
    user_id = alice(sso, root)
    basic = sec_def(sso, 'crm.basic', username='crm-api')
    jwt = sec_def(sso, 'crm.jwt', 'jwt')
    assert sso.user.create_linked_auth('cid', root, user_id, 'basic_auth', 'crm-api', True, APP) == (user_id, basic)
    assert sso.user.create_linked_auth('cid', root, user_id, 'zato.jwt', None, True, APP, sec_name='crm.jwt') == \
        (user_id, jwt)
    listed = sso.user.get_linked_auth_list('cid', root, APP, user_id=user_id)
    assert [(x['auth_type'], x['auth_id'], x['auth_username'], x['is_active']) for x in listed] == \
        [('basic_auth', basic, 'crm-api', True), ('jwt', jwt, 'crm.jwt', True)]
    own = sso.user.get_linked_auth_list('cid', sso.user.login('cid', 'alice', PASSWORD, APP).ust, APP)
    assert own == listed
    assert sso.user.get_user_by_linked_auth('cid', 'basic_auth', 'crm-api')['user_id'] == user_id
    assert sso.user.get_user_by_linked_auth('cid', 'basic_auth', 'nobody') is None


def test_only_a_super_user_links_and_a_user_lists_only_their_own(sso):
    root = super_user(sso)
    user_id = alice(sso, root)
    sec_def(sso, 'crm.basic')
    ust = sso.user.login('cid', 'alice', PASSWORD, APP).ust
    assert refused(sso.user.create_linked_auth, 'cid', ust, user_id, 'basic_auth', 'crm.basic', True, APP) == \
        ['E005005']
    root_id = sso.user.get_current_user('cid', root, APP)['user_id']
    assert refused(sso.user.get_linked_auth_list, 'cid', ust, APP, user_id=root_id) == ['E005005']


def test_a_definition_is_linked_to_one_user_only(sso):
    root = super_user(sso)
    user_id = alice(sso, root)
    bob = sso.user.create_user('cid', {'username': 'bob', 'password': PASSWORD}, root, APP)['user_id']
    sec_def(sso, 'crm.basic')
    sso.user.create_linked_auth('cid', root, user_id, 'basic_auth', 'crm.basic', True, APP)
    from zato.sso.status import SSOError
    with pytest.raises(SSOError) as e:
        sso.user.create_linked_auth('cid', root, bob, 'basic_auth', 'crm.basic', True, APP)
    assert (e.value.status, e.value.sub_status) == (409, ['E010001'])


@pytest.mark.parametrize('auth_type, username, code', [
    ('ldap', 'crm.basic', 'E008002'), ('basic_auth', 'nobody', 'E008002'), ('jwt', 'crm.basic', 'E008002'),
    ('basic_auth', None, 'E008003')])
def test_an_unknown_kind_or_definition_is_refused(sso, auth_type, username, code):
    root = super_user(sso)
    user_id = alice(sso, root)
    sec_def(sso, 'crm.basic')
    assert refused(sso.user.create_linked_auth, 'cid', root, user_id, auth_type, username, True, APP) == [code]


def test_removing_a_link_ends_the_sessions_it_opened(sso, clock):
    root = super_user(sso)
    user_id = alice(sso, root)
    sec_id = sec_def(sso, 'crm.basic')
    sso.user.create_linked_auth('cid', root, user_id, 'basic_auth', 'crm.basic', True, APP)
    linked = sso.user.linked
    with sso.ctx.Session() as session:
        user = linked.user_of(session, sec_id)
        linked.touch_session(session, user, sec_id, 'basic_auth', 'crm.basic', APP, '10.0.0.1', 'curl', clock())
        session.commit()
    assert sso.user.delete_linked_auth('cid', root, user_id, 'basic_auth', 'crm.basic', APP) == sec_id
    with sso.ctx.Session() as session:
        assert linked.user_of(session, sec_id) is None
        assert session.scalars(select(SSOSession).where(SSOSession.ext_session_id != '')).all() == []
    assert refused(sso.user.delete_linked_auth, 'cid', root, user_id, 'basic_auth', 'crm.basic', APP) == ['E010002']


def test_deleting_the_user_or_the_definition_removes_the_link(sso):
    root = super_user(sso)
    user_id = alice(sso, root)
    first, second = sec_def(sso, 'crm.one'), sec_def(sso, 'crm.two')
    sso.user.create_linked_auth('cid', root, user_id, 'basic_auth', 'crm.one', True, APP)
    sso.user.create_linked_auth('cid', root, user_id, 'basic_auth', 'crm.two', True, APP)
    with sso.ctx.Session() as session:
        session.execute(delete(SecurityDef).where(SecurityDef.id == first))
        session.commit()
        assert sso.user.linked.active_links(session) == {second: session.scalar(select(SSOLinkedAuth.user_id))}
    told = []
    sso.ctx.commit_change = lambda session, kind, obj_id: (told.append(kind), session.commit())
    sso.user.delete_user_by_id('cid', user_id, root, APP)
    with sso.ctx.Session() as session:
        assert session.scalars(select(SSOLinkedAuth)).all() == []
    assert told == ['sso_linked']  # every worker is told, so none keeps acting as the deleted user


def test_a_linked_session_is_opened_once_then_extended_until_its_absolute_expiry(engine, clock):
    sso = make_sso(engine, parse_text('[session]\nexpiry = 10\nmax_lifetime = 30\n', 'test'), clock)
    root = super_user(sso)
    user_id = alice(sso, root)
    sec_id = sec_def(sso, 'crm.basic')
    sso.user.create_linked_auth('cid', root, user_id, 'basic_auth', 'crm.basic', True, APP)
    linked = sso.user.linked

    def touch() -> tuple[int, float]:
        with sso.ctx.Session() as session:
            row = linked.touch_session(session, linked.user_of(session, sec_id), sec_id, 'basic_auth', 'crm.basic',
                                       APP, '10.0.0.1', 'curl', clock())
            session.commit()
            return row.id, row.expiration_time

    first, expires = touch()
    assert expires == clock() + 600
    clock.advance(1)   # less than 1% of the idle expiry: no write
    assert touch() == (first, expires)
    clock.advance(299)
    assert touch() == (first, clock() + 600)
    clock.advance(1500)  # past the absolute expiry: a new session
    second, _ = touch()
    assert second != first


def test_a_user_rate_limit_definition_is_checked_when_set(sso):
    root = super_user(sso)
    user_id = alice(sso, root)
    assert refused(sso.user.update_user_by_id, 'cid', user_id, {'rate_limit_def': '* = 3/x'}, root, APP) == \
        ['E008002']
    sso.user.update_user_by_id('cid', user_id, {'is_rate_limit_active': True, 'rate_limit_def': '* = 3/m'}, root, APP)
    got = sso.user.get_user_by_id('cid', user_id, root, APP)
    assert (got['is_rate_limit_active'], got['rate_limit_def']) == (True, '* = 3/m')
    ust = sso.user.login('cid', 'alice', PASSWORD, APP).ust
    assert refused(sso.user.update_current_user, 'cid', {'rate_limit_def': ''}, ust, APP) == ['E008001']
