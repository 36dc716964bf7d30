"""Our gunicorn worker class: gunicorn's gevent worker, serving our own connection handler
instead of WSGI."""

from __future__ import annotations

import logging
import os
import time

from typing import TYPE_CHECKING

import gevent
from gevent.pool import Pool
from gevent.server import StreamServer
from gunicorn.workers.ggevent import GeventWorker

if TYPE_CHECKING:
    from zato.server.connection import ConnectionHandler
    from zato.server.runtime import Runtime

logger = logging.getLogger('zato.worker')

# Seconds between two attempts of a worker to start while the ODB is unavailable: doubled each time, up to
BOOT_RETRY_FIRST, BOOT_RETRY_MAX = 0.5, 5.0


class ZatoWorker(GeventWorker):
    """Loads the runtime after the fork (each worker is a full, independent runtime)."""

    runtime: Runtime
    handler: ConnectionHandler

    def patch(self) -> None:
        # gunicorn's gevent worker monkey-patches here, after the fork; then our os.close
        super().patch()
        from zato.server.patching import install_close
        install_close()

    def load_wsgi(self) -> None:
        from zato.server.connection import ConnectionHandler
        from zato.server.dispatcher import Dispatcher
        from zato.server.logs import setup_logging
        from zato.server.runtime import Runtime

        env_dir = self.app.env_dir
        setup_logging(env_dir, self.app.server_name)
        self.runtime = self._start_runtime(Runtime)
        from zato.server.preload import STARTED_MODULES, modules_since_master
        # What the master should have imported (tests/e2e/test_monkey_patching.py)
        STARTED_MODULES.update(modules_since_master())
        self.handler = ConnectionHandler(Dispatcher(self.runtime), self.runtime.config)
        self.wsgi = None
        logger.info('Worker %s of %s ready', os.getpid(), self.app.server_name)

    def _start_runtime(self, factory: type[Runtime]) -> Runtime:
        """A started runtime. While the ODB cannot be reached (a worker started again, after another one
        died, while PostgreSQL is down), it waits and tries again instead of failing: gunicorn stops the
        whole server, every other worker with it, when a worker fails to boot."""
        from zato.odb.outage import odb_unavailable
        wait = BOOT_RETRY_FIRST
        while True:
            runtime = None
            try:
                runtime = factory(self.app.env_dir, self.app.server_name)
                runtime.start()
                return runtime
            except Exception as e:
                if not odb_unavailable(e):
                    raise
                logger.warning('Worker %s cannot start: the ODB is unavailable (%s); trying again in %.1f s',
                               os.getpid(), str(getattr(e, 'orig', None) or e).strip().splitlines()[0][:200], wait)
            try:
                if runtime is not None:
                    runtime.stop()
            except Exception:  # noqa: BLE001 - half-started: whatever it had is dropped with it
                logger.debug('Could not stop a runtime that failed to start', exc_info=True)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                self.notify()  # the arbiter would take a silent worker for a stuck one
                gevent.sleep(min(0.5, wait))
            wait = min(wait * 2, BOOT_RETRY_MAX)

    def handle(self, listener, client, addr) -> None:  # noqa: ANN001 - gunicorn's signature
        self.handler.handle(client, addr)

    def run(self) -> None:
        servers = []
        # Room above worker_connections, so that a new connection is still accepted when the worker is
        # full: the handler then closes the connection idle the longest, or answers 503 (connection.py)
        pool_size = self.worker_connections + max(16, self.worker_connections // 10)
        for sock in self.sockets:
            sock.setblocking(1)
            server = StreamServer(sock, handle=lambda client, addr, _s=sock: self.handle(_s, client, addr),
                                  spawn=Pool(pool_size))
            if self.cfg.workers > 1:
                server.max_accept = 1  # spread new connections across workers
            server.start()
            servers.append(server)
        # A connection that becomes a WebSocket leaves the HTTP pool: long-lived clients are capped
        # by [wsx] max_connections instead, and never starve HTTP requests of worker_connections
        self.runtime.wsx.pools = [server.pool for server in servers]

        while self.alive:
            self.notify()
            gevent.sleep(1.0)

        # Graceful stop: no new connections, idle keep-alive ones closed, in-flight requests finish
        for server in servers:
            server.close()
        self.handler.close_idle()
        started = time.monotonic()
        while time.monotonic() - started <= self.cfg.graceful_timeout:
            if all(server.pool.free_count() == server.pool.size for server in servers) \
                    and not self.runtime.wsx.clients:
                break
            self.notify()
            self.handler.close_idle()
            gevent.sleep(0.1)
        else:
            logger.warning('Graceful timeout reached (pid %s); closing remaining connections', os.getpid())
            for server in servers:
                server.stop(timeout=1)
        try:
            self.runtime.stop()
        except Exception:
            logger.exception('Error while stopping the runtime')
