"""What the gunicorn master imports before forking its workers (zato/server/preload.py), after gevent's
monkey-patching (zato/server/app.py): nothing that runs (threads, sockets), no blocking lock, no
module holding the standard library's unpatched objects, and the workers' own patching a no-op."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import zato
from zato.server.preload import AFTER_PATCHING, PRELOAD, preload

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(zato.__file__)))

# What the master does: zato.server.app (gunicorn included), the worker class gunicorn loads, registering
# the server, then preload; a lock in a module imported before that is not the preload's doing
MASTER = '''
# As `python -m zato.server.app` does: gevent's patching before anything else
from gevent import monkey
monkey.patch_all()
import _thread, gc, json, os, sys, threading, warnings
import zato.server.app
import gunicorn.arbiter
import zato.server.worker
# What registering the server in the ODB imports (zato.server.app.register_server)
import sqlalchemy, zato.odb.engine, zato.odb.models, zato.security.secrets_file, zato.server.odb_settings
before = set(sys.modules)
from zato.server.preload import AFTER_PATCHING, PRELOAD, preload
preload()
# Locks of the standard library's own, which would block the whole worker (gevent's are fine)
real_lock = monkey.get_original('_thread', 'allocate_lock')()
real_rlock = monkey.get_original('_thread', 'RLock')()
lock_types = (type(real_lock), type(real_rlock))
locks = sorted(f'{name}.{attr}' for name in set(sys.modules) - before if sys.modules[name] is not None
               for attr, value in list(vars(sys.modules[name]).items()) if isinstance(value, lock_types))
def link(fd):
    try:
        return os.readlink(f'/proc/self/fd/{fd}')
    except OSError:  # the descriptor listdir itself had open
        return ''
fds = [link(fd) for fd in os.listdir('/proc/self/fd')]
out = {'missing': [name for name in PRELOAD + AFTER_PATCHING if name not in sys.modules],
       'threads': threading.active_count(), 'sockets': [fd for fd in fds if fd.startswith('socket:')],
       'locks': locks, 'frozen': gc.get_freeze_count()}
# What each worker does next: gunicorn's gevent worker patches again, which must change nothing and
# warn of nothing (it warns of modules holding the unpatched ssl objects)
patched_before = {name: dict(attrs) for name, attrs in monkey.saved.items()}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    monkey.patch_all()
out['warnings'] = [str(w.message)[:300] for w in caught if 'MonkeyPatchWarning' in type(w.message).__name__]
out['patched_again'] = sorted(name for name, attrs in monkey.saved.items() if attrs != patched_before.get(name))
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
    assert got['warnings'] == []                 # no module holds the unpatched ssl.SSLContext
    assert got['patched_again'] == []            # the worker's own patch_all finds nothing left to do
    assert got['threads'] == 1 and got['sockets'] == []
    assert got['locks'] == []                    # no module-level lock of the standard library's own
    # Nothing holds an unpatched object (zato.server.patching takes the original os.close from gevent
    # itself, in each worker)
    assert got['captured'] == []
    assert got['frozen'] > 10_000                # out of the garbage collector's way, so pages stay shared


def test_the_preload_lists_name_each_module_once() -> None:
    names = PRELOAD + AFTER_PATCHING
    assert len(set(names)) == len(names)


def test_preload_refuses_a_process_that_is_not_patched() -> None:
    """Importing jwt or the runtime unpatched would leave them the blocking objects (pytest's
    process is not patched)."""
    from gevent import monkey
    if monkey.is_module_patched('socket'):
        pytest.skip('this process is patched')
    with pytest.raises(RuntimeError, match='monkey-patched'):
        preload()
