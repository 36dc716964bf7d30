"""What the gunicorn master imports before it forks its workers, so that they share those modules'
pages copy-on-write instead of each importing its own copy (bench/memory.py measures the effect).

Every worker imports the same libraries at start: SQLAlchemy's PostgreSQL dialect, cryptography,
argon2, bcrypt, fastjsonschema, orjson, gevent's modules, and Zato's own request path. Imported in
the master, their code and data are one copy in RAM for all workers. ``gc.freeze()`` right before
the fork keeps it so: a worker's garbage collector then never walks (and so never writes to) the
objects it inherited, which would otherwise turn the shared pages into private copies, one per
worker, at the first full collection.

The master is monkey-patched by gevent before it imports anything (zato/server/app.py), so what
is imported here is already cooperative — and the modules that take the standard library's objects
by name (``from ssl import SSLContext`` in ``jwt.jwks_client``), or that make ``threading`` locks at
import, get gevent's. Each worker inherits the patched modules: gunicorn's gevent worker patches
again at start, finding nothing left to do, instead of patching a copy of its own (~6 MiB of pages
written per worker). ``preload`` refuses to run in a process that is not patched.

Beyond imports, the master builds what a worker's start would build the same way in every worker,
so that the workers share it rather than each writing its own copy: the ODB's engine, run once
through the statements a worker's start runs and the router it builds (``prepare_odb``: the
dialect's initialisation, the mappers' memoised attributes, the compiled statements, the router's
compiled code). That engine's connections are all closed before the fork, and the worker's runtime
gives it a connection pool of its own (``odb_engine``). Nothing else opens a socket, a file or a
database connection, or starts a thread or a greenlet. tests/server/test_preload.py and
tests/server/test_preload_odb.py check all of that, and the e2e test that a started worker uses the
modules the master imported rather than copies of its own.

What a worker still writes at start (~19-21 MiB of private pages, bench/README.md "Worker memory") is
mostly CPython writing to the objects it inherited (reference counts, code objects' counters and
caches) and its own new objects, placed among the master's: see bench/memory.py --pages.
"""

from __future__ import annotations

import gc
import logging
import sys
import time
from importlib import import_module
from typing import TYPE_CHECKING

from zato import accel

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine

logger = logging.getLogger(__name__)

# Imported by the master, in this order; each pulls in its own dependencies
PRELOAD: tuple[str, ...] = (
    # Third-party libraries every worker imports at start
    'sqlalchemy.dialects.postgresql',
    'sqlalchemy.dialects.postgresql.psycopg2',
    'cryptography.x509',
    'cryptography.hazmat.backends',
    'cryptography.hazmat.primitives.asymmetric.ec',
    'cryptography.hazmat.primitives.asymmetric.ed448',
    'cryptography.hazmat.primitives.asymmetric.ed25519',
    'cryptography.hazmat.primitives.asymmetric.padding',
    'cryptography.hazmat.primitives.asymmetric.rsa',
    'cryptography.hazmat.primitives.hashes',
    'cryptography.hazmat.primitives.serialization',
    'argon2',
    'bcrypt',
    'fastjsonschema',
    'orjson',
    'zope.event',
    # gunicorn's gevent worker and the parts of gevent it uses before and after patching
    'gunicorn.workers.ggevent',
    'gevent.events',
    'gevent.local',
    'gevent.pool',
    'gevent.select',
    'gevent.selectors',
    'gevent.server',
    'gevent.signal',
    'gevent.time',
    # Zato's request path and everything the runtime imports but the JWT checks
    'zato.server.connection',
    'zato.server.dispatcher',
    'zato.server.jsonrpc',
    'zato.server.store',
    'zato.server.hot_deploy',
    'zato.server.limits',
    'zato.server.outconns',
    'zato.server.kafka_channel',
    'zato.server.stats',
    'zato.server.stats_flush',
    'zato.server.logs',
    'zato.server.patching',
    'zato.server.wsx.registry',
    'zato.server.wsx.session',
    'zato.server.admin.crud',
    'zato.server.admin.jsonrpc',
    'zato.server.admin.kafka_channel',
    'zato.server.admin.outconns',
    'zato.server.admin.rate_limits',
    'zato.server.admin.security',
    'zato.server.admin.services',
    'zato.server.admin.stats',
    'zato.server.admin.wsx',
    'zato.server.admin.cache',
    'zato.server.admin.pubsub',
    'zato.server.pubsub_cleanup',
    'zato.server.pubsub_batch',
    'zato.server.flushing',
    'zato.server.admin.scheduler',
    'zato.server.pattern_services',
    'zato.server.service',
    'zato.server.startup',
    'zato.connectors.smtp_message',
    'logging.config',
    'logging.handlers',
    'gunicorn.glogging',
    'zato.bus.factory',
    'zato.bus.local',
    'zato.security.authenticate',
    'zato.security.basic_auth',
    'zato.security.passwords',
    'zato.odb.stats_query',
    'zato.service.base',
)

# What every worker imports at start that may come only after the monkey-patching (their module-level
# names would otherwise keep the standard library's blocking objects): the master is patched first
AFTER_PATCHING: tuple[str, ...] = (
    'gevent.ssl',
    'jwt',
    'jwt.jwks_client',
    'sqlite3',
    'zato.security.jwt_auth',
    'zato.server.runtime',
    'zato.server.worker',
)

# name -> id() of the module object the master imported: a worker forked from it has the very same
# objects at the same addresses, so an id that differs in a worker means the module was imported
# again there (and its pages are not shared)
PRELOADED: dict[str, int] = {}

# Every module the master had when it froze, and the modules a worker had imported beyond those once
# started (worker.py, `modules_since_master`): each of these is its own copy, pages the workers do not share
MASTER_MODULES: set[str] = set()
STARTED_MODULES: set[str] = set()

# The ODB's engine the master prepared (prepare_odb), by (URL, pool_size, pool_timeout), for the
# runtime of the worker forked from it (odb_engine)
_ENGINES: dict[tuple[str, int, float], Engine] = {}


def preload(env_dir: str | None = None) -> dict[str, int]:
    """Imports ``PRELOAD`` (and the compiled extensions ``accel`` would pick), prepares the ODB's engine
    when given the environment (``prepare_odb``), then freezes the garbage collector's view of
    everything alive; call once in the master, right before forking, after gevent's monkey-patching
    (RuntimeError otherwise)."""
    from gevent import monkey
    if not monkey.is_module_patched('socket') or not monkey.is_module_patched('threading'):
        raise RuntimeError('preload() needs a process monkey-patched by gevent first (zato/server/app.py)')
    for name in PRELOAD + AFTER_PATCHING:
        import_module(name)
    for twin in accel.EXTENSIONS.values():
        accel.load(twin)
    PRELOADED.update({name: id(sys.modules[name]) for name in PRELOAD + AFTER_PATCHING})
    if env_dir is not None:
        prepare_odb(env_dir)
    MASTER_MODULES.update(sys.modules)
    # Garbage first, so that nothing unreachable is frozen for good; then nothing alive now is
    # ever traversed again by a collection, here or in the workers
    gc.collect()
    gc.freeze()
    return PRELOADED



def modules_since_master() -> list[str]:
    """The modules this process has that the master had not when it froze (MASTER_MODULES). sys.modules
    keeps the order of insertion, so those come last: it is read from its end, up to the first module
    the master had. Iterating over all of it would touch (take a reference to, and so write to) every
    module's name: ~0.7 MiB of the master's pages copied in each worker, for a test's sake."""
    found = []
    for name in reversed(sys.modules):
        if name in MASTER_MODULES:
            break
        found.append(name)
    return found


def _key(url: URL, pool_size: int, pool_timeout: float) -> tuple[str, int, float]:
    return url.render_as_string(hide_password=False), pool_size, pool_timeout


def prepare_odb(env_dir: str) -> None:
    """Makes the engine each worker's runtime will use, and runs once through it what a worker's start
    runs, so that what SQLAlchemy builds on the way is built here, once, and shared copy-on-write:
    the dialect's initialisation at the first connection, the mappers' memoised attributes, the
    compiled form of each statement (the engine's compiled cache) — and our own router's compiled
    code (zato.server.router keeps it by source). A worker's start then wrote ~1 MiB less of memory.

    Only reads, and every connection is closed (``engine.dispose()``) before this returns: no
    connection, socket or greenlet crosses the fork. The worker gives the engine a pool of its own
    (``odb_engine``). A failure here is logged and the workers make their own engines, as before."""
    from sqlalchemy import select

    from zato.config import settings
    from zato.odb.engine import make_engine, make_session_factory, make_url
    from zato.odb.models import Base, ChannelREST, Cluster, JWTSession, SecurityDef
    from zato.security.secrets_file import Crypto, read_secrets
    from zato.server.channels import ChannelConfig
    from zato.server.internal_routes import internal_channels
    from zato.server.odb_settings import odb_settings
    from zato.server.router import Router
    from zato.server.runtime import ADMIN_SEC_NAME

    try:
        config = settings.load(env_dir)
        secrets = read_secrets(env_dir)
        odb = odb_settings(config, secrets, Crypto(secrets['secret_key']))
        if odb['engine'] == 'postgresql':
            from zato.odb.gevent_psycopg import install
            install()  # as Runtime does, before the first connection
        url = make_url(odb, env_dir)
        pool_size, pool_timeout = config.get('odb', 'pool_size'), config.get('odb', 'pool_timeout')
        engine = make_engine(url, pool_size, pool_timeout)
    except Exception:  # noqa: BLE001 - an optimisation: the workers will say what is wrong
        logger.warning('Could not prepare the ODB engine for the workers', exc_info=True)
        return
    try:
        with make_session_factory(engine)() as session:
            # The statements of Runtime.start, reload_all and the reloads it runs (each kind's rows of
            # this cluster), and of JWTManager.load
            cluster = session.scalars(select(Cluster).where(Cluster.name == config.get('main', 'cluster_name'))).one()
            session.scalar(select(Cluster.config_version).where(Cluster.id == cluster.id))
            for mapper in Base.registry.mappers:
                model = mapper.class_
                if 'cluster_id' in mapper.columns:
                    session.scalars(select(model).where(model.cluster_id == cluster.id)).all()
            session.scalars(select(JWTSession).where(JWTSession.cluster_id == cluster.id,
                                                     JWTSession.expires_at > time.time())).all()
            # The routes of the internal and REST channels, as Runtime._rebuild_router makes them
            admin_sec_id = session.scalar(select(SecurityDef.id).where(SecurityDef.cluster_id == cluster.id,
                                                                      SecurityDef.name == ADMIN_SEC_NAME))
            channels = internal_channels(admin_sec_id, sso=config.get('component_enabled', 'sso'))
            rows = session.scalars(select(ChannelREST).where(ChannelREST.cluster_id == cluster.id)).all()
            channels.extend(ChannelConfig.from_model(row) for row in rows)
            Router([(c.url_path, c.method, c) for c in channels])
    except Exception:  # noqa: BLE001 - as above
        logger.warning('Could not prepare the ODB engine for the workers', exc_info=True)
        engine.dispose()
        return
    engine.dispose()  # every connection closed: nothing open crosses the fork
    _ENGINES[_key(url, pool_size, pool_timeout)] = engine


def odb_engine(url: URL, pool_size: int, pool_timeout: float) -> Engine:
    """The ODB's engine for a runtime: the one the master prepared for these settings, if any and not
    taken yet, with a connection pool of this process's own (SQLAlchemy's way of using an engine made
    before a fork: ``dispose(close=False)`` replaces the pool and closes nothing); else a new one."""
    from zato.odb.engine import make_engine
    engine = _ENGINES.pop(_key(url, pool_size, pool_timeout), None)
    if engine is None:
        return make_engine(url, pool_size, pool_timeout)
    engine.dispose(close=False)
    return engine
