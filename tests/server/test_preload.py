"""What the gunicorn master imports before forking its workers (zato/server/preload.py): only what is
safe before gevent's monkey-patching, and nothing that runs (threads, sockets, locks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import zato
from zato.server.preload import MUST_NOT_PRELOAD, PRELOAD

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(zato.__file__)))

# What the master does: zato.server.app (gunicorn included), the worker class gunicorn loads, registering
# the server, then preload; a lock in a module imported before that is not the preload's doing
MASTER = '''
import _thread, gc, json, os, sys, threading, warnings
import zato.server.app
import gunicorn.arbiter
import zato.server.worker
# What registering the server in the ODB imports (zato.server.app.register_server)
import sqlalchemy, zato.odb.engine, zato.odb.models, zato.security.secrets_file, zato.server.odb_settings
before = set(sys.modules)
from zato.server.preload import MUST_NOT_PRELOAD, PRELOAD, preload
preload()
lock_types = (_thread.LockType, type(_thread.RLock()))
locks = sorted(f'{name}.{attr}' for name in set(sys.modules) - before if sys.modules[name] is not None
               for attr, value in list(vars(sys.modules[name]).items()) if isinstance(value, lock_types))
def link(fd):
    try:
        return os.readlink(f'/proc/self/fd/{fd}')
    except OSError:  # the descriptor listdir itself had open
        return ''
fds = [link(fd) for fd in os.listdir('/proc/self/fd')]
out = {'must_not': [name for name in MUST_NOT_PRELOAD if name in sys.modules],
       'missing': [name for name in PRELOAD if name not in sys.modules],
       'threads': threading.active_count(), 'sockets': [fd for fd in fds if fd.startswith('socket:')],
       'locks': locks, 'frozen': gc.get_freeze_count()}
# What each worker does next: gevent's monkey-patching, which warns about modules holding ssl objects
from gevent import monkey
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    monkey.patch_all()
out['warnings'] = [str(w.message)[:300] for w in caught if 'MonkeyPatchWarning' in type(w.message).__name__]
# A preloaded module that took an object by name (from time import sleep) would keep the unpatched one
originals = {id(value): f'{module}.{attr}' for module, attrs in monkey.saved.items() for attr, value in attrs.items()}
out['captured'] = sorted(f'{name}.{attr} is {originals[id(value)]}' for name in set(sys.modules) - before
                         if sys.modules[name] is not None and not name.startswith('gevent.')
                         for attr, value in list(vars(sys.modules[name]).items())
                         if id(value) in originals and not isinstance(value, (int, str)))
print(json.dumps(out))
'''


def run_master() -> dict:
    env = {k: v for k, v in os.environ.items() if k != 'ZATO_PURE_PYTHON'}
    env['PYTHONPATH'] = ROOT
    done = subprocess.run([sys.executable, '-c', MASTER], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_masters_preload_is_safe_before_the_workers_monkey_patch() -> None:
    got = run_master()
    assert got['missing'] == []
    assert got['must_not'] == []                 # jwt, urllib3, requests, the runtime: the workers' own
    assert got['warnings'] == []                 # no module holds the unpatched ssl.SSLContext
    assert got['threads'] == 1 and got['sockets'] == []
    assert got['locks'] == []                    # no module-level lock made before patching
    # Nothing holds an unpatched object but the os.close that zato.server.patching keeps on purpose
    assert got['captured'] == ['zato.server.patching._deferred_close is os.close',
                               'zato.server.patching._os_close is os.close']
    assert got['frozen'] > 10_000                # out of the garbage collector's way, so pages stay shared


def test_the_preload_list_keeps_out_what_it_must() -> None:
    assert not set(PRELOAD) & set(MUST_NOT_PRELOAD)
    assert len(set(PRELOAD)) == len(PRELOAD)
