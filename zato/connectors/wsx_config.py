"""What an outgoing WebSocket connection is configured with, checked when it is created: the
address parsed once, timings in range, and the backoff between reconnects."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

__all__ = ['Target', 'WSXConfig', 'backoff_delay', 'parse_address']


@dataclass
class WSXConfig:
    """The configuration of one outgoing WebSocket connection.

    `address` is ws://host[:port][/path] or wss://...; for wss the server certificate is checked
    against the system's CAs, or against `ca_file` if given. `username` and `secret` go into the
    create-session message of a Zato remote (`is_zato`), or else into an HTTP Basic Auth header of
    the handshake. Times are in seconds; `max_message` caps received messages, in bytes.
    """

    name: str
    address: str
    is_zato: bool = False
    username: str = ''
    secret: str = field(default='', repr=False)
    headers: list[tuple[str, str]] = field(default_factory=list)
    has_auto_reconnect: bool = True
    connect_timeout: float = 10.0
    ping_interval: float = 30.0
    pings_missed_threshold: int = 3
    max_message: int = 1 << 20
    deflate: bool = True
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0
    ca_file: str = ''

    def __post_init__(self) -> None:
        parse_address(self.address)  # a malformed address fails here, not in the reconnect loop
        for name in ('connect_timeout', 'ping_interval', 'reconnect_min', 'pings_missed_threshold', 'max_message'):
            if not getattr(self, name) > 0:
                raise ValueError(f'WSX {self.name}: {name} must be above 0, not {getattr(self, name)!r}')
        if self.reconnect_max < self.reconnect_min:
            raise ValueError(f'WSX {self.name}: reconnect_max ({self.reconnect_max}) is below reconnect_min '
                             f'({self.reconnect_min})')


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    path: str  # with the query string, if any
    tls: bool
    host_header: str


def parse_address(address: str) -> Target:
    try:
        parts = urlsplit(address)
        port = parts.port
    except ValueError as e:
        raise ValueError(f'Invalid WSX address {address!r}: {e}') from None
    if parts.scheme not in ('ws', 'wss') or not parts.hostname:
        raise ValueError(f'Invalid WSX address {address!r}, expected ws://host[:port]/path or wss://...')
    if parts.username is not None:
        raise ValueError(f'Invalid WSX address {address!r}: credentials go into username and secret')
    tls = parts.scheme == 'wss'
    default_port = 443 if tls else 80
    host = parts.hostname
    host_header = f'[{host}]' if ':' in host else host
    if port is not None and port != default_port:
        host_header += f':{port}'
    path = (parts.path or '/') + (f'?{parts.query}' if parts.query else '')
    return Target(host, port or default_port, path, tls, host_header)


def backoff_delay(attempt: int, low: float, high: float, jitter: float) -> float:
    """The delay before reconnect attempt `attempt` (0 first): `jitter` (0 to 1) of min(high, low * 2**attempt)."""
    return min(high, low * 2.0 ** min(attempt, 64)) * jitter
