"""What a service reaches of the process it runs in (`self.server`), and what the invoker needs of it:
the narrow interface, so that a service, the invoker and their tests depend on these few names, not
on the whole runtime of a worker."""

from __future__ import annotations

from typing import Any, Protocol


class OutConnCatchUp(Protocol):
    def catch_up(self, kind: str, name: str) -> Any:
        """The connection `name` of `kind` if the ODB has it though this worker has not heard of it yet."""


class ServiceHost(Protocol):
    """`self.server` of a service: invoking others, WebSocket channels, outgoing connections."""

    invoker: Any                            # zato.service.invoker.Invoker
    wsx: Any                                # zato.server.wsx.registry.WSXRegistry
    outconns: dict[str, dict[str, Any]]     # kind -> name -> the connection's handle
    outconn_mgr: OutConnCatchUp
    locks: Any                              # zato.server.locks.Locks, for self.lock()
    Session: Any                            # a sessionmaker bound to the ODB, for self.odb
    crypto: Any                             # zato.security.secrets_file.Crypto, for self.crypto
    async_queue: Any                        # zato.server.async_queue.AsyncQueue, for invoke_async and patterns
    user_config: Any                        # zato.service.user_config.UserConfig, for self.user_config
    caches: Any                             # zato.server.caches.Caches, for self.cache

    def service_name_of_id(self, service_id: int) -> str:
        """The name of the service with that ODB id, for self.invoke_by_id."""


class InvokerHost(ServiceHost, Protocol):
    """What the invoker needs besides: the cluster bus."""

    bus: Any
