"""What a service reaches through ``self.wsx`` and ``self.out``: thin, typed views over the
worker's registries, so that a service never holds a registry itself."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from zato.connectors import registry


# (kind, name) → the handle of a definition the ODB has and this worker had not applied yet, or None
CatchUp = Callable[[str, str], Any]


def _unknown(kind: str, name: str, known: Any) -> KeyError:
    close = difflib.get_close_matches(name, list(known), n=3)
    hint = f'; did you mean {", ".join(f"`{c}`" for c in close)}?' if close else ''
    return KeyError(f'No such {kind} `{name}`{hint}')


class WSXChannelAPI:
    """``self.wsx.channel['My Channel']``."""

    __slots__ = ('registry', 'name')

    def __init__(self, registry: Any, name: str) -> None:
        self.registry = registry
        self.name = name

    def broadcast(self, data: Any) -> None:
        """Sends data to every client of the channel, on every worker of every server, in the
        background: returns as soon as the cluster bus has the message."""
        self.registry.broadcast(self.name, data)

    def clients(self) -> list[dict[str, Any]]:
        """The channel's connected clients across the cluster: id, peer, connected_at, authenticated_as ..."""
        return self.registry.list_clients(self.name)

    def send(self, client_id: str, data: Any) -> bool:
        """Sends data to one client, wherever it is connected; False if it is not."""
        return self.registry.send_to(client_id, data)

    def disconnect(self, client_id: str) -> bool:
        return self.registry.disconnect(client_id)


class _WSXChannels:
    __slots__ = ('registry',)

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def __getitem__(self, name: str) -> WSXChannelAPI:
        if name not in self.registry.by_name:
            raise _unknown('WebSocket channel', name, self.registry.by_name)
        return WSXChannelAPI(self.registry, name)

    def get(self, name: str) -> WSXChannelAPI | None:
        return WSXChannelAPI(self.registry, name) if name in self.registry.by_name else None

    def __contains__(self, name: str) -> bool:
        return name in self.registry.by_name

    def keys(self) -> list[str]:
        return sorted(self.registry.by_name)


class WSXFacade:
    """``self.wsx``: ``self.wsx.channel[name].broadcast(data)`` and friends."""

    __slots__ = ('channel',)

    def __init__(self, registry: Any) -> None:
        self.channel = _WSXChannels(registry)


class OutKind:
    """``self.out.wsx`` and the like: outgoing connections of one kind by name."""

    __slots__ = ('kind', 'conns', 'catch_up')

    def __init__(self, kind: str, conns: dict[str, Any], catch_up: CatchUp | None = None) -> None:
        self.kind = kind
        self.conns = conns
        self.catch_up = catch_up

    def __getitem__(self, name: str) -> Any:
        try:
            return self.conns[name]
        except KeyError:
            # Defined a moment ago, its bus message not here yet: this worker loads it now
            handle = self.catch_up(registry.resolve(self.kind), name) if self.catch_up is not None else None
            if handle is not None:
                return handle
            raise _unknown(f'outgoing {self.kind} connection', name, self.conns) from None

    def get(self, name: str) -> Any:
        return self.conns.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self.conns

    def keys(self) -> list[str]:
        return sorted(self.conns)


class OutFacade:
    """``self.out``: ``self.out.rest['name'].conn``, ``self.out.wsx['name'].conn`` ...

    ``.conn`` is the live connection; for an inactive definition it raises
    zato.connectors.base.ConnectorInactive naming it. An unknown name raises KeyError with close names."""

    __slots__ = ('_by_kind', '_catch_up')

    def __init__(self, by_kind: dict[str, dict[str, Any]], catch_up: CatchUp | None = None) -> None:
        self._by_kind = by_kind
        self._catch_up = catch_up

    def __getattr__(self, kind: str) -> OutKind:
        if kind.startswith('_'):
            raise AttributeError(kind)
        # An alias (plain_http for rest) reaches the connections of the kind it stands for
        return OutKind(kind, self._by_kind.get(registry.resolve(kind), {}), self._catch_up)


class ODBFacade:
    """``self.odb``: ``with self.odb.session() as session: ...`` is a SQLAlchemy session to the ODB (as in
    Zato 3.1, the caller closes it; a ``with`` block does). An ODB out of reach is answered 503
    ``odb_unavailable`` to the caller (zato.odb.outage), whatever the service was doing."""

    __slots__ = ('_factory',)

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory

    def session(self) -> Any:
        """A new session (sqlalchemy.orm.Session) bound to the ODB."""
        return self._factory()
