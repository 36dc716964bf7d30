"""Linked credentials (3.1's "multi-credential accounts"): a Basic Auth or JWT security definition
linked to an SSO user, so that a REST request authenticated by that definition acts as the user.

A definition is linked to one user at most (the ODB's unique `sec_def_id`: a second link is E010001,
409); a user may have several. A link goes with its user or its definition (ON DELETE CASCADE), and
removing one ends the sessions it opened.

Acting as the user (`Acting`, run by the server's guard chain for each such request) opens an SSO
session for the user, the application and the credential, or extends the one that is open: one
session per (user, application, credential), kept in the ODB like any other (`auth_type` names the
kind of credential, `auth_principal` its user name, `ext_session_id` the link). Its UST is made
and never shown: the credential is what the caller presents. A locked, unapproved or unconfirmed
user is refused.

These work on rows within the caller's transaction; who may link (super-users) is decided in
zato.sso.api.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from zato.odb.models import SecurityDef, SSOLinkedAuth, SSOSession, SSOUser
from zato.sso.context import SSOContext, iso, ust_hash
from zato.sso.sessions import UST_BYTES
from zato.sso.status import SSOError, status_code
from zato.sso.users import APPROVED, FINAL
from zato.sso.verify_cache import forget_after_commit

# The kind of change servers are told of when links change (Runtime.on_change)
LINKED_KIND = 'sso_linked'

# The kinds of definition a user may be linked to; 3.1 also spelled them `zato.basic_auth`, `zato.jwt`
KINDS = ('basic_auth', 'jwt')

# A linked session's expiry is written only once it would move by this share of [session] expiry, so
# that a burst of requests costs reads, not a write each (a minute's expiry moves in 0.6 s steps)
EXTEND_STEP = 0.01


def auth_type_of(value: Any) -> str:
    """`basic_auth` or `jwt` (3.1's `zato.` prefix taken off); E008002 for anything else."""
    if isinstance(value, str) and value.startswith('zato.'):
        value = value[5:]
    if value not in KINDS:
        raise SSOError(status_code.common.invalid_input)
    return value


def session_key(sec_def_id: int) -> str:
    """The `ext_session_id` of the sessions a link opens (3.1 prefixed them with the auth type and id too)."""
    return f'zato.linked.{sec_def_id}'


def _latest_query(user_id: int, current_app: str, key: str, live_at: float | None) -> Any:
    query = select(SSOSession).where(SSOSession.user_id == user_id, SSOSession.current_app == current_app,
                                     SSOSession.ext_session_id == key)
    if live_at is not None:
        query = query.where(SSOSession.expiration_time > live_at, SSOSession.max_expiration_time > live_at)
    return query.order_by(SSOSession.id.desc()).limit(1)


def link_to_dict(link: SSOLinkedAuth, sec: SecurityDef, user: SSOUser) -> dict[str, Any]:
    """3.1's fields of a link (`auth_id` the definition's id, `auth_username` its user name), and its name."""
    return {'user_id': user.user_id, 'auth_type': link.auth_type, 'auth_id': sec.id, 'auth_username': sec.username,
            'sec_name': sec.name, 'is_active': link.is_active, 'creation_time': iso(link.creation_time)}


def may_act(user: SSOUser) -> bool:
    """Whether a linked credential may act as `user`: not locked, signed up and approved, as a login
    demands (the password's expiry and TOTP belong to the main credentials only, as in 3.1)."""
    return not user.is_locked and user.sign_up_status == FINAL and user.approval_status == APPROVED


class LinkedAuth:
    """Creating, listing and removing links, and finding the user of a definition."""

    def __init__(self, ctx: SSOContext) -> None:
        self.ctx = ctx

    def definition(self, session: Any, auth_type: Any, auth_username: Any = None, sec_name: Any = None) \
            -> SecurityDef:
        """The definition of kind `auth_type` named `sec_name`, or whose user name is `auth_username`
        (3.1's way of naming it: E008002 when no definition, or more than one, has it)."""
        kind = auth_type_of(auth_type)
        where = [SecurityDef.cluster_id == self.ctx.cluster_id, SecurityDef.kind == kind,
                 SecurityDef.is_internal.is_(False)]
        if isinstance(sec_name, str) and sec_name:
            where.append(SecurityDef.name == sec_name)
        elif isinstance(auth_username, str) and auth_username:
            where.append(SecurityDef.username == auth_username)
        else:
            raise SSOError(status_code.common.missing_input)
        found = session.scalars(select(SecurityDef).where(*where).limit(2)).all()
        if len(found) != 1:
            raise SSOError(status_code.common.invalid_input)
        return found[0]

    def create(self, session: Any, user: SSOUser, sec: SecurityDef, is_active: Any, by: str) -> SSOLinkedAuth:
        """A new link, flushed; E010001 (409) when the definition is linked already, to anyone."""
        if not isinstance(is_active, bool):
            raise SSOError(status_code.common.invalid_input)
        if session.scalars(select(SSOLinkedAuth.id).where(SSOLinkedAuth.sec_def_id == sec.id)).first() is not None:
            raise SSOError(status_code.linked_auth.already_linked, status=409)
        link = SSOLinkedAuth(cluster_id=self.ctx.cluster_id, user_id=user.id, sec_def_id=sec.id, auth_type=sec.kind,
                             is_active=is_active, creation_time=self.ctx.clock(), created_by=by[:200])
        session.add(link)
        try:
            session.flush()
        except IntegrityError:
            # Linked by another caller a moment ago: the unique sec_def_id decided
            session.rollback()
            raise SSOError(status_code.linked_auth.already_linked, status=409) from None
        return link

    def delete(self, session: Any, user: SSOUser, sec: SecurityDef) -> SSOLinkedAuth:
        """Removes the link of `sec` to `user` (E010002 for none) and ends the sessions it opened."""
        link = session.scalars(select(SSOLinkedAuth).where(SSOLinkedAuth.sec_def_id == sec.id,
                                                           SSOLinkedAuth.user_id == user.id)).one_or_none()
        if link is None:
            raise SSOError(status_code.linked_auth.no_such_link, status=400)
        session.delete(link)
        forget_after_commit(self.ctx, session, user_pk=user.id)
        session.execute(delete(SSOSession).where(SSOSession.user_id == user.id,
                                                 SSOSession.ext_session_id == session_key(sec.id)))
        return link

    def list_of(self, session: Any, user: SSOUser) -> list[dict[str, Any]]:
        rows = session.execute(select(SSOLinkedAuth, SecurityDef).join(
            SecurityDef, SecurityDef.id == SSOLinkedAuth.sec_def_id).where(
            SSOLinkedAuth.user_id == user.id).order_by(SSOLinkedAuth.id)).all()
        return [link_to_dict(link, sec, user) for link, sec in rows]

    def user_of(self, session: Any, sec_def_id: int) -> SSOUser | None:
        """The user an active link of `sec_def_id` names, or None."""
        return session.scalars(select(SSOUser).join(SSOLinkedAuth, SSOLinkedAuth.user_id == SSOUser.id).where(
            SSOLinkedAuth.sec_def_id == sec_def_id, SSOLinkedAuth.is_active.is_(True),
            SSOLinkedAuth.cluster_id == self.ctx.cluster_id)).one_or_none()

    def active_links(self, session: Any) -> dict[int, int]:
        """{definition id: user's row id} of every active link of the cluster (what a server keeps in memory)."""
        rows = session.execute(select(SSOLinkedAuth.sec_def_id, SSOLinkedAuth.user_id).where(
            SSOLinkedAuth.cluster_id == self.ctx.cluster_id, SSOLinkedAuth.is_active.is_(True)))
        return {sec_def_id: user_pk for sec_def_id, user_pk in rows}

    # Acting as the user

    @staticmethod
    def _latest(session: Any, user_id: int, current_app: str, key: str, live_at: float | None = None) \
            -> SSOSession | None:
        """The newest session of (user, app, credential); only a live one at `live_at` when given."""
        return session.scalars(_latest_query(user_id, current_app, key, live_at)).first()

    def touch_session(self, session: Any, user: SSOUser, sec_def_id: int, auth_type: str, principal: str,
                      current_app: str, remote_addr: str, user_agent: str, now: float) -> SSOSession:
        """The live session of (user, app, credential), its idle expiry moved on; or a new one. In the
        caller's transaction, which commits it.

        Two first requests of one credential at the same moment (two workers, two servers) would both
        find no session and open one each; so before opening one the user's row is locked (FOR UPDATE
        on PostgreSQL; on SQLite a write, which takes the database's one write lock) and the session
        looked for again: the second request waits for the first's commit and then finds its session."""
        key = session_key(sec_def_id)
        conf = self.ctx.config['session']
        idle = conf['expiry'] * 60
        row = self._latest(session, user.id, current_app, key)
        if row is not None and (now >= row.expiration_time or now >= row.max_expiration_time):
            session.delete(row)
            row = None
        if row is None:
            if session.get_bind().dialect.name == 'postgresql':
                session.execute(select(SSOUser.id).where(SSOUser.id == user.id).with_for_update())
            else:
                session.execute(update(SSOUser).where(SSOUser.id == user.id).values(id=SSOUser.id))
            row = self._latest(session, user.id, current_app, key, live_at=now)
        if row is None:
            absolute = now + conf['max_lifetime'] * 60
            # A UST nobody is shown: the credential is what its holder presents, and the ODB needs one
            row = SSOSession(cluster_id=self.ctx.cluster_id, ust_hash=ust_hash(secrets.token_urlsafe(UST_BYTES)),
                             user_id=user.id, current_app=current_app, creation_time=now,
                             expiration_time=min(now + idle, absolute), max_expiration_time=absolute,
                             remote_addr=(remote_addr or '')[:100], user_agent=(user_agent or '')[:400],
                             auth_type=auth_type, auth_principal=principal[:200], ext_session_id=key, opaque={})
            session.add(row)
            session.flush()
            return row
        extended = min(now + idle, row.max_expiration_time)
        if extended - row.expiration_time >= idle * EXTEND_STEP:
            row.expiration_time = extended
        return row
