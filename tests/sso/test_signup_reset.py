"""Sign-up with its confirmation token, approval, password reset and the purge, in the SSO core on
SQLite and PostgreSQL with an injected clock. Emails go to a recording mailer here (the real SMTP
peer receives them in tests/e2e/test_sso_email.py)."""

from __future__ import annotations

import concurrent.futures
import re

import pytest
from sqlalchemy import func, select

from tests.sso.conftest import make_sso
from zato.odb.models import SSOSession, SSOToken
from zato.sso.config import parse_text
from zato.sso.purge import Purged
from zato.sso.status import SSOError

PASSWORD = 'correct horse battery'
NEW_PASSWORD = 'a brand new passphrase'
APP = 'CRM'
CONF = '[main]\nsmtp_conn = My SMTP\n[apps]\nsignup_allowed = CRM\n'


class Mailbox:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str, str, str]] = []

    def __call__(self, conn: str, from_: str, to: str, subject: str, body: str) -> None:
        self.sent.append((conn, from_, to, subject, body))

    def token(self, index: int = -1) -> str:
        found = re.search(r'^([A-Za-z0-9_-]{43})$', self.sent[index][4], re.M)
        assert found, self.sent[index][4]
        return found.group(1)


@pytest.fixture
def mailbox():
    return Mailbox()


@pytest.fixture
def sso(engine, clock, mailbox):
    return with_mailer(engine, clock, mailbox)


def with_mailer(engine, clock, mailbox, conf: str = CONF):
    sso = make_sso(engine, parse_text(conf, 'test'), clock)
    sso.ctx.mailer = mailbox
    return sso


def refused(call, *args) -> list[str]:
    with pytest.raises(SSOError) as e:
        call(*args)
    return e.value.sub_status


def root_ust(sso) -> str:
    sso.user.create_super_user('cid', {'username': 'root1', 'password': PASSWORD})
    return sso.user.login('cid', 'root1', PASSWORD, APP).ust


def signup(sso, username: str = 'alice', **extra) -> dict:
    return sso.user.signup('cid', {'username': username, 'password': PASSWORD, 'email': f'{username}@example.com',
                                   'display_name': username.title(), **extra}, APP)


# Sign-up

def test_a_signed_up_user_logs_in_once_confirmed_and_approved(sso, mailbox):
    out = signup(sso)
    assert mailbox.sent[0][:4] == ('My SMTP', 'confirm@example.com', 'alice@example.com', 'Confirm your account')
    assert mailbox.sent[0][4].startswith('Hello Alice,') and mailbox.token() == out['confirm_token']
    assert refused(sso.user.login, 'cid', 'alice', PASSWORD, APP) == ['E005003']
    sso.user.confirm_signup('cid', mailbox.token(), APP)
    assert refused(sso.user.login, 'cid', 'alice', PASSWORD, APP) == ['E005004']
    root = root_ust(sso)
    user_id = sso.user.get_user_by_username('cid', 'alice')['user_id']
    sso.user.approve_user('cid', user_id, root, APP)
    assert sso.user.login('cid', 'alice', PASSWORD, APP).status == 'ok'
    user = sso.user.get_user_by_username('cid', 'alice')
    assert (user['sign_up_status'], user['approval_status'], user['approval_status_mod_by']) == \
        ('final', 'approved', 'root1')


def test_a_confirmed_user_is_sent_a_welcome_email_unless_sso_conf_says_not_to(engine, clock, mailbox):
    sso = with_mailer(engine, clock, mailbox)
    signup(sso)
    sso.user.confirm_signup('cid', mailbox.token(), APP)
    assert mailbox.sent[-1] == ('My SMTP', 'welcome@example.com', 'alice@example.com', 'Welcome',
                                'Hello Alice,\n\nyour account is confirmed. Welcome!\n')
    quiet = with_mailer(engine, clock, Mailbox(), CONF + '[signup]\nemail_welcome_enabled = false\n')
    signup(quiet, 'bob')
    quiet.user.confirm_signup('cid', quiet.ctx.mailer.token(), APP)
    assert len(quiet.ctx.mailer.sent) == 1


def test_a_confirmation_token_is_accepted_once(sso, mailbox):
    signup(sso)
    token = mailbox.token()
    sso.user.confirm_signup('cid', token, APP)
    assert refused(sso.user.confirm_signup, 'cid', token, APP) == ['E005007']


def test_a_confirmation_token_expires(sso, mailbox, clock):
    signup(sso)
    clock.advance(1440 * 60)
    assert refused(sso.user.confirm_signup, 'cid', mailbox.token(), APP) == ['E005006']


def test_an_unknown_confirmation_token_is_e005006_and_only_a_hash_is_stored(sso, mailbox, engine):
    signup(sso)
    assert refused(sso.user.confirm_signup, 'cid', 'x' * 43, APP) == ['E005006']
    with engine.connect() as conn:
        stored = conn.execute(select(SSOToken.token_hash)).scalars().all()
    assert stored and mailbox.token() not in stored


def test_the_same_confirmation_token_on_many_threads_is_accepted_once(sso, mailbox):
    signup(sso)
    token = mailbox.token()

    def confirm(_: int) -> str:
        try:
            sso.user.confirm_signup('cid', token, APP)
            return 'ok'
        except SSOError as e:
            return e.sub_status[0]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(confirm, range(8)))
    assert sorted(results) == ['E005007'] * 7 + ['ok']


def test_without_approval_needed_a_confirmed_user_logs_in(engine, clock, mailbox):
    sso = with_mailer(engine, clock, mailbox, CONF + '[signup]\nis_approval_needed = false\n')
    signup(sso)
    sso.user.confirm_signup('cid', mailbox.token(), APP)
    assert sso.user.login('cid', 'alice', PASSWORD, APP).status == 'ok'


def test_a_rejected_user_never_logs_in(sso, mailbox):
    signup(sso)
    sso.user.confirm_signup('cid', mailbox.token(), APP)
    root = root_ust(sso)
    user_id = sso.user.get_user_by_username('cid', 'alice')['user_id']
    sso.user.reject_user('cid', user_id, root, APP)
    assert refused(sso.user.login, 'cid', 'alice', PASSWORD, APP) == ['E005004']


def test_only_a_super_user_approves(sso, mailbox):
    signup(sso)
    sso.user.confirm_signup('cid', mailbox.token(), APP)
    root = root_ust(sso)
    alice_id = sso.user.get_user_by_username('cid', 'alice')['user_id']
    sso.user.approve_user('cid', alice_id, root, APP)
    alice = sso.user.login('cid', 'alice', PASSWORD, APP).ust
    signup(sso, 'bob')
    bob_id = sso.user.get_user_by_username('cid', 'bob')['user_id']
    assert refused(sso.user.approve_user, 'cid', bob_id, alice, APP) == ['E005005']
    assert refused(sso.user.approve_user, 'cid', 'zusr-nobody', root, APP) == ['E001100']


def test_sign_up_is_refused_for_an_application_not_in_signup_allowed(engine, clock, mailbox):
    sso = with_mailer(engine, clock, mailbox, '[main]\nsmtp_conn = My SMTP\n')
    assert refused(signup, sso) == ['E004002']
    assert mailbox.sent == []


def test_a_taken_username_or_email_gets_the_answer_a_new_user_gets(sso, mailbox):
    first = signup(sso)
    again = signup(sso)
    same_email = sso.user.signup('cid', {'username': 'alice2', 'password': PASSWORD, 'email': 'alice@example.com'},
                                 APP)
    assert set(again) == set(first) == set(same_email) == {'confirm_token'}
    assert len(again['confirm_token']) == len(first['confirm_token'])
    assert len(mailbox.sent) == 1  # the first one only
    assert refused(sso.user.confirm_signup, 'cid', again['confirm_token'], APP) == ['E005006']
    assert sso.user.get_user_by_username('cid', 'alice2') is None


def test_a_taken_username_costs_a_committed_write_as_a_new_one_does_and_the_purge_removes_it(sso, engine):
    signup(sso)
    with engine.connect() as conn:
        before = conn.execute(select(SSOToken.kind)).scalars().all()
    signup(sso)
    with engine.connect() as conn:
        after = conn.execute(select(SSOToken.kind)).scalars().all()
    assert sorted(after) == sorted([*before, 'decoy'])
    assert sso.purge().tokens == 1 and count(engine, SSOToken) == len(before)


def test_a_taken_username_is_e001002_when_sso_conf_says_so(engine, clock, mailbox):
    sso = with_mailer(engine, clock, mailbox, CONF + '[signup]\ninform_if_user_exists = true\n')
    signup(sso)
    assert refused(signup, sso) == ['E001002']


@pytest.mark.parametrize('data, code', [
    ({'username': 'root', 'email': 'x@example.com', 'password': PASSWORD}, 'E005001'),   # reserved, not informed
    ({'username': 'a b', 'email': 'x@example.com', 'password': PASSWORD}, 'E005001'),
    ({'username': 'carol', 'email': 'not-an-email', 'password': PASSWORD}, 'E005001'),
    ({'username': 'carol', 'password': PASSWORD}, 'E002005'),
    ({'username': 'carol', 'email': 'x@example.com', 'password': 'short'}, 'E003002'),
    ({'username': 'carol', 'email': 'x@example.com', 'password': 'password'}, 'E003001'),
    ({'username': 'carol', 'email': 'x@example.com', 'password': 'qwertyuiop'}, 'E003001'),
    ({'username': 'carol', 'email': 'x@example.com'}, 'E008003'),
    ({'username': 'carol', 'email': 'x@example.com', 'password': PASSWORD, 'app_list': 'CRM'}, 'E008002'),
    ({'username': 'carol', 'email': 'x@example.com', 'password': PASSWORD, 'display_name': 5}, 'E008002'),
])
def test_a_refused_sign_up_says_only_what_sso_conf_lets_it(sso, mailbox, data, code):
    assert refused(sso.user.signup, 'cid', data, APP) == [code]
    assert mailbox.sent == []


def test_the_reasons_are_given_when_sso_conf_says_so(engine, clock, mailbox):
    sso = with_mailer(engine, clock, mailbox, CONF + '[signup]\ninform_if_user_invalid = true\n'
                                                     'inform_if_email_invalid = true\n')
    assert refused(sso.user.signup, 'cid', {'username': 'root', 'email': 'x@example.com', 'password': PASSWORD},
                   APP) == ['E001001']
    assert refused(sso.user.signup, 'cid', {'username': 'carol', 'email': 'bad', 'password': PASSWORD},
                   APP) == ['E002001']


def test_the_confirmation_template_is_read_from_the_environment(sso, mailbox, tmp_path):
    (tmp_path / 'sso-confirm.txt').write_text('Dear {data.display_name} ({data.username}):\n{data.token}\n')
    sso.ctx.email_dir = str(tmp_path)
    out = signup(sso)
    assert mailbox.sent[0][4] == f'Dear Alice (alice):\n{out["confirm_token"]}\n'


def test_without_an_smtp_connection_the_sign_up_works_and_nothing_is_sent(engine, clock, mailbox):
    sso = with_mailer(engine, clock, mailbox, '[apps]\nsignup_allowed = CRM\n')
    out = signup(sso)
    assert mailbox.sent == []
    sso.user.confirm_signup('cid', out['confirm_token'], APP)


# Password reset

def active_user(sso, mailbox, username: str = 'alice') -> None:
    signup(sso, username)
    sso.user.confirm_signup('cid', mailbox.token(), APP)
    with sso.ctx.Session() as session:
        user = sso.user.users.by_username(session, username)
        user.approval_status = 'approved'
        session.commit()


def test_a_password_reset_token_sets_a_new_password_and_ends_every_session(sso, mailbox):
    active_user(sso, mailbox)
    ust = sso.user.login('cid', 'alice', PASSWORD, APP).ust
    sso.user.password_reset_begin('cid', 'alice', APP)
    assert mailbox.sent[-1][:4] == ('My SMTP', 'hello@example.com', 'alice@example.com', 'Password reset')
    sso.user.password_reset_complete('cid', mailbox.token(), NEW_PASSWORD, APP)
    assert refused(sso.user.session.verify, 'cid', ust, ust, APP) == ['E007001']
    assert refused(sso.user.login, 'cid', 'alice', PASSWORD, APP) == ['E005001']
    assert sso.user.login('cid', 'alice', NEW_PASSWORD, APP).status == 'ok'


def test_a_password_reset_token_is_accepted_once(sso, mailbox):
    active_user(sso, mailbox)
    sso.user.password_reset_begin('cid', 'alice', APP)
    token = mailbox.token()
    sso.user.password_reset_complete('cid', token, NEW_PASSWORD, APP)
    assert refused(sso.user.password_reset_complete, 'cid', token, 'yet another passphrase', APP) == ['E005001']
    assert sso.user.login('cid', 'alice', NEW_PASSWORD, APP).status == 'ok'


def test_a_password_reset_token_expires(sso, mailbox, clock):
    active_user(sso, mailbox)
    sso.user.password_reset_begin('cid', 'alice', APP)
    clock.advance(60 * 60)
    assert refused(sso.user.password_reset_complete, 'cid', mailbox.token(), NEW_PASSWORD, APP) == ['E005001']
    assert sso.user.login('cid', 'alice', PASSWORD, APP).status == 'ok'


def test_a_confirmation_token_does_not_reset_a_password(sso, mailbox):
    out = signup(sso)
    assert refused(sso.user.password_reset_complete, 'cid', out['confirm_token'], NEW_PASSWORD, APP) == ['E005001']


def test_the_new_password_follows_the_policy_and_a_refused_one_does_not_spend_the_token(sso, mailbox):
    active_user(sso, mailbox)
    sso.user.password_reset_begin('cid', 'alice', APP)
    token = mailbox.token()
    assert refused(sso.user.password_reset_complete, 'cid', token, 'short', APP) == ['E003002']
    assert refused(sso.user.password_reset_complete, 'cid', token, 'qwertyuiop', APP) == ['E003001']
    sso.user.password_reset_complete('cid', token, NEW_PASSWORD, APP)


def test_once_one_reset_token_is_used_the_older_ones_are_dead(sso, mailbox, clock):
    active_user(sso, mailbox)
    sso.user.password_reset_begin('cid', 'alice', APP)
    older = mailbox.token()
    clock.advance(60)
    sso.user.password_reset_begin('cid', 'alice', APP)
    assert mailbox.token() != older
    sso.user.password_reset_complete('cid', mailbox.token(), NEW_PASSWORD, APP)
    assert refused(sso.user.password_reset_complete, 'cid', older, 'yet another passphrase', APP) == ['E005001']


def test_an_unknown_user_is_answered_as_a_real_one_and_nothing_is_sent(sso, mailbox):
    active_user(sso, mailbox)
    sent = len(mailbox.sent)
    assert sso.user.password_reset_begin('cid', 'nobody', APP) is None
    assert sso.user.password_reset_begin('cid', 'alice', APP) is None
    assert len(mailbox.sent) == sent + 1


def test_a_user_is_sent_one_reset_email_per_min_interval(sso, mailbox, clock):
    active_user(sso, mailbox)
    sent = len(mailbox.sent)
    for _ in range(5):
        sso.user.password_reset_begin('cid', 'alice', APP)
        clock.advance(11)
    assert len(mailbox.sent) == sent + 1      # 0 to 44 s after the first: one email
    sso.user.password_reset_begin('cid', 'alice', APP)
    assert len(mailbox.sent) == sent + 1      # 55 s
    clock.advance(5)
    sso.user.password_reset_begin('cid', 'alice', APP)
    assert len(mailbox.sent) == sent + 2      # 60 s


def test_a_user_locked_by_a_super_user_gets_no_reset_token(sso, mailbox):
    active_user(sso, mailbox)
    sso.admin.set_locked('alice', True)
    sent = len(mailbox.sent)
    sso.user.password_reset_begin('cid', 'alice', APP)
    assert len(mailbox.sent) == sent


def test_reset_work_is_deferred_until_after_the_answer(sso, mailbox):
    active_user(sso, mailbox)
    deferred = []
    sso.ctx.defer = deferred.append
    sent = len(mailbox.sent)
    sso.user.password_reset_begin('cid', 'alice', APP)
    assert len(mailbox.sent) == sent and len(deferred) == 1
    deferred[0]()
    assert len(mailbox.sent) == sent + 1


@pytest.mark.parametrize('args, code', [
    (('alice', 'NOAPP'), 'E004001'), (('', APP), 'E008003'), ((['alice'], APP), 'E008002'),
])
def test_a_malformed_reset_begin_is_refused_before_any_lookup(sso, args, code):
    assert refused(sso.user.password_reset_begin, 'cid', *args) == [code]


# Purge

def count(engine, model) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar_one()


def test_the_purge_deletes_expired_sessions_and_tokens_only(sso, mailbox, clock, engine):
    active_user(sso, mailbox)                        # a used confirmation token, valid for 1440 minutes
    sso.user.login('cid', 'alice', PASSWORD, APP)    # a session that will expire
    sso.user.password_reset_begin('cid', 'alice', APP)  # a live reset token, valid for 60 minutes
    assert sso.purge() == Purged(0, 0)
    clock.advance(59 * 60)
    live = sso.user.login('cid', 'alice', PASSWORD, APP).ust
    assert sso.purge() == Purged(0, 0)
    clock.advance(2 * 60)                            # the first session and the reset token are past their time
    assert sso.purge() == Purged(1, 1)
    assert count(engine, SSOSession) == 1 and count(engine, SSOToken) == 1
    assert sso.user.session.verify('cid', live, live, APP) == {'is_valid': True}
    # A used confirmation token is still answered as used until it expires, then it goes
    assert refused(sso.user.confirm_signup, 'cid', mailbox.token(0), APP) == ['E005007']
    clock.advance(1440 * 60)
    assert sso.purge().tokens == 1 and count(engine, SSOToken) == 0


def test_the_purge_deletes_a_bounded_batch_each_time(sso, mailbox, clock, engine):
    active_user(sso, mailbox)
    for _ in range(5):
        sso.user.login('cid', 'alice', PASSWORD, APP)
    clock.advance(3600)
    from zato.sso.purge import purge
    assert purge(sso.ctx, limit=3).sessions == 3
    assert purge(sso.ctx, limit=3).sessions == 2
    assert count(engine, SSOSession) == 0


class PurgeRuntime:
    """What a Purger uses of a server's runtime: its leases and its name."""

    def __init__(self, engine, cluster_id: int, server_name: str) -> None:
        from zato.odb.lease import LeaseStore
        self.leases = LeaseStore(engine, cluster_id)
        self.server_name = server_name


def test_one_worker_of_the_cluster_purges_per_interval(sso, mailbox, clock, engine):
    from zato.server.sso import Purger
    active_user(sso, mailbox)
    for _ in range(3):
        sso.user.login('cid', 'alice', PASSWORD, APP)
    clock.advance(3600)
    workers = [Purger(PurgeRuntime(engine, sso.ctx.cluster_id, f'server{i}'), sso) for i in (1, 2)]
    workers[1].holder += '-other'
    assert workers[0].interval == 300
    assert workers[0].run_once() == 3   # the 3 sessions
    sso.user.login('cid', 'alice', PASSWORD, APP)
    clock.advance(3600)
    # The lease (by the ODB's clock) is the first worker's for the interval: the others leave the expired session be
    assert workers[1].run_once() == 0 and workers[0].run_once() == 0
    assert count(engine, SSOSession) == 1


def test_the_same_username_signed_up_on_many_threads_at_once_is_one_user_and_every_answer_alike(sso, engine):
    def sign_up(i: int) -> tuple[str, ...]:
        return tuple(sso.user.signup('cid', {'username': 'zoe', 'password': PASSWORD,
                                             'email': f'zoe{i}@example.com'}, APP))
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = set(pool.map(sign_up, range(8)))
    assert answers == {('confirm_token',)}
    with engine.connect() as conn:
        from zato.odb.models import SSOUser
        assert conn.execute(select(func.count()).select_from(SSOUser).where(SSOUser.username == 'zoe')).scalar_one() == 1
