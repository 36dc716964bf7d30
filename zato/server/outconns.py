"""Outgoing connections of one worker, kept current by the cluster bus.

Each kind is a `Connector` from the registry (zato.connectors.registry), with its fields declared
once; the admin API validates against them, the ODB keeps them as JSON with the secret encrypted,
and the worker keeps a handle per definition. A service reaches one as
``self.out.<kind>['name'].conn``: the live connection, or `ConnectorInactive` naming it if the
definition is not active.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import select

from zato.connectors import registry
from zato.connectors.base import Connector, ConnectorInactive, ConnectorUnavailable, Field, effective_config
from zato.odb.models import OutConn
from zato.config.channel import ChannelInfo

if TYPE_CHECKING:
    from zato.security.secrets_file import Crypto
    from zato.service.invoker import Invoker

__all__ = ['Field', 'OutConnHandle', 'OutConns']

logger = logging.getLogger('zato.outconns')


class OutConnHandle:
    """``self.out.rest['name']``: the definition's name and config, and `conn`, the live connection.

    `conn` raises ConnectorInactive for an inactive definition, and ConnectorUnavailable if its
    connector could not even be created (the error is in the server log)."""

    __slots__ = ('id', 'name', 'kind', 'config', 'is_active', 'connector', 'error', 'version')

    def __init__(self, id: int, name: str, kind: str, config: dict[str, Any], is_active: bool,
                 connector: Connector | None, error: str = '', version: int = 0) -> None:
        self.id = id
        self.version = version  # of the definition it was built from
        self.name = name
        self.kind = kind
        self.config = config
        self.is_active = is_active
        self.connector = connector
        self.error = error

    @property
    def conn(self) -> Any:
        if not self.is_active:
            raise ConnectorInactive(self.kind, self.name)
        if self.connector is None:
            raise ConnectorUnavailable(f'Outgoing {self.kind} connection `{self.name}` could not be created: '
                                       f'{self.error}', kind=self.kind, name=self.name)
        return self.connector.conn

    def __repr__(self) -> str:
        state = 'active' if self.is_active else 'inactive'
        return f'<OutConnHandle {self.kind} `{self.name}` {state}>'


class OutConnsHost(Protocol):
    """What the outgoing connections use of their worker."""

    Session: Any
    cluster_id: int
    crypto: Crypto
    invoker: Invoker
    outconns: dict[str, dict[str, Any]]


class ServerHooks:
    """What a connector may use of the server: invoking services, as the connection's channel."""

    __slots__ = ('runtime', 'channel')

    def __init__(self, runtime: OutConnsHost, conn_id: int, kind: str, name: str) -> None:
        self.runtime = runtime
        self.channel = ChannelInfo(conn_id, name, f'outconn-{kind}', 'json')

    def invoke(self, service: str, payload: Any) -> Any:
        return self.runtime.invoker.invoke(service, payload, channel=self.channel)


class OutConns:
    """Builds, rebuilds and stops the live connections of one worker."""

    def __init__(self, runtime: OutConnsHost) -> None:
        self.runtime = runtime
        self.by_id: dict[int, OutConnHandle] = {}

    def reload_all(self, session: Any) -> None:
        rows = session.scalars(select(OutConn).where(OutConn.cluster_id == self.runtime.cluster_id)).all()
        for gone in set(self.by_id) - {row.id for row in rows}:
            self.apply(gone, None)
        for row in rows:
            self.apply(row.id, row)

    def apply(self, obj_id: int, row: OutConn | None) -> None:
        """(Re)builds one connection from its row; the new one is in place before the old one stops,
        so a service never finds the name missing during an edit. A row of the version already built
        (loaded by catch_up before its bus message came) is left as it is."""
        current = self.by_id.get(obj_id)
        if current is not None and row is not None and row.version <= current.version \
                and (current.connector is not None or not current.is_active):
            return
        old = self.by_id.pop(obj_id, None)
        if old is not None:
            self._unregister(old)
        handle = self._handle(row) if row is not None else None
        if handle is not None:
            self.by_id[obj_id] = handle
            self.runtime.outconns.setdefault(handle.kind, {})[handle.name] = handle
        if old is not None:
            self._stop(old, retire=True)

    def catch_up(self, kind: str, name: str) -> OutConnHandle | None:
        """The connection `name` of `kind` if the ODB has it though this worker has not heard of it yet
        (created a moment ago, its bus message still on the way): built now, the bus message then
        finding it done. None if the ODB has no such definition."""
        with self.runtime.Session() as session:
            row = session.scalars(select(OutConn).where(OutConn.cluster_id == self.runtime.cluster_id,
                                                        OutConn.kind == kind, OutConn.name == name)).first()
            if row is None:
                return None
            self.apply(row.id, row)
        return self.runtime.outconns.get(kind, {}).get(name)

    def stop_all(self) -> None:
        """Stops every connection at once (the worker is stopping)."""
        for handle in list(self.by_id.values()):
            self._unregister(handle)
            self._stop(handle, retire=False)
        self.by_id.clear()

    def _handle(self, row: OutConn) -> OutConnHandle | None:
        try:
            cls = registry.get(row.kind)
        except KeyError as e:
            logger.error('Outgoing connection `%s` not built: %s', row.name, e.args[0])
            return None
        config = effective_config(cls.fields, row.config or {})
        if not row.is_active:
            return OutConnHandle(row.id, row.name, cls.kind, config, False, None, version=row.version)
        try:
            secret = self.runtime.crypto.decrypt(row.secret) if row.secret else ''
            connector = cls(row.name, config, secret, ServerHooks(self.runtime, row.id, cls.kind, row.name))
            connector.start()
        except Exception as e:
            logger.exception('Could not build outgoing %s connection `%s`', row.kind, row.name)
            return OutConnHandle(row.id, row.name, cls.kind, config, True, None, f'{type(e).__name__}: {e}',
                                 version=row.version)
        return OutConnHandle(row.id, row.name, cls.kind, config, True, connector, version=row.version)

    def _unregister(self, handle: OutConnHandle) -> None:
        by_name = self.runtime.outconns.get(handle.kind, {})
        if by_name.get(handle.name) is handle:
            del by_name[handle.name]

    @staticmethod
    def _stop(handle: OutConnHandle, retire: bool) -> None:
        """Stops a connection; `retire` lets calls in flight on it finish first (an edit or a delete)."""
        if handle.connector is None:
            return
        try:
            if retire:
                handle.connector.retire()
            else:
                handle.connector.stop()
        except Exception:
            logger.exception('Could not stop outgoing %s connection `%s`', handle.kind, handle.name)
