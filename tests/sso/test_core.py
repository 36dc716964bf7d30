"""The SSO core with an injected clock, on SQLite and PostgreSQL: users, login, sessions, TOTP,
brute force (as Keycloak's tests check it)."""

from __future__ import annotations

import statistics
import time

import pytest

from tests.sso.conftest import make_sso
from zato.sso import totp
from zato.sso.config import parse_text
from zato.sso.status import SSOError

PASSWORD = 'correct horse battery'
APP = 'CRM'


def codes(e: pytest.ExceptionInfo) -> list[str]:
    return e.value.sub_status


def super_user(sso, username: str = 'root1') -> str:
    sso.user.create_super_user('cid', {'username': username, 'password': PASSWORD})
    return sso.user.login('cid', username, PASSWORD, APP).ust


def refused(call, *args, **kwargs) -> list[str]:
    with pytest.raises(SSOError) as e:
        call(*args, **kwargs)
    return codes(e)


def test_a_super_user_creates_a_user_who_logs_in_and_sees_themselves(sso):
    root = super_user(sso)
    created = sso.user.create_user('cid', {'username': 'alice', 'password': PASSWORD, 'email': 'alice@example.com',
                                           'display_name': 'Alice'}, root, APP)
    assert created['approval_status'] == 'approved' and created['sign_up_status'] == 'final'
    assert 'password' not in created and 'password_hash' not in created
    result = sso.user.login('cid', 'ALICE', PASSWORD, APP, '10.0.0.1', 'curl/8')
    assert len(result.ust) >= 43 and result.status == 'ok'
    me = sso.user.get_current_user('cid', result.ust, APP)
    assert me['username'] == 'alice' and me['email'] == 'alice@example.com'
    sessions = sso.user.session.get_list('cid', result.ust, APP)
    assert [(s['remote_addr'], s['user_agent']) for s in sessions] == [('10.0.0.1', 'curl/8')]


def test_only_a_super_user_creates_users(sso):
    root = super_user(sso)
    sso.user.create_user('cid', {'username': 'alice', 'password': PASSWORD}, root, APP)
    alice = sso.user.login('cid', 'alice', PASSWORD, APP).ust
    assert refused(sso.user.create_user, 'cid', {'username': 'bob', 'password': PASSWORD}, alice, APP) == ['E005005']


def test_user_validation_rejects_reserved_names_whitespace_and_weak_passwords(sso):
    root = super_user(sso)
    create = sso.user.create_user
    assert refused(create, 'cid', {'username': 'Admin', 'password': PASSWORD}, root, APP) == ['E001001']
    assert refused(create, 'cid', {'username': 'a b', 'password': PASSWORD}, root, APP) == ['E001004']
    assert refused(create, 'cid', {'username': 'ROOT1', 'password': PASSWORD}, root, APP) == ['E001002']
    assert refused(create, 'cid', {'username': 'carol', 'password': 'short'}, root, APP) == ['E003002']
    assert refused(create, 'cid', {'username': 'carol', 'password': 'x' * 257}, root, APP) == ['E003003']
    assert refused(create, 'cid', {'username': 'carol', 'password': 'PASSWORD'}, root, APP) == ['E003001']
    assert refused(create, 'cid', {'username': 'carol', 'password': 'football'}, root, APP) == ['E003001']


def test_an_unknown_user_and_a_wrong_password_get_the_same_generic_answer(sso):
    super_user(sso)
    assert refused(sso.user.login, 'cid', 'nobody', PASSWORD, APP) == ['E005001']
    assert refused(sso.user.login, 'cid', 'root1', 'wrong password', APP) == ['E005001']


def test_an_unknown_users_login_costs_what_a_wrong_passwords_does(sso):
    """Medians of back-to-back pairs, so that the machine's other work weighs on both alike."""
    super_user(sso)

    def timed(username: str) -> float:
        started = time.perf_counter()
        with pytest.raises(SSOError):
            sso.user.login('cid', username, 'wrong password', APP)
        return time.perf_counter() - started
    timed('nobody'), timed('root1')  # warm-up: the dummy hash is made on first use
    differences = []
    for i in range(61):  # a busy machine's noise on each pair is tens of ms: the median of many
        pair = (timed(f'nobody{i}'), timed('root1')) if i % 2 else (timed('root1'), timed(f'nobody{i}'))[::-1]
        differences.append(pair[1] - pair[0])
        sso.admin.set_locked('root1', False)  # the counter must not lock it out meanwhile
    assert abs(statistics.median(differences)) < 0.005, differences


# Sessions

def test_a_session_ends_after_its_idle_expiry_and_a_renewal_moves_it_on(sso, clock):
    ust = super_user(sso)
    clock.advance(59 * 60)
    assert sso.user.session.verify('cid', ust, ust, APP) == {'is_valid': True}
    sso.user.session.renew('cid', ust, APP)
    clock.advance(59 * 60)
    assert sso.user.session.verify('cid', ust, ust, APP) == {'is_valid': True}
    clock.advance(2 * 60)
    assert refused(sso.user.session.verify, 'cid', ust, ust, APP) == ['E007002']
    assert refused(sso.user.session.verify, 'cid', ust, ust, APP) == ['E007001']  # and it is gone


def test_renewals_never_carry_a_session_past_its_absolute_expiry(engine, clock):
    sso = make_sso(engine, parse_text('[session]\nexpiry = 10\nmax_lifetime = 30\n', 't'), clock)
    ust = super_user(sso)
    for _ in range(3):
        clock.advance(9 * 60)
        sso.user.session.renew('cid', ust, APP)  # at 9, 18 and 27 minutes
    clock.advance(3 * 60 - 1)
    assert sso.user.session.verify('cid', ust, ust, APP) == {'is_valid': True}
    clock.advance(1)  # 30 minutes after the login, 3 after the last renewal
    assert refused(sso.user.session.verify, 'cid', ust, ust, APP) == ['E007002']


def test_a_ust_of_another_application_is_refused(engine, clock):
    sso = make_sso(engine, parse_text('[apps]\nall = CRM, ERP\nlogin_allowed = CRM, ERP\n', 't'), clock)
    ust = super_user(sso)
    assert refused(sso.user.session.verify, 'cid', ust, ust, 'ERP') == ['E007001']
    assert refused(sso.user.get_current_user, 'cid', ust, 'ERP') == ['E007001']
    assert refused(sso.user.get_current_user, 'cid', ust, 'HR') == ['E004001']


def test_logout_ends_the_session(sso):
    ust = super_user(sso)
    sso.user.logout('cid', ust, APP)
    assert refused(sso.user.get_current_user, 'cid', ust, APP) == ['E007001']


def test_a_ust_from_before_a_password_change_is_dead(sso):
    super_user(sso)
    fixed = sso.user.login('cid', 'root1', PASSWORD, APP).ust  # e.g. one an attacker planted
    mine = sso.user.login('cid', 'root1', PASSWORD, APP).ust
    sso.user.change_password('cid', {'old_password': PASSWORD, 'new_password': 'another good one'}, mine, APP)
    assert refused(sso.user.get_current_user, 'cid', fixed, APP) == ['E007001']
    assert sso.user.get_current_user('cid', mine, APP)['username'] == 'root1'
    assert refused(sso.user.login, 'cid', 'root1', PASSWORD, APP) == ['E005001']
    sso.user.login('cid', 'root1', 'another good one', APP)


def test_a_new_totp_key_ends_the_users_other_sessions(sso):
    super_user(sso)
    other = sso.user.login('cid', 'root1', PASSWORD, APP).ust
    mine = sso.user.login('cid', 'root1', PASSWORD, APP).ust
    out = sso.user.reset_totp_key('cid', mine, current_app=APP)
    assert out['totp_uri'].startswith('otpauth://totp/')
    assert refused(sso.user.get_current_user, 'cid', other, APP) == ['E007001']
    sso.user.get_current_user('cid', mine, APP)


def test_a_password_that_must_change_is_changed_at_login_with_new_password(sso):
    root = super_user(sso)
    sso.user.create_user('cid', {'username': 'alice', 'password': PASSWORD, 'password_must_change': True}, root, APP)
    assert refused(sso.user.login, 'cid', 'alice', PASSWORD, APP) == ['E003007']
    assert refused(sso.user.login, 'cid', 'alice', PASSWORD, APP, new_password='short') == ['E003002']
    sso.user.login('cid', 'alice', PASSWORD, APP, new_password='a brand new one')
    sso.user.login('cid', 'alice', 'a brand new one', APP)


def test_an_expired_password_is_refused_and_one_about_to_expire_warns(sso, clock):
    super_user(sso)
    clock.advance((730 - 10) * 86400)
    result = sso.user.login('cid', 'root1', PASSWORD, APP)
    assert (result.status, result.sub_status) == ('warning', ['W003005'])
    clock.advance(11 * 86400)
    assert refused(sso.user.login, 'cid', 'root1', PASSWORD, APP) == ['E005001']  # inform_if_expired is false
    sso.user.login('cid', 'root1', PASSWORD, APP, new_password='renewed password')


def test_a_user_not_approved_or_locked_by_a_super_user_is_told_only_after_the_right_password(sso):
    root = super_user(sso)
    created = sso.user.create_user('cid', {'username': 'alice', 'password': PASSWORD,
                                           'approval_status': 'before_decision'}, root, APP)
    assert refused(sso.user.login, 'cid', 'alice', 'wrong one!', APP) == ['E005001']
    assert refused(sso.user.login, 'cid', 'alice', PASSWORD, APP) == ['E005004']
    sso.user.update_user_by_id('cid', created['user_id'], {'approval_status': 'approved'}, root, APP)
    sso.user.lock_user('cid', created['user_id'], root, APP)
    assert refused(sso.user.login, 'cid', 'alice', PASSWORD, APP) == ['E005002']
    sso.user.unlock_user('cid', created['user_id'], root, APP)
    sso.user.login('cid', 'alice', PASSWORD, APP)


def test_search_pages_through_users_and_matches_names_exactly_or_partly(sso):
    root = super_user(sso)
    for i in range(7):
        sso.user.create_user('cid', {'username': f'user{i}', 'password': PASSWORD, 'display_name': f'Name {i}',
                                     'email': f'u{i}@example.com'}, root, APP)
    page = sso.user.search('cid', {'page_size': 3, 'cur_page': 3}, root, APP)
    assert (page['total'], page['num_pages'], len(page['result']), page['has_next_page']) == (8, 3, 2, False)
    assert sso.user.search('cid', {'display_name': 'name 3'}, root, APP)['total'] == 1
    assert sso.user.search('cid', {'display_name': 'name', 'is_name_exact': False}, root, APP)['total'] == 7
    assert sso.user.search('cid', {'display_name': 'Name 1', 'first_name': 'x', 'name_op': 'or'}, root,
                           APP)['total'] == 1
    assert [u['username'] for u in sso.user.search('cid', {'email': 'U4@example.com'}, root, APP)['result']] == \
        ['user4']


# TOTP

def totp_user(sso) -> str:
    super_user(sso)
    return sso.admin.reset_totp_key('root1')['totp_key']


def test_a_user_with_totp_logs_in_only_with_a_good_code(sso, clock):
    key = totp_user(sso)
    now_step = totp.current_step(clock.now)
    assert refused(sso.user.login, 'cid', 'root1', PASSWORD, APP) == ['E005001']
    assert refused(sso.user.login, 'cid', 'root1', PASSWORD, APP, totp_code='000000' if totp.code_at(
        key, now_step) != '000000' else '111111') == ['E005001']
    assert refused(sso.user.login, 'cid', 'root1', PASSWORD, APP,
                   totp_code=totp.code_at(key, now_step - 2)) == ['E005001']  # outside the window
    sso.user.login('cid', 'root1', PASSWORD, APP, totp_code=totp.code_at(key, now_step - 1))


def test_a_totp_code_is_accepted_once(sso, clock):
    key = totp_user(sso)
    code = totp.code_at(key, totp.current_step(clock.now))
    sso.user.login('cid', 'root1', PASSWORD, APP, totp_code=code)
    assert refused(sso.user.login, 'cid', 'root1', PASSWORD, APP, totp_code=code) == ['E005001']
    # Nor any code of a step before the one accepted
    previous = totp.code_at(key, totp.current_step(clock.now) - 1)
    assert refused(sso.user.login, 'cid', 'root1', PASSWORD, APP, totp_code=previous) == ['E005001']
    clock.advance(30)
    sso.user.login('cid', 'root1', PASSWORD, APP, totp_code=totp.code_at(key, totp.current_step(clock.now)))


# Brute force

def fail(sso, times: int, username: str = 'root1') -> None:
    for _ in range(times):
        assert refused(sso.user.login, 'cid', username, 'wrong password', APP) == ['E005001']


def test_five_failures_lock_the_user_out_for_a_minute_even_for_the_right_password(sso, clock):
    super_user(sso)
    fail(sso, 5)
    assert refused(sso.user.login, 'cid', 'root1', PASSWORD, APP) == ['E005001']
    clock.advance(59)
    assert refused(sso.user.login, 'cid', 'root1', PASSWORD, APP) == ['E005001']
    clock.advance(1)
    sso.user.login('cid', 'root1', PASSWORD, APP)


def test_each_lockout_lasts_longer_than_the_one_before(sso, clock):
    super_user(sso)
    fail(sso, 5)
    clock.advance(60)
    fail(sso, 5)  # the count goes on: the second lockout waits two increments
    clock.advance(119)
    assert refused(sso.user.login, 'cid', 'root1', PASSWORD, APP) == ['E005001']
    clock.advance(1)
    sso.user.login('cid', 'root1', PASSWORD, APP)


def test_attempts_while_locked_out_do_not_count_or_extend_it(sso, clock):
    super_user(sso)
    fail(sso, 5)
    fail(sso, 20)
    clock.advance(60)
    sso.user.login('cid', 'root1', PASSWORD, APP)


def test_failures_apart_by_the_reset_time_start_the_count_again(sso, clock):
    super_user(sso)
    fail(sso, 4)
    clock.advance(43200)
    fail(sso, 4)
    sso.user.login('cid', 'root1', PASSWORD, APP)


def test_a_permanent_lockout_holds_until_a_super_user_unlocks(engine, clock):
    sso = make_sso(engine, parse_text('[login]\nlockout_permanent_after = 2\n', 't'), clock)
    root = super_user(sso)
    alice = sso.user.create_user('cid', {'username': 'alice', 'password': PASSWORD}, root, APP)
    fail(sso, 5, 'alice')
    clock.advance(60)
    fail(sso, 5, 'alice')
    clock.advance(86400)
    # Locked for good, and told so no more than a wrong password is (inform_if_locked is for a super-user's lock)
    assert refused(sso.user.login, 'cid', 'alice', PASSWORD, APP) == ['E005001']
    root = sso.user.login('cid', 'root1', PASSWORD, APP).ust
    sso.user.unlock_user('cid', alice['user_id'], root, APP)
    sso.user.login('cid', 'alice', PASSWORD, APP)


def test_a_wrong_totp_code_counts_as_a_failure(sso, clock):
    totp_user(sso)
    for _ in range(5):
        assert refused(sso.user.login, 'cid', 'root1', PASSWORD, APP, totp_code='12345x') == ['E005001']
    key = sso.admin.reset_totp_key('root1')['totp_key']
    code = totp.code_at(key, totp.current_step(clock.now))
    assert refused(sso.user.login, 'cid', 'root1', PASSWORD, APP, totp_code=code) == ['E005001']


def test_a_super_user_ends_a_temporary_lockout_at_once(sso, clock):
    root = super_user(sso)
    alice = sso.user.create_user('cid', {'username': 'alice', 'password': PASSWORD}, root, APP)
    fail(sso, 5, 'alice')
    assert refused(sso.user.login, 'cid', 'alice', PASSWORD, APP) == ['E005001']
    sso.user.unlock_user('cid', alice['user_id'], root, APP)
    sso.user.login('cid', 'alice', PASSWORD, APP)
    fail(sso, 4, 'alice')  # and the count started again
    sso.user.login('cid', 'alice', PASSWORD, APP)


def test_concurrent_failures_on_many_connections_are_all_counted(engine, clock):
    """As workers of several servers would send them: each failure is counted under the row's lock."""
    import threading
    sso = make_sso(engine, parse_text('[login]\nlockout_failures = 100\n', 't'), clock)
    super_user(sso)
    start = threading.Barrier(8)

    def attempt() -> None:
        start.wait()
        with pytest.raises(SSOError):
            sso.user.login('cid', 'root1', 'wrong password', APP)
    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    from sqlalchemy import select

    from zato.odb.models import SSOUser
    with sso.ctx.Session() as session:
        assert session.scalar(select(SSOUser.failed_logins).where(SSOUser.username_key == 'root1')) == 8
