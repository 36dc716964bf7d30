"""Admin services for security definitions: Basic Auth, API keys and JWT."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from zato.errors import BadRequest, Conflict, Unauthorized
from zato.odb.models import ChannelREST, ChannelWSX, SecurityDef
from zato.security.authenticate import KINDS
from zato.security.password_policy import check_password
from zato.security.passwords import hash_password, new_password
from zato.server.admin.base import AdminService
from zato.server.admin.crud import CRUD, Delete, Edit, Get, GetList
from zato.server.admin.rate_limits import resolve_limit

HEADER_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def sec_to_dict(row: SecurityDef) -> dict[str, Any]:
    """Never includes the secret or its hash."""
    out: dict[str, Any] = {'id': row.id, 'name': row.name, 'kind': row.kind, 'is_active': row.is_active,
                           'rate_limit_id': row.rate_limit_id}
    if row.kind == 'apikey':
        out['header'] = row.username
    else:
        out['username'] = row.username
        out['realm'] = row.realm
    if row.kind == 'jwt':
        out['ttl'] = row.opaque.get('ttl', 3600)
        out['max_lifetime'] = row.opaque.get('max_lifetime', 86400)
        out['audience'] = row.opaque.get('audience', '')
    return out


class _SecBase(CRUD):
    zato_dont_import = True

    model = SecurityDef
    label = 'security definition'
    bus_kind = 'security'

    def _new_row(self) -> SecurityDef:
        return SecurityDef(cluster_id=self.server.cluster_id, is_internal=False, version=1, opaque={},
                           username='', realm='Zato', kind='basic_auth')

    def _apply(self, session: Any, row: SecurityDef, data: dict[str, Any], creating: bool) -> None:
        f = self.field
        self._apply_name(row, data, creating)
        if creating:
            kind = f(data, 'kind', str)
            if kind not in KINDS:
                raise BadRequest(f'Invalid input `kind`: expected one of {", ".join(KINDS)}')
            row.kind = kind
        if row.kind == 'apikey':
            header = f(data, 'header', str, creating, row.username)
            if not header or not set(header) <= HEADER_CHARS:
                raise BadRequest('Invalid input `header`: expected an HTTP header name, such as X-API-Key')
            row.username = header
        else:
            username = f(data, 'username', str, creating, row.username)
            if not username or ':' in username or len(username) > 200:
                raise BadRequest('Invalid input `username`: expected 1 to 200 characters without a colon')
            row.username = username
            realm = f(data, 'realm', str, False, row.realm or 'Zato')
            if '"' in realm or '\\' in realm:
                raise BadRequest('Invalid input `realm`: must not contain quotes or backslashes')
            row.realm = realm
        if row.kind == 'jwt':
            opaque = dict(row.opaque or {})
            ttl = f(data, 'ttl', int, False, opaque.get('ttl', 3600))
            if not 1 <= ttl <= 86400 * 30:
                raise BadRequest('Invalid input `ttl`: expected seconds from 1 to 2592000')
            opaque['ttl'] = ttl
            max_lifetime = f(data, 'max_lifetime', int, False, opaque.get('max_lifetime', 86400))
            if not ttl <= max_lifetime <= 86400 * 365:
                raise BadRequest('Invalid input `max_lifetime`: expected seconds from ttl to 31536000')
            opaque['max_lifetime'] = max_lifetime
            opaque['audience'] = f(data, 'audience', str, False, opaque.get('audience', ''))
            row.opaque = opaque
        row.is_active = f(data, 'is_active', bool, False, True if creating else row.is_active)
        row.rate_limit_id = resolve_limit(self, session, data, row.rate_limit_id)

    def _check_flushed(self, session: Any, row: SecurityDef) -> None:
        if row.kind == 'jwt':
            clash = session.scalars(select(SecurityDef).where(
                SecurityDef.cluster_id == self.server.cluster_id, SecurityDef.kind == 'jwt',
                SecurityDef.username == row.username, SecurityDef.id != row.id)).first()
            if clash is not None:
                session.rollback()
                raise Conflict(f'JWT definition `{clash.name}` already has user `{row.username}`')
        if row.kind == 'apikey':
            clash = session.scalars(select(SecurityDef).where(
                SecurityDef.cluster_id == self.server.cluster_id, SecurityDef.kind == 'apikey',
                func.lower(SecurityDef.username) == row.username.lower(), SecurityDef.id != row.id)).first()
            if clash is not None:
                session.rollback()
                raise Conflict(f'API key definition `{clash.name}` already uses header `{row.username}`')

    def _check_unused(self, session: Any, row: SecurityDef) -> None:
        users = [*session.scalars(select(ChannelREST.name).where(ChannelREST.security_id == row.id)),
                 *session.scalars(select(ChannelWSX.name).where(ChannelWSX.security_id == row.id))]
        if users:
            # Deleting it would leave those channels open to anyone
            raise Conflict(f'Security definition `{row.name}` is used by channels: {", ".join(sorted(users))}')

    def _to_dict(self, session: Any, row: SecurityDef) -> dict[str, Any]:
        return sec_to_dict(row)

    def _list_where(self) -> tuple[Any, ...]:
        return (SecurityDef.is_internal.is_(False),)

    @staticmethod
    def _new_secret(data: dict[str, Any]) -> tuple[str, bool]:
        """(secret, generated): the given password checked against the policy, or a random one."""
        password = data.get('password')
        if password is None:
            return new_password(), True
        if not isinstance(password, str):
            raise BadRequest('Invalid input `password`: expected a string')
        reason = check_password(password)
        if reason:
            raise BadRequest(f'Invalid input `password`: {reason}')
        return password, False


class CreateSecurity(_SecBase):
    """A new definition gets a random secret, returned once in the response, unless one is given."""
    name = 'zato.security.create'

    def handle(self) -> None:
        data = self.input_dict()
        with self.server.Session() as session:
            row = self._new_row()
            self._apply(session, row, data, creating=True)
            secret, generated = self._new_secret(data)
            row.password_hash = hash_password(secret)
            session.add(row)
            self._commit(session, row, 'create')
            out = sec_to_dict(row)
            if generated:
                out['password'] = secret
            self.response.status_code = 201
            self.response.payload = out


class EditSecurity(_SecBase, Edit):
    name = 'zato.security.edit'

    def handle(self) -> None:
        if 'password' in self.input_dict():
            raise BadRequest('Invalid input `password`: use change-password to change a secret')
        super().handle()


class ChangeSecurityPassword(_SecBase):
    """Sets a new secret (given, or random and returned once); cached credentials stop working at once."""
    name = 'zato.security.change-password'

    def handle(self) -> None:
        data = self.input_dict()
        with self.server.Session() as session:
            row = self._get_row(session)
            secret, generated = self._new_secret(data)
            row.password_hash = hash_password(secret)
            row.version += 1  # part of every cache key, so old cached credentials no longer match
            self._commit(session, row, 'change-password')
            out = sec_to_dict(row)
            if generated:
                out['password'] = secret
            self.response.payload = out


class DeleteSecurity(_SecBase, Delete):
    name = 'zato.security.delete'


class GetSecurity(_SecBase, Get):
    name = 'zato.security.get'


class GetSecurityList(_SecBase, GetList):
    name = 'zato.security.get-list'


class JWTLogIn(AdminService):
    """POST /zato/jwt/log-in {"username": ..., "password": ...} -> {"token": ..., "expires_in": ...}."""
    name = 'zato.security.jwt.log-in'

    def handle(self) -> None:
        data = self.input_dict()
        username = self.field(data, 'username', str)
        password = self.field(data, 'password', str)
        issued = self.server.jwt.log_in(username, password)
        if issued is None:
            raise Unauthorized('Invalid credentials', {'WWW-Authenticate': 'Bearer realm="Zato"'})
        self.response.headers['Cache-Control'] = 'no-store'
        self.response.payload = issued


class JWTLogOut(AdminService):
    """POST /zato/jwt/log-out with `Authorization: Bearer <token>`: the token stops working everywhere."""
    name = 'zato.security.jwt.log-out'

    def handle(self) -> None:
        http = self.request.http
        if http is None or not self.server.jwt.log_out(http.headers.get('authorization')):
            raise Unauthorized('Invalid credentials', {'WWW-Authenticate': 'Bearer realm="Zato"'})
        self.response.payload = {'logged_out': True}
