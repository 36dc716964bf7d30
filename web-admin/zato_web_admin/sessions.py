"""Server-side sessions: the cookie holds a random token, the ODB its SHA-256, the user and the
session's CSRF token. A session ends when unused for the idle time, or at its absolute age."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from zato.odb.models import WebAdminSession, WebAdminUser
from zato_web_admin.users import as_utc, now_utc

COOKIE = 'zato_web_admin'

# last_seen is written at most this often, so that browsing is not a write per page
TOUCH_EVERY = timedelta(seconds=30)


@dataclass
class Current:
    """The signed-in user of a request."""
    user_id: int
    username: str
    csrf_token: str
    has_totp: bool
    token_hash: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(session: Session, user: WebAdminUser) -> str:
    """A new session for `user`; returns the cookie's token (shown to nobody else, stored hashed)."""
    token = secrets.token_urlsafe(32)
    now = now_utc()
    session.add(WebAdminSession(token_hash=_hash(token), user_id=user.id, csrf_token=secrets.token_urlsafe(32),
                                created_at=now, last_seen=now))
    session.commit()
    return token


def load(session: Session, token: str, idle_seconds: int, max_seconds: int) -> Current | None:
    if not token:
        return None
    row = session.get(WebAdminSession, _hash(token))
    if row is None:
        return None
    now = now_utc()
    created, last_seen = as_utc(row.created_at), as_utc(row.last_seen)
    assert created is not None and last_seen is not None
    user = session.get(WebAdminUser, row.user_id)
    if user is None or not user.is_active or now - last_seen > timedelta(seconds=idle_seconds) \
            or now - created > timedelta(seconds=max_seconds):
        session.delete(row)
        session.commit()
        return None
    if now - last_seen > TOUCH_EVERY:
        row.last_seen = now
        session.commit()
    return Current(user.id, user.username, row.csrf_token, bool(user.totp_key), row.token_hash)


def end(session: Session, token_hash: str) -> None:
    session.execute(delete(WebAdminSession).where(WebAdminSession.token_hash == token_hash))
    session.commit()


def end_all_of(session: Session, user_id: int, keep: str = '') -> None:
    """Ends every session of a user (after a password or TOTP change), but `keep`'s."""
    session.execute(delete(WebAdminSession).where(WebAdminSession.user_id == user_id,
                                                  WebAdminSession.token_hash != keep))


def purge(session: Session, idle_seconds: int, max_seconds: int, now: datetime | None = None) -> None:
    """Deletes sessions that ended, so that the table does not grow."""
    now = now or now_utc()
    session.execute(delete(WebAdminSession).where(
        (WebAdminSession.last_seen < now - timedelta(seconds=idle_seconds))
        | (WebAdminSession.created_at < now - timedelta(seconds=max_seconds))))
    session.commit()


def ids_of(session: Session, user_id: int) -> list[str]:
    return list(session.scalars(select(WebAdminSession.token_hash).where(WebAdminSession.user_id == user_id)))
