"""sso.conf: Zato 3.1's sections, keys and defaults, declared once, read and validated at start.

`config/repo/sso.conf` of an environment is read when `[component_enabled] sso` of server.conf is
true. A key that is missing takes 3.1's default; a value that does not parse stops the server with
one line naming the file, the section and the key (`load`). Keys added here that 3.1 did not have
(the brute-force lockout, the absolute session lifetime) are marked `new` in their docs.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from zato.config.networks import Network, parse_networks
from zato.config.settings import Setting as Key
from zato.config.settings import parse_bool as _bool
from zato.config.settings import parse_str as _str
from zato.errors import ConfigError

FILE_NAME = 'sso.conf'

# 3.1's own list, kept as it was
DEFAULT_REJECT_LIST = ('111111', '123123', '123321', '123456', '123qwe', '1q2w3e', '1q2w3e4r', '1q2w3e4r5t',
                       '222222', '333333', '444444', '555555', '654321', '666666', '777777', '888888',
                       '999999', '987654321', 'google', 'letmein', 'mynoob', 'password', 'qwerty',
                       'zxcvbnm')


def _int(minimum: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        text = value.strip()
        if not text.isascii() or not text.isdigit():
            raise ValueError(f'expected a whole number of at least {minimum}')
        number = int(text)
        if number < minimum:
            raise ValueError(f'expected a whole number of at least {minimum}')
        return number
    return parse


def _list(value: str) -> tuple[str, ...]:
    """Comma- or line-separated, as 3.1 wrote them."""
    items = (item.strip() for line in value.splitlines() for item in line.split(','))
    return tuple(item for item in items if item)


KEYS: tuple[Key, ...] = (
    Key('main', 'smtp_conn', '', _str,
        'The outgoing SMTP connection sign-up and password-reset emails go through; empty: no email is sent.'),
    Key('apps', 'all', 'CRM', _list, 'Every application name a `current_app` may have.'),
    Key('apps', 'default', 'CRM', _str, 'The application of a session a linked credential opens without the header.'),
    Key('apps', 'http_header', 'X-Zato-SSO-Current-App', _str,
        'Header naming the application of a linked credential\'s session.'),
    Key('apps', 'signup_allowed', '', _list, 'Applications users may sign up from.'),
    Key('apps', 'login_allowed', 'CRM', _list, 'Applications users may log in from.'),
    Key('apps', 'login_metadata_allowed', '', _list,
        'Applications that may send remote_addr and user_agent of their own users at login.'),
    Key('apps', 'inform_if_app_invalid', 'true', _bool,
        'Say E004001 for an unknown `current_app` instead of the generic E005001.'),
    Key('login', 'reject_if_not_listed', 'false', _bool, 'Refuse users without an entry in [user_address_list].'),
    Key('login', 'inform_if_locked', 'true', _bool,
        'Say E005002 to a user locked by a super-user who gave the right password (never for a brute-force lockout).'),
    Key('login', 'inform_if_not_confirmed', 'true', _bool,
        'Say E005003 to a user who gave the right password but has not confirmed the sign-up.'),
    Key('login', 'inform_if_not_approved', 'true', _bool,
        'Say E005004 to a user who gave the right password but is not approved.'),
    Key('login', 'lockout_failures', '5', _int(1),
        'new: failed logins in a row after which a user is locked out for a while (Keycloak\'s failure factor).'),
    Key('login', 'lockout_wait_increment', '60', _int(1),
        'new: seconds of the first lockout; each next one waits this much longer (Keycloak\'s wait increment).'),
    Key('login', 'lockout_max_wait', '900', _int(1), 'new: the longest a temporary lockout lasts, in seconds.'),
    Key('login', 'lockout_failure_reset', '43200', _int(1),
        'new: seconds without a failure after which the count starts again.'),
    Key('login', 'lockout_permanent_after', '0', _int(0),
        'new: temporary lockouts after which the user is locked until a super-user unlocks them; 0: never.'),
    Key('session', 'expiry', '60', _int(1),
        'Minutes a session lives after its creation or last renewal (idle expiry).'),
    Key('session', 'purge_interval', '300', _int(1),
        'Seconds between two purges of expired sessions and tokens (by one worker of the cluster).'),
    Key('session', 'max_lifetime', '1440', _int(1),
        'new: minutes after its creation a session ends, however often renewed (absolute expiry).'),
    Key('session', 'verify_cache_seconds', '3', _int(0),
        'new: seconds a worker answers a verify of a session it verified already without the ODB; 0: always '
        'the ODB. The longest another server may still answer valid for a session ended if the cluster bus '
        'lost the message that ends it.'),
    Key('password', 'expiry', '730', _int(1), 'Days a password is valid.'),
    Key('password', 'inform_if_expired', 'false', _bool, 'Say E003004 to a user whose password expired.'),
    Key('password', 'inform_if_about_to_expire', 'true', _bool, 'Add W003005 to a login whose password expires soon.'),
    Key('password', 'inform_if_must_be_changed', 'true', _bool, 'Say E003007 to a user who must send a new password.'),
    Key('password', 'inform_if_invalid', 'true', _bool,
        'Say why a new password is refused (E003002, E003003, E003001).'),
    Key('password', 'about_to_expire_threshold', '30', _int(0), 'Days before expiry a password is about to expire.'),
    Key('password', 'log_in_if_about_to_expire', 'true', _bool,
        'Let a user whose password is about to expire log in (else E003006).'),
    Key('password', 'min_length', '8', _int(1), 'Shortest password.'),
    Key('password', 'max_length', '256', _int(1), 'Longest password.'),
    Key('password', 'reject_list', '\n'.join(DEFAULT_REJECT_LIST), _list,
        'Passwords refused whatever their length (compared case-insensitively).'),
    Key('signup', 'inform_if_user_exists', 'false', _bool, 'Sign-up: say E001002 for a taken username.'),
    Key('signup', 'inform_if_user_invalid', 'false', _bool, 'Sign-up: say why a username is invalid.'),
    Key('signup', 'inform_if_email_exists', 'false', _bool, 'Sign-up: say E002002 for a taken email.'),
    Key('signup', 'inform_if_email_invalid', 'false', _bool, 'Sign-up: say why an email is invalid.'),
    Key('signup', 'email_required', 'true', _bool, 'Sign-up: an email is required.'),
    Key('signup', 'max_length_username', '128', _int(1), 'Longest username.'),
    Key('signup', 'max_length_email', '128', _int(1), 'Longest email.'),
    Key('signup', 'password_allow_whitespace', 'true', _bool, 'Passwords may contain whitespace.'),
    Key('signup', 'always_return_confirm_token', 'true', _bool, 'Sign-up: return the confirmation token.'),
    Key('signup', 'is_email_required', 'true', _bool, 'Sign-up: an email is required (3.1 kept both names).'),
    Key('signup', 'is_approval_needed', 'true', _bool, 'Sign-up: a super-user approves new users.'),
    Key('signup', 'callback_service_list', '', _list,
        'Sign-up: services invoked with the new user\'s data after each sign-up.'),
    Key('signup', 'email_confirm_enabled', 'true', _bool, 'Sign-up: send the confirmation email.'),
    Key('signup', 'email_confirm_from', 'confirm@example.com', _str, 'Sign-up: the confirmation email\'s sender.'),
    Key('signup', 'email_confirm_template', 'sso-confirm.txt', _str, 'Sign-up: the confirmation email\'s template.'),
    Key('signup', 'email_confirm_title', 'Confirm your account', _str,
        'new: the confirmation email\'s subject.'),
    Key('signup', 'confirm_token_expiry', '1440', _int(1),
        'new: minutes a confirmation token is valid.'),
    Key('signup', 'email_welcome_enabled', 'true', _bool,
        'Sign-up: send the welcome email once the sign-up is confirmed.'),
    Key('signup', 'email_welcome_from', 'welcome@example.com', _str, 'Sign-up: the welcome email\'s sender.'),
    Key('signup', 'email_welcome_title', 'Welcome', _str, 'new: the welcome email\'s subject.'),
    Key('signup', 'email_welcome_template', 'sso-welcome.txt', _str, 'Sign-up: the welcome email\'s template.'),
    Key('password_reset', 'valid_for', '60', _int(1),
        'new: minutes a password-reset token is valid.'),
    Key('password_reset', 'min_interval', '60', _int(0),
        'new: seconds after a reset email before another goes to the same user (no mailbox flooding); 0: none.'),
    Key('password_reset', 'email_from', 'hello@example.com', _str, 'new: the password-reset email\'s sender.'),
    Key('password_reset', 'email_title', 'Password reset', _str, 'new: the password-reset email\'s subject.'),
    Key('password_reset', 'email_template', 'sso-password-reset.txt', _str,
        'new: the password-reset email\'s template.'),
    Key('user_validation', 'service', 'zato.sso.signup.validate', _list,
        'Services validating the input of a sign-up or a super-user\'s create (the default: the built-in rules).'),
    Key('user_validation', 'reject_username', 'zato, admin, root, system, sso', _list,
        'Usernames nobody may have (case-insensitive).'),
    Key('user_validation', 'reject_email', 'zato, admin, root, system, sso', _list,
        'Emails, or their parts before @, nobody may use.'),
    Key('search', 'default_page_size', '50', _int(1), 'Users per page of a search that names no page_size.'),
    Key('search', 'max_page_size', '100', _int(1), 'The largest page_size a search may ask for.'),
)

SECTIONS = ('apps', 'login', 'session', 'password', 'signup', 'password_reset', 'user_validation', 'search',
            'user_address_list')


@dataclass(frozen=True)
class SSOConfig:
    """The parsed sso.conf: `config.get('password', 'min_length')`, and each user's address list."""

    values: dict[tuple[str, str], Any]
    user_address_list: dict[str, tuple[Network, ...]] = field(default_factory=dict)

    def get(self, section: str, key: str) -> Any:
        return self.values[(section, key)]

    def __getitem__(self, section: str) -> dict[str, Any]:
        return {key: value for (sec, key), value in self.values.items() if sec == section}


def defaults() -> SSOConfig:
    return parse_text('', '<defaults>')


def parse_text(text: str, source: str) -> SSOConfig:
    """Parses sso.conf's text; ConfigError with one line naming `source`, the section and the key."""
    raw = configparser.ConfigParser(interpolation=None)
    raw.optionxform = str  # type: ignore[assignment,method-assign]  # usernames keep their case
    try:
        raw.read_string(text, source)
    except configparser.Error as e:
        raise ConfigError(f'{source}: cannot parse: {str(e).splitlines()[0]}') from None
    known = {(k.section, k.key) for k in KEYS}
    for section in raw.sections():
        if section not in SECTIONS and section not in ('main', 'backend', 'hash_secret', 'sql'):
            raise ConfigError(f'{source}: unknown section [{section}]')
        if section == 'user_address_list':
            continue
        for key in raw[section]:
            if section in SECTIONS and (section, key) not in known:
                raise ConfigError(f'{source} [{section}] {key}: unknown key')
    values: dict[tuple[str, str], Any] = {}
    for k in KEYS:
        value = raw.get(k.section, k.key, fallback=k.default)
        try:
            values[(k.section, k.key)] = k.parse(value)
        except ValueError as e:
            shown = value.strip().replace('\n', ' ')[:80]
            raise ConfigError(f'{source} [{k.section}] {k.key}: invalid value `{shown}`: {e}') from None
    _check(values, source)
    addresses: dict[str, tuple[Network, ...]] = {}
    if raw.has_section('user_address_list'):
        for username, networks in raw['user_address_list'].items():
            try:
                addresses[username.casefold()] = parse_networks(networks.replace('\n', ','))
            except ValueError as e:
                raise ConfigError(f'{source} [user_address_list] {username}: {e}') from None
    return SSOConfig(values, addresses)


def _check(values: dict[tuple[str, str], Any], source: str) -> None:
    """What single keys cannot say alone: the applications and limits must agree with each other."""
    apps = set(values[('apps', 'all')])
    if not apps:
        raise ConfigError(f'{source} [apps] all: at least one application is needed')
    for key in ('login_allowed', 'signup_allowed', 'login_metadata_allowed'):
        unknown = [app for app in values[('apps', key)] if app not in apps]
        if unknown:
            raise ConfigError(f'{source} [apps] {key}: `{unknown[0]}` is not in [apps] all')
    if values[('apps', 'default')] not in apps:
        raise ConfigError(f'{source} [apps] default: `{values[("apps", "default")]}` is not in [apps] all')
    if values[('password', 'max_length')] < values[('password', 'min_length')]:
        raise ConfigError(f'{source} [password] max_length: must not be below min_length')
    if values[('search', 'max_page_size')] < values[('search', 'default_page_size')]:
        raise ConfigError(f'{source} [search] max_page_size: must not be below default_page_size')
    if values[('login', 'lockout_max_wait')] < values[('login', 'lockout_wait_increment')]:
        raise ConfigError(f'{source} [login] lockout_max_wait: must not be below lockout_wait_increment')
    if values[('session', 'max_lifetime')] < values[('session', 'expiry')]:
        raise ConfigError(f'{source} [session] max_lifetime: must not be below expiry')


def conf_path(env_dir: str) -> str:
    return os.path.join(env_dir, 'config', 'repo', FILE_NAME)


def load(env_dir: str) -> SSOConfig:
    """The environment's sso.conf; 3.1's defaults for whatever it does not set, or all of them without one."""
    path = conf_path(env_dir)
    if not os.path.isfile(path):
        return defaults()
    try:
        with open(path, encoding='utf-8') as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f'{path}: cannot read: {e}') from None
    return parse_text(text, path)


def render_template() -> str:
    """A commented sso.conf with every key at its default, as `zato quickstart create` writes it."""
    lines = ['# Single Sign-On (docs/sso.md): read when server.conf has [component_enabled] sso = true.',
             '# Every key is shown at its default; a key left out keeps it.', '']
    section = ''
    for k in KEYS:
        if k.section != section:
            if section:
                lines.append('')
            section = k.section
            lines.append(f'[{section}]')
        lines.append(f'# {k.doc}')
        default = k.default.replace('\n', ', ') if k.parse is _list else k.default
        lines.append(f'{k.key} = {default}')
    lines += ['', '[user_address_list]', '# username = addresses or networks the user may log in from, e.g.',
              '# alice = 10.0.0.0/8, 192.168.1.10', '']
    return '\n'.join(lines)


def render_docs() -> str:
    """The table of every sso.conf key in docs/sso.md (tests/sso/test_config.py keeps them the same)."""
    lines = ['| section | key | default | what it does |', '|---|---|---|---|']
    for k in KEYS:
        default = k.default.replace('\n', ', ') if k.parse is _list else k.default
        lines.append(f'| {k.section} | {k.key} | `{default}` | {k.doc} |' if default else
                     f'| {k.section} | {k.key} | (empty) | {k.doc} |')
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    print(render_docs(), end='')
