"""Admin services of outgoing connections (/zato/admin/outconns/{kind} ...): one set for every kind,
validated against the kind's declared fields. Secrets are write-only: stored encrypted, never returned."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from zato.errors import BadRequest, Conflict, NotFound
from zato.odb.models import OutConn
from zato.server.admin.services import AdminService
from zato.server.outconns import KINDS

COMMON = ('id', 'kind', 'name', 'is_active', 'secret')


def outconn_to_dict(row: OutConn) -> dict[str, Any]:
    fields = KINDS[row.kind]
    return {'id': row.id, 'kind': row.kind, 'name': row.name, 'is_active': row.is_active,
            'has_secret': bool(row.secret), **{f.name: row.config.get(f.name, f.default) for f in fields}}


class _OutConnBase(AdminService):
    zato_dont_import = True

    def _kind(self) -> str:
        kind = str(self.request.channel_params.get('kind', ''))
        if kind not in KINDS:
            raise NotFound(f'No kind of outgoing connection `{kind}`; known: {", ".join(sorted(KINDS))}')
        return kind

    def _get_row(self, session: Any) -> OutConn:
        kind = self._kind()
        row = self.get_object(session, OutConn, f'Outgoing {kind} connection')
        if row.kind != kind:
            raise NotFound(f'Outgoing {kind} connection {row.id} not found')
        return row

    def _apply(self, row: OutConn, data: dict[str, Any], creating: bool) -> None:
        fields = {f.name: f for f in KINDS[row.kind]}
        unknown = sorted(set(data) - set(fields) - set(COMMON))
        if unknown:
            raise BadRequest(f'Invalid input `{unknown[0]}`: not a field of a {row.kind} connection '
                             f'(fields: {", ".join(sorted(fields))})')
        f = self.field
        row.name = f(data, 'name', str, creating, row.name)
        if not row.name or len(row.name) > 200:
            raise BadRequest('Invalid input `name`: expected 1 to 200 characters')
        row.is_active = f(data, 'is_active', bool, False, True if creating else row.is_active)
        config = dict(row.config or {})
        for name, spec in fields.items():
            required = creating and spec.default is None
            if name not in data and not required:
                config.setdefault(name, spec.default)
                continue
            kind: Any = (int, float) if spec.kind is float else spec.kind
            value = f(data, name, kind, required)
            if spec.kind is float:
                value = float(value)
            if spec.kind is dict and not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
                raise BadRequest(f'Invalid input `{name}`: expected an object of strings')
            error = spec.check(value) if spec.check is not None else None
            if error:
                raise BadRequest(f'Invalid input `{name}`: {error}')
            config[name] = value
        row.config = config
        if 'secret' in data:
            secret = f(data, 'secret', str, False, '')
            row.secret = self.server.crypto.encrypt(secret) if secret else ''

    def _commit(self, session: Any, row: OutConn, action: str) -> None:
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
            raise Conflict(f'An outgoing {row.kind} connection named `{row.name}` already exists') from None
        self.server.commit_change(session, 'outconn', row.id, action=action)


class CreateOutConn(_OutConnBase):
    name = 'zato.outconn.create'

    def handle(self) -> None:
        data = self.input_dict()
        with self.server.Session() as session:
            row = OutConn(cluster_id=self.server.cluster_id, kind=self._kind(), version=1, config={}, secret='')
            self._apply(row, data, creating=True)
            session.add(row)
            self._commit(session, row, 'create')
            self.response.status_code = 201
            self.response.payload = outconn_to_dict(row)


class EditOutConn(_OutConnBase):
    name = 'zato.outconn.edit'

    def handle(self) -> None:
        data = self.input_dict()
        with self.server.Session() as session:
            row = self._get_row(session)
            self._apply(row, data, creating=False)
            row.version += 1
            self._commit(session, row, 'edit')
            self.response.payload = outconn_to_dict(row)


class ChangeOutConnPassword(_OutConnBase):
    name = 'zato.outconn.change-password'

    def handle(self) -> None:
        data = self.input_dict()
        secret = self.field(data, 'secret', str)
        with self.server.Session() as session:
            row = self._get_row(session)
            row.secret = self.server.crypto.encrypt(secret) if secret else ''
            row.version += 1
            self._commit(session, row, 'edit')
            self.response.payload = {'id': row.id, 'has_secret': bool(secret)}


class DeleteOutConn(_OutConnBase):
    name = 'zato.outconn.delete'

    def handle(self) -> None:
        with self.server.Session() as session:
            self.delete_object(session, self._get_row(session), 'outconn')


class GetOutConn(_OutConnBase):
    name = 'zato.outconn.get'

    def handle(self) -> None:
        with self.server.Session() as session:
            self.response.payload = outconn_to_dict(self._get_row(session))


class GetOutConnList(_OutConnBase):
    name = 'zato.outconn.get-list'

    def handle(self) -> None:
        kind = self._kind()
        with self.server.Session() as session:
            rows = session.scalars(select(OutConn).where(OutConn.cluster_id == self.server.cluster_id,
                                                         OutConn.kind == kind).order_by(OutConn.name)).all()
            self.response.payload = [outconn_to_dict(row) for row in rows]


class PingOutConn(_OutConnBase):
    """Pings the connection from the worker serving this call: the round trip, or the error."""
    name = 'zato.outconn.ping'

    def handle(self) -> None:
        with self.server.Session() as session:
            row = self._get_row(session)
            kind, name, is_active = row.kind, row.name, row.is_active
        if not is_active:
            raise BadRequest(f'Outgoing {kind} connection `{name}` is not active')
        handle = self.server.outconns.get(kind, {}).get(name)
        if handle is None:
            self.response.payload = {'ok': False, 'error': f'Connection `{name}` is not built on this worker yet'}
            return
        conn = handle.conn
        timeout = float(handle.config.get('connect_timeout', 10))
        conn.wait_connected(timeout)
        try:
            took = conn.ping(timeout)
        except Exception as e:  # noqa: BLE001 - whatever failed is the answer
            self.response.payload = {'ok': False, 'error': str(e)}
            return
        self.response.payload = {'ok': True, 'time': round(took, 6)}
