"""The SSO API with 3.1's names: `sso.user.login(...)`, `sso.user.create_user(...)`,
`sso.user.session.verify(...)` ..., as `self.sso` in services and behind the /zato/sso/... channels.

Every call made on someone's behalf names their session (`current_ust`) and application
(`current_app`): a super-user may act on any user; others only on themselves. `cid` is the
correlation id of the request, for the logs, as in 3.1. `SSO.admin` holds what only trusted code
(the CLI, a deployment script) may do without a session: create a super-user, unlock, reset ...
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import delete, select

from zato.odb.models import SSOLinkedAuth, SSOUser
from zato.sso import totp
from zato.sso.context import SSOContext, iso
from zato.sso.linked import LINKED_KIND, LinkedAuth
from zato.sso.login import Login, LoginResult
from zato.sso.purge import Purged, purge
from zato.sso.reset import PasswordReset
from zato.sso.search import search as search_users
from zato.sso.sessions import Current, Sessions, session_to_dict
from zato.sso.signup import SignUp
from zato.sso.status import SSOError, status_code
from zato.sso.users import Users, user_to_dict

logger = logging.getLogger('zato.sso')


def _super_user_required() -> SSOError:
    return SSOError(status_code.auth.super_user_required)


def delete_user(ctx: SSOContext, session: Any, user: SSOUser) -> None:
    """Deletes a user (their sessions, tokens and links go with them) and commits; when they had
    linked credentials, every worker of the cluster is told, so that none keeps acting as them."""
    had_links = session.scalars(select(SSOLinkedAuth.id).where(SSOLinkedAuth.user_id == user.id)).first()
    session.execute(delete(SSOUser).where(SSOUser.id == user.id))
    if had_links is None:
        session.commit()
    else:
        ctx.commit_change(session, LINKED_KIND, user.id)


class SessionAPI:
    """`sso.user.session`: verify, renew, get, get_list, logout."""

    def __init__(self, ctx: SSOContext, sessions: Sessions) -> None:
        self.ctx = ctx
        self.sessions = sessions

    def current(self, session: Any, current_ust: Any, current_app: Any) -> Current:
        """The caller's live session, or E007001/E007002 (E004001 for an unknown application)."""
        app = self.ctx.check_app(current_app)
        found = self.sessions.find(session, current_ust, app, self.ctx.clock())
        if found.user.is_locked:
            raise SSOError(status_code.session.no_such_session)
        return found

    def _target(self, session: Any, target_ust: Any, current: Current, current_app: str) -> Current:
        """The session of `target_ust`: the caller's own, or anyone's for a super-user."""
        target = self.sessions.find(session, target_ust, current_app, self.ctx.clock())
        if target.session.id != current.session.id and not current.user.is_super_user:
            raise _super_user_required()
        return target

    def verify(self, cid: str, target_ust: Any, current_ust: Any, current_app: Any, remote_addr: str = '',
               user_agent: str | None = None) -> dict[str, Any]:
        """{'is_valid': True} if `target_ust` names a live session of `current_app`; the caller is a
        super-user, or the session's own holder."""
        with self.ctx.Session() as session:
            current = self.current(session, current_ust, current_app)
            try:
                self._target(session, target_ust, current, current_app)
            except SSOError as e:
                if e.sub_status[0] == status_code.auth.super_user_required:
                    raise
                return {'is_valid': False}
            return {'is_valid': True}

    def renew(self, cid: str, ust: Any, current_app: Any, remote_addr: str = '',
              user_agent: str | None = None) -> dict[str, Any]:
        """Moves the session's idle expiry on (never past its absolute one)."""
        with self.ctx.Session() as session:
            current = self.current(session, ust, current_app)
            expiration_time = self.sessions.renew(session, current, self.ctx.clock())
            session.commit()
            return {'expiration_time': iso(expiration_time)}

    def get(self, cid: str, target_ust: Any, current_ust: Any, current_app: Any, remote_addr: str = '',
            user_agent: str | None = None) -> dict[str, Any]:
        with self.ctx.Session() as session:
            current = self.current(session, current_ust, current_app)
            target = self._target(session, target_ust or current_ust, current, current_app)
            return session_to_dict(target.session, target.user)

    def get_list(self, cid: str, current_ust: Any, current_app: Any, remote_addr: str = '',
                 target_ust: Any = None, user_id: Any = None) -> list[dict[str, Any]]:
        """Every live session of a user: the caller's own, or, for a super-user, of `user_id` or of
        the user of `target_ust`."""
        with self.ctx.Session() as session:
            current = self.current(session, current_ust, current_app)
            user = current.user
            if user_id is not None and user_id != user.user_id:
                if not user.is_super_user:
                    raise _super_user_required()
                users = Users(self.ctx, self.sessions)
                user = users.require(session, user_id)
            elif target_ust:
                user = self._target(session, target_ust, current, current_app).user
            return [session_to_dict(row, user) for row in self.sessions.list_of(session, user.id, self.ctx.clock())]

    def logout(self, cid: str, ust: Any, current_app: Any, remote_addr: str = '') -> None:
        """Ends the session at once, on every worker and server (the ODB holds it)."""
        with self.ctx.Session() as session:
            current = self.current(session, ust, current_app)
            session.delete(current.session)
            session.commit()


class UserAPI:
    """`sso.user`: 3.1's user calls."""

    def __init__(self, ctx: SSOContext) -> None:
        self.ctx = ctx
        self.sessions = Sessions(ctx)
        self.users = Users(ctx, self.sessions)
        self._login = Login(ctx, self.users, self.sessions)
        self._signup = SignUp(ctx, self.users, self.sessions)
        self._reset = PasswordReset(ctx, self.users)
        self.linked = LinkedAuth(ctx)
        self.session = SessionAPI(ctx, self.sessions)

    def _super_user(self, session: Any, current_ust: Any, current_app: Any) -> Current:
        current = self.session.current(session, current_ust, current_app)
        if not current.user.is_super_user:
            raise _super_user_required()
        return current

    # Logging in and out

    def login(self, cid: str, username: Any, password: Any, current_app: Any, remote_addr: str = '',
              user_agent: str | None = None, has_remote_addr: bool = False, has_user_agent: bool = False,
              new_password: Any = '', totp_code: Any = None) -> LoginResult:
        try:
            return self._login.login(username, password, current_app, remote_addr, user_agent or '',
                                     has_remote_addr, has_user_agent, new_password, totp_code)
        except SSOError as e:
            # The details go to the log only; the caller sees the generic code
            logger.info('SSO login refused, cid `%s`, app `%s`, address `%s`: %s', cid, current_app, remote_addr,
                        e.sub_status)
            raise

    def logout(self, cid: str, ust: Any, current_app: Any, remote_addr: str = '') -> None:
        self.session.logout(cid, ust, current_app, remote_addr)

    # Signing up (zato.sso.signup)

    def signup(self, cid: str, ctx: dict[str, Any], current_app: Any, remote_addr: str = '') -> dict[str, Any]:
        """A new user from `ctx` (3.1's name for the input: username, password, email, the names, app_list),
        waiting for confirmation (and approval); {'confirm_token': ...} when sso.conf says to return it."""
        try:
            return self._signup.signup(ctx, current_app)
        except SSOError as e:
            logger.info('SSO sign-up refused, cid `%s`, app `%s`, address `%s`: %s', cid, current_app, remote_addr,
                        e.sub_status)
            raise

    def confirm_signup(self, cid: str, confirm_token: Any, current_app: Any, remote_addr: str = '') -> None:
        self._signup.confirm(confirm_token, current_app)

    def approve_user(self, cid: str, user_id: Any, current_ust: Any, current_app: Any, remote_addr: str = '') -> None:
        """approval_status `approved` (super-users only)."""
        self._set_approval(user_id, True, current_ust, current_app)

    def reject_user(self, cid: str, user_id: Any, current_ust: Any, current_app: Any, remote_addr: str = '') -> None:
        """approval_status `rejected`; the user's sessions end (super-users only)."""
        self._set_approval(user_id, False, current_ust, current_app)

    def _set_approval(self, user_id: Any, approved: bool, current_ust: Any, current_app: Any) -> None:
        with self.ctx.Session() as session:
            current = self._super_user(session, current_ust, current_app)
            user = self.users.require(session, user_id)
            if user.id == current.user.id:
                raise SSOError(status_code.common.invalid_operation)
            self._signup.set_approval(session, user, approved, current.user.username)
            session.commit()

    # Password reset (zato.sso.reset)

    def password_reset_begin(self, cid: str, credential: Any, current_app: Any, remote_addr: str = '') -> None:
        """Emails a reset token to the user named `credential`, if there is one; the same answer either way."""
        self._reset.begin(credential, current_app)

    def password_reset_complete(self, cid: str, token: Any, new_password: Any, current_app: Any,
                                remote_addr: str = '') -> None:
        """Sets the new password of the token's user and ends every session of the user."""
        try:
            self._reset.complete(token, new_password, current_app)
        except SSOError as e:
            logger.info('SSO password reset refused, cid `%s`, address `%s`: %s', cid, remote_addr, e.sub_status)
            raise

    # Users

    def create_user(self, cid: str, data: dict[str, Any], current_ust: Any, current_app: Any,
                    remote_addr: str = '') -> dict[str, Any]:
        """A new regular user; super-users only. A TOTP key generated for it is returned once."""
        with self.ctx.Session() as session:
            current = self._super_user(session, current_ust, current_app)
            if isinstance(data, dict) and data.get('is_super_user'):
                raise SSOError(status_code.common.invalid_operation)
            user, key = self.users.create(session, data, False, current.user.username)
            session.commit()
            return self._created(user, key)

    def create_super_user(self, cid: str, data: dict[str, Any], current_app: Any = None,
                          remote_addr: str = '') -> dict[str, Any]:
        """A new super-user: Python and the CLI only, never over REST."""
        with self.ctx.Session() as session:
            user, key = self.users.create(session, data, True, 'zato.sso.create-super-user')
            session.commit()
            return self._created(user, key)

    def _created(self, user: SSOUser, key: str | None) -> dict[str, Any]:
        out = user_to_dict(self.ctx, user)
        if key is not None:
            out['totp_key'] = key
            out['totp_uri'] = totp.provisioning_uri(key, user.username, user.totp_label)
        return out

    def get_current_user(self, cid: str, current_ust: Any, current_app: Any, remote_addr: str = '') -> dict[str, Any]:
        with self.ctx.Session() as session:
            return user_to_dict(self.ctx, self.session.current(session, current_ust, current_app).user)

    def get_user_by_id(self, cid: str, user_id: Any, current_ust: Any, current_app: Any,
                       remote_addr: str = '') -> dict[str, Any]:
        with self.ctx.Session() as session:
            current = self.session.current(session, current_ust, current_app)
            if user_id == current.user.user_id:
                return user_to_dict(self.ctx, current.user)
            if not current.user.is_super_user:
                raise _super_user_required()
            return user_to_dict(self.ctx, self.users.require(session, user_id))

    def get_user_by_username(self, cid: str, username: Any) -> dict[str, Any] | None:
        """Python only (trusted code); None for no such user."""
        with self.ctx.Session() as session:
            user = self.users.by_username(session, username)
            return None if user is None else user_to_dict(self.ctx, user)

    def search(self, cid: str, ctx: dict[str, Any], current_ust: Any, current_app: Any,
               remote_addr: str = '') -> dict[str, Any]:
        with self.ctx.Session() as session:
            self._super_user(session, current_ust, current_app)
            return search_users(self.ctx, session, ctx)

    def update_current_user(self, cid: str, data: dict[str, Any], current_ust: Any, current_app: Any,
                            remote_addr: str = '') -> None:
        with self.ctx.Session() as session:
            current = self.session.current(session, current_ust, current_app)
            self.users.update(session, current.user, data, current.user.is_super_user, current.user.username)
            session.commit()

    def update_user_by_id(self, cid: str, user_id: Any, data: dict[str, Any], current_ust: Any, current_app: Any,
                          remote_addr: str = '') -> None:
        with self.ctx.Session() as session:
            current = self.session.current(session, current_ust, current_app)
            if user_id == current.user.user_id:
                target = current.user
            elif current.user.is_super_user:
                target = self.users.require(session, user_id)
            else:
                raise _super_user_required()
            self.users.update(session, target, data, current.user.is_super_user, current.user.username)
            session.commit()

    def delete_user_by_id(self, cid: str, user_id: Any, current_ust: Any, current_app: Any,
                          remote_addr: str = '') -> None:
        with self.ctx.Session() as session:
            current = self._super_user(session, current_ust, current_app)
            user = self.users.require(session, user_id)
            if user.id == current.user.id:
                raise SSOError(status_code.common.invalid_operation)  # a super-user's own account stays
            delete_user(self.ctx, session, user)

    def delete_user_by_username(self, cid: str, username: Any, current_ust: Any, current_app: Any,
                                remote_addr: str = '') -> None:
        with self.ctx.Session() as session:
            user = self.users.by_username(session, username)
            user_id = user.user_id if user is not None else None
        if user_id is None:
            with self.ctx.Session() as session:
                self._super_user(session, current_ust, current_app)
            raise SSOError(status_code.username.invalid)
        self.delete_user_by_id(cid, user_id, current_ust, current_app, remote_addr)

    def lock_user(self, cid: str, user_id: Any, current_ust: Any, current_app: Any, remote_addr: str = '') -> None:
        self._set_locked(user_id, True, current_ust, current_app)

    def unlock_user(self, cid: str, user_id: Any, current_ust: Any, current_app: Any, remote_addr: str = '') -> None:
        """Also ends a brute-force lockout, temporary or permanent."""
        self._set_locked(user_id, False, current_ust, current_app)

    def _set_locked(self, user_id: Any, locked: bool, current_ust: Any, current_app: Any) -> None:
        with self.ctx.Session() as session:
            current = self._super_user(session, current_ust, current_app)
            user = self.users.require(session, user_id)
            if user.id == current.user.id:
                raise SSOError(status_code.common.invalid_operation)
            self.users.set_locked(session, user, locked, current.user.username)
            session.commit()

    def change_password(self, cid: str, data: dict[str, Any], current_ust: Any, current_app: Any,
                        remote_addr: str = '') -> None:
        """Users change their own with `old_password` and `new_password` (their other sessions end);
        a super-user sets anyone's with `user_id` and `new_password` (and `must_change`,
        `password_expiry` in days), which ends every session of that user."""
        if not isinstance(data, dict):
            raise SSOError(status_code.common.invalid_input)
        with self.ctx.Session() as session:
            current = self.session.current(session, current_ust, current_app)
            user_id = data.get('user_id')
            new = data.get('new_password')
            if new is None:
                raise SSOError(status_code.common.missing_input)
            if user_id is not None and user_id != current.user.user_id:
                if not current.user.is_super_user:
                    raise _super_user_required()
                target = self.users.require(session, user_id)
                must_change = data.get('must_change', False)
                expiry = data.get('password_expiry')
                if not isinstance(must_change, bool) or expiry is not None and (
                        not isinstance(expiry, int) or isinstance(expiry, bool) or not 0 <= expiry <= 36500):
                    raise SSOError(status_code.common.invalid_input)
                self.users.set_password(session, target, new, must_change, expiry)
            else:
                from zato.security.passwords import verify_password
                old = data.get('old_password')
                if not isinstance(old, str) or not verify_password(current.user.password_hash, old):
                    raise SSOError(status_code.auth.not_allowed)
                self.users.set_password(session, current.user, new, keep_session_id=current.session.id)
            session.commit()

    def reset_totp_key(self, cid: str, current_ust: Any, user_id: Any = None, key: Any = None,
                       key_label: Any = None, current_app: Any = None, remote_addr: str = '') -> dict[str, Any]:
        """A new TOTP key (given, or random) for the caller, or for anyone by a super-user; the key and
        its otpauth:// URI are returned this once. The user's other sessions end."""
        with self.ctx.Session() as session:
            current = self.session.current(session, current_ust, current_app)
            if user_id is not None and user_id != current.user.user_id:
                if not current.user.is_super_user:
                    raise _super_user_required()
                target, keep = self.users.require(session, user_id), None
            else:
                target, keep = current.user, current.session.id
            new_key = self.users.reset_totp_key(session, target, key, key_label, keep)
            session.commit()
            return {'totp_key': new_key, 'totp_uri': totp.provisioning_uri(new_key, target.username,
                                                                             target.totp_label)}

    # Linked credentials (zato.sso.linked)

    def create_linked_auth(self, cid: str, ust: Any, user_id: Any, auth_type: Any, auth_username: Any = None,
                           is_active: Any = True, current_app: Any = None, remote_addr: str = '',
                           sec_name: Any = None) -> tuple[str, int]:
        """Links the Basic Auth or JWT definition whose user name is `auth_username` (or named
        `sec_name`) to the user; super-users only. (user_id, auth_id), as in 3.1. E010001 (409) when
        the definition is linked already."""
        with self.ctx.Session() as session:
            current = self._super_user(session, ust, current_app)
            user = self.users.require(session, user_id)
            sec = self.linked.definition(session, auth_type, auth_username, sec_name)
            link = self.linked.create(session, user, sec, is_active, current.user.username)
            self.ctx.commit_change(session, LINKED_KIND, link.id)
            return user.user_id, sec.id

    def get_linked_auth_list(self, cid: str, ust: Any, current_app: Any, remote_addr: str = '',
                             user_id: Any = None) -> list[dict[str, Any]]:
        """The caller's links, or, for a super-user, those of `user_id`."""
        with self.ctx.Session() as session:
            current = self.session.current(session, ust, current_app)
            user = current.user
            if user_id is not None and user_id != user.user_id:
                if not user.is_super_user:
                    raise _super_user_required()
                user = self.users.require(session, user_id)
            return self.linked.list_of(session, user)

    def delete_linked_auth(self, cid: str, ust: Any, user_id: Any, auth_type: Any, auth_username: Any = None,
                           current_app: Any = None, remote_addr: str = '', sec_name: Any = None) -> int:
        """Removes a link (super-users only) and ends the sessions it opened; every worker stops acting
        as the user at once. The definition's id (3.1's auth_id)."""
        with self.ctx.Session() as session:
            self._super_user(session, ust, current_app)
            user = self.users.require(session, user_id)
            sec = self.linked.definition(session, auth_type, auth_username, sec_name)
            link = self.linked.delete(session, user, sec)
            self.ctx.commit_change(session, LINKED_KIND, link.id)
            return sec.id

    def get_user_by_linked_auth(self, cid: str, auth_type: Any, auth_username: Any = None,
                                sec_name: Any = None) -> dict[str, Any] | None:
        """Python only (trusted code): the user an active link of that definition names; None for none."""
        with self.ctx.Session() as session:
            try:
                sec = self.linked.definition(session, auth_type, auth_username, sec_name)
            except SSOError:
                return None
            user = self.linked.user_of(session, sec.id)
            return None if user is None else user_to_dict(self.ctx, user)


class Admin:
    """What trusted code may do without a session (the CLI's `zato sso ...`), by username."""

    def __init__(self, user: UserAPI) -> None:
        self.user = user
        self.ctx = user.ctx

    def _require(self, session: Any, username: str) -> SSOUser:
        user = self.user.users.by_username(session, username)
        if user is None:
            raise SSOError(status_code.username.invalid)
        return user

    def create_user(self, data: dict[str, Any], is_super_user: bool = False) -> dict[str, Any]:
        with self.ctx.Session() as session:
            user, key = self.user.users.create(session, data, is_super_user, 'zato.sso.cli')
            session.commit()
            return self.user._created(user, key)

    def delete_user(self, username: str) -> None:
        with self.ctx.Session() as session:
            delete_user(self.ctx, session, self._require(session, username))

    def set_locked(self, username: str, locked: bool) -> None:
        with self.ctx.Session() as session:
            self.user.users.set_locked(session, self._require(session, username), locked, 'zato.sso.cli')
            session.commit()

    def set_password(self, username: str, password: str, must_change: bool = False,
                     expiry_days: int | None = None) -> None:
        with self.ctx.Session() as session:
            self.user.users.set_password(session, self._require(session, username), password, must_change,
                                         expiry_days)
            session.commit()

    def reset_totp_key(self, username: str, key: str | None = None, label: str | None = None) -> dict[str, Any]:
        with self.ctx.Session() as session:
            user = self._require(session, username)
            new_key = self.user.users.reset_totp_key(session, user, key, label)
            session.commit()
            return {'totp_key': new_key, 'totp_uri': totp.provisioning_uri(new_key, user.username, user.totp_label)}


class SSO:
    """`self.sso`: `.user` (and `.user.session`), and `.admin` for trusted code."""

    def __init__(self, ctx: SSOContext) -> None:
        self.ctx = ctx
        self.user = UserAPI(ctx)
        self.admin = Admin(self.user)

    def purge(self) -> Purged:
        """Deletes expired sessions and expired tokens, used or not (a bounded batch of each)."""
        return purge(self.ctx)
