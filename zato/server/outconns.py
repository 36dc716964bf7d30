"""Outgoing connections of one worker, kept current by the cluster bus.

Each kind declares its fields once (type, default, check); the admin API validates against them,
the ODB keeps them as JSON with the secret encrypted, and the worker builds a live connection per
active definition. A service reaches one as ``self.out.<kind>['name'].conn``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from zato.odb.models import OutConn
from zato.service.channel import ChannelInfo

if TYPE_CHECKING:
    from zato.server.runtime import Runtime

logger = logging.getLogger('zato.outconns')


@dataclass(frozen=True)
class Field:
    name: str
    kind: type
    default: Any
    check: Callable[[Any], str | None] | None = None   # returns an error message, or None if valid
    doc: str = ''


def _positive(value: Any) -> str | None:
    return None if value > 0 else 'expected a number above 0'


def _ws_address(value: Any) -> str | None:
    from zato.connectors.wsx_config import parse_address
    try:
        parse_address(value)
    except ValueError as e:
        return str(e)
    return None


WSX_FIELDS: tuple[Field, ...] = (
    Field('address', str, None, _ws_address, 'ws://host:port/path or wss://...'),
    Field('is_zato', bool, False, None, 'The remote end is a Zato WebSocket channel (JSON envelope, create-session).'),
    Field('username', str, '', None, 'Sent in create-session to a Zato remote, else as Basic Auth at the handshake.'),
    Field('has_auto_reconnect', bool, True, None, 'Reconnect with backoff and jitter when the connection drops.'),
    Field('on_connect_service', str, '', None, 'Invoked after each (re)connection.'),
    Field('on_message_service', str, '', None, 'Invoked with each message the remote end sends.'),
    Field('on_close_service', str, '', None, 'Invoked when a connection ends, with its code and reason.'),
    Field('ping_interval', float, 30.0, _positive, 'Seconds between our pings.'),
    Field('pings_missed_threshold', int, 3, _positive, 'Silent ping intervals before the connection is dropped.'),
    Field('max_message_size', int, 1 << 20, _positive, 'Largest message accepted from the remote end, in bytes.'),
    Field('connect_timeout', float, 10.0, _positive, 'Seconds to connect and complete the handshake.'),
    Field('headers', dict, {}, None, 'Extra handshake headers.'),
    Field('ca_file', str, '', None, 'CA bundle to verify a wss:// server with, instead of the system CAs.'),
)

KINDS: dict[str, tuple[Field, ...]] = {'wsx': WSX_FIELDS}


class OutConnHandle:
    """``self.out.wsx['name']``: the definition's name and config, and ``conn``, the live connection."""

    __slots__ = ('id', 'name', 'kind', 'config', 'conn')

    def __init__(self, id: int, name: str, kind: str, config: dict[str, Any], conn: Any) -> None:
        self.id = id
        self.name = name
        self.kind = kind
        self.config = config
        self.conn = conn


class OutConns:
    """Builds, rebuilds and stops the live connections of one worker."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.by_id: dict[int, OutConnHandle] = {}

    def reload_all(self, session: Any) -> None:
        rows = session.scalars(select(OutConn).where(OutConn.cluster_id == self.runtime.cluster_id)).all()
        for gone in set(self.by_id) - {row.id for row in rows}:
            self._stop(gone)
        for row in rows:
            self.apply(row.id, row)

    def apply(self, obj_id: int, row: OutConn | None) -> None:
        """(Re)builds one connection from its row, or stops it when the row is gone or inactive."""
        self._stop(obj_id)
        if row is None or not row.is_active:
            return
        try:
            handle = self._build(row)
        except Exception:
            logger.exception('Could not build outgoing %s connection `%s`', row.kind, row.name)
            return
        self.by_id[obj_id] = handle
        self.runtime.outconns.setdefault(row.kind, {})[row.name] = handle

    def stop_all(self) -> None:
        for obj_id in list(self.by_id):
            self._stop(obj_id)

    def _stop(self, obj_id: int) -> None:
        handle = self.by_id.pop(obj_id, None)
        if handle is None:
            return
        kind, name, conn = handle.kind, handle.name, handle.conn
        by_name = self.runtime.outconns.get(kind, {})
        if by_name.get(name) is handle:
            del by_name[name]
        try:
            conn.stop()
        except Exception:
            logger.exception('Could not stop outgoing %s connection `%s`', kind, name)

    def _build(self, row: OutConn) -> OutConnHandle:
        if row.kind != 'wsx':
            raise ValueError(f'Unknown kind of outgoing connection `{row.kind}`')
        from zato.connectors.wsx import OutgoingWSX, WSXConfig
        config = {f.name: row.config.get(f.name, f.default) for f in WSX_FIELDS}
        secret = self.runtime.crypto.decrypt(row.secret) if row.secret else ''
        wsx_config = WSXConfig(
            name=row.name, address=config['address'], is_zato=config['is_zato'], username=config['username'],
            secret=secret, headers=list(config['headers'].items()), has_auto_reconnect=config['has_auto_reconnect'],
            connect_timeout=config['connect_timeout'], ping_interval=config['ping_interval'],
            pings_missed_threshold=config['pings_missed_threshold'], max_message=config['max_message_size'],
            ca_file=config['ca_file'])
        channel = ChannelInfo(row.id, row.name, 'outconn-wsx', 'json')
        name = row.name

        def hook(service_key: str, kind: str) -> Callable[..., Any] | None:
            service = config[service_key]
            if not service:
                return None

            def run(*args: Any) -> Any:
                # What the on-message service returns answers a Zato remote's invoke_client
                if kind == 'message':
                    payload = {'type': kind, 'conn': name, 'data': args[0]}
                elif kind == 'close':
                    payload = {'type': kind, 'conn': name, 'code': args[0], 'reason': args[1]}
                else:
                    payload = {'type': kind, 'conn': name}
                try:
                    return self.runtime.invoker.invoke(service, payload, channel=channel)
                except Exception:
                    logger.exception('Service `%s` failed on a %s event of outgoing WSX `%s`', service, kind, name)
                    return None
            return run

        conn = OutgoingWSX(wsx_config, on_message=hook('on_message_service', 'message'),
                           on_connect=hook('on_connect_service', 'connect'),
                           on_close=hook('on_close_service', 'close'))
        conn.start()
        return OutConnHandle(row.id, row.name, row.kind, config, conn)
