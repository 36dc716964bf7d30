"""What a username, an email and a password of an SSO user must be ([user_validation], [signup],
[password] of sso.conf). Each check raises SSOError with 3.1's sub-status."""

from __future__ import annotations

from typing import Any

from zato.security.password_policy import COMMON
from zato.sso.config import SSOConfig
from zato.sso.status import SSOError, not_allowed, status_code


def check_username(config: SSOConfig, username: Any) -> str:
    if not isinstance(username, str) or not username:
        raise SSOError(status_code.username.invalid)
    if len(username) > config.get('signup', 'max_length_username'):
        raise SSOError(status_code.username.too_long)
    if any(ch.isspace() for ch in username):
        raise SSOError(status_code.username.has_whitespace)
    if not username.isprintable():
        raise SSOError(status_code.username.invalid)
    if username.casefold() in {name.casefold() for name in config.get('user_validation', 'reject_username')}:
        raise SSOError(status_code.username.invalid)
    return username


def check_email(config: SSOConfig, email: Any, required: bool = False) -> str:
    if email is None or email == '':
        if required:
            raise SSOError(status_code.email.missing)
        return ''
    if not isinstance(email, str):
        raise SSOError(status_code.email.invalid)
    if len(email) > config.get('signup', 'max_length_email'):
        raise SSOError(status_code.email.too_long)
    if any(ch.isspace() for ch in email):
        raise SSOError(status_code.email.has_whitespace)
    local, at, domain = email.rpartition('@')
    if not at or not local or '.' not in domain or domain.startswith('.') or domain.endswith('.'):
        raise SSOError(status_code.email.invalid)
    rejected = {item.casefold() for item in config.get('user_validation', 'reject_email')}
    if email.casefold() in rejected or local.casefold() in rejected:
        raise SSOError(status_code.email.invalid)
    return email


def check_password(config: SSOConfig, password: Any) -> str:
    """The [password] policy: min_length, max_length, the reject list (and the most common passwords,
    zato.security.password_policy, whatever the list says), and [signup]
    password_allow_whitespace; the reason in sub-status only when inform_if_invalid says so."""
    if not isinstance(password, str):
        raise SSOError(status_code.common.invalid_input)
    reason = None
    if len(password) < config.get('password', 'min_length'):
        reason = status_code.password.too_short
    elif len(password) > config.get('password', 'max_length'):
        reason = status_code.password.too_long
    elif password.casefold() in COMMON or \
            password.casefold() in {item.casefold() for item in config.get('password', 'reject_list')} or \
            (not config.get('signup', 'password_allow_whitespace') and any(ch.isspace() for ch in password)):
        reason = status_code.password.invalid
    if reason is not None:
        if config.get('password', 'inform_if_invalid'):
            raise SSOError(reason)
        raise not_allowed()
    return password
