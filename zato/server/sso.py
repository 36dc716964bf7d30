"""SSO served by a server: the core (zato.sso) built when `[component_enabled] sso` is true, and
3.1's REST channels under /zato/sso/..., internal channels that go through the same guard chain as
every other channel (the IP level of the rate-limit hierarchy and its allow-list apply to them, as to
any user channel) and answer errors through zato.errors.failure_of, as 3.1's envelope.

No HTTP authentication on these channels, as in 3.1: the body (or query string) names the caller's
session, `ust` or `current_ust`, and `current_app`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from zato.server.admin.base import AdminService
from zato.server.client_address import client_address
from zato.sso.api import SSO
from zato.sso.config import load as load_config
from zato.sso.context import Cipher, SSOContext, derive_hash_key
from zato.sso.status import OK, SSOError, status_code

if TYPE_CHECKING:
    from zato.server.runtime import Runtime

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
)


def build(runtime: Runtime, secret_key: str) -> Callable[[], SSO]:
    """Reads sso.conf now (a bad one stops the start); returns what makes the worker's SSO core once
    the runtime knows its cluster."""
    config = load_config(runtime.env_dir)
    hash_key = derive_hash_key(secret_key)

    def start() -> SSO:
        cipher = Cipher(runtime.crypto.encrypt, runtime.crypto.decrypt)
        return SSO(SSOContext(runtime.Session, runtime.cluster_id, config, cipher, hash_key))
    return start


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
        payload = self.request.payload
        if payload is not None and payload != b'' and not isinstance(payload, dict):
            raise SSOError(status_code.common.invalid_input)
        return self.input_dict()

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
