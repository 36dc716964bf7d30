"""One Zato server = one gunicorn master + N of our gevent workers. Run as
``python -m zato.server.app ENV_DIR SERVER_NAME`` (which is what `zato start` does)."""

from __future__ import annotations

if __name__ == '__main__':
    # The master is monkey-patched before it imports anything else, as each worker would be: the
    # workers it forks inherit the patched modules instead of each patching its own copies (~6 MiB
    # of pages written per worker), and the master can then import, before forking, the modules
    # that must come after patching (jwt and the runtime, zato/server/preload.py). gunicorn's gevent
    # worker patches again at start, which finds everything patched and changes nothing.
    from gevent import monkey
    monkey.patch_all()

import os  # noqa: E402 - after the patching above
import sys  # noqa: E402

from gunicorn.app.base import BaseApplication  # noqa: E402

from zato.config import settings  # noqa: E402
from datetime import UTC  # noqa: E402


def server_port(config: settings.ServerConfig, server_name: str) -> int:
    index = int(server_name.removeprefix('server'))
    return config.get('main', 'base_port') + index - 1


class ZatoApplication(BaseApplication):
    def __init__(self, env_dir: str, server_name: str) -> None:
        self.env_dir = os.path.abspath(env_dir)
        self.server_name = server_name
        super().__init__()

    def load_config(self) -> None:
        config = settings.load(self.env_dir)
        run_dir = os.path.join(self.env_dir, 'run')
        os.makedirs(run_dir, exist_ok=True)
        host = config.get('main', 'host')
        self.cfg.set('bind', [f'{host}:{server_port(config, self.server_name)}'])
        self.cfg.set('workers', config.get('main', 'workers'))
        self.cfg.set('worker_class', 'zato.server.worker.ZatoWorker')
        self.cfg.set('worker_connections', config.get('main', 'worker_connections'))
        self.cfg.set('graceful_timeout', config.get('main', 'graceful_timeout'))
        self.cfg.set('timeout', 60)
        self.cfg.set('pidfile', os.path.join(run_dir, f'{self.server_name}.pid'))
        self.cfg.set('errorlog', os.path.join(self.env_dir, 'logs', f'{self.server_name}.log'))
        self.cfg.set('proc_name', f'zato-{self.server_name}')
        self.cfg.set('backlog', 2048)
        if 'control_socket_disable' in self.cfg.settings:
            # gunicorn's control socket has one default path per user; several servers would clash
            self.cfg.set('control_socket_disable', True)

    def load(self):  # noqa: ANN201 - gunicorn's hook; our worker serves no WSGI app
        return None


def register_server(env_dir: str, server_name: str) -> None:
    """Records this server in the ODB, so the cluster knows who is up."""
    from datetime import datetime

    from sqlalchemy import select

    from zato.odb.engine import make_engine, make_session_factory, make_url
    from zato.odb.models import Cluster, Server
    from zato.security.secrets_file import Crypto, read_secrets
    from zato.server.odb_settings import odb_settings

    config = settings.load(env_dir)
    secrets = read_secrets(env_dir)
    odb = odb_settings(config, secrets, Crypto(secrets['secret_key']))
    engine = make_engine(make_url(odb, config.env_dir))
    try:
        with make_session_factory(engine)() as session:
            cluster = session.scalars(select(Cluster).where(Cluster.name == config.get('main', 'cluster_name'))).one()
            row = session.scalars(select(Server).where(Server.cluster_id == cluster.id,
                                                       Server.name == server_name)).one_or_none()
            if row is None:
                row = Server(cluster_id=cluster.id, name=server_name)
                session.add(row)
            row.host = config.get('main', 'host')
            row.port = server_port(config, server_name)
            row.last_join = datetime.now(UTC)
            row.up_status = 'running'
            session.commit()
    finally:
        engine.dispose()


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print('usage: python -m zato.server.app ENV_DIR SERVER_NAME', file=sys.stderr)
        return 2
    env_dir, server_name = argv
    register_server(env_dir, server_name)
    # Large blocks freed go back to the system, in the workers too (zato/server/malloc.py)
    from zato.server.malloc import keep_mmap_threshold
    keep_mmap_threshold()
    # What every worker imports, imported once here and shared copy-on-write, and the ODB's engine,
    # warmed by the statements a worker's start runs (zato/server/preload.py)
    from zato.server.preload import preload
    preload(env_dir)
    ZatoApplication(env_dir, server_name).run()
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
