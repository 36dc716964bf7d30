"""The boundaries between the layers (../shared/DESIGN.md), read from every import statement,
TYPE_CHECKING ones and imports inside functions included."""

from __future__ import annotations

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (files under, module prefixes they must not import, why)
RULES = [
    ('zato/proto', ('zato.server', 'zato.bus', 'zato.odb', 'zato.connectors', 'zato.security', 'zato.service',
                    'gevent', 'socket', 'ssl', 'select', 'time'), 'protocol cores do no I/O'),
    ('zato/security', ('zato.server', 'zato.cli'), 'checks are functions of config and request'),
    ('zato/connectors', ('zato.server', 'zato.cli'), 'connectors work without a running server'),
    ('zato/odb', ('zato.server', 'zato.cli', 'zato.connectors', 'zato.security', 'zato.service'),
     'the models know nothing of the runtime'),
    ('zato/config', ('zato.server', 'zato.cli', 'zato.connectors', 'zato.security', 'zato.service', 'zato.odb',
                     'gevent'), 'shared config types and settings live below every layer'),
    ('zato/sso', ('zato.server', 'zato.cli', 'zato.connectors', 'gevent', 'socket', 'ssl', 'select'),
     'the SSO core is logic over the ODB with an injected clock; zato.server.sso serves it'),
    ('zato/pubsub', ('zato.server', 'zato.cli', 'zato.connectors', 'gevent', 'socket', 'ssl', 'select'),
     'the pub/sub core is logic over the ODB; zato.server.pubsub serves it'),
    ('zato/admin_client.py', ('zato.server', 'zato.cli', 'zato.connectors', 'gevent'),
     'the admin client serves the CLI and the web-admin alike'),
    ('web-admin', ('zato.server', 'zato.cli', 'zato.connectors', 'gevent'),
     'the web-admin talks to servers through the admin API'),
    ('zato/service/lock.py', ('gevent', 'socket', 'time', 'datetime', 'random', 'zato.server', 'zato.odb',
                              'sqlalchemy'), "self.lock()'s rules do no I/O: time and chance are passed in"),
    ('zato/odb/lease.py', ('gevent', 'time', 'datetime'), "leases expire by the ODB's clock, never the process's"),
    ('zato/cache', ('zato.server', 'zato.bus', 'zato.odb', 'gevent', 'socket'),
     'a cache is memory and the rules of its changes; zato.server.caches spreads them'),
    ('zato/scheduler', ('gevent', 'time', 'zato.server', 'zato.odb', 'zato.bus', 'sqlalchemy'),
     "the scheduler's rules do no I/O: the clock is passed in"),
    ('zato/errors.py', ('sqlalchemy', 'psycopg2', 'sqlite3', 'zato.odb', 'zato.server', 'zato.connectors', 'gevent'),
     'the one mapping of errors knows no library: a layer registers its own (register_unavailable)'),
]


def imports_of(path: str) -> list[tuple[int, str]]:
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read(), path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def files_under(top: str) -> list[str]:
    path = os.path.join(ROOT, top)
    if path.endswith('.py'):
        return [path]
    return [os.path.join(d, f) for d, _, names in os.walk(path) if '__pycache__' not in d
            for f in names if f.endswith('.py')]


@pytest.mark.parametrize('top, forbidden, why', RULES, ids=[rule[0] for rule in RULES])
def test_a_layer_imports_nothing_it_must_not(top, forbidden, why):
    files = files_under(top)
    assert files, top
    bad = [f'{os.path.relpath(path, ROOT)}:{line} imports {name}' for path in files
           for line, name in imports_of(path) if any(name == f or name.startswith(f + '.') for f in forbidden)]
    assert bad == [], why
