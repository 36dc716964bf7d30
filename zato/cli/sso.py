"""`zato sso ...`: SSO users from the command line, as 3.1's `zato sso` commands did. They work on
the environment's ODB directly (servers need not run), with its key and its sso.conf."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from zato.errors import ZatoError

if TYPE_CHECKING:
    from zato.sso.api import SSO

COMMANDS = ('create-user', 'create-super-user', 'delete-user', 'lock-user', 'unlock-user', 'change-user-password',
            'reset-user-password', 'reset-totp-key', 'approve-user', 'reject-user')

# What a refusal means, for the one line the CLI prints
MEANING = {'E001001': 'invalid username', 'E001002': 'the username is taken', 'E001003': 'the username is too long',
           'E001004': 'the username contains whitespace', 'E002001': 'invalid email',
           'E002003': 'the email is too long', 'E003001': 'the password is not allowed',
           'E003002': 'the password is too short', 'E003003': 'the password is too long',
           'E008002': 'invalid input'}


def add_commands(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    sso = sub.add_parser('sso', help='Single Sign-On users (docs/sso.md)')
    sso_sub = sso.add_subparsers(dest='sso_command', required=True, parser_class=parser_class)
    for name in ('create-user', 'create-super-user'):
        c = sso_sub.add_parser(name, help=f'{"a super-user" if "super" in name else "a user"}; '
                               'a random password is printed once unless --password-stdin')
        c.add_argument('path')
        c.add_argument('username')
        c.add_argument('--password-stdin', action='store_true', help='read the password from stdin instead')
        c.add_argument('--email', default='')
        c.add_argument('--display-name', default='')
        c.add_argument('--first-name', default='')
        c.add_argument('--middle-name', default='')
        c.add_argument('--last-name', default='')
        c.add_argument('--password-must-change', action='store_true', help='the user sets a new one at login')
    for name, text in (('delete-user', 'delete a user and their sessions'),
                       ('lock-user', 'lock a user out; their sessions end'),
                       ('unlock-user', 'unlock a user, also from a brute-force lockout'),
                       ('approve-user', 'approve a signed-up user, who may then log in'),
                       ('reject-user', 'reject a signed-up user; their sessions end')):
        c = sso_sub.add_parser(name, help=text)
        c.add_argument('path')
        c.add_argument('username')
    c = sso_sub.add_parser('change-user-password', help='a new password: random and printed once, or from stdin; '
                           'the user\'s sessions end')
    c.add_argument('path')
    c.add_argument('username')
    c.add_argument('--password-stdin', action='store_true', help='read the password from stdin instead')
    c.add_argument('--must-change', action='store_true', help='the user sets a new one at the next login')
    c.add_argument('--expiry', type=int, default=None, help='days the password is valid ([password] expiry)')
    c = sso_sub.add_parser('reset-user-password', help='a new random password, printed once; the user\'s '
                           'sessions end (change-user-password sets a given one)')
    c.add_argument('path')
    c.add_argument('username')
    c.add_argument('--must-change', action='store_true', help='the user sets a new one at the next login')
    c.add_argument('--expiry', type=int, default=None, help='days the password is valid ([password] expiry)')
    c = sso_sub.add_parser('reset-totp-key', help='a new TOTP key, turned on and printed once; the user\'s '
                           'sessions end')
    c.add_argument('path')
    c.add_argument('username')
    c.add_argument('--key', default=None, help='the base32 key to use instead of a random one')
    c.add_argument('--key-label', default=None, help='what authenticator apps show next to the code')


@contextlib.contextmanager
def open_sso(env_dir: str) -> Iterator[SSO]:
    """The SSO core over an environment's ODB, as its servers build it."""
    # Imported here, so that building the `zato` command's parser stays cheap
    from sqlalchemy import select

    from zato.config import settings
    from zato.odb.engine import make_engine, make_session_factory, make_url
    from zato.odb.migrate import upgrade
    from zato.odb.models import Cluster
    from zato.security.secrets_file import Crypto, read_secrets
    from zato.server.odb_settings import odb_settings
    from zato.sso.api import SSO
    from zato.sso.config import load as load_sso_config
    from zato.sso.context import Cipher, SSOContext, derive_hash_key
    config = settings.load(env_dir)
    secrets = read_secrets(config.env_dir)
    crypto = Crypto(secrets['secret_key'])
    sso_config = load_sso_config(config.env_dir)
    engine = make_engine(make_url(odb_settings(config, secrets, crypto), config.env_dir))
    try:
        upgrade(engine)  # an environment made before SSO existed gets its tables
        factory = make_session_factory(engine)
        with factory() as session:
            cluster_id = session.scalar(select(Cluster.id).where(Cluster.name == config.get('main', 'cluster_name')))
        if cluster_id is None:
            raise ZatoError(f'the ODB has no cluster named `{config.get("main", "cluster_name")}`')
        yield SSO(SSOContext(factory, cluster_id, sso_config, Cipher(crypto.encrypt, crypto.decrypt),
                             derive_hash_key(secrets['secret_key'])))
    finally:
        engine.dispose()


def _password(from_stdin: bool) -> tuple[str, bool]:
    from zato.security.passwords import new_password
    if from_stdin:
        return sys.stdin.readline().rstrip('\n'), False
    return new_password(), True


def run(args: argparse.Namespace) -> int:
    from zato.sso.status import SSOError
    try:
        with open_sso(args.path) as sso:
            return _run(sso, args)
    except SSOError as e:
        reasons = ', '.join(f'{code} {MEANING.get(code, "refused")}' for code in e.sub_status)
        if e.sub_status == ['E001001'] and args.sso_command not in ('create-user', 'create-super-user'):
            reasons = f'no SSO user named `{args.username}`'
        raise ZatoError(reasons) from None


def _run(sso: SSO, args: argparse.Namespace) -> int:
    command, username = args.sso_command, args.username
    if command in ('create-user', 'create-super-user'):
        password, generated = _password(args.password_stdin)
        data = {'username': username, 'password': password, 'email': args.email, 'display_name': args.display_name,
                'first_name': args.first_name, 'middle_name': args.middle_name, 'last_name': args.last_name,
                'password_must_change': args.password_must_change}
        created = sso.admin.create_user(data, is_super_user=command == 'create-super-user')
        kind = 'super-user' if command == 'create-super-user' else 'user'
        print(f'Created SSO {kind} `{created["username"]}` (user_id {created["user_id"]})')
        if generated:
            print(f'Password: {password}   (shown once)')
        return 0
    if command == 'delete-user':
        sso.admin.delete_user(username)
        print(f'Deleted SSO user `{username}`')
        return 0
    if command in ('lock-user', 'unlock-user'):
        sso.admin.set_locked(username, command == 'lock-user')
        print(f'SSO user `{username}` {"locked" if command == "lock-user" else "unlocked"}')
        return 0
    if command in ('approve-user', 'reject-user'):
        sso.admin.set_approval(username, command == 'approve-user')
        print(f'SSO user `{username}` {"approved" if command == "approve-user" else "rejected"}')
        return 0
    if command in ('change-user-password', 'reset-user-password'):
        password, generated = _password(command == 'change-user-password' and args.password_stdin)
        sso.admin.set_password(username, password, args.must_change, args.expiry)
        print(f'Password of SSO user `{username}` changed; their sessions were ended')
        if generated:
            print(f'New password: {password}   (shown once)')
        return 0
    out = sso.admin.reset_totp_key(username, args.key, args.key_label)
    print(f'TOTP of SSO user `{username}` is on; their sessions were ended')
    print(f'Key: {out["totp_key"]}   (shown once)')
    print(f'URI: {out["totp_uri"]}')
    return 0
