"""In-memory WebSocket channel configuration, as the upgrade path and the sessions need it."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from zato.server.guards import Guards
from zato.config.channel import CHANNEL, ChannelInfo


class WSXChannelConfig:
    """One WebSocket channel (table channel_wsx)."""

    __slots__ = ('id', 'name', 'is_active', 'url_path', 'service_name', 'data_format', 'security_id',
                 'max_message_size', 'ping_interval', 'pings_missed_threshold', 'new_token_wait_time', 'token_ttl',
                 'send_queue_max', 'origins', 'services_allowed', 'subprotocols', 'version', 'info', 'guards')

    def __init__(self, *, id: int, name: str, url_path: str, service_name: str, is_active: bool = True,
                 data_format: str = 'json', security_id: int | None = None, max_message_size: int = 1048576,
                 ping_interval: int = 30, pings_missed_threshold: int = 5, new_token_wait_time: int = 5,
                 token_ttl: int = 3600, send_queue_max: int = 1000, origins: list[str] | None = None,
                 services_allowed: list[str] | None = None, subprotocols: list[str] | None = None,
                 version: int = 1) -> None:
        self.id = id
        self.name = name
        self.is_active = is_active
        self.url_path = url_path
        self.service_name = service_name
        self.data_format = data_format or ''
        self.security_id = security_id
        self.max_message_size = max_message_size
        self.ping_interval = ping_interval
        self.pings_missed_threshold = pings_missed_threshold
        self.new_token_wait_time = new_token_wait_time
        self.token_ttl = token_ttl
        self.send_queue_max = send_queue_max
        self.origins = list(origins or ())
        self.services_allowed = list(services_allowed or ())
        self.subprotocols = tuple(subprotocols or ())
        self.version = version
        self.info = ChannelInfo(id, name, CHANNEL.WEB_SOCKET, self.data_format)
        self.guards = Guards(None, self.info)  # the handshake's: closed until the runtime builds them

    @classmethod
    def from_model(cls, row: Any) -> WSXChannelConfig:
        return cls(id=row.id, name=row.name, url_path=row.url_path, service_name=row.service_name,
                   is_active=row.is_active, data_format=row.data_format, security_id=row.security_id,
                   max_message_size=row.max_message_size, ping_interval=row.ping_interval,
                   pings_missed_threshold=row.pings_missed_threshold, new_token_wait_time=row.new_token_wait_time,
                   token_ttl=row.token_ttl, send_queue_max=row.send_queue_max, origins=row.origins,
                   services_allowed=row.services_allowed, subprotocols=row.subprotocols, version=row.version)

    def origin_allowed(self, origin: str | None, host: str | None) -> bool:
        """Browsers send Origin, other clients usually don't. Without an allow-list only a page of the
        same origin (its host:port equal to the Host header) may connect; `*` allows any origin."""
        if origin is None:
            return True
        if self.origins:
            return '*' in self.origins or origin.rstrip('/') in self.origins
        if origin == 'null' or not host:
            return False
        try:
            return urlsplit(origin).netloc.lower() == host.lower()
        except ValueError:
            return False
