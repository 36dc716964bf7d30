"""SSO users in the ODB: creating, reading, updating, locking, passwords and TOTP keys.

These work on rows within the caller's transaction and check only the data; who may do what (a
super-user, or users themselves) is decided in zato.sso.api, from the caller's session.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import select

from zato.odb.models import SSOUser
from zato.security.passwords import hash_password, new_password
from zato.security.ratelimit import RuleError, parse_rules
from zato.sso import totp
from zato.sso.context import SSOContext, iso
from zato.sso.sessions import Sessions
from zato.sso.status import SSOError, status_code
from zato.sso.validation import check_email, check_password, check_username

# 3.1's statuses
APPROVAL = ('before_decision', 'approved', 'rejected')
SIGN_UP = ('before_confirmation', 'to_approve', 'final')
APPROVED, FINAL = 'approved', 'final'

NAMES = ('display_name', 'first_name', 'middle_name', 'last_name')

# What a user may change of themselves; a super-user may also change the rest of UPDATABLE_BY_SUPER_USER
UPDATABLE = ('email', *NAMES)
UPDATABLE_BY_SUPER_USER = (*UPDATABLE, 'is_locked', 'approval_status', 'sign_up_status', 'password_must_change',
                           'password_expiry', 'is_totp_enabled', 'totp_label', 'is_rate_limit_active',
                           'rate_limit_def')

# The longest rate-limit definition a user may have (as a rate-limit definition of the admin API)
MAX_RATE_LIMIT_DEF = 64 * 1024

DAY = 86400


def new_user_id() -> str:
    """3.1's user ids are random strings; 128 bits of randomness here."""
    return 'zusr' + secrets.token_hex(16)


def user_to_dict(ctx: SSOContext, user: SSOUser) -> dict[str, Any]:
    """What the API shows of a user: never the password hash or the TOTP key."""
    return {
        'user_id': user.user_id, 'username': user.username,
        'email': ctx.cipher.decrypt(user.email) if user.email else '',
        'display_name': user.display_name, 'first_name': user.first_name, 'middle_name': user.middle_name,
        'last_name': user.last_name, 'is_super_user': user.is_super_user, 'is_locked': user.is_locked,
        'locked_time': iso(user.locked_time), 'locked_by': user.locked_by or None,
        'approval_status': user.approval_status, 'approval_status_mod_time': iso(user.approval_status_time),
        'approval_status_mod_by': user.approval_status_mod_by, 'sign_up_status': user.sign_up_status,
        'sign_up_time': iso(user.sign_up_time), 'creation_time': iso(user.creation_time),
        'password_expiry': iso(user.password_expiry), 'password_last_set': iso(user.password_last_set),
        'password_must_change': user.password_must_change, 'is_totp_enabled': user.is_totp_enabled,
        'totp_label': user.totp_label, 'last_login_time': iso(user.last_login_time),
        'is_rate_limit_active': user.is_rate_limit_active, 'rate_limit_def': user.rate_limit_def or None,
    }


def _name(data: dict[str, Any], key: str, default: str = '') -> str:
    value = data.get(key, default)
    if value is None:
        return ''
    if not isinstance(value, str) or len(value) > 200:
        raise SSOError(status_code.common.invalid_input)
    return value


def _flag(data: dict[str, Any], key: str, default: bool) -> bool:
    value = data.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise SSOError(status_code.common.invalid_input)
    return value


def _rate_limit_def(data: dict[str, Any], default: str) -> str:
    """The user's own rate-limit rules (3.1's syntax, zato.security.ratelimit), checked as a save of a
    rate-limit definition checks them; E008002 for text that does not parse."""
    value = data.get('rate_limit_def', default)
    if value is None:
        return ''
    if not isinstance(value, str) or len(value) > MAX_RATE_LIMIT_DEF:
        raise SSOError(status_code.common.invalid_input)
    try:
        parse_rules(value)
    except RuleError:
        raise SSOError(status_code.common.invalid_input) from None
    return value


def _choice(data: dict[str, Any], key: str, allowed: tuple[str, ...], default: str) -> str:
    value = data.get(key, default)
    if value is None:
        return default
    if value not in allowed:
        raise SSOError(status_code.common.invalid_input)
    return value


class Users:
    def __init__(self, ctx: SSOContext, sessions: Sessions) -> None:
        self.ctx = ctx
        self.sessions = sessions

    # Reading

    def by_username(self, session: Any, username: Any) -> SSOUser | None:
        if not isinstance(username, str) or not username or len(username) > 200:
            return None
        return session.scalars(select(SSOUser).where(SSOUser.cluster_id == self.ctx.cluster_id,
                                                     SSOUser.username_key == username.casefold())).one_or_none()

    def by_user_id(self, session: Any, user_id: Any) -> SSOUser | None:
        if not isinstance(user_id, str) or not user_id or len(user_id) > 64:
            return None
        return session.scalars(select(SSOUser).where(SSOUser.cluster_id == self.ctx.cluster_id,
                                                     SSOUser.user_id == user_id)).one_or_none()

    def require(self, session: Any, user_id: Any) -> SSOUser:
        user = self.by_user_id(session, user_id)
        if user is None:
            raise SSOError(status_code.user_id.invalid)
        return user

    # Creating

    def create(self, session: Any, data: dict[str, Any], is_super_user: bool, by: str) -> tuple[SSOUser, str | None]:
        """A new user from 3.1's input; (the row, and the TOTP key when one was made for it, to show once).
        A super-user's new users are approved and signed up already unless the input says otherwise."""
        if not isinstance(data, dict):
            raise SSOError(status_code.common.invalid_input)
        config = self.ctx.config
        now = self.ctx.clock()
        username = check_username(config, data.get('username'))
        if self.by_username(session, username) is not None:
            raise SSOError(status_code.username.exists)
        email = check_email(config, data.get('email'))
        password = data.get('password')
        if password is None or password == '':
            password = new_password()  # nobody knows it: the user logs in once a password is set
        check_password(config, password)
        user = SSOUser(cluster_id=self.ctx.cluster_id, user_id=new_user_id(), username=username,
                       username_key=username.casefold(), password_hash=hash_password(password),
                       password_expiry=now + config.get('password', 'expiry') * DAY, password_last_set=now,
                       password_must_change=_flag(data, 'password_must_change', False),
                       email=self.ctx.cipher.encrypt(email) if email else '', email_key=self.ctx.email_key(email),
                       is_super_user=is_super_user, is_locked=_flag(data, 'is_locked', False),
                       locked_time=None, locked_by='',
                       approval_status=_choice(data, 'approval_status', APPROVAL, APPROVED),
                       approval_status_time=now, approval_status_mod_by=by,
                       sign_up_status=_choice(data, 'sign_up_status', SIGN_UP, FINAL), sign_up_time=now,
                       creation_time=now, is_totp_enabled=False, totp_key='', totp_label='', totp_last_step=0,
                       failed_logins=0, last_failure_time=0.0, lockout_count=0, locked_until=0.0,
                       last_login_time=None, is_rate_limit_active=_flag(data, 'is_rate_limit_active', False),
                       rate_limit_def=_rate_limit_def(data, ''), opaque={})
        if user.is_locked:
            user.locked_time, user.locked_by = now, by
        self._set_names(user, data, creating=True)
        key = None
        if _flag(data, 'is_totp_enabled', False):
            key = self._set_totp(user, data.get('totp_key'), data.get('totp_label'))
        session.add(user)
        session.flush()
        return user, key

    @staticmethod
    def _set_names(user: SSOUser, data: dict[str, Any], creating: bool) -> None:
        for key in NAMES:
            if creating or key in data:
                value = _name(data, key)
                setattr(user, key, value)
                setattr(user, f'{key}_upper', value.upper())

    def _set_totp(self, user: SSOUser, key: Any, label: Any) -> str:
        """Turns TOTP on with `key` (or a new random one); returns the key."""
        if key is None or key == '':
            key = totp.new_key()
        if not isinstance(key, str) or not totp.is_valid_key(key):
            raise SSOError(status_code.common.invalid_input)
        if label is not None and (not isinstance(label, str) or len(label) > 200):
            raise SSOError(status_code.common.invalid_input)
        user.is_totp_enabled = True
        user.totp_key = self.ctx.cipher.encrypt(key)
        user.totp_label = label or user.totp_label or totp.DEFAULT_LABEL
        user.totp_last_step = 0
        return key

    # Changing

    def update(self, session: Any, user: SSOUser, data: dict[str, Any], by_super_user: bool, by: str) -> None:
        if not isinstance(data, dict):
            raise SSOError(status_code.common.invalid_input)
        allowed = UPDATABLE_BY_SUPER_USER if by_super_user else UPDATABLE
        for key in data:
            if key not in allowed and key not in ('user_id', 'ust', 'current_ust', 'current_app'):
                raise SSOError(status_code.common.invalid_operation)
        now = self.ctx.clock()
        if 'email' in data:
            email = check_email(self.ctx.config, data['email'])
            user.email = self.ctx.cipher.encrypt(email) if email else ''
            user.email_key = self.ctx.email_key(email)
        self._set_names(user, data, creating=False)
        if 'is_locked' in data:
            self.set_locked(session, user, _flag(data, 'is_locked', user.is_locked), by)
        if 'approval_status' in data:
            user.approval_status = _choice(data, 'approval_status', APPROVAL, user.approval_status)
            user.approval_status_time, user.approval_status_mod_by = now, by
        if 'sign_up_status' in data:
            user.sign_up_status = _choice(data, 'sign_up_status', SIGN_UP, user.sign_up_status)
        if 'password_must_change' in data:
            user.password_must_change = _flag(data, 'password_must_change', user.password_must_change)
        if 'password_expiry' in data:
            days = data['password_expiry']
            if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= 36500:
                raise SSOError(status_code.common.invalid_input)
            user.password_expiry = now + days * DAY
        if 'totp_label' in data:
            label = data['totp_label']
            if not isinstance(label, str) or len(label) > 200:
                raise SSOError(status_code.common.invalid_input)
            user.totp_label = label
        if 'is_rate_limit_active' in data:
            user.is_rate_limit_active = _flag(data, 'is_rate_limit_active', user.is_rate_limit_active)
        if 'rate_limit_def' in data:
            user.rate_limit_def = _rate_limit_def(data, user.rate_limit_def)
        if 'is_totp_enabled' in data and not _flag(data, 'is_totp_enabled', True):
            user.is_totp_enabled, user.totp_key, user.totp_last_step = False, '', 0

    def set_locked(self, session: Any, user: SSOUser, locked: bool, by: str) -> None:
        """A super-user's lock ends the user's sessions; an unlock also clears the brute-force lockout."""
        if locked:
            if not user.is_locked:
                user.is_locked, user.locked_time, user.locked_by = True, self.ctx.clock(), by
            self.sessions.end_all_of(session, user.id)
        else:
            user.is_locked, user.locked_time, user.locked_by = False, None, ''
            user.failed_logins, user.lockout_count, user.locked_until, user.last_failure_time = 0, 0, 0.0, 0.0

    def set_password(self, session: Any, user: SSOUser, password: Any, must_change: bool = False,
                     expiry_days: int | None = None, keep_session_id: int | None = None) -> None:
        """A new password (checked against the policy); every session of the user but `keep_session_id` ends."""
        check_password(self.ctx.config, password)
        now = self.ctx.clock()
        days = self.ctx.config.get('password', 'expiry') if expiry_days is None else expiry_days
        user.password_hash = hash_password(password)
        user.password_last_set = now
        user.password_expiry = now + days * DAY
        user.password_must_change = must_change
        self.sessions.end_all_of(session, user.id, keep_session_id)

    def reset_totp_key(self, session: Any, user: SSOUser, key: Any = None, label: Any = None,
                       keep_session_id: int | None = None) -> str:
        """A new TOTP key (given, or random), TOTP on; every session of the user but `keep_session_id` ends."""
        new_key = self._set_totp(user, key, label)
        self.sessions.end_all_of(session, user.id, keep_session_id)
        return new_key
