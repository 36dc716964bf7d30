"""[user_validation] service and [signup] callback_service_list (zato.sso.hooks) in the SSO core, on
SQLite and PostgreSQL, with the server's service invocation replaced by a recorder."""

from __future__ import annotations

import pytest

from tests.sso.conftest import make_sso
from tests.sso.test_core import PASSWORD, refused, super_user
from zato.sso.config import parse_text
from zato.sso.status import SSOError

APP = 'CRM'
CONF = ('[apps]\nsignup_allowed = CRM\n[signup]\ncallback_service_list = my.crm.on-signup, my.audit.on-signup\n'
        '[user_validation]\nservice = zato.sso.signup.validate, my.validate\n')


_UNSET = object()


class Services:
    """What the server's invoker would run: `my.validate` refuses usernames with `bad` in them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict, str]] = []
        self.answer: object = _UNSET

    def __call__(self, name: str, payload: dict, cid: str) -> object:
        self.calls.append((name, payload, cid))
        if name == 'my.validate':
            if self.answer is not _UNSET:
                return self.answer
            if 'bad' in payload['username']:
                return {'is_valid': False, 'sub_status': ['E001001']}
            return {'is_valid': True}
        if name == 'my.audit.on-signup':
            raise RuntimeError('the audit system is down')
        return None

    def named(self, name: str) -> list[dict]:
        return [payload for called, payload, _ in self.calls if called == name]


@pytest.fixture
def services():
    return Services()


@pytest.fixture
def sso(engine, clock, services):
    sso = make_sso(engine, parse_text(CONF, 'test'), clock)
    sso.ctx.invoke = services
    return sso


def test_a_sign_up_is_validated_by_the_service_then_heard_of_by_every_callback(sso, services):
    out = sso.user.signup('cid-1', {'username': 'alice', 'password': PASSWORD, 'email': 'alice@example.com',
                                    'display_name': 'Alice'}, APP)
    [validated] = services.named('my.validate')
    assert validated == {'username': 'alice', 'password': PASSWORD, 'email': 'alice@example.com',
                         'display_name': 'Alice', 'current_app': APP}
    # The built-in validation is not invoked: its rules ran already
    assert 'zato.sso.signup.validate' not in [name for name, _, _ in services.calls]
    [heard] = services.named('my.crm.on-signup')
    assert heard['username'] == 'alice' and heard['user_id'].startswith('zusr')
    assert heard['sign_up_status'] == 'before_confirmation' and heard['current_app'] == APP
    assert heard['sign_up_confirm_token'] == out['confirm_token']
    assert 'password' not in heard and PASSWORD not in repr(heard)
    # A failing callback is logged; the next still runs and the sign-up stands
    assert len(services.named('my.audit.on-signup')) == 1
    assert {cid for _, _, cid in services.calls} == {'cid-1'}


def test_a_sign_up_the_service_refuses_gets_its_sub_status_and_writes_nothing(sso, services):
    assert refused(sso.user.signup, 'cid', {'username': 'bad-guy', 'password': PASSWORD,
                                           'email': 'bad@example.com'}, APP) == ['E001001']
    assert sso.user.get_user_by_username('cid', 'bad-guy') is None
    assert services.named('my.crm.on-signup') == []


def test_a_refusal_without_sub_status_is_the_generic_e005001(sso, services):
    services.answer = {'is_valid': False}
    assert refused(sso.user.signup, 'cid', {'username': 'carol', 'password': PASSWORD,
                                           'email': 'carol@example.com'}, APP) == ['E005001']


@pytest.mark.parametrize('answer', [None, {'valid': True}, {'is_valid': 'no'},
                                    {'is_valid': False, 'sub_status': ['not a code']}])
def test_a_validation_service_that_answers_nonsense_is_our_bug_not_a_refusal(sso, services, answer):
    services.answer = answer
    with pytest.raises(RuntimeError):
        sso.user.signup('cid', {'username': 'dave', 'password': PASSWORD, 'email': 'dave@example.com'}, APP)
    assert sso.user.get_user_by_username('cid', 'dave') is None


def test_a_taken_username_calls_no_callback(sso, services):
    sso.user.signup('cid', {'username': 'erin', 'password': PASSWORD, 'email': 'erin@example.com'}, APP)
    sso.user.signup('cid', {'username': 'erin', 'password': PASSWORD, 'email': 'erin2@example.com'}, APP)
    assert len(services.named('my.crm.on-signup')) == 1


def test_a_super_users_create_is_validated_too(sso, services):
    root = super_user(sso)
    assert refused(sso.user.create_user, 'cid', {'username': 'badger', 'password': PASSWORD}, root, APP) == \
        ['E001001']
    sso.user.create_user('cid', {'username': 'goodie', 'password': PASSWORD}, root, APP)
    assert [p['username'] for p in services.named('my.validate')] == ['badger', 'goodie']
    assert services.named('my.crm.on-signup') == []  # a create is no sign-up


def test_without_a_server_nothing_is_invoked(engine, clock):
    sso = make_sso(engine, parse_text(CONF, 'test'), clock)
    assert sso.ctx.invoke is None
    sso.user.signup('cid', {'username': 'bad-but-unchecked', 'password': PASSWORD, 'email': 'b@example.com'}, APP)


def test_an_ssoerror_raised_by_the_service_is_the_answer(sso, services):
    def raising(name: str, payload: dict, cid: str) -> object:
        raise SSOError('E002001')
    sso.ctx.invoke = raising
    assert refused(sso.user.signup, 'cid', {'username': 'frank', 'password': PASSWORD,
                                           'email': 'frank@example.com'}, APP) == ['E002001']
