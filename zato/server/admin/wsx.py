"""Admin services of WebSocket channels (/zato/admin/channels/wsx ...) and of their connected
clients, named as in Zato 3.1 (zato.channel.web-socket.*)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from zato.errors import BadRequest, Conflict, NotFound
from zato.odb.models import ChannelREST, ChannelWSX
from zato.server.admin.base import AdminService
from zato.server.admin.crud import CRUD, Create, Delete, Edit, Get, GetList

DATA_FORMATS = ('json', '')
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

# field, minimum, maximum, default
_NUMBERS = (
    ('max_message_size', 125, 64 * 1024 * 1024, 1048576),
    ('ping_interval', 1, 3600, 30),
    ('pings_missed_threshold', 1, 100, 5),
    ('new_token_wait_time', 1, 600, 5),
    ('token_ttl', 1, 10 * 365 * 86400, 3600),
    ('send_queue_max', 1, 1_000_000, 1000),
)


def wsx_to_dict(row: ChannelWSX, sec_name: str | None) -> dict[str, Any]:
    out = {'id': row.id, 'name': row.name, 'is_active': row.is_active, 'url_path': row.url_path,
           'service': row.service_name, 'data_format': row.data_format, 'security': sec_name,
           'origins': list(row.origins or ()), 'services_allowed': list(row.services_allowed or ()),
           'subprotocols': list(row.subprotocols or ())}
    for name, *_ in _NUMBERS:
        out[name] = getattr(row, name)
    return out


def _string_list(data: dict[str, Any], name: str, current: list[str]) -> list[str]:
    if name not in data or data[name] is None:
        return list(current or ())
    value = data[name]
    if isinstance(value, str):
        value = [item.strip() for item in value.replace('\n', ',').split(',') if item.strip()]
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise BadRequest(f'Invalid input `{name}`: expected a list of strings')
    return value


class _WSXBase(CRUD):
    zato_dont_import = True

    model = ChannelWSX
    label = 'WebSocket channel'
    bus_kind = 'channel_wsx'

    def _new_row(self) -> ChannelWSX:
        return ChannelWSX(cluster_id=self.server.cluster_id, version=1, opaque={}, url_path='/', service_name='',
                          origins=[], services_allowed=[], subprotocols=[])

    def _apply(self, session: Any, row: ChannelWSX, data: dict[str, Any], creating: bool) -> None:
        f = self.field
        self._apply_name(row, data, creating)
        url_path = self._url_path(row, data, creating)
        if '{' in url_path:
            raise BadRequest('Invalid input `url_path`: WebSocket channels take a fixed path, without {parameters}')
        if url_path.startswith('/zato/'):
            raise BadRequest('Invalid input `url_path`: paths under /zato/ are reserved')
        row.url_path = url_path
        self._apply_service(session, row, data, creating)
        data_format = f(data, 'data_format', str, False, row.data_format if not creating else 'json')
        data_format = '' if data_format == 'none' else data_format
        if data_format not in DATA_FORMATS:
            raise BadRequest('Invalid input `data_format`: expected `json`, `none` or empty')
        row.data_format = data_format
        row.is_active = f(data, 'is_active', bool, False, True if creating else row.is_active)
        for name, low, high, default in _NUMBERS:
            value = f(data, name, int, False, default if creating else getattr(row, name))
            if not low <= value <= high:
                raise BadRequest(f'Invalid input `{name}`: expected {low} to {high}')
            setattr(row, name, value)
        row.origins = _string_list(data, 'origins', row.origins)
        for origin in row.origins:
            if origin != '*' and not origin.startswith(('http://', 'https://')):
                raise BadRequest(f'Invalid input `origins`: `{origin}` is not `*` nor an http(s):// origin')
        row.origins = [o.rstrip('/') for o in row.origins]
        row.services_allowed = _string_list(data, 'services_allowed', row.services_allowed)
        row.subprotocols = _string_list(data, 'subprotocols', row.subprotocols)
        for name in row.subprotocols:
            if not _TOKEN.fullmatch(name):
                raise BadRequest(f'Invalid input `subprotocols`: `{name}` is not an HTTP token')
        row.security_id = self.resolve_security(session, data, row.security_id, ('basic_auth', 'apikey', 'jwt'))
        clash = session.scalars(select(ChannelREST).where(ChannelREST.cluster_id == self.server.cluster_id,
                                                          ChannelREST.url_path == row.url_path)).first()
        if clash is not None:
            raise Conflict(f'REST channel `{clash.name}` already serves `{row.url_path}`')
        other = session.scalars(select(ChannelWSX).where(ChannelWSX.cluster_id == self.server.cluster_id,
                                                         ChannelWSX.url_path == row.url_path,
                                                         ChannelWSX.id != (row.id or -1))).first()
        if other is not None:
            raise Conflict(f'WebSocket channel `{other.name}` already serves `{row.url_path}`')

    def _to_dict(self, session: Any, row: ChannelWSX) -> dict[str, Any]:
        return wsx_to_dict(row, self._sec_name(session, row.security_id))

    def _channel_name(self) -> str:
        with self.server.Session() as session:
            return self._get_row(session).name


class CreateWSXChannel(_WSXBase, Create):
    name = 'zato.channel.web-socket.create'


class EditWSXChannel(_WSXBase, Edit):
    name = 'zato.channel.web-socket.edit'


class DeleteWSXChannel(_WSXBase, Delete):
    name = 'zato.channel.web-socket.delete'


class GetWSXChannel(_WSXBase, Get):
    name = 'zato.channel.web-socket.get'


class GetWSXChannelList(_WSXBase, GetList):
    name = 'zato.channel.web-socket.get-list'


class Broadcast(_WSXBase):
    """Sends `data` to every client of the channel on every server; returns at once."""
    name = 'zato.channel.web-socket.broadcast'

    def handle(self) -> None:
        data = self.input_dict()
        if 'data' not in data:
            raise BadRequest('Missing input `data`')
        name = self._channel_name()
        try:
            self.server.wsx.broadcast(name, data['data'])
        except KeyError:
            raise NotFound(f'WebSocket channel `{name}` is not loaded yet') from None
        self.response.status_code = 202
        self.response.payload = {'channel': name, 'broadcast': True}


class GetConnectionList(_WSXBase):
    """The clients connected to the channel, on every worker of every server."""
    name = 'zato.channel.web-socket.get-connection-list'

    def handle(self) -> None:
        self.response.payload = self.server.wsx.list_clients(self._channel_name())


class InvokeWSX(AdminService):
    """Sends `data` to one client, wherever it is connected."""
    name = 'zato.channel.web-socket.invoke-wsx'

    def handle(self) -> None:
        data = self.input_dict()
        client_id = self.field(data, 'client_id', str)
        if 'data' not in data:
            raise BadRequest('Missing input `data`')
        if not self.server.wsx.send_to(client_id, data['data']):
            raise NotFound(f'WebSocket client `{client_id}` is not connected')
        self.response.payload = {'client_id': client_id, 'sent': True}


class DisconnectConnection(AdminService):
    name = 'zato.channel.web-socket.disconnect-connection'

    def handle(self) -> None:
        client_id = self.field(self.input_dict(), 'client_id', str)
        if not self.server.wsx.disconnect(client_id):
            raise NotFound(f'WebSocket client `{client_id}` is not connected')
        self.response.payload = {'client_id': client_id, 'disconnected': True}
