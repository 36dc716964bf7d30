"""SSO sessions: a UST (256 random bits, URL-safe) handed out once at login; the ODB keeps only its
SHA-256. A session belongs to the application it was opened for (a UST presented with another
`current_app` names no session), ends `[session] expiry` minutes after its creation or last renewal
(idle expiry) and `[session] max_lifetime` minutes after its creation whatever happens (absolute
expiry). Logging out, a password change and a new TOTP key end sessions server-side.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select

from zato.odb.models import SSOSession, SSOUser
from zato.sso.context import SSOContext, iso, ust_hash
from zato.sso.status import SSOError, status_code
from zato.sso.verify_cache import Entry, forget_after_commit

UST_BYTES = 32


@dataclass
class Current:
    """A verified session and its user, as the calls made with a `current_ust` see them."""
    session: SSOSession
    user: SSOUser


def no_such_session() -> SSOError:
    return SSOError(status_code.session.no_such_session)


def session_to_dict(row: SSOSession, user: SSOUser | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {'current_app': row.current_app, 'creation_time': iso(row.creation_time),
                           'expiration_time': iso(min(row.expiration_time, row.max_expiration_time)),
                           'max_expiration_time': iso(row.max_expiration_time), 'remote_addr': row.remote_addr,
                           'user_agent': row.user_agent, 'auth_type': row.auth_type,
                           'auth_principal': row.auth_principal, 'ext_session_id': row.ext_session_id,
                           'session_id': row.id}
    if user is not None:
        out['user_id'] = user.user_id
        out['username'] = user.username
    return out


class Sessions:
    """Opening, finding, renewing and ending sessions; each call is one ODB transaction."""

    def __init__(self, ctx: SSOContext) -> None:
        self.ctx = ctx

    def _expiry(self, now: float) -> tuple[float, float]:
        conf = self.ctx.config['session']
        absolute = now + conf['max_lifetime'] * 60
        return min(now + conf['expiry'] * 60, absolute), absolute

    def open(self, session: Any, user: SSOUser, current_app: str, remote_addr: str, user_agent: str,
             now: float, auth_type: str = 'default', auth_principal: str = '') -> tuple[str, SSOSession]:
        """A new session of `user` in the caller's transaction; (the UST, shown once; the row)."""
        ust = secrets.token_urlsafe(UST_BYTES)
        idle, absolute = self._expiry(now)
        row = SSOSession(cluster_id=self.ctx.cluster_id, ust_hash=ust_hash(ust), user_id=user.id,
                         current_app=current_app, creation_time=now, expiration_time=idle,
                         max_expiration_time=absolute, remote_addr=(remote_addr or '')[:100],
                         user_agent=(user_agent or '')[:400], auth_type=auth_type,
                         auth_principal=auth_principal[:200], ext_session_id='', opaque={})
        session.add(row)
        return ust, row

    def find(self, session: Any, ust: Any, current_app: str, now: float) -> Current:
        """The live session of `ust` opened for `current_app`, with its user; E007001 for a UST that
        names none (or another application's), E007002 for one that has expired (and is removed)."""
        if not isinstance(ust, str) or not ust or len(ust) > 200:
            raise no_such_session()
        # The session and its user in one query (an inner join: a session without a user is none)
        found = session.execute(select(SSOSession, SSOUser).join(SSOUser, SSOUser.id == SSOSession.user_id).where(
            SSOSession.ust_hash == ust_hash(ust))).one_or_none()
        if found is None:
            raise no_such_session()
        row, user = found
        if row.cluster_id != self.ctx.cluster_id or row.current_app != current_app:
            raise no_such_session()
        if now >= row.expiration_time or now >= row.max_expiration_time:
            session.delete(row)
            session.commit()
            raise SSOError(status_code.session.expired)
        return Current(row, user)

    def verified(self, odb: Callable[[], Any], ust: Any, current_app: str, now: float) -> Entry:
        """What verify needs of the live session of `ust` of an unlocked user: from this worker's cache
        (zato.sso.verify_cache) when it may answer, else from the ODB as `find` (and remembered); the same
        errors as `find`, and E007001 for a locked user. `odb()` gives the ODB session, opened on a miss only."""
        if not isinstance(ust, str) or not ust or len(ust) > 200:
            raise no_such_session()
        digest = ust_hash(ust)
        cache = self.ctx.verify_cache
        entry = cache.get(digest, current_app, now)
        if entry is not None:
            return entry
        generation = cache.generation
        found = self.find(odb(), ust, current_app, now)
        if found.user.is_locked:
            raise no_such_session()
        row = found.session
        entry = Entry(row.id, found.user.id, row.current_app, min(row.expiration_time, row.max_expiration_time),
                      found.user.is_super_user, now)
        cache.put(digest, entry, generation)
        return entry

    def renew(self, session: Any, current: Current, now: float) -> float:
        """Moves the idle expiry on (never past the absolute one); the new expiration time."""
        idle = now + self.ctx.config.get('session', 'expiry') * 60
        current.session.expiration_time = min(idle, current.session.max_expiration_time)
        forget_after_commit(self.ctx, session, ust_hash=current.session.ust_hash)
        return current.session.expiration_time

    def end_all_of(self, session: Any, user_pk: int, except_id: int | None = None) -> int:
        """Ends every session of a user (but `except_id`), forgotten by every worker once committed (all
        of the user's: what made them end may change what verify says of the one kept too); how many ended."""
        forget_after_commit(self.ctx, session, user_pk=user_pk)
        stmt = delete(SSOSession).where(SSOSession.user_id == user_pk)
        if except_id is not None:
            stmt = stmt.where(SSOSession.id != except_id)
        return session.execute(stmt).rowcount or 0

    @staticmethod
    def list_of(session: Any, user_pk: int, now: float) -> list[SSOSession]:
        return list(session.scalars(select(SSOSession).where(
            SSOSession.user_id == user_pk, SSOSession.expiration_time > now,
            SSOSession.max_expiration_time > now).order_by(SSOSession.creation_time)))
