"""Web-admin accounts: sign-in with lockout and TOTP checked before any session exists, and what the
CLI does to them (create, change password, reset the TOTP key)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from zato.errors import ZatoError
from zato.odb.models import WebAdminAudit, WebAdminUser
from zato.security.passwords import hash_password, verify_password
from zato.security.secrets_file import Crypto
from zato_web_admin import totp

USERNAME = re.compile(r'^[A-Za-z0-9._@-]{1,200}$')
MIN_PASSWORD = 12

# Verified against when the user name is unknown, so that the time taken says nothing about it
_DUMMY_HASH = hash_password('zato-web-admin-no-such-user')

# What a refused sign-in says, whatever the reason: no user enumeration
REFUSED = 'Invalid credentials, or the account is locked.'


class UserError(ZatoError):
    """A CLI or form mistake about a user (a taken name, a short password ...)."""


@dataclass(frozen=True)
class Policy:
    require_totp: bool = False
    lockout_attempts: int = 5
    lockout_seconds: int = 900


def now_utc() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back without their zone; every one we store is UTC."""
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f'A password needs at least {MIN_PASSWORD} characters')


def get(session: Session, username: str) -> WebAdminUser | None:
    return session.scalar(select(WebAdminUser).where(WebAdminUser.username == username))


def audit(session: Session, username: str, action: str, kind: str = '', name: str = '',
          details: dict | None = None, remote_addr: str = '') -> None:
    session.add(WebAdminAudit(at=now_utc(), username=username, action=action, object_kind=kind,
                              object_name=name, details=details or {}, remote_addr=remote_addr))


def create(session: Session, username: str, password: str, by: str = 'cli') -> WebAdminUser:
    if not USERNAME.match(username):
        raise UserError('A user name is 1 to 200 letters, digits or . _ @ -')
    check_password_rules(password)
    if get(session, username) is not None:
        raise UserError(f'A web-admin user named `{username}` exists already')
    user = WebAdminUser(username=username, password_hash=hash_password(password), is_active=True, totp_key='',
                        totp_pending_key='', totp_label='Zato web-admin', totp_last_step=0, failed_attempts=0,
                        created_at=now_utc())
    session.add(user)
    audit(session, by, 'web-admin-user.create', 'web-admin-user', username)
    return user


def set_password(session: Session, username: str, password: str, by: str = 'cli') -> None:
    user = _existing(session, username)
    check_password_rules(password)
    user.password_hash = hash_password(password)
    user.failed_attempts = 0
    user.locked_until = None
    audit(session, by, 'web-admin-user.change-password', 'web-admin-user', username)


def reset_totp_key(session: Session, crypto: Crypto, username: str, key: str | None = None,
                   label: str | None = None, by: str = 'cli') -> str:
    """Sets a new TOTP key (random unless given) and turns TOTP on; returns the key."""
    user = _existing(session, username)
    key = (key or totp.new_key()).replace(' ', '').upper()
    if not re.fullmatch(r'[A-Z2-7]{16,}', key):
        raise UserError('A TOTP key is at least 16 base32 characters (A-Z, 2-7)')
    user.totp_key = crypto.encrypt(key)
    user.totp_pending_key = ''
    user.totp_last_step = 0
    if label:
        user.totp_label = label
    audit(session, by, 'web-admin-user.reset-totp-key', 'web-admin-user', username)
    return key


def _existing(session: Session, username: str) -> WebAdminUser:
    user = get(session, username)
    if user is None:
        raise UserError(f'No web-admin user named `{username}`')
    return user


def authenticate(session: Session, crypto: Crypto, policy: Policy, username: str, password: str,
                 code: str, remote_addr: str = '') -> WebAdminUser | None:
    """The user if the password and, where needed, the TOTP code are right and the account is not
    locked; None otherwise, with the failure counted. Commits what it changed."""
    now = now_utc()
    user = get(session, username)
    if user is None:
        verify_password(_DUMMY_HASH, password)
        return None
    password_ok = verify_password(user.password_hash, password)
    locked_until = as_utc(user.locked_until)
    locked = locked_until is not None and locked_until > now
    needs_totp = bool(user.totp_key) or policy.require_totp
    step = None
    if password_ok and not locked and needs_totp and user.totp_key:
        step = totp.accept(crypto.decrypt(user.totp_key), code, user.totp_last_step)
    ok = password_ok and not locked and user.is_active and (not needs_totp or step is not None)
    if not ok:
        if not locked:
            user.failed_attempts += 1
            if user.failed_attempts >= policy.lockout_attempts:
                user.locked_until = now + timedelta(seconds=policy.lockout_seconds)
                user.failed_attempts = 0
                audit(session, username, 'web-admin-user.locked', 'web-admin-user', username,
                      remote_addr=remote_addr)
        session.commit()
        return None
    if step is not None:
        user.totp_last_step = step
    user.failed_attempts = 0
    user.locked_until = None
    user.last_login_at = now
    audit(session, username, 'sign-in', 'web-admin-user', username, remote_addr=remote_addr)
    session.commit()
    return user
