"""Fixtures for the cluster bus tests: bus members in separate processes, and a test database.

A member is a child Python process that monkey-patches gevent, builds a bus with `make_bus`, and
talks to the test over pipes: commands go in as JSON lines on stdin, events come back as JSON
lines on stdout. Large payloads are reported by length and digest, not echoed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterator

import gevent
import orjson
import pytest

from tests import pg

REPO = Path(__file__).resolve().parents[2]

PG_ADMIN = pg.connect_kwargs()
PG_ADMIN.pop('connect_timeout')
PG_TEST_DB = 'zato_test_bus'

# Runs in each member process (python -c). It mirrors what a gevent worker does: patch first.
MEMBER_SCRIPT = r'''
import gevent.monkey
gevent.monkey.patch_all()

import hashlib, logging, sys, time
import orjson
from gevent.fileobject import FileObjectPosix
from zato.bus.factory import make_bus

logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format='member %(process)d %(levelname)s %(message)s')

def emit(**event):
    sys.stdout.write(orjson.dumps(event).decode() + '\n')
    sys.stdout.flush()

def summary(msg):
    if 'blob' in msg:
        blob = msg.pop('blob').encode()
        msg['blob_len'], msg['blob_sha256'] = len(blob), hashlib.sha256(blob).hexdigest()
    return msg

def subscriber(subject):
    def callback(msg):
        emit(event='msg', subject=subject, msg=summary(dict(msg)), at=time.time())
    return callback

config, subjects = orjson.loads(sys.argv[1]), orjson.loads(sys.argv[2])
bus = make_bus(config)
for subject in subjects:
    bus.subscribe(subject, subscriber(subject))
bus.start()
emit(event='ready', member_id=bus.member_id)

for line in FileObjectPosix(sys.stdin.fileno(), 'rb'):
    cmd = orjson.loads(line)
    if cmd['cmd'] == 'stop':
        break
    send = bus.publish if cmd['cmd'] == 'publish' else bus.send_any
    started = time.time()
    send(cmd['subject'], cmd['msg'])
    emit(event='sent', seq=cmd['seq'], at=started)

bus.stop()
emit(event='stopped')
'''


def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    """Poll `predicate` while letting this process's greenlets run; True once it holds."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        gevent.sleep(0.01)


class Member:
    """One bus member in a child process."""

    def __init__(self, config: dict, subjects: list[str]) -> None:
        env = {**os.environ, 'PYTHONPATH': os.pathsep.join(filter(None, [str(REPO), os.environ.get('PYTHONPATH')]))}
        self.proc = subprocess.Popen(
            [sys.executable, '-c', MEMBER_SCRIPT, orjson.dumps(config), orjson.dumps(subjects)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO, env=env)
        self.events: list[dict] = []
        self.member_id: str | None = None
        self._seq = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = orjson.loads(line)
            except ValueError:
                continue  # not ours, e.g. a library printing to stdout
            if event['event'] == 'ready':
                self.member_id = event['member_id']
            self.events.append(event)

    def wait_ready(self, timeout: float = 10.0) -> None:
        if not wait_until(lambda: self.member_id is not None or self.proc.poll() is not None, timeout):
            raise TimeoutError('Bus member did not start in time')
        if self.member_id is None:
            raise RuntimeError(f'Bus member exited with {self.proc.returncode} before it was ready')

    def messages(self, subject: str) -> list[dict]:
        """The messages of `subject` this member received so far."""
        return [event['msg'] for event in self.events if event['event'] == 'msg' and event['subject'] == subject]

    def arrivals(self, subject: str) -> list[float]:
        """When (wall clock) each message of `subject` arrived."""
        return [event['at'] for event in self.events if event['event'] == 'msg' and event['subject'] == subject]

    def command(self, cmd: str, subject: str, msg: dict, timeout: float = 5.0) -> float:
        """Have the member publish or send_any, wait until its call returned, and tell when
        (wall clock) the member made that call."""
        assert self.proc.stdin is not None
        self._seq += 1
        seq = self._seq
        self.proc.stdin.write(orjson.dumps({'cmd': cmd, 'subject': subject, 'msg': msg, 'seq': seq}) + b'\n')
        self.proc.stdin.flush()

        def sent() -> dict | None:
            return next((e for e in self.events if e['event'] == 'sent' and e['seq'] == seq), None)

        if not wait_until(lambda: sent() is not None, timeout):
            raise TimeoutError(f'Bus member did not complete {cmd}')
        return sent()['at']  # type: ignore[index]

    def kill(self) -> None:
        """Die the way a crashed worker dies: no cleanup at all."""
        self.proc.kill()
        self.proc.wait()

    def request_stop(self) -> None:
        """Ask the member to stop its bus and exit; `close` waits for it."""
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(b'{"cmd":"stop"}\n')
                self.proc.stdin.flush()
            except OSError:
                pass

    def close(self) -> None:
        self.request_stop()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass


@pytest.fixture(name='wait_until')
def wait_until_fixture() -> Callable[[Callable[[], bool], float], bool]:
    """`wait_until(predicate, timeout)`, for tests: the test files are not a package to import from."""
    return wait_until


class Spawner:
    """Starts members and, at teardown, stops all of them."""

    def __init__(self) -> None:
        self.started: list[Member] = []

    def __call__(self, count: int, config: dict, subjects: list[str]) -> list[Member]:
        """Start `count` members at once (in parallel, for speed) and wait until all are ready."""
        members = [Member(config, subjects) for _ in range(count)]
        self.started.extend(members)
        for member in members:
            member.wait_ready()
        return members

    def close(self) -> None:
        for member in self.started:  # all at once, then wait: stopping takes a while each
            member.request_stop()
        for member in self.started:
            member.close()


@pytest.fixture
def spawn_members() -> Iterator[Spawner]:
    """Members for one test."""
    spawner = Spawner()
    yield spawner
    spawner.close()


@pytest.fixture(scope='class')
def spawn_shared_members() -> Iterator[Spawner]:
    """Members shared by the tests of a class: starting processes dominates the suite's time.
    Tests sharing them must use subjects of their own."""
    spawner = Spawner()
    yield spawner
    spawner.close()


def _short_run_dir() -> Iterator[str]:
    # AF_UNIX socket paths may not exceed 107 bytes, and pytest's tmp_path can be long.
    path = tempfile.mkdtemp(prefix='zbus', dir='/tmp')
    yield os.path.join(path, 'bus')
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def run_dir() -> Iterator[str]:
    """A run directory of its own for one test, with a short path."""
    yield from _short_run_dir()


@pytest.fixture(scope='module')
def shared_run_dir() -> Iterator[str]:
    """A run directory for the members shared by a module's tests."""
    yield from _short_run_dir()


@pytest.fixture
def stop_later() -> Iterator[Callable[[Any], Any]]:
    """Register a bus to be stopped when the test ends, even if it fails."""
    buses: list[Any] = []

    def register(bus: Any) -> Any:
        buses.append(bus)
        return bus

    yield register
    for bus in buses:
        bus.stop()


@pytest.fixture(scope='session')
def pg_dsn() -> Iterator[str]:
    """A fresh database for the bus, dropped after the session; fails if PostgreSQL is down
    (scripts/peers.sh starts it: the tests run against the real server, never without it)."""
    import psycopg2
    try:
        admin = psycopg2.connect(connect_timeout=3, **PG_ADMIN)
    except psycopg2.OperationalError as e:
        pytest.fail(f'PostgreSQL is not reachable at {PG_ADMIN["host"]}:{PG_ADMIN["port"]} as {PG_ADMIN["user"]}: {e}')

    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS {PG_TEST_DB} WITH (FORCE)')
        cur.execute(f'CREATE DATABASE {PG_TEST_DB}')
    try:
        yield ' '.join(f'{k}={v}' for k, v in {**PG_ADMIN, 'dbname': PG_TEST_DB}.items())
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS {PG_TEST_DB} WITH (FORCE)')
        admin.close()
