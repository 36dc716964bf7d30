"""Password reset (empty in 3.1): a single-use token by email, then a new password with it.

`begin` is answered the same way whatever the username - the same status, body and time - because
it does nothing the caller waits for: it checks only the input's shape and `current_app`, then the
looking up, the token and the email happen after the answer (`SSOContext.defer`). A token goes out
only to a user that exists, has an email, is not locked by a super-user, and was not sent one in the
last [password_reset] min_interval seconds (so nobody floods a mailbox); it is valid for valid_for
minutes and accepted once. An older token of the user still unused stays valid until the first of
them is used; then every other ends.

`complete` takes the token and the new password: the password must follow the [password] policy
(checked before the token is spent, so a refused password does not waste it), then the token is
spent, the password set, and every session of the user ended, as is a brute-force lockout. A token
that is unknown, used or expired is the generic E005001.
"""

from __future__ import annotations

import logging
from typing import Any

from zato.odb.models import SSOUser
from zato.sso import mail
from zato.sso.context import SSOContext
from zato.sso.status import SSOError, not_allowed, status_code
from zato.sso.tokens import PASSWORD_RESET, TokenRefused, Tokens
from zato.sso.users import Users
from zato.sso.validation import check_password

logger = logging.getLogger('zato.sso')


class PasswordReset:
    def __init__(self, ctx: SSOContext, users: Users) -> None:
        self.ctx = ctx
        self.users = users
        self.tokens = Tokens(ctx)

    def begin(self, credential: Any, current_app: Any) -> None:
        """Sends a reset token to the user named `credential` (a username), if there is one."""
        self.ctx.check_app(current_app)
        if credential is None or credential == '':
            raise SSOError(status_code.common.missing_input)
        if not isinstance(credential, str) or len(credential) > 200:
            raise SSOError(status_code.common.invalid_input)
        self.ctx.defer(lambda: self._begin(credential))

    def _begin(self, username: str) -> None:
        conf = self.ctx.config['password_reset']
        with self.ctx.Session() as session:
            user = self.users.by_username(session, username)
            if user is None or user.is_locked or not user.email:
                logger.info('SSO password reset: no token for `%s` (%s)', username,
                            'no such user' if user is None else 'locked' if user.is_locked else 'no email')
                return
            now = self.ctx.clock()
            last = self.tokens.last_issued(session, user.id, PASSWORD_RESET)
            if last is not None and now - last < conf['min_interval']:
                logger.info('SSO password reset: no token for `%s` (one was sent %.0f s ago)', username, now - last)
                return
            token = self.tokens.issue(session, user.id, PASSWORD_RESET, conf['valid_for'] * 60, now)
            session.commit()
            email = self.ctx.cipher.decrypt(user.email)
            username, display_name = user.username, user.display_name
        mail.send(self.ctx, 'password reset', conf['email_from'], email, conf['email_title'], conf['email_template'],
                  username, display_name, token)

    def complete(self, token: Any, new_password: Any, current_app: Any) -> None:
        self.ctx.check_app(current_app)
        if token is None or token == '' or new_password is None or new_password == '':
            raise SSOError(status_code.common.missing_input)
        check_password(self.ctx.config, new_password)
        with self.ctx.Session() as session:
            try:
                user_pk = self.tokens.use(session, token, PASSWORD_RESET, self.ctx.clock())
            except TokenRefused as e:
                logger.info('SSO password reset refused: token %s', e.reason.value)
                raise not_allowed() from None
            user = session.get(SSOUser, user_pk)
            if user is None or user.is_locked:
                raise not_allowed()
            self.users.set_password(session, user, new_password)  # every session of the user ends
            user.failed_logins, user.lockout_count, user.locked_until, user.last_failure_time = 0, 0, 0.0, 0.0
            self.tokens.end_all_of(session, user.id, PASSWORD_RESET)
            session.commit()
