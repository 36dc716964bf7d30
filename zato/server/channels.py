"""In-memory REST channel configuration that workers serve from (never the ODB)."""

from __future__ import annotations

from typing import Any

from zato.server.guards import Guards
from zato.config.channel import CHANNEL, ChannelInfo


JSONRPC_PREFIX = 'json.rpc.channel.'


class ChannelConfig:
    """One REST channel as the request path needs it.

    ``jsonrpc`` is None for a REST channel; for a JSON-RPC channel (a REST row with
    ``{"jsonrpc": true, "service_whitelist": [...]}`` in its opaque column, as 3.1 stored them) it
    is the set of services callable as ``method``.
    """

    __slots__ = ('id', 'name', 'is_active', 'is_internal', 'url_path', 'method', 'data_format', 'service_name',
                 'security_id', 'merge_url_params_req', 'url_params_pri', 'params_pri', 'version', 'info',
                 'rate_limit_id', 'guards', 'jsonrpc', 'msg_over_params', 'cache_id', 'cache_expiry')

    def __init__(self, *, id: int | None, name: str, url_path: str, service_name: str, method: str = '',
                 data_format: str = 'json', is_active: bool = True, is_internal: bool = False,
                 security_id: int | None = None, merge_url_params_req: bool = True,
                 url_params_pri: str = 'qs-over-path', params_pri: str = 'channel-params-over-msg',
                 version: int = 1, rate_limit_id: int | None = None,
                 jsonrpc: frozenset[str] | None = None, cache_id: int | None = None,
                 cache_expiry: float = 0.0) -> None:
        self.id = id
        self.name = name
        self.url_path = url_path
        self.service_name = service_name
        self.method = (method or '').upper()
        self.data_format = data_format or ''
        self.is_active = is_active
        self.is_internal = is_internal
        self.security_id = security_id
        self.merge_url_params_req = merge_url_params_req
        self.url_params_pri = url_params_pri
        self.params_pri = params_pri
        # The body wins over path and query parameters in SimpleIO input (with the default, the service's
        # own params_priority decides, whose default lets the channel params win)
        self.msg_over_params = params_pri == 'msg-over-channel-params'
        self.version = version
        self.rate_limit_id = rate_limit_id
        self.jsonrpc = jsonrpc
        # The built-in cache its GET responses are kept in, and for how long (zato.server.response_cache)
        self.cache_id = cache_id
        self.cache_expiry = cache_expiry
        if jsonrpc is None:
            self.info = ChannelInfo(id, name, CHANNEL.HTTP, self.data_format, is_internal)
        else:
            user_name = name[len(JSONRPC_PREFIX):] if name.startswith(JSONRPC_PREFIX) else name
            self.info = ChannelInfo(id, user_name, CHANNEL.JSON_RPC, 'json', is_internal)
        # Closed until the runtime builds the channel's guards at config load (zato.server.guards)
        self.guards = Guards(None, self.info)

    @classmethod
    def from_model(cls, row: Any) -> ChannelConfig:
        opaque = row.opaque or {}
        jsonrpc = None
        if opaque.get('jsonrpc'):
            whitelist = opaque.get('service_whitelist') or ()
            jsonrpc = frozenset(name for name in whitelist if isinstance(name, str))
        return cls(id=row.id, name=row.name, url_path=row.url_path, service_name=row.service_name,
                   method=row.method, data_format=row.data_format, is_active=row.is_active,
                   is_internal=row.is_internal, security_id=row.security_id,
                   merge_url_params_req=row.merge_url_params_req, url_params_pri=row.url_params_pri,
                   params_pri=row.params_pri, version=row.version, rate_limit_id=row.rate_limit_id,
                   jsonrpc=jsonrpc, cache_id=opaque.get('cache_id'), cache_expiry=opaque.get('cache_expiry') or 0.0)

    def to_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self.__slots__
               if name not in ('info', 'guards', 'msg_over_params')}
        if self.jsonrpc is not None:
            out['jsonrpc'] = sorted(self.jsonrpc)
        return out
