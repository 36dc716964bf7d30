"""What every part of the SSO core works with: the ODB, the cluster, sso.conf, the environment's
key, and a clock (seconds since the epoch; tests pass their own)."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from zato.sso.bruteforce import Policy
from zato.sso.config import SSOConfig
from zato.sso.status import SSOError, not_allowed, status_code

Clock = Callable[[], float]

# (connection name, sender, recipient, subject, body): sends one email, or raises
Mailer = Callable[[str, str, str, str, str], None]


def run_now(work: Callable[[], None]) -> None:
    """How the core runs work that must not make the caller wait, unless told otherwise: at once."""
    work()


def commit_only(session: Any, kind: str, obj_id: int) -> None:
    """How the core commits a change servers keep in memory (linked credentials), unless told otherwise:
    a plain commit. A server tells its workers too (Runtime.commit_change)."""
    session.commit()


class Cipher:
    """What the SSO core needs of the environment's key: encrypt and decrypt (Fernet), both str -> str."""

    def __init__(self, encrypt: Callable[[str], str], decrypt: Callable[[str], str]) -> None:
        self.encrypt = encrypt
        self.decrypt = decrypt


@dataclass
class SSOContext:
    Session: Any                      # a SQLAlchemy sessionmaker over the ODB
    cluster_id: int
    config: SSOConfig
    cipher: Cipher
    hash_key: bytes                   # keys the email hashes a search matches (derived from the environment's key)
    clock: Clock = field(default=time.time)
    mailer: Mailer | None = None      # how emails go out ([main] smtp_conn names the connection)
    email_dir: str = ''               # templates of emails (config/repo/static/email); built-in ones otherwise
    # Runs work after the answer (a greenlet in a server), so that how long it takes tells the caller nothing
    defer: Callable[[Callable[[], None]], None] = field(default=run_now)
    # Commits a change of (kind, id) that every worker of the cluster must learn of (linked credentials)
    commit_change: Callable[[Any, str, int], None] = field(default=commit_only)

    @property
    def lockout(self) -> Policy:
        return Policy.from_config(self.config['login'])

    def email_key(self, email: str) -> str:
        if not email:
            return ''
        return hmac.new(self.hash_key, email.strip().casefold().encode('utf-8'), hashlib.sha256).hexdigest()

    def check_app(self, current_app: Any, for_login: bool = False) -> str:
        """`current_app` if it is one of [apps] all (and login_allowed, for a login); else E004001,
        or the generic E005001 when [apps] inform_if_app_invalid is false."""
        apps = self.config['apps']
        ok = isinstance(current_app, str) and current_app in apps['all'] and \
            (not for_login or current_app in apps['login_allowed'])
        if not ok:
            if apps['inform_if_app_invalid']:
                raise SSOError(status_code.app_list.invalid, status=403)
            raise not_allowed()
        return current_app


def iso(ts: float | None) -> str | None:
    """3.1 gave times as ISO 8601; ours are in UTC and say so."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat()


def ust_hash(ust: str) -> str:
    """What the ODB keeps of a UST: its SHA-256 (a UST has 256 random bits, so no salt or stretching is needed)."""
    return hashlib.sha256(ust.encode('utf-8', 'surrogatepass')).hexdigest()


def derive_hash_key(secret_key: str) -> bytes:
    return hashlib.sha256(b'zato.sso.email-key:' + secret_key.encode()).digest()
