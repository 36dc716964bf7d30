"""Admin services for JSON-RPC channels (/zato/admin/channels/jsonrpc), named as in Zato 3.1.

A JSON-RPC channel is stored as 3.1 stored it: a REST channel row named ``json.rpc.channel.<name>``,
method POST, service ``pub.zato.channel.json-rpc.gateway``, with ``{"jsonrpc": true,
"service_whitelist": [...]}`` in its opaque column. So it reaches every worker exactly as a REST
channel does (kind ``channel``), and its path can never clash with a REST channel's unnoticed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from zato.errors import BadRequest, Conflict, NotFound
from zato.odb.models import ChannelREST, RateLimitDef, SecurityDef
from zato.server.admin.crud import CRUD, Create, Delete, Edit, Get, GetList
from zato.server.admin.rate_limits import resolve_limit
from zato.server.channels import JSONRPC_PREFIX
from zato.server.jsonrpc import GATEWAY_SERVICE, user_name

FIELDS = ('name', 'is_active', 'url_path', 'security', 'service_whitelist', 'rate_limit')
MAX_NAME = 200 - len(JSONRPC_PREFIX)
MAX_WHITELIST = 1000
MAX_SERVICE_NAME = 400


def is_jsonrpc(row: ChannelREST) -> bool:
    return bool((row.opaque or {}).get('jsonrpc'))


def jsonrpc_to_dict(session: Any, row: ChannelREST) -> dict[str, Any]:
    sec = session.get(SecurityDef, row.security_id) if row.security_id is not None else None
    limit = session.get(RateLimitDef, row.rate_limit_id) if row.rate_limit_id is not None else None
    return {'id': row.id, 'name': user_name(row.name), 'is_active': row.is_active, 'url_path': row.url_path,
            'security': sec.name if sec else None,
            'service_whitelist': list((row.opaque or {}).get('service_whitelist') or []),
            'rate_limit_id': row.rate_limit_id, 'rate_limit': limit.name if limit else None}


def check_whitelist(value: Any) -> list[str]:
    """A list of service names, deduplicated in order; internal services are never exposed."""
    if not isinstance(value, list):
        raise BadRequest('Invalid input `service_whitelist`: expected a list of service names')
    if len(value) > MAX_WHITELIST:
        raise BadRequest(f'Invalid input `service_whitelist`: at most {MAX_WHITELIST} services')
    out: list[str] = []
    for name in value:
        if not isinstance(name, str) or not name or len(name) > MAX_SERVICE_NAME:
            raise BadRequest('Invalid input `service_whitelist`: each item must be a service name '
                             f'(1 to {MAX_SERVICE_NAME} characters)')
        if name.split('.', 1)[0] in ('zato', 'pub'):
            raise BadRequest(f'Invalid input `service_whitelist`: `{name}` is an internal service')
        if name not in out:
            out.append(name)
    return out


class _JSONRPCBase(CRUD):
    zato_dont_import = True

    model = ChannelREST
    label = 'JSON-RPC channel'
    bus_kind = 'channel'

    def _new_row(self) -> ChannelREST:
        return ChannelREST(cluster_id=self.server.cluster_id, is_internal=False, version=1, opaque={},
                           name='', url_path='/', service_name=GATEWAY_SERVICE, method='POST',
                           data_format='json', merge_url_params_req=False, url_params_pri='qs-over-path',
                           params_pri='channel-params-over-msg')

    def _get_row(self, session: Any) -> ChannelREST:
        row = super()._get_row(session)
        if not is_jsonrpc(row):
            raise NotFound(f'JSON-RPC channel {row.id} not found')
        return row

    def _apply(self, session: Any, row: ChannelREST, data: dict[str, Any], creating: bool) -> None:
        unknown = sorted(set(data) - {'id', *FIELDS})
        if unknown:
            raise BadRequest(f'Unknown input `{unknown[0]}`; expected: {", ".join(FIELDS)}')
        f = self.field
        name = f(data, 'name', str, creating, user_name(row.name or ''))
        if not name or len(name) > MAX_NAME:
            raise BadRequest(f'Invalid input `name`: expected 1 to {MAX_NAME} characters')
        row.name = JSONRPC_PREFIX + name
        url_path = self._url_path(row, data, creating)
        if '{' in url_path:
            raise BadRequest('Invalid input `url_path`: a JSON-RPC channel takes a fixed path, no {param}')
        if url_path.startswith('/zato/'):
            raise BadRequest('Invalid input `url_path`: paths under /zato/ are reserved')
        row.url_path = url_path
        row.is_active = f(data, 'is_active', bool, False, True if creating else row.is_active)
        opaque = dict(row.opaque or {})
        if creating or 'service_whitelist' in data:
            opaque['service_whitelist'] = check_whitelist(f(data, 'service_whitelist', list, True))
        opaque['jsonrpc'] = True
        row.opaque = opaque
        row.security_id = self.resolve_security(session, data, row.security_id)
        row.rate_limit_id = resolve_limit(self, session, data, row.rate_limit_id)
        self._check_path_free(session, row)

    def _check_path_free(self, session: Any, row: ChannelREST) -> None:
        # Any channel on the path clashes, whatever its method: a JSON-RPC path is the channel's alone
        clash = session.scalars(select(ChannelREST).where(
            ChannelREST.cluster_id == self.server.cluster_id, ChannelREST.url_path == row.url_path,
            ChannelREST.id != (row.id or -1))).first()
        if clash is not None:
            kind = 'JSON-RPC channel' if is_jsonrpc(clash) else 'REST channel'
            raise Conflict(f'{kind} `{user_name(clash.name)}` already serves `{row.url_path}`')

    def _named(self, row: ChannelREST) -> str:
        return f'A {self.label} named `{user_name(row.name)}`'

    def _to_dict(self, session: Any, row: ChannelREST) -> dict[str, Any]:
        return jsonrpc_to_dict(session, row)

    def _list_where(self) -> tuple[Any, ...]:
        return ChannelREST.is_internal.is_(False), ChannelREST.service_name == GATEWAY_SERVICE

    def _list_rows(self, session: Any) -> Sequence[ChannelREST]:
        return [row for row in super()._list_rows(session) if is_jsonrpc(row)]


class CreateJSONRPCChannel(_JSONRPCBase, Create):
    """{"name", "url_path", "service_whitelist": [...], "security"?, "rate_limit"?, "is_active"?} -> 201."""
    name = 'zato.channel.json-rpc.create'


class EditJSONRPCChannel(_JSONRPCBase, Edit):
    """Any of the create fields; the others keep their values."""
    name = 'zato.channel.json-rpc.edit'


class DeleteJSONRPCChannel(_JSONRPCBase, Delete):
    name = 'zato.channel.json-rpc.delete'


class GetJSONRPCChannel(_JSONRPCBase, Get):
    name = 'zato.channel.json-rpc.get'


class GetJSONRPCChannelList(_JSONRPCBase, GetList):
    name = 'zato.channel.json-rpc.get-list'
