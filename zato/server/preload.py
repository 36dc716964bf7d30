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

Nothing here opens a socket, a file or a database connection, or starts a thread or a greenlet:
these are imports only. tests/server/test_preload.py checks all of that, and the e2e test that a
started worker uses the modules the master imported rather than copies of its own.
"""

from __future__ import annotations

import gc
import sys
from importlib import import_module

from zato import accel

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

# Every module the master had when it froze, and every module a worker had once started (worker.py):
# what a worker imports beyond the master's is its own copy, pages the workers do not share
MASTER_MODULES: set[str] = set()
STARTED_MODULES: set[str] = set()


def preload() -> dict[str, int]:
    """Imports ``PRELOAD`` (and the compiled extensions ``accel`` would pick), then freezes the
    garbage collector's view of everything alive; call once in the master, right before forking,
    after gevent's monkey-patching (RuntimeError otherwise)."""
    from gevent import monkey
    if not monkey.is_module_patched('socket') or not monkey.is_module_patched('threading'):
        raise RuntimeError('preload() needs a process monkey-patched by gevent first (zato/server/app.py)')
    for name in PRELOAD + AFTER_PATCHING:
        import_module(name)
    for twin in accel.EXTENSIONS.values():
        accel.load(twin)
    PRELOADED.update({name: id(sys.modules[name]) for name in PRELOAD + AFTER_PATCHING})
    MASTER_MODULES.update(sys.modules)
    # Garbage first, so that nothing unreachable is frozen for good; then nothing alive now is
    # ever traversed again by a collection, here or in the workers
    gc.collect()
    gc.freeze()
    return PRELOADED
