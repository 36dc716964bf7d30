"""The web-admin from the CLI: its users (`zato create web-admin-user`, `zato update password`,
`zato reset-totp-key`) and its process, which `zato start` and `zato stop` run next to the servers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from zato.errors import ZatoError
from zato.odb.engine import make_engine, make_session_factory, make_url
from zato.security.passwords import new_password
from zato.security.secrets_file import Crypto, read_secrets
from zato.config import settings

NAME = 'web-admin'


def with_session(env_dir: str, work: Callable[[Any, Crypto], Any]) -> Any:
    """Runs `work(session, crypto)` on the environment's ODB and commits."""
    config = settings.load(env_dir)
    secrets = read_secrets(config.env_dir)
    crypto = Crypto(secrets['secret_key'])
    odb = config.section('odb')
    if secrets.get('odb_password'):
        odb['password'] = crypto.decrypt(secrets['odb_password'])
    engine = make_engine(make_url(odb, config.env_dir))
    try:
        with make_session_factory(engine)() as session:
            result = work(session, crypto)
            session.commit()
            return result
    finally:
        engine.dispose()


def read_password(from_stdin: bool) -> tuple[str, bool]:
    """A password from stdin, or a new random one; and whether it was generated (to print it once)."""
    if from_stdin:
        return sys.stdin.readline().rstrip('\n'), False
    return new_password(), True


def create_user(env_dir: str, username: str, password_stdin: bool) -> int:
    from zato_web_admin import users
    password, generated = read_password(password_stdin)
    try:
        with_session(env_dir, lambda session, _crypto: users.create(session, username, password))
    except users.UserError as e:
        raise ZatoError(str(e)) from None
    print(f'Created web-admin user `{username}`')
    if generated:
        print(f'Password: {password}   (shown once)')
    return 0


def update_password(env_dir: str, username: str, password_stdin: bool) -> int:
    from zato_web_admin import sessions, users
    password, generated = read_password(password_stdin)

    def work(session: Any, _crypto: Crypto) -> None:
        users.set_password(session, username, password)
        user = users.get(session, username)
        assert user is not None
        sessions.end_all_of(session, user.id)
    try:
        with_session(env_dir, work)
    except users.UserError as e:
        raise ZatoError(str(e)) from None
    print(f'Password of web-admin user `{username}` changed; their sessions were ended')
    if generated:
        print(f'New password: {password}   (shown once)')
    return 0


def reset_totp_key(env_dir: str, username: str, key: str | None, label: str | None) -> int:
    from zato_web_admin import totp, users
    def work(session: Any, crypto: Crypto) -> tuple[str, str]:
        new_key = users.reset_totp_key(session, crypto, username, key, label)
        user = users.get(session, username)
        assert user is not None
        return new_key, user.totp_label
    try:
        new_key, label_used = with_session(env_dir, work)
    except users.UserError as e:
        raise ZatoError(str(e)) from None
    print(f'TOTP key of web-admin user `{username}`: {new_key}   (shown once; add it to an authenticator app)')
    print(f'Provisioning URI: {totp.provisioning_uri(new_key, username, label_used)}')
    return 0


# ################################################################################################ the process

def pid_path(env_dir: str) -> str:
    return os.path.join(env_dir, 'run', f'{NAME}.pid')


def running_pid(env_dir: str) -> int | None:
    try:
        with open(pid_path(env_dir), encoding='ascii') as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def url(config: settings.ServerConfig) -> str:
    host = config.get('web_admin', 'host')
    host = '127.0.0.1' if host in ('0.0.0.0', '', '::') else host  # noqa: S104 - connect locally
    return f'http://{host}:{config.get("web_admin", "port")}'


def answers(address: str) -> bool:
    try:
        with urllib.request.urlopen(address + '/login', timeout=2) as resp:  # noqa: S310 - our own web-admin
            return resp.status == 200
    except OSError:
        return False


def start(env_dir: str, foreground: bool, wait: float = 30.0) -> dict[str, Any] | None:
    """Starts the web-admin if the environment enables it; its url and process, or None."""
    config = settings.load(env_dir)
    if not config.get('web_admin', 'enabled'):
        return None
    if running_pid(config.env_dir):
        raise ZatoError(f'the web-admin is already running (pid {running_pid(config.env_dir)})')
    log = open(os.path.join(config.env_dir, 'logs', f'{NAME}.stdout.log'), 'ab')  # noqa: SIM115 - child keeps it
    proc = subprocess.Popen([sys.executable, '-m', 'zato_web_admin', config.env_dir], stdin=subprocess.DEVNULL,
                            stdout=None if foreground else log, stderr=None if foreground else subprocess.STDOUT,
                            start_new_session=not foreground, cwd=config.env_dir)
    address = url(config)
    deadline = time.monotonic() + wait
    while not answers(address):
        if proc.poll() is not None:
            raise ZatoError(f'the web-admin exited during start-up (code {proc.returncode}); see '
                            f'{os.path.join(config.env_dir, "logs", NAME + ".log")}')
        if time.monotonic() > deadline:
            raise ZatoError(f'the web-admin did not answer within {wait:.0f} s')
        time.sleep(0.2)
    return {'server': NAME, 'url': address, 'pid': proc.pid, 'proc': proc}


def stop(env_dir: str, timeout: float = 15.0) -> bool:
    pid = running_pid(env_dir)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while running_pid(env_dir) == pid and time.monotonic() < deadline:
        time.sleep(0.1)
    if running_pid(env_dir) == pid:
        os.kill(pid, signal.SIGKILL)
    return True
