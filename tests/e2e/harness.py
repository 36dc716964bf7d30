"""Starts real quickstart environments for end-to-end tests: the same `zato` commands a user runs."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import requests

from zato.admin_client import AdminClient

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WEB_ADMIN = os.path.join(ROOT, 'web-admin')

# A docs page's runnable example: an optional `<!-- docs-test: {...} -->` spec, then a ```python
# block starting with `# docs-example: FILE` (tests/e2e/test_docs.py runs every one)
DOCS_EXAMPLE = re.compile(r'(?:<!-- docs-test: (?P<spec>\{.*?\}) -->\s*\n)?```python\n# docs-example: (?P<file>\S+)\n'
                          r'(?P<code>.*?)```', re.S)


def docs_example(page: str) -> tuple[dict[str, Any], str, str]:
    """The first runnable example of docs/`page`: its docs-test spec ({} if none), file name and code."""
    with open(os.path.join(ROOT, 'docs', page), encoding='utf-8') as f:
        m = DOCS_EXAMPLE.search(f.read())
    assert m is not None, f'docs/{page} has no docs-example block'
    return (json.loads(m.group('spec')) if m.group('spec') else {}), m.group('file'), m.group('code')


def free_port_block(count: int) -> int:
    """A base port with `count` consecutive free ports after it."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            base = s.getsockname()[1]
        if base + count >= 65535:
            continue
        ok = True
        for port in range(base, base + count):
            with socket.socket() as s:
                try:
                    s.bind(('127.0.0.1', port))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError('no free ports')


def child_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a process started from this checkout: its zato and its web-admin first on the
    path (the web-admin's package lives in web-admin/; without it there, an installed copy would run)."""
    full_env = {**os.environ, **(env or {})}
    full_env['PYTHONPATH'] = os.pathsep.join([ROOT, WEB_ADMIN, full_env.get('PYTHONPATH', '')])
    return full_env


def zato(*args: str, env: dict[str, str] | None = None, check: bool = True, timeout: float = 120,
         input_text: str | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, '-m', 'zato.cli.main', *args], capture_output=True, text=True,
                          input=input_text,
                          env=child_env(env), timeout=timeout, cwd=ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f'zato {" ".join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}')
    return proc


class Env:
    """A quickstart environment, started and stoppable, with helpers to use it."""

    def __init__(self, path: str, *create_args: str, servers: int = 1, workers: int = 2,
                 env: dict[str, str] | None = None, web_admin: bool = False) -> None:
        self.path = path
        self.servers = servers
        self.env = dict(env or {})
        if not web_admin:
            # Most tests need no web-admin: one process less per environment
            self.env.setdefault('ZATO_WEB_ADMIN_ENABLED', 'false')
        self.base_port = free_port_block(servers + 1)
        self.web_admin_url = f'http://127.0.0.1:{self.base_port + servers}'
        if os.path.exists(path):
            shutil.rmtree(path)
        out = zato('quickstart', 'create', path, '--base-port', str(self.base_port), '--servers', str(servers),
                   '--workers', str(workers), '--web-admin-port', str(self.base_port + servers), *create_args,
                   env=self.env)
        self.create_output = out.stdout
        self.urls = [f'http://127.0.0.1:{self.base_port + i}' for i in range(servers)]
        self.url = self.urls[0]
        self.pickup = os.path.join(path, 'pickup', 'incoming', 'services')
        self.session = requests.Session()

    def start(self) -> None:
        zato('start', self.path, env=self.env)
        self.admin = AdminClient.for_env(self.path)
        self.admins = [AdminClient.for_env(self.path, server=i + 1) for i in range(self.servers)]

    def stop(self) -> None:
        zato('stop', self.path, check=False, env=self.env)

    def log(self, server: str = 'server1') -> str:
        with open(os.path.join(self.path, 'logs', f'{server}.log'), encoding='utf-8') as f:
            return f.read()

    def drop(self, file_name: str, source: str) -> None:
        """Writes a module into the pickup directory atomically, as an editor's save would end up."""
        tmp = os.path.join(self.path, 'work', file_name + '.tmp')
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write(source)
        os.replace(tmp, os.path.join(self.pickup, file_name))

    def channel(self, name: str, url_path: str, service: str, **extra: Any) -> dict[str, Any]:
        return self.admin.call('POST', '/zato/admin/channels/rest',
                               {'name': name, 'url_path': url_path, 'service': service, **extra})

    def wait_for(self, predicate, timeout: float = 5.0, interval: float = 0.05) -> float:
        """Polls until predicate() is true; returns the seconds it took."""
        started = time.monotonic()
        while True:
            try:
                if predicate():
                    return time.monotonic() - started
            except (requests.RequestException, OSError):
                pass
            if time.monotonic() - started > timeout:
                raise AssertionError(f'condition not met within {timeout} s')
            time.sleep(interval)

    def fresh_get(self, url: str, **kwargs: Any) -> requests.Response:
        """A request over a new connection, so successive calls spread across workers."""
        return requests.get(url, headers={'Connection': 'close'}, timeout=10, **kwargs)


class Clone:
    """The repository as a README reader's clone, in a temporary directory with a HOME of its own, so
    that `scripts/quickstart.sh` runs as the README says and commands run after it in fresh shells.

    Its scripts/quickstart.sh is a copy of the real one; the install step is taken as done: its
    scripts/setup.sh only says so, and its .venv/bin/zato is the test venv's `zato`, which runs this
    tree (PYTHONPATH) as the editable install that setup.sh makes would. A fresh shell is `bash -c`
    with only HOME, PATH (~/.local/bin, where the quickstart links `zato`, and the system's), LANG and
    PYTHONPATH. The ports the docs show are mapped to free ones (`local`), and the quickstart is told
    them through $ZATO_QUICKSTART_ARGS."""

    DOC_PORTS = (17010, 8183, 17020, 8184)  # the quickstart's server and web-admin, docs/cli.md's example's

    def __init__(self, tmp: str) -> None:
        self.root = os.path.join(tmp, 'clone')
        self.home = os.path.join(tmp, 'home')
        self.env_dir = os.path.join(self.home, 'zato-quickstart')
        zato_script = os.path.join(os.path.dirname(sys.executable), 'zato')
        assert os.path.exists(zato_script), f'the test venv has no `zato` command at {zato_script}'
        os.makedirs(os.path.join(self.root, 'scripts'))
        os.makedirs(os.path.join(self.root, '.venv', 'bin'))
        os.makedirs(self.home)
        shutil.copy2(os.path.join(ROOT, 'scripts', 'quickstart.sh'), os.path.join(self.root, 'scripts'))
        setup = os.path.join(self.root, 'scripts', 'setup.sh')
        with open(setup, 'w', encoding='utf-8') as f:
            f.write('#!/bin/sh\necho "setup: ready (installed by the test run)"\n')
        os.chmod(setup, 0o755)
        os.symlink(zato_script, os.path.join(self.root, '.venv', 'bin', 'zato'))
        base = free_port_block(len(self.DOC_PORTS))
        self.ports = {doc: base + i for i, doc in enumerate(self.DOC_PORTS)}

    def local(self, text: str) -> str:
        """`text` with each port the docs show replaced by this clone's."""
        return re.sub(r'\b(\d{4,5})\b', lambda m: str(self.ports.get(int(m.group(1)), m.group(1))), text)

    def shell_env(self, local_bin_on_path: bool = True) -> dict[str, str]:
        path = '/usr/local/bin:/usr/bin:/bin'
        return {'HOME': self.home, 'PATH': f'{self.home}/.local/bin:{path}' if local_bin_on_path else path,
                'LANG': 'C.UTF-8', 'PYTHONPATH': ROOT + os.pathsep + os.path.join(ROOT, 'web-admin'),
                'ZATO_QUICKSTART_ARGS': f'--base-port {self.ports[17010]} --web-admin-port {self.ports[8183]}'}

    def sh(self, command: str, local_bin_on_path: bool = True, timeout: float = 120,
           input_text: str | None = None) -> subprocess.CompletedProcess:
        """Runs `command` in a fresh shell in the clone's directory, as a user who opened a terminal."""
        return subprocess.run(['bash', '-c', command], cwd=self.root, env=self.shell_env(local_bin_on_path),
                              capture_output=True, text=True, timeout=timeout, input=input_text)

    def stop_all(self) -> None:
        """Stops every environment made under the clone's HOME."""
        for name in sorted(os.listdir(self.home)):
            if os.path.isfile(os.path.join(self.home, name, 'config', 'repo', 'server.conf')):
                zato('stop', os.path.join(self.home, name), check=False)


@contextlib.contextmanager
def postgresql_cluster(tmp_path_factory: Any, prefix: str, env: dict[str, str] | None = None,
                       servers: int = 2, workers: int = 2, dsn_env: str = '') -> Iterator[Env]:
    """A started environment of `servers` servers with `workers` workers each on a scratch PostgreSQL
    database of its own (tests/pg.py scratch_database, `zato_<prefix>_` and random hex), with `env` on
    top of the ODB's password (and, with `dsn_env`, that variable set to the database's DSN, for the
    services); `.db` and `.dsn` name the database. Stopped, and the database dropped, afterwards."""
    from tests import pg
    with pg.scratch_database(f'zato_{prefix}_') as db:
        env = {**(env or {}), **({dsn_env: pg.dsn(db)} if dsn_env else {})}
        cluster = Env(str(tmp_path_factory.mktemp(prefix) / 'env'), '--odb', 'postgresql', '--odb-host', pg.HOST,
                      '--odb-port', str(pg.PORT), '--odb-user', pg.USER, '--odb-db-name', db, servers=servers,
                      workers=workers, env={'ZATO_ODB_PASSWORD': pg.PASSWORD, **env})
        cluster.db = db
        cluster.dsn = pg.dsn(db)
        try:
            cluster.start()
            yield cluster
        finally:
            cluster.stop()
