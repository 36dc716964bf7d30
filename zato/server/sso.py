"""SSO served by a server: the core (zato.sso) built when `[component_enabled] sso` is true, and
3.1's REST channels under /zato/sso/..., internal channels that go through the same guard chain as
every other channel (the IP level of the rate-limit hierarchy and its allow-list apply to them, as to
any user channel) and answer errors through zato.errors.failure_of, as 3.1's envelope.

No HTTP authentication on these channels, as in 3.1: the body (or query string) names the caller's
session, `ust` or `current_ust`, and `current_app`.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gevent

from zato.connectors.smtp_message import SMTPMessage
from zato.server.admin.base import AdminService, nul_in
from zato.server.client_address import client_address
from zato.sso.api import SSO
from zato.sso.config import load as load_config
from zato.sso.context import Cipher, SSOContext, derive_hash_key
from zato.service.facades import OutFacade
from zato.sso.purge import LIMIT as PURGE_LIMIT
from zato.sso.status import OK, SSOError, status_code

if TYPE_CHECKING:
    from zato.server.runtime import Runtime

logger = logging.getLogger('zato.sso')

# url path, method, service
ROUTES = (
    ('/zato/sso/user/login', 'POST', 'zato.sso.user.login'),
    ('/zato/sso/user/logout', 'POST', 'zato.sso.user.logout'),
    ('/zato/sso/user', 'GET', 'zato.sso.user.get'),
    ('/zato/sso/user', 'POST', 'zato.sso.user.create'),
    ('/zato/sso/user', 'PATCH', 'zato.sso.user.update'),
    ('/zato/sso/user', 'DELETE', 'zato.sso.user.delete'),
    ('/zato/sso/user/search', 'GET', 'zato.sso.user.search'),
    ('/zato/sso/user/lock', 'POST', 'zato.sso.user.lock'),
    ('/zato/sso/user/unlock', 'POST', 'zato.sso.user.unlock'),
    ('/zato/sso/user/password', 'PATCH', 'zato.sso.user.password.change'),
    ('/zato/sso/user/totp', 'PATCH', 'zato.sso.user.totp.reset'),
    ('/zato/sso/user/session', 'POST', 'zato.sso.session.verify'),
    ('/zato/sso/user/session', 'PATCH', 'zato.sso.session.renew'),
    ('/zato/sso/user/session', 'GET', 'zato.sso.session.get'),
    ('/zato/sso/user/session/list', 'GET', 'zato.sso.session.get-list'),
    ('/zato/sso/user/signup', 'POST', 'zato.sso.user.signup'),
    ('/zato/sso/user/signup', 'PATCH', 'zato.sso.user.signup.confirm'),  # 3.1's confirmation
    ('/zato/sso/user/confirm', 'POST', 'zato.sso.user.signup.confirm'),
    ('/zato/sso/user/approve', 'POST', 'zato.sso.user.approve'),
    ('/zato/sso/user/reject', 'POST', 'zato.sso.user.reject'),
    ('/zato/sso/user/password/reset/begin', 'POST', 'zato.sso.user.password.reset.begin'),
    ('/zato/sso/user/password/reset/complete', 'POST', 'zato.sso.user.password.reset.complete'),
    # Linked credentials (zato.sso.linked)
    ('/zato/sso/user/linked', 'POST', 'zato.sso.user.linked.create'),
    ('/zato/sso/user/linked', 'GET', 'zato.sso.user.linked.get-list'),
    ('/zato/sso/user/linked', 'DELETE', 'zato.sso.user.linked.delete'),
)

PURGE_LEASE = 'zato.sso.purge'



def build(runtime: Runtime, secret_key: str) -> Callable[[], SSO]:
    """Reads sso.conf now (a bad one stops the start); returns what makes the worker's SSO core once
    the runtime knows its cluster."""
    config = load_config(runtime.env_dir)
    hash_key = derive_hash_key(secret_key)
    email_dir = os.path.join(runtime.env_dir, 'config', 'repo', 'static', 'email')

    def mailer(conn_name: str, from_: str, to: str, subject: str, body: str) -> None:
        # The same connection as a service's self.email.smtp[name].conn
        conn = OutFacade(runtime.outconns, runtime.outconn_mgr.catch_up).smtp[conn_name].conn
        conn.send(SMTPMessage(from_=from_, to=to, subject=subject, body=body))

    def start() -> SSO:
        cipher = Cipher(runtime.crypto.encrypt, runtime.crypto.decrypt)
        return SSO(SSOContext(runtime.Session, runtime.cluster_id, config, cipher, hash_key, mailer=mailer,
                              email_dir=email_dir, defer=_defer, commit_change=runtime.commit_change))
    return start


def _defer(work: Callable[[], None]) -> None:
    """Work the caller's answer must not wait for (emails, password-reset lookups), in a greenlet of its own."""
    def run() -> None:
        try:
            work()
        except Exception:
            logger.exception('SSO background work failed')
    gevent.spawn(run)


class Purger:
    """Every [session] purge_interval seconds, each worker asks for the purge lease for that long; the one
    that gets it purges expired sessions and tokens (zato.sso.purge), in batches until none is left,
    so the cluster purges once per interval whatever its size."""

    def __init__(self, runtime: Runtime, sso: SSO) -> None:
        self.runtime = runtime
        self.sso = sso
        self.interval = float(sso.ctx.config.get('session', 'purge_interval'))
        self.holder = f'{runtime.server_name}:{os.getpid()}'

    def run_once(self) -> int:
        """Rows purged by this worker now; 0 when another holds the lease."""
        if self.runtime.leases.acquire(PURGE_LEASE, self.holder, self.interval) is None:
            return 0
        total = 0
        while True:
            purged = self.sso.purge()
            total += purged.sessions + purged.tokens
            if purged.sessions < PURGE_LIMIT and purged.tokens < PURGE_LIMIT:
                break
            gevent.sleep(0)  # a long backlog does not hold the worker
        if total:
            logger.info('SSO purge: %d expired sessions and tokens deleted', total)
        return total

    def run(self) -> None:
        while True:
            gevent.sleep(self.interval * random.uniform(0.5, 1.0))
            try:
                self.run_once()
            except Exception:
                logger.exception('SSO purge failed; trying again in %s s', self.interval)


class _SSOService(AdminService):
    """Input as 3.1 took it (a JSON body, or the query string of a GET), the caller's address, and the
    3.1 envelope around each answer."""

    zato_dont_import = True

    @property
    def sso(self) -> SSO:
        sso = self.server.sso
        if sso is None:  # the channels are not routed without SSO; a direct invocation is refused
            raise SSOError(status_code.common.invalid_operation)
        return sso

    def input(self) -> dict[str, Any]:
        data = self.merged_input()
        if data is None or nul_in(data) is not None:
            # Not a JSON object; or NUL, which no name, password, token or text of SSO may hold (nor
            # PostgreSQL's text)
            raise SSOError(status_code.common.invalid_input)
        return data

    @staticmethod
    def text(data: dict[str, Any], name: str, required: bool = True) -> Any:
        value = data.get(name)
        if value is None or value == '':
            if required:
                raise SSOError(status_code.common.missing_input)
            return None
        if not isinstance(value, str):
            raise SSOError(status_code.common.invalid_input)
        return value

    def remote_addr(self) -> str:
        http = self.request.http
        if http is None:
            return ''
        return client_address(http.peer, http.headers.get('x-forwarded-for'), self.server.trusted_proxies)

    def user_agent(self) -> str:
        http = self.request.http
        return '' if http is None else http.headers.get('user-agent', '')

    def reply(self, data: dict[str, Any] | None = None, status: str = OK) -> None:
        self.response.headers['Cache-Control'] = 'no-store'
        self.response.payload = {'cid': self.cid, 'status': status, **(data or {})}

    def ust(self, data: dict[str, Any]) -> Any:
        """The caller's session: 3.1 named it `ust` in some calls and `current_ust` in others."""
        return self.text(data, 'current_ust', False) or self.text(data, 'ust')


class Login(_SSOService):
    """POST /zato/sso/user/login {username, password, current_app, totp_code?, new_password?,
    remote_addr?, user_agent?} -> {ust, user_id, username, creation_time, expiration_time}."""
    name = 'zato.sso.user.login'

    def handle(self) -> None:
        data = self.input()
        own_addr, own_agent = self.text(data, 'remote_addr', False), self.text(data, 'user_agent', False)
        totp_code = data.get('totp_code')
        result = self.sso.user.login(self.cid, self.text(data, 'username'), self.text(data, 'password'),
                                     self.text(data, 'current_app'), own_addr or self.remote_addr(),
                                     own_agent or self.user_agent(), has_remote_addr=own_addr is not None,
                                     has_user_agent=own_agent is not None,
                                     new_password=self.text(data, 'new_password', False) or '',
                                     totp_code=totp_code)
        out = result.to_dict()
        status = out.pop('status')
        self.reply(out, status)


class Logout(_SSOService):
    name = 'zato.sso.user.logout'

    def handle(self) -> None:
        data = self.input()
        self.sso.user.logout(self.cid, self.ust(data), self.text(data, 'current_app'), self.remote_addr())
        self.reply()


class GetUser(_SSOService):
    """GET /zato/sso/user: the caller, or, with `user_id`, any user for a super-user."""
    name = 'zato.sso.user.get'

    def handle(self) -> None:
        data = self.input()
        user_id = self.text(data, 'user_id', False)
        app = self.text(data, 'current_app')
        if user_id:
            user = self.sso.user.get_user_by_id(self.cid, user_id, self.ust(data), app, self.remote_addr())
        else:
            user = self.sso.user.get_current_user(self.cid, self.ust(data), app, self.remote_addr())
        self.reply(user)


_NOT_USER_DATA = ('ust', 'current_ust', 'current_app', 'user_id')


class CreateUser(_SSOService):
    """POST /zato/sso/user (super-users only)."""
    name = 'zato.sso.user.create'

    def handle(self) -> None:
        data = self.input()
        fields = {key: value for key, value in data.items() if key not in _NOT_USER_DATA}
        user = self.sso.user.create_user(self.cid, fields, self.ust(data), self.text(data, 'current_app'),
                                         self.remote_addr())
        self.reply(user)


class UpdateUser(_SSOService):
    """PATCH /zato/sso/user: the caller's own data, or, with `user_id`, any user's for a super-user."""
    name = 'zato.sso.user.update'

    def handle(self) -> None:
        data = self.input()
        fields = {key: value for key, value in data.items() if key not in _NOT_USER_DATA}
        user_id = self.text(data, 'user_id', False)
        app = self.text(data, 'current_app')
        if user_id:
            self.sso.user.update_user_by_id(self.cid, user_id, fields, self.ust(data), app, self.remote_addr())
        else:
            self.sso.user.update_current_user(self.cid, fields, self.ust(data), app, self.remote_addr())
        self.reply()


class DeleteUser(_SSOService):
    """DELETE /zato/sso/user {user_id | username} (super-users only)."""
    name = 'zato.sso.user.delete'

    def handle(self) -> None:
        data = self.input()
        app = self.text(data, 'current_app')
        user_id = self.text(data, 'user_id', False)
        if user_id:
            self.sso.user.delete_user_by_id(self.cid, user_id, self.ust(data), app, self.remote_addr())
        else:
            self.sso.user.delete_user_by_username(self.cid, self.text(data, 'username'), self.ust(data), app,
                                                  self.remote_addr())
        self.reply()


class SearchUsers(_SSOService):
    name = 'zato.sso.user.search'

    def handle(self) -> None:
        data = self.input()
        criteria = {key: value for key, value in data.items() if key not in ('ust', 'current_ust', 'current_app')}
        self.reply(self.sso.user.search(self.cid, criteria, self.ust(data), self.text(data, 'current_app'),
                                        self.remote_addr()))


class LockUser(_SSOService):
    """POST /zato/sso/user/lock {user_id}: the user's sessions end (super-users only)."""
    name = 'zato.sso.user.lock'

    def handle(self) -> None:
        data = self.input()
        self.sso.user.lock_user(self.cid, self.text(data, 'user_id'), self.ust(data), self.text(data, 'current_app'),
                                self.remote_addr())
        self.reply()


class UnlockUser(_SSOService):
    """POST /zato/sso/user/unlock {user_id}: also ends a brute-force lockout (super-users only)."""
    name = 'zato.sso.user.unlock'

    def handle(self) -> None:
        data = self.input()
        self.sso.user.unlock_user(self.cid, self.text(data, 'user_id'), self.ust(data),
                                  self.text(data, 'current_app'), self.remote_addr())
        self.reply()


class ChangePassword(_SSOService):
    name = 'zato.sso.user.password.change'

    def handle(self) -> None:
        data = self.input()
        fields: dict[str, Any] = {key: data[key] for key in ('old_password', 'new_password', 'user_id', 'must_change',
                                                             'password_expiry') if key in data}
        self.sso.user.change_password(self.cid, fields, self.ust(data), self.text(data, 'current_app'),
                                      self.remote_addr())
        self.reply()


class ResetTOTPKey(_SSOService):
    """PATCH /zato/sso/user/totp {user_id?, totp_key?, totp_key_label?} -> the key and its URI, once."""
    name = 'zato.sso.user.totp.reset'

    def handle(self) -> None:
        data = self.input()
        out = self.sso.user.reset_totp_key(self.cid, self.ust(data), self.text(data, 'user_id', False),
                                           self.text(data, 'totp_key', False),
                                           self.text(data, 'totp_key_label', False),
                                           self.text(data, 'current_app'), self.remote_addr())
        self.reply(out)


class VerifySession(_SSOService):
    name = 'zato.sso.session.verify'

    def handle(self) -> None:
        data = self.input()
        self.reply(self.sso.user.session.verify(self.cid, self.text(data, 'target_ust'), self.ust(data),
                                                self.text(data, 'current_app'), self.remote_addr()))


class RenewSession(_SSOService):
    name = 'zato.sso.session.renew'

    def handle(self) -> None:
        data = self.input()
        self.reply(self.sso.user.session.renew(self.cid, self.ust(data), self.text(data, 'current_app'),
                                               self.remote_addr()))


class GetSession(_SSOService):
    name = 'zato.sso.session.get'

    def handle(self) -> None:
        data = self.input()
        self.reply(self.sso.user.session.get(self.cid, self.text(data, 'target_ust', False), self.ust(data),
                                             self.text(data, 'current_app'), self.remote_addr()))


class GetSessionList(_SSOService):
    name = 'zato.sso.session.get-list'

    def handle(self) -> None:
        data = self.input()
        result = self.sso.user.session.get_list(self.cid, self.ust(data), self.text(data, 'current_app'),
                                                self.remote_addr(), self.text(data, 'target_ust', False),
                                                self.text(data, 'user_id', False))
        self.reply({'result': result})


class SignUp(_SSOService):
    """POST /zato/sso/user/signup {username, password, email, display_name?, first_name?, middle_name?,
    last_name?, app_list?, current_app} -> {confirm_token} (with [signup] always_return_confirm_token)."""
    name = 'zato.sso.user.signup'

    def handle(self) -> None:
        data = self.input()
        fields = {key: value for key, value in data.items() if key != 'current_app'}
        self.reply(self.sso.user.signup(self.cid, fields, self.text(data, 'current_app'), self.remote_addr()))


class ConfirmSignUp(_SSOService):
    """POST /zato/sso/user/confirm (or 3.1's PATCH /zato/sso/user/signup) {confirm_token, current_app}."""
    name = 'zato.sso.user.signup.confirm'

    def handle(self) -> None:
        data = self.input()
        self.sso.user.confirm_signup(self.cid, self.text(data, 'confirm_token'), self.text(data, 'current_app'),
                                     self.remote_addr())
        self.reply()


class ApproveUser(_SSOService):
    """POST /zato/sso/user/approve {user_id} (super-users only)."""
    name = 'zato.sso.user.approve'

    def handle(self) -> None:
        data = self.input()
        self.sso.user.approve_user(self.cid, self.text(data, 'user_id'), self.ust(data),
                                   self.text(data, 'current_app'), self.remote_addr())
        self.reply()


class RejectUser(_SSOService):
    """POST /zato/sso/user/reject {user_id} (super-users only)."""
    name = 'zato.sso.user.reject'

    def handle(self) -> None:
        data = self.input()
        self.sso.user.reject_user(self.cid, self.text(data, 'user_id'), self.ust(data),
                                  self.text(data, 'current_app'), self.remote_addr())
        self.reply()


class PasswordResetBegin(_SSOService):
    """POST /zato/sso/user/password/reset/begin {username (or 3.2's credential), current_app}: the same
    answer whether or not the user exists; the token goes by email."""
    name = 'zato.sso.user.password.reset.begin'

    def handle(self) -> None:
        data = self.input()
        credential = self.text(data, 'username', False) or self.text(data, 'credential')
        self.sso.user.password_reset_begin(self.cid, credential, self.text(data, 'current_app'),
                                           self.remote_addr())
        self.reply()


class PasswordResetComplete(_SSOService):
    """POST /zato/sso/user/password/reset/complete {token, new_password, current_app}: every session of
    the user ends."""
    name = 'zato.sso.user.password.reset.complete'

    def handle(self) -> None:
        data = self.input()
        self.sso.user.password_reset_complete(self.cid, self.text(data, 'token'), self.text(data, 'new_password'),
                                              self.text(data, 'current_app'), self.remote_addr())
        self.reply()


# Linked credentials (zato.sso.linked)

class CreateLinkedAuth(_SSOService):
    """POST /zato/sso/user/linked {user_id, auth_type (basic_auth | jwt), auth_username (or sec_name),
    is_active?} -> {user_id, auth_id} (super-users only); E010001 (409) for a definition linked already."""
    name = 'zato.sso.user.linked.create'

    def handle(self) -> None:
        data = self.input()
        is_active = data.get('is_active', True)
        user_id, auth_id = self.sso.user.create_linked_auth(
            self.cid, self.ust(data), self.text(data, 'user_id'), self.text(data, 'auth_type'),
            self.text(data, 'auth_username', False), is_active, self.text(data, 'current_app'), self.remote_addr(),
            sec_name=self.text(data, 'sec_name', False))
        self.reply({'user_id': user_id, 'auth_id': auth_id})


class GetLinkedAuthList(_SSOService):
    """GET /zato/sso/user/linked {user_id?} -> {result: [...]}: the caller's links, or any user's for a
    super-user."""
    name = 'zato.sso.user.linked.get-list'

    def handle(self) -> None:
        data = self.input()
        result = self.sso.user.get_linked_auth_list(self.cid, self.ust(data), self.text(data, 'current_app'),
                                                    self.remote_addr(), self.text(data, 'user_id', False))
        self.reply({'result': result})


class DeleteLinkedAuth(_SSOService):
    """DELETE /zato/sso/user/linked {user_id, auth_type, auth_username (or sec_name)} -> {auth_id}
    (super-users only); the sessions the link opened end."""
    name = 'zato.sso.user.linked.delete'

    def handle(self) -> None:
        data = self.input()
        auth_id = self.sso.user.delete_linked_auth(
            self.cid, self.ust(data), self.text(data, 'user_id'), self.text(data, 'auth_type'),
            self.text(data, 'auth_username', False), self.text(data, 'current_app'), self.remote_addr(),
            sec_name=self.text(data, 'sec_name', False))
        self.reply({'auth_id': auth_id})
