"""The servers bench/rest.py measures: how each one is started, found, inspected and stopped.

Every server runs in its own session (process group), pinned to one CPU with ``taskset``, so
that ``stop`` can always take down the whole tree, whatever state it is in. ``worker_pid`` is
the process that serves requests: the only child of a gunicorn master, or the uvicorn process
itself (uvicorn without ``--workers`` serves in-process).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(REPO, 'bench')
PEERS = os.path.join(BENCH, 'peers')
PYTHON = sys.executable
COMPILED_PARSER = 'zato/cy/http1.'  # a path fragment of the compiled parser in /proc/PID/maps


class ServerError(RuntimeError):
    pass


# ################################################################################################
# /proc helpers

def processes() -> Iterator[tuple[int, str, list[str]]]:
    """(pid, command name, the fields of /proc/PID/stat after the name) of every process still there; the
    name is in parentheses and may hold spaces, so the fields are split after its closing one: state
    first, then ppid, pgrp ... utime is the 12th, stime the 13th."""
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open(f'/proc/{name}/stat', encoding='ascii', errors='replace') as f:
                stat = f.read()
        except OSError:
            continue
        yield int(name), stat[stat.find('(') + 1:stat.rfind(')')], stat[stat.rfind(')') + 2:].split()


def cpu_of_fields(fields: list[str]) -> float:
    """User + system CPU seconds from the fields `processes` gives."""
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def children_of(pid: int) -> list[int]:
    return sorted(child for child, _, fields in processes() if int(fields[1]) == pid)


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (peak RSS) and Pss of a process, in KiB.

    Pss charges pages shared with the master (forked copy-on-write) pro rata, so it is what one
    more worker costs; RSS counts them in full.
    """
    out = {}
    rollup = ('Pss', 'Pss_Anon', 'Pss_File', 'Shared_Clean', 'Shared_Dirty', 'Private_Clean', 'Private_Dirty')
    for path, keys in ((f'/proc/{pid}/status', ('VmRSS', 'VmHWM')), (f'/proc/{pid}/smaps_rollup', rollup)):
        try:
            with open(path, encoding='ascii') as f:
                for line in f:
                    key, _, value = line.partition(':')
                    if key in keys:
                        out[key] = int(value.split()[0])
        except OSError:
            pass
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    with open(f'/proc/{pid}/stat', encoding='ascii', errors='replace') as f:
        stat = f.read()
    return cpu_of_fields(stat[stat.rfind(')') + 2:].split())


def maps_contain(pid: int, fragment: str) -> bool:
    with open(f'/proc/{pid}/maps', encoding='ascii', errors='replace') as f:
        return any(fragment in line for line in f)


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(('127.0.0.1', port))
        except OSError:
            return False
    return True


def http_call(url: str, method: str = 'GET', body: bytes | None = None, timeout: float = 5.0,
              headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    all_headers = {'Content-Type': 'application/json'} if body is not None else {}
    all_headers.update(headers or {})
    req = urllib.request.Request(url, data=body, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - 127.0.0.1 only
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def group_alive(pgid: int) -> bool:
    """Whether a process group has a live member (zombies waiting to be reaped do not count)."""
    return any(int(fields[2]) == pgid and fields[0] != 'Z' for _, _, fields in processes())


def kill_group(pgid: int, timeout: float = 10.0) -> None:
    """SIGTERM to a whole process group, SIGKILL to what is left after ``timeout``."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not group_alive(pgid):
                return
            time.sleep(0.05)


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != 'ZATO_PURE_PYTHON'}
    # The web-admin too: the one installed (editable) may be another checkout's, when this is a `git archive`
    env['PYTHONPATH'] = REPO + os.pathsep + os.path.join(REPO, 'web-admin')
    env['PATH'] = os.path.dirname(PYTHON) + os.pathsep + env.get('PATH', '')
    env['PYTHONUNBUFFERED'] = '1'
    env.update(extra)
    return env


# ################################################################################################

class Server:
    """A server under test; subclasses say how to start it."""

    kind = ''

    def __init__(self, port: int, cpu: int | None, log_dir: str) -> None:
        self.port = port
        self.cpu = cpu
        self.log_dir = log_dir
        self.proc: subprocess.Popen | None = None
        self.pgid: int | None = None
        self.notes: dict[str, Any] = {}
        self.extra_env: dict[str, str] = {}

    @property
    def base_url(self) -> str:
        return f'http://127.0.0.1:{self.port}'

    @property
    def log_path(self) -> str:
        return os.path.join(self.log_dir, f'{self.kind}.log')

    def command(self) -> list[str]:
        raise NotImplementedError

    def pinned(self, cmd: list[str]) -> list[str]:
        return cmd if self.cpu is None else ['taskset', '-c', str(self.cpu), *cmd]

    def check_port(self) -> None:
        if not port_free(self.port):
            raise ServerError(f'{self.kind}: port {self.port} is in use; pick another --base-port')

    def start(self, wait: float = 60.0) -> None:
        self.check_port()
        log = open(self.log_path, 'ab')  # noqa: SIM115 - the child keeps it open
        try:
            # taskset execs the server, so the process started here is the server itself
            self.proc = subprocess.Popen(self.pinned(self.command()), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True, cwd=REPO,
                                         env=child_env(**self.extra_env))
        finally:
            log.close()
        self.pgid = self.proc.pid  # a session leader's pid is its group id
        self.wait_ready(wait)

    def wait_ready(self, wait: float) -> None:
        """Returns once the port accepts connections and the worker process exists."""
        deadline = time.monotonic() + wait
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise ServerError(f'{self.kind} exited during start-up (code {self.proc.returncode}); '
                                  f'see {self.log_path}')
            try:
                with socket.create_connection(('127.0.0.1', self.port), timeout=0.5):
                    pass
                self.worker_pid()
                return
            except (OSError, ServerError):
                pass
            if time.monotonic() > deadline:
                raise ServerError(f'{self.kind} did not start within {wait:.0f} s; see {self.log_path}')
            time.sleep(0.1)

    def worker_pid(self) -> int:
        """The process serving requests."""
        if self.proc is None:
            raise ServerError(f'{self.kind} is not running')
        return self.proc.pid

    def stop(self) -> None:
        if self.pgid is not None:
            kill_group(self.pgid)
            self.pgid = None
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            self.proc = None


def only_child(master: int | None) -> int:
    """The worker of a one-worker gunicorn: the only child of its master."""
    if master is None:
        raise ServerError('no master process')
    children = children_of(master)
    if len(children) != 1:
        raise ServerError(f'expected one worker under the master {master}, found {children}')
    return children[0]


class Gunicorn(Server):
    """One gunicorn worker of class ``worker_class`` serving ``app`` from ``peers/``."""

    worker_class = ''
    app = ''

    def command(self) -> list[str]:
        return [os.path.join(os.path.dirname(PYTHON), 'gunicorn'), '-k', self.worker_class, '-w', '1',
                '--worker-connections', '1000', '-b', f'127.0.0.1:{self.port}', '--chdir', PEERS,
                '--log-level', 'warning', self.app]

    def worker_pid(self) -> int:
        return only_child(self.proc.pid if self.proc is not None else None)


class GunicornFalcon(Gunicorn):
    kind = 'gunicorn-falcon'
    worker_class = 'gevent'
    app = 'falcon_app:app'


class GunicornBareLoop(Gunicorn):
    """The bare hand-parsed gevent loop (``peers/bare_loop.py``) in a gunicorn GeventWorker subclass:
    the ceiling of Zato's design; with ``yields``, ``gevent.sleep(0)`` after each batch, as Zato does."""

    worker_class = 'bare_loop.BareWorker'
    app = 'bare_loop:app'

    def __init__(self, port: int, cpu: int | None, log_dir: str, yields: bool = False) -> None:
        super().__init__(port, cpu, log_dir)
        self.kind = 'gunicorn-bare-loop-yield' if yields else 'gunicorn-bare-loop'
        if yields:
            self.extra_env['BARE_LOOP_YIELD'] = '1'


class Uvicorn(Server):
    """uvicorn with uvloop and httptools; without --workers it serves in its own process."""

    app = ''

    def command(self) -> list[str]:
        return [PYTHON, '-m', 'uvicorn', '--app-dir', PEERS, '--host', '127.0.0.1', '--port', str(self.port),
                '--loop', 'uvloop', '--http', 'httptools', '--no-access-log', '--log-level', 'warning', self.app]


class UvicornStarlette(Uvicorn):
    kind = 'uvicorn-starlette'
    app = 'starlette_app:app'


class UvicornFastAPI(Uvicorn):
    kind = 'uvicorn-fastapi'
    app = 'fastapi_app:app'


# ################################################################################################

def zato_cli(*args: str, env: dict[str, str] | None = None, cpu: int | None = None,
             timeout: float = 120) -> str:
    cmd = [PYTHON, '-m', 'zato.cli.main', *args]
    if cpu is not None:
        cmd = ['taskset', '-c', str(cpu), *cmd]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env or child_env(), cwd=REPO, timeout=timeout,
                          check=False)
    if done.returncode != 0:
        raise ServerError(f'`zato {" ".join(args)}` failed: {(done.stderr or done.stdout).strip()}')
    return done.stdout


class Zato(Server):
    """A quickstart environment with one server of one worker, started and stopped with the CLI.

    Compiled and pure-Python servers run from two environments, so both can be up side by side.
    Services and channels live in the environment's ODB and survive restarts.
    """

    def __init__(self, port: int, cpu: int | None, log_dir: str, env_dir: str, pure_python: bool,
                 workers: int = 1) -> None:
        super().__init__(port, cpu, log_dir)
        self.env_dir = env_dir
        self.pure_python = pure_python
        self.workers = workers
        self.kind = 'zato-pure-python' if pure_python else 'zato'
        self.master_pid: int | None = None

    @property
    def log_path(self) -> str:
        return os.path.join(self.env_dir, 'logs', 'server1.log')

    def start(self, wait: float = 60.0, pure_python: bool | None = None) -> None:
        pure = self.pure_python if pure_python is None else pure_python
        self.check_port()
        if not os.path.exists(os.path.join(self.env_dir, 'config')):
            zato_cli('quickstart', 'create', self.env_dir, '--workers', str(self.workers), '--base-port', str(self.port))
        env = child_env(ZATO_PURE_PYTHON='1') if pure else child_env()
        # The CLI starts the gunicorn master in a session of its own, which inherits the CPU affinity
        try:
            zato_cli('start', self.env_dir, env=env, cpu=self.cpu)
        finally:
            self.master_pid = self.read_master_pid()
            self.pgid = self.master_pid
        self.wait_ready(wait)
        loaded = maps_contain(self.worker_pid(), COMPILED_PARSER)
        self.notes['compiled_parser_loaded'] = loaded
        if loaded == pure:
            raise ServerError(f'{self.kind}: the worker has {"" if loaded else "not "}loaded the compiled parser')

    def prepare(self, services_file: str, channels: list[dict[str, Any]], schemas: dict[str, str] | None = None,
                security: list[dict[str, Any]] | None = None, rate_limits: list[dict[str, Any]] | None = None) -> str:
        """Creates the environment, deploys ``schemas`` and ``services_file`` and creates ``security``
        definitions, ``rate_limits`` and ``channels`` in its ODB.

        ``schemas`` maps a JSON Schema's file name to its text; they are deployed before the
        services, which find them when they are imported. The other three are admin API bodies
        (POST /zato/admin/security, /rate-limits and /channels/rest), created in that order, each
        only if nothing of that name exists yet.

        This runs on a pure-Python server, stopped afterwards, so that setting up never depends
        on the build under test (a broken compiled parser shows up in the measured requests, not
        as a failed deployment). Returns what was deployed, as `zato deploy` prints it.
        """
        self.start(pure_python=True)
        try:
            client = self.admin()
            from zato.errors import ZatoError
            done = []
            try:
                for file_name, text in (schemas or {}).items():
                    result = client.call('POST', '/zato/admin/deploy', {'file_name': file_name, 'source': text})
                    done.append(f'Deployed JSON Schema {file_name} (version {result["version"]})')
                done.append(zato_cli('deploy', services_file, self.env_dir).strip())
                for path, items in (('/zato/admin/security', security), ('/zato/admin/rate-limits', rate_limits),
                                    ('/zato/admin/channels/rest', channels)):
                    existing = {x['name'] for x in client.call('GET', path)}
                    for item in items or ():
                        if item['name'] not in existing:
                            client.call('POST', path, item)
            except ZatoError as e:  # the admin API said no
                raise ServerError(f'{self.kind}: setting up failed: {e}') from None
        finally:
            self.stop()
        self.notes.clear()
        return '\n'.join(done)

    def admin(self) -> Any:
        """An admin API client (zato.admin_client.AdminClient) of this environment's server."""
        if REPO not in sys.path:
            sys.path.insert(0, REPO)
        from zato.admin_client import AdminClient  # imported only when Zato is measured
        return AdminClient.for_env(self.env_dir)

    def worker_pid(self) -> int:
        if self.workers == 1:
            return only_child(self.master_pid)
        return self.worker_pids()[0]

    def worker_pids(self) -> list[int]:
        """Every worker, once all of them are up."""
        if self.master_pid is None:
            raise ServerError('no master process')
        children = children_of(self.master_pid)
        if len(children) != self.workers:
            raise ServerError(f'expected {self.workers} workers under the master {self.master_pid}, found {children}')
        return children

    def read_master_pid(self) -> int | None:
        try:
            with open(os.path.join(self.env_dir, 'run', 'server1.pid'), encoding='ascii') as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            pass
        # No pidfile (interrupted during start-up): look for the master of this very environment
        wanted = ['-m', 'zato.server.app', os.path.abspath(self.env_dir)]
        for name in os.listdir('/proc'):
            if name.isdigit():
                try:
                    with open(f'/proc/{name}/cmdline', 'rb') as f:
                        argv = f.read().decode('utf-8', 'replace').split('\0')
                    leader = os.getpgid(int(name)) == int(name)
                except OSError:
                    continue
                if argv[1:4] == wanted and leader:
                    return int(name)
        return None

    def stop(self) -> None:
        master = self.master_pid or self.read_master_pid()
        if master is not None:
            try:
                zato_cli('stop', self.env_dir, timeout=60)
            except (ServerError, subprocess.TimeoutExpired):
                pass
            self.pgid = master  # whatever `zato stop` left behind goes with its process group
        super().stop()
        self.master_pid = None
