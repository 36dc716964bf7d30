"""Signing up: a new user from 3.1's fields, a confirmation token by email, the confirmation, and a
super-user's approval.

1. `current_app` must be one of [apps] signup_allowed (empty by default: nobody signs up until it
   names an application), else E004002; so must every application of `app_list`, when given.
2. The username, email and password follow [user_validation], [signup] and [password]; why one is
   refused is said only when the matching inform_if_* flag allows it (else the generic E005001).
3. A username or email someone has already is refused with E001002 or E002002 only when
   [signup] inform_if_user_exists or inform_if_email_exists say so. Otherwise the answer is the one
   a new user gets - the same status, body and work (the password hashed, a row written and
   committed) - with a token that confirms nothing, so that sign-up does not tell who has an account.
4. The user starts with sign_up_status `before_confirmation` and, with [signup] is_approval_needed,
   approval_status `before_decision` (else `approved`). The token goes out by email after the answer
   ([signup] email_confirm_*) and, with always_return_confirm_token, in the answer too.
5. Confirming with the token makes sign_up_status `final`: once (E005007 after that), before it
   expires ([signup] confirm_token_expiry); an unknown or expired token is E005006. Logging in needs
   `final` and `approved` both (zato.sso.login). With [signup] email_welcome_enabled a welcome email
   follows the confirmation.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from zato.odb.models import SSOUser
from zato.security.passwords import hash_password
from zato.sso import hooks, mail
from zato.sso.context import SSOContext
from zato.sso.sessions import Sessions
from zato.sso.status import SSOError, not_allowed, status_code
from zato.sso.tokens import DECOY, SIGNUP, TOKEN_BYTES, Refused, TokenRefused, Tokens
from zato.sso.users import APPROVED, FINAL, NAMES, Users, user_to_dict
from zato.sso.validation import check_email, check_password, check_username

BEFORE_CONFIRMATION, BEFORE_DECISION, REJECTED = 'before_confirmation', 'before_decision', 'rejected'


def _informed(flag: bool, error: SSOError) -> SSOError:
    return error if flag else not_allowed()


class SignUp:
    def __init__(self, ctx: SSOContext, users: Users, sessions: Sessions) -> None:
        self.ctx = ctx
        self.users = users
        self.sessions = sessions
        self.tokens = Tokens(ctx)

    def _check_apps(self, data: dict[str, Any], current_app: Any) -> None:
        app = self.ctx.check_app(current_app)
        allowed = self.ctx.config.get('apps', 'signup_allowed')
        app_list = data.get('app_list')
        if app_list is not None and (not isinstance(app_list, list) or
                                     not all(isinstance(item, str) for item in app_list)):
            raise SSOError(status_code.common.invalid_input)
        if app not in allowed or any(item not in allowed for item in app_list or ()):
            raise SSOError(status_code.app_list.no_signup, status=403)

    def signup(self, data: Any, current_app: Any, cid: str = '') -> dict[str, Any]:
        """A new user waiting for confirmation; {'confirm_token': ...} with [signup] always_return_confirm_token."""
        if not isinstance(data, dict):
            raise SSOError(status_code.common.invalid_input)
        config = self.ctx.config
        conf = config['signup']
        self._check_apps(data, current_app)
        try:
            username = check_username(config, data.get('username'))
        except SSOError as e:
            raise _informed(conf['inform_if_user_invalid'], e) from None
        try:
            email = check_email(config, data.get('email'), conf['email_required'] or conf['is_email_required'])
        except SSOError as e:
            if e.sub_status[0] == status_code.email.missing:
                raise
            raise _informed(conf['inform_if_email_invalid'], e) from None
        password = data.get('password')
        if password is None or password == '':
            raise SSOError(status_code.common.missing_input)
        check_password(config, password)
        for key in NAMES:
            value = data.get(key)
            if value is not None and (not isinstance(value, str) or len(value) > 200):
                raise SSOError(status_code.common.invalid_input)
        hooks.validate(self.ctx, cid, {**data, 'username': username, 'email': email}, current_app)

        now = self.ctx.clock()
        with self.ctx.Session() as session:
            taken, taken_pk = self._taken(session, username, email)
            if taken is None:
                fields = {key: data[key] for key in NAMES if data.get(key) is not None}
                fields.update(username=username, email=email, password=password, sign_up_status=BEFORE_CONFIRMATION,
                              approval_status=BEFORE_DECISION if conf['is_approval_needed'] else APPROVED)
                try:
                    user, _ = self.users.create(session, fields, False, 'zato.sso.signup')
                    token = self.tokens.issue(session, user.id, SIGNUP, conf['confirm_token_expiry'] * 60, now)
                    session.commit()
                    new_user = user_to_dict(self.ctx, user)
                except IntegrityError:  # the same username signed up at the same moment on another worker
                    session.rollback()
                    taken = status_code.username.exists
                except SSOError as e:  # the same, committed between our look and create's
                    if e.sub_status[0] != status_code.username.exists:
                        raise
                    session.rollback()
                    taken = status_code.username.exists
            if taken is not None:
                if taken == status_code.username.exists and conf['inform_if_user_exists'] or \
                        taken == status_code.email.exists and conf['inform_if_email_exists']:
                    raise SSOError(taken)
                # What a real sign-up costs: the password hashed, and a row written and committed (a token
                # that is dead from the start, of a kind nothing accepts; the purge removes it)
                hash_password(password)
                if taken_pk is not None:
                    self.tokens.issue(session, taken_pk, DECOY, 0, now)
                    session.commit()
                token = secrets.token_urlsafe(TOKEN_BYTES)  # confirms nothing
            else:
                display_name = data.get('display_name') or ''
                sent = token

                def send() -> None:
                    self._send(username, display_name, email, sent)
                self.ctx.defer(send)
                hooks.signed_up(self.ctx, cid, new_user, current_app, token)
        return {'confirm_token': token} if conf['always_return_confirm_token'] else {}

    def _taken(self, session: Any, username: str, email: str) -> tuple[str | None, int | None]:
        """(E001002 or E002002 if the username or the email is someone's, the primary key of that user)."""
        user = self.users.by_username(session, username)
        if user is not None:
            return status_code.username.exists, user.id
        if email:
            pk = session.scalars(select(SSOUser.id).where(SSOUser.cluster_id == self.ctx.cluster_id,
                                                          SSOUser.email_key == self.ctx.email_key(email))).first()
            if pk is not None:
                return status_code.email.exists, pk
        return None, None

    def _send(self, username: str, display_name: str, email: str, token: str) -> bool:
        conf = self.ctx.config['signup']
        if not conf['email_confirm_enabled'] or not email:
            return False
        return mail.send(self.ctx, 'sign-up confirmation', conf['email_confirm_from'], email,
                         conf['email_confirm_title'], conf['email_confirm_template'], username, display_name, token)

    def confirm(self, token: Any, current_app: Any) -> None:
        """The sign-up of the token's user is confirmed: sign_up_status `final`."""
        self.ctx.check_app(current_app)
        if token is None or token == '':
            raise SSOError(status_code.common.missing_input)
        with self.ctx.Session() as session:
            try:
                user_pk = self.tokens.use(session, token, SIGNUP, self.ctx.clock())
            except TokenRefused as e:
                if e.reason is Refused.used:
                    raise SSOError(status_code.auth.sign_up_confirmed) from None
                raise SSOError(status_code.auth.no_such_sign_up_token) from None
            user = session.get(SSOUser, user_pk)
            if user is None:
                raise SSOError(status_code.auth.no_such_sign_up_token)
            if user.sign_up_status == BEFORE_CONFIRMATION:
                user.sign_up_status = FINAL
            session.commit()
            username, display_name = user.username, user.display_name
            email = self.ctx.cipher.decrypt(user.email) if user.email else ''
        conf = self.ctx.config['signup']
        if conf['email_welcome_enabled'] and email:
            def welcome() -> None:
                mail.send(self.ctx, 'welcome', conf['email_welcome_from'], email, conf['email_welcome_title'],
                          conf['email_welcome_template'], username, display_name, '')
            self.ctx.defer(welcome)

    def set_approval(self, session: Any, user: SSOUser, approved: bool, by: str) -> None:
        """A super-user's decision; a rejected user's sessions end."""
        user.approval_status = APPROVED if approved else REJECTED
        user.approval_status_time, user.approval_status_mod_by = self.ctx.clock(), by
        if not approved:
            self.sessions.end_all_of(session, user.id)
