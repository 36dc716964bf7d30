"""Admin services of outgoing connections (/zato/admin/outconns/{kind} ...): one set for every kind,
validated against the kind's declared fields. Secrets are write-only: stored encrypted, never returned."""

from __future__ import annotations

import time
from typing import Any

import gevent

from zato.connectors import registry
from zato.connectors.base import Connector, ConnectorError, FieldError, effective_config, secret_field, validate
from zato.errors import BadRequest, NotFound
from zato.odb.models import OutConn
from zato.server.admin.base import AdminService
from zato.server.admin.crud import CRUD, Create, Delete, Edit, Get, GetList

# Inputs of every kind, not fields of any: `secret` is the generic name of whichever field a kind stores encrypted
COMMON = ('id', 'kind', 'name', 'is_active', 'secret')

# How long a ping waits for a connection the worker is still building
PING_BUILD_WAIT = 10.0

# How long a ping waits for this worker to apply the definition's latest version
BUS_WAIT = 2.0


def outconn_to_dict(row: OutConn) -> dict[str, Any]:
    fields = registry.get(row.kind).fields
    return {'id': row.id, 'kind': row.kind, 'name': row.name, 'is_active': row.is_active,
            'has_secret': bool(row.secret), **effective_config(fields, row.config or {})}


class _OutConnBase(CRUD):
    zato_dont_import = True

    # The label is generic: _get_row and _named say which kind, from the path or the row
    model = OutConn
    label = 'outgoing connection'
    bus_kind = 'outconn'

    def _kind(self) -> str:
        kind = str(self.request.channel_params.get('kind', ''))
        try:
            return registry.get(kind).kind
        except KeyError as e:
            raise NotFound(e.args[0]) from None

    def _get_row(self, session: Any) -> OutConn:
        kind = self._kind()
        row = self.get_object(session, OutConn, f'Outgoing {kind} connection')
        if row.kind != kind:
            raise NotFound(f'Outgoing {kind} connection {row.id} not found')
        return row

    def _new_row(self) -> OutConn:
        return OutConn(cluster_id=self.server.cluster_id, kind=self._kind(), version=1, config={}, secret='')

    def _apply(self, session: Any, row: OutConn, data: dict[str, Any], creating: bool) -> None:
        cls: type[Connector] = registry.get(row.kind)
        secret_spec = secret_field(cls.fields)
        data = dict(data)
        if 'secret' in data and (secret_spec is None or secret_spec.name != 'secret'):
            value = data.pop('secret')
            if secret_spec is not None:
                data.setdefault(secret_spec.name, value)
            elif value:
                raise BadRequest(f'Invalid input `secret`: a {row.kind} connection has no secret')
        f = self.field
        self._apply_name(row, data, creating)
        row.is_active = f(data, 'is_active', bool, False, True if creating else row.is_active)
        current = None if creating else effective_config(cls.fields, row.config or {})
        try:
            config, secret = validate(cls.fields, data, current, ignore=COMMON)
            cls.check_config(config)
        except FieldError as e:
            raise BadRequest(str(e)) from None
        row.config = config
        if secret is not None:
            row.secret = self.server.crypto.encrypt(secret) if secret else ''

    def _named(self, row: OutConn) -> str:
        return f'An outgoing {row.kind} connection named `{row.name}`'

    def _to_dict(self, session: Any, row: OutConn) -> dict[str, Any]:
        return outconn_to_dict(row)

    def _list_where(self) -> tuple[Any, ...]:
        return (OutConn.kind == self._kind(),)


class CreateOutConn(_OutConnBase, Create):
    name = 'zato.outconn.create'


class EditOutConn(_OutConnBase, Edit):
    name = 'zato.outconn.edit'


class ChangeOutConnPassword(_OutConnBase):
    name = 'zato.outconn.change-password'

    def handle(self) -> None:
        data = self.input_dict()
        with self.server.Session() as session:
            row = self._get_row(session)
            spec = secret_field(registry.get(row.kind).fields)
            if spec is None:
                raise BadRequest(f'A {row.kind} connection has no secret to change')
            secret = self.field(data, spec.name if spec.name in data else 'secret', str)
            row.secret = self.server.crypto.encrypt(secret) if secret else ''
            row.version += 1
            self._commit(session, row, 'edit')
            self.response.payload = {'id': row.id, 'has_secret': bool(secret)}


class DeleteOutConn(_OutConnBase, Delete):
    name = 'zato.outconn.delete'


class GetOutConn(_OutConnBase, Get):
    name = 'zato.outconn.get'


_TYPE_NAMES = {bool: 'bool', int: 'int', float: 'float', str: 'str', dict: 'dict', list: 'list'}


class GetKindList(AdminService):
    """Every kind of outgoing connection this server knows (built-in and from plugins), with its
    fields: what a form for a kind is made of (the web-admin builds its pages from this)."""
    name = 'zato.outconn.get-kind-list'

    def handle(self) -> None:
        self.response.payload = [
            {'kind': cls.kind, 'aliases': list(cls.aliases),
             'fields': [{'name': f.name, 'type': _TYPE_NAMES.get(f.type, 'str'), 'required': f.default is None,
                         'default': None if f.secret else f.default, 'doc': f.doc, 'secret': f.secret}
                        for f in cls.fields]}
            for cls in (registry.get(kind) for kind in registry.kinds())]


class GetOutConnList(_OutConnBase, GetList):
    name = 'zato.outconn.get-list'


class PingOutConn(_OutConnBase):
    """Pings the connection from the worker serving this call: `{"ok": true, "time": seconds}` for a
    round trip, or `{"ok": false, "error": ...}` with the ConnectorError that says why there was none."""
    name = 'zato.outconn.ping'

    def handle(self) -> None:
        with self.server.Session() as session:
            row = self._get_row(session)
            kind, name, version = row.kind, row.name, row.version

        # A ping right after a create or an edit may reach this worker before the cluster bus does
        deadline = time.monotonic() + BUS_WAIT
        while True:
            handle = self.server.outconns.get(kind, {}).get(name)
            if (handle is not None and handle.version >= version) or time.monotonic() >= deadline:
                break
            gevent.sleep(0.02)
        if handle is None:
            self.response.payload = {'ok': False, 'error': f'Outgoing {kind} connection `{name}` is not built '
                                                           'on this worker yet'}
            return
        try:
            handle.conn  # noqa: B018 - raises ConnectorInactive, or ConnectorUnavailable if it could not be created
            connector = handle.connector
            assert connector is not None  # noqa: S101 - conn raised otherwise
            connector.wait_attempted(PING_BUILD_WAIT)
            took = connector.ping()
        except ConnectorError as e:
            self.response.payload = {'ok': False, 'error': str(e)}
            return
        self.response.payload = {'ok': True, 'time': round(took, 6)}
