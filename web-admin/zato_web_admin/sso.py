"""SSO users and their sessions as the web-admin manages them: the SSO core (zato.sso) over the shared
ODB, acting as a trusted administrator the way `zato sso ...` does (no SSO session of its own), each
change in one transaction together with its audit entry.

The rules — what a username, an email or a password may be, what a lock or a new password or TOTP
key does to the user's sessions — are the core's (zato.sso.users, zato.sso.sessions). What is here
is what the core does not offer to a trusted caller yet: finding a user by id without a session,
listing and ending a user's sessions by their row id (the web-admin never sees a UST; the ODB keeps
only hashes of them), and deleting a user by id.

Linked credentials (zato.sso.linked) are made and removed here too. Servers keep in memory which
security definitions are linked, so such a change also moves the cluster's config version on, in
the same transaction: every worker sees it at its next config check and reloads (the web-admin is
not on the cluster bus).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from zato.odb.models import Cluster, SecurityDef, SSOLinkedAuth, SSOSession, SSOUser
from zato.security.passwords import new_password
from zato.security.secrets_file import Crypto
from zato.sso import totp
from zato.sso.config import SSOConfig
from zato.sso.api import delete_user
from zato.sso.context import Cipher, SSOContext, derive_hash_key, iso
from zato.sso.linked import KINDS as LINKED_KINDS
from zato.sso.linked import LINKED_KIND, LinkedAuth
from zato.sso.search import search
from zato.sso.sessions import Sessions, session_to_dict
from zato.sso.signup import SignUp
from zato.sso.status import SSOError, status_code
from zato.sso.users import APPROVAL, SIGN_UP, Users, user_to_dict
from zato_web_admin import users as web_admin_users

__all__ = ['APPROVAL', 'SIGN_UP', 'SSOAdmin', 'SSOError', 'context']

# The object kind of SSO users in the audit log
AUDIT_KIND = 'sso-user'


def context(session_factory: sessionmaker[Session], cluster_id: int, config: SSOConfig, crypto: Crypto,
            secret_key: str) -> SSOContext:
    """The SSO core's context over the web-admin's ODB and the environment's key, as servers build it."""
    def commit_change(db: Any, kind: str, obj_id: int) -> None:
        # Not on the bus: the config version tells every worker to reload (Runtime._check_config_version)
        db.execute(update(Cluster).where(Cluster.id == cluster_id).values(config_version=Cluster.config_version + 1))
        db.commit()

    return SSOContext(session_factory, cluster_id, config, Cipher(crypto.encrypt, crypto.decrypt),
                      derive_hash_key(secret_key), commit_change=commit_change)


def by_whom(web_admin_user: str) -> str:
    """What the core records as who locked or approved a user (`locked_by`, `approval_status_mod_by`)."""
    return f'web-admin:{web_admin_user}'


@dataclass(frozen=True)
class Created:
    """A new user, with what is shown once: a password the web-admin generated, a TOTP key and its URI."""
    user: dict[str, Any]
    password: str
    totp_key: str
    totp_uri: str


@dataclass(frozen=True)
class Actor:
    """The signed-in web-admin user making a change, and from where (for the audit log)."""
    username: str
    remote_addr: str


class SSOAdmin:
    """What the SSO pages do, each method one ODB transaction. An unknown `user_id` is SSOError
    E001100 (the pages answer 404); the core's refusals (a taken username, a short password ...) are
    its SSOError with 3.1's sub-status codes."""

    def __init__(self, ctx: SSOContext) -> None:
        self.ctx = ctx
        self.sessions = Sessions(ctx)
        self.users = Users(ctx, self.sessions)
        self.signup = SignUp(ctx, self.users, self.sessions)
        self.linked = LinkedAuth(ctx)

    @property
    def config(self) -> SSOConfig:
        return self.ctx.config

    # ------------------------------------------------------------------------------------------ reading

    def search(self, criteria: dict[str, Any]) -> dict[str, Any]:
        """3.1's search (zato.sso.search): exact username, names exact or partial, statuses; paginated.
        Each user also says until when a brute-force lockout holds (`lockout_until`, None if none)."""
        with self.ctx.Session() as db:
            found = search(self.ctx, db, criteria)
            ids = [user['user_id'] for user in found['result']]
            until = dict(db.execute(select(SSOUser.user_id, SSOUser.locked_until).where(
                SSOUser.cluster_id == self.ctx.cluster_id, SSOUser.user_id.in_(ids))).all()) if ids else {}
        now = self.ctx.clock()
        for user in found['result']:
            user['lockout_until'] = iso(until[user['user_id']]) if until.get(user['user_id'], 0) > now else None
        return found

    def _to_dict(self, user: SSOUser) -> dict[str, Any]:
        out = user_to_dict(self.ctx, user)
        out['lockout_until'] = iso(user.locked_until) if user.locked_until > self.ctx.clock() else None
        return out

    def user(self, user_id: str) -> dict[str, Any]:
        with self.ctx.Session() as db:
            return self._to_dict(self.users.require(db, user_id))

    def sessions_of(self, user_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The user and their live sessions (never a UST: the ODB has only hashes, and those stay in it)."""
        with self.ctx.Session() as db:
            user = self.users.require(db, user_id)
            rows = self.sessions.list_of(db, user.id, self.ctx.clock())
            return self._to_dict(user), [session_to_dict(row) for row in rows]

    # ------------------------------------------------------------------------------------------ changing

    def _audit(self, db: Session, actor: Actor, action: str, username: str, details: dict[str, Any] | None = None) \
            -> None:
        web_admin_users.audit(db, actor.username, action, AUDIT_KIND, username, details, actor.remote_addr)

    def create(self, actor: Actor, data: dict[str, Any]) -> Created:
        """A regular user (super-users are made with `zato sso create-super-user`). Without a password
        in `data`, one is generated and returned to be shown once."""
        data = dict(data)
        generated = ''
        if not data.get('password'):
            generated = data['password'] = new_password()
        with self.ctx.Session() as db:
            user, key = self.users.create(db, {**data, 'is_super_user': False}, False, by_whom(actor.username))
            self._audit(db, actor, 'sso-user.create', user.username,
                        {k: v for k, v in data.items() if k != 'password'})
            out = user_to_dict(self.ctx, user)
            uri = totp.provisioning_uri(key, user.username, user.totp_label) if key else ''
            db.commit()
        return Created(out, generated, key or '', uri)

    def set_locked(self, actor: Actor, user_id: str, locked: bool) -> str:
        """Locks (the user's sessions end) or unlocks (a brute-force lockout ends too); the username."""
        with self.ctx.Session() as db:
            user = self.users.require(db, user_id)
            self.users.set_locked(db, user, locked, by_whom(actor.username))
            self._audit(db, actor, 'sso-user.lock' if locked else 'sso-user.unlock', user.username)
            db.commit()
            return user.username

    def set_approval(self, actor: Actor, user_id: str, approved: bool) -> str:
        """approval_status `approved` or `rejected`; a rejected user's sessions end (a rejected user
        cannot log in, so no session of theirs should outlive the decision). The username."""
        with self.ctx.Session() as db:
            user = self.users.require(db, user_id)
            # The core's decision, as POST /zato/sso/user/approve and /reject make it
            self.signup.set_approval(db, user, approved, by_whom(actor.username))
            self._audit(db, actor, f'sso-user.{"approve" if approved else "reject"}', user.username)
            db.commit()
            return user.username

    def set_password(self, actor: Actor, user_id: str, password: str, must_change: bool) -> tuple[str, str, int]:
        """A new password (generated when `password` is empty) checked against sso.conf's [password]
        policy; every session of the user ends. (username, the generated password or '', sessions ended)."""
        generated = '' if password else new_password()
        with self.ctx.Session() as db:
            user = self.users.require(db, user_id)
            ended = len(self.sessions.list_of(db, user.id, self.ctx.clock()))
            self.users.set_password(db, user, password or generated, must_change)
            self._audit(db, actor, 'sso-user.change-password', user.username, {'must_change': must_change})
            db.commit()
            return user.username, generated, ended

    def reset_totp_key(self, actor: Actor, user_id: str) -> tuple[str, str, str]:
        """A new random TOTP key, TOTP turned on, every session of the user ended: (username, key, otpauth URI),
        the key and URI to be shown once."""
        with self.ctx.Session() as db:
            user = self.users.require(db, user_id)
            key = self.users.reset_totp_key(db, user)
            uri = totp.provisioning_uri(key, user.username, user.totp_label)
            self._audit(db, actor, 'sso-user.reset-totp-key', user.username)
            db.commit()
            return user.username, key, uri

    def delete(self, actor: Actor, user_id: str) -> str:
        """Deletes the user; their sessions go with them (the ODB cascades). The username."""
        with self.ctx.Session() as db:
            user = self.users.require(db, user_id)
            username = user.username
            self._audit(db, actor, 'sso-user.delete', username)
            delete_user(self.ctx, db, user)  # its links go too, and the servers are told
            return username

    def end_session(self, actor: Actor, user_id: str, session_id: int) -> tuple[str, bool]:
        """Ends one session of the user, named by its row id; (username, whether there was such a session)."""
        with self.ctx.Session() as db:
            user = self.users.require(db, user_id)
            ended = db.execute(delete(SSOSession).where(SSOSession.id == session_id,
                                                        SSOSession.user_id == user.id)).rowcount or 0
            if ended:
                self._audit(db, actor, 'sso-user.end-session', user.username, {'session_id': session_id})
            db.commit()
            return user.username, bool(ended)

    def end_all(self, actor: Actor, user_id: str) -> tuple[str, int]:
        """Ends every session of the user; (username, how many ended)."""
        with self.ctx.Session() as db:
            user = self.users.require(db, user_id)
            ended = self.sessions.end_all_of(db, user.id)
            self._audit(db, actor, 'sso-user.end-all-sessions', user.username, {'ended': ended})
            db.commit()
            return user.username, ended

    # ------------------------------------------------------------------------------------------ linked credentials

    def linked_of(self, user_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The user's linked credentials, and the definitions that may still be linked (Basic Auth and
        JWT, linked to no one): [{id, name, kind, username}]."""
        with self.ctx.Session() as db:
            user = self.users.require(db, user_id)
            linked = self.linked.list_of(db, user)
            taken = select(SSOLinkedAuth.sec_def_id)
            free = db.scalars(select(SecurityDef).where(
                SecurityDef.cluster_id == self.ctx.cluster_id, SecurityDef.kind.in_(LINKED_KINDS),
                SecurityDef.is_internal.is_(False), SecurityDef.id.not_in(taken)).order_by(SecurityDef.name))
            return linked, [{'id': sec.id, 'name': sec.name, 'kind': sec.kind, 'username': sec.username}
                            for sec in free]

    def link(self, actor: Actor, user_id: str, sec_name: str, is_active: bool = True) -> str:
        """Links the Basic Auth or JWT definition named `sec_name` to the user; the username."""
        with self.ctx.Session() as db:
            user = self.users.require(db, user_id)
            sec = db.scalars(select(SecurityDef).where(SecurityDef.cluster_id == self.ctx.cluster_id,
                                                       SecurityDef.name == sec_name)).one_or_none()
            if sec is None:
                raise SSOError(status_code.common.invalid_input)
            sec = self.linked.definition(db, sec.kind, sec_name=sec_name)
            link = self.linked.create(db, user, sec, is_active, by_whom(actor.username))
            self._audit(db, actor, 'sso-user.link', user.username, {'sec_name': sec.name, 'kind': sec.kind})
            username = user.username
            self.ctx.commit_change(db, LINKED_KIND, link.id)
            return username

    def unlink(self, actor: Actor, user_id: str, sec_id: int) -> str:
        """Removes the link of definition `sec_id` (the sessions it opened end); the username."""
        with self.ctx.Session() as db:
            user = self.users.require(db, user_id)
            sec = db.get(SecurityDef, sec_id)
            if sec is None or sec.cluster_id != self.ctx.cluster_id:
                raise SSOError(status_code.linked_auth.no_such_link)
            link = self.linked.delete(db, user, sec)
            self._audit(db, actor, 'sso-user.unlink', user.username, {'sec_name': sec.name, 'kind': sec.kind})
            username = user.username
            self.ctx.commit_change(db, LINKED_KIND, link.id)
            return username


def no_such_user(e: SSOError) -> bool:
    return e.sub_status[:1] == [status_code.user_id.invalid]
