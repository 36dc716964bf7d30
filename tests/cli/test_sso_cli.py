"""`zato sso ...` on an environment's ODB (no server needs to run): each command, its one-line
errors, and what it changes, seen through the SSO core the servers use."""

from __future__ import annotations

import pytest

from tests.e2e.harness import Env, zato
from zato.cli.sso import open_sso
from zato.sso.status import SSOError

PASSWORD = 'correct horse battery'


@pytest.fixture(scope='module')
def env(tmp_path_factory):
    return Env(str(tmp_path_factory.mktemp('sso-cli') / 'env'))


def sso_cmd(env: Env, *args: str, input_text: str | None = None, check: bool = True):
    return zato('sso', args[0], env.path, *args[1:], input_text=input_text, check=check)


def logs_in(env: Env, username: str, password: str = PASSWORD) -> bool:
    with open_sso(env.path) as sso:
        try:
            sso.user.login('cid', username, password, 'CRM')
        except SSOError:
            return False
        return True


def test_create_super_user_reads_the_password_from_stdin(env):
    out = sso_cmd(env, 'create-super-user', 'boss', '--password-stdin', '--email', 'boss@example.com',
                  input_text=PASSWORD + '\n').stdout
    assert out.startswith('Created SSO super-user `boss` (user_id zusr') and 'Password' not in out
    assert logs_in(env, 'boss')
    with open_sso(env.path) as sso:
        user = sso.user.get_user_by_username('cid', 'boss')
    assert user['is_super_user'] and user['email'] == 'boss@example.com'


def test_create_user_prints_a_random_password_once_that_logs_in(env):
    out = sso_cmd(env, 'create-user', 'carol', '--display-name', 'Carol C').stdout
    password = out.split('Password: ')[1].split()[0]
    assert logs_in(env, 'carol', password)


def test_lock_unlock_change_password_reset_totp_and_delete(env):
    sso_cmd(env, 'create-user', 'dave', '--password-stdin', input_text=PASSWORD + '\n')
    assert sso_cmd(env, 'lock-user', 'dave').stdout.strip() == 'SSO user `dave` locked'
    assert not logs_in(env, 'dave')
    sso_cmd(env, 'unlock-user', 'dave')
    assert logs_in(env, 'dave')
    sso_cmd(env, 'change-user-password', 'dave', '--password-stdin', input_text='another passphrase\n')
    assert not logs_in(env, 'dave') and logs_in(env, 'dave', 'another passphrase')
    out = sso_cmd(env, 'reset-totp-key', 'dave', '--key-label', 'Example').stdout
    assert 'Key: ' in out and 'otpauth://totp/Example:dave?secret=' in out
    assert not logs_in(env, 'dave', 'another passphrase')  # no TOTP code now
    assert sso_cmd(env, 'delete-user', 'dave').stdout.strip() == 'Deleted SSO user `dave`'
    with open_sso(env.path) as sso:
        assert sso.user.get_user_by_username('cid', 'dave') is None


@pytest.mark.parametrize('args, message', [
    (('delete-user', 'nobody'), 'zato: error: no SSO user named `nobody`\n'),
    (('create-user', 'admin'), 'zato: error: E001001 invalid username\n'),
    (('create-user', 'has space'), 'zato: error: E001004 the username contains whitespace\n'),
])
def test_a_refused_command_is_one_line_and_exit_code_1(env, args, message):
    proc = sso_cmd(env, *args, check=False)
    assert (proc.returncode, proc.stderr) == (1, message)


def test_a_weak_password_is_refused_with_the_reason(env):
    proc = sso_cmd(env, 'create-user', 'erin', '--password-stdin', input_text='password\n', check=False)
    assert (proc.returncode, proc.stderr) == (1, 'zato: error: E003001 the password is not allowed\n')


def test_reset_user_password_prints_a_new_random_one_once_and_ends_the_sessions(env):
    sso_cmd(env, 'create-user', 'frank', '--password-stdin', input_text=PASSWORD + '\n')
    with open_sso(env.path) as sso:
        ust = sso.user.login('cid', 'frank', PASSWORD, 'CRM').ust
    out = sso_cmd(env, 'reset-user-password', 'frank', '--must-change').stdout
    assert out.startswith('Password of SSO user `frank` changed; their sessions were ended\n')
    password = out.split('New password: ')[1].split()[0]
    assert not logs_in(env, 'frank')
    with open_sso(env.path) as sso:
        with pytest.raises(SSOError):
            sso.user.get_current_user('cid', ust, 'CRM')
        # --must-change: the new password logs in only with a newer one (E003007)
        with pytest.raises(SSOError) as e:
            sso.user.login('cid', 'frank', password, 'CRM')
        assert e.value.sub_status == ['E003007']
        assert sso.user.login('cid', 'frank', password, 'CRM', new_password='a newer passphrase').ust


def test_approve_and_reject_a_user(env):
    sso_cmd(env, 'create-user', 'gina', '--password-stdin', input_text=PASSWORD + '\n')
    assert sso_cmd(env, 'reject-user', 'gina').stdout.strip() == 'SSO user `gina` rejected'
    assert not logs_in(env, 'gina')
    assert sso_cmd(env, 'approve-user', 'gina').stdout.strip() == 'SSO user `gina` approved'
    assert logs_in(env, 'gina')
    proc = sso_cmd(env, 'approve-user', 'nobody', check=False)
    assert (proc.returncode, proc.stderr) == (1, 'zato: error: no SSO user named `nobody`\n')
