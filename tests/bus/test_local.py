"""The `local` bus, over real UNIX sockets, with members in separate processes."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import socket
import time

import gevent
import pytest

from zato.bus.factory import make_bus
from zato.bus.local import BLOB_SUFFIX, LocalBus


def sockets_in(run_dir: str) -> list[str]:
    return sorted(name for name in os.listdir(run_dir) if name.endswith('.sock'))


def blobs_in(run_dir: str) -> list[str]:
    return [name for name in os.listdir(run_dir) if name.endswith(BLOB_SUFFIX)]


@pytest.fixture(scope='class')
def trio(spawn_shared_members, shared_run_dir):
    """Three member processes, each with its own bus, shared by the tests of one class."""
    return spawn_shared_members(3, {'backend': 'local', 'run_dir': shared_run_dir}, ['config', 'invoke', 'big'])


class TestThreeMemberProcesses:
    """Each test uses a subject of its own, as the members outlive a test."""

    def test_publish_reaches_every_member_of_three_processes_including_the_publisher(self, wait_until, trio):
        trio[0].command('publish', 'config', {'kind': 'channel', 'id': 5, 'version': 7})

        assert wait_until(lambda: all(m.messages('config') for m in trio), 5)
        for member in trio:
            assert member.messages('config') == [{'kind': 'channel', 'id': 5, 'version': 7}]

    def test_send_any_delivers_each_of_50_messages_to_exactly_one_of_three_processes(
            self, wait_until, trio, shared_run_dir, stop_later):
        sender = stop_later(LocalBus(shared_run_dir))  # never started, so it is not a member itself

        for n in range(50):
            sender.send_any('invoke', {'n': n})

        def received() -> list[int]:
            return [msg['n'] for m in trio for msg in m.messages('invoke')]

        assert wait_until(lambda: len(received()) >= 50, 5)
        gevent.sleep(0.3)  # room for a duplicate to show up
        assert sorted(received()) == list(range(50))

    def test_a_200_kb_payload_arrives_intact_through_publish_and_send_any(
            self, wait_until, trio, shared_run_dir, stop_later):
        blob = secrets.token_hex(100_000)  # 200 KB
        expected = {'blob_len': len(blob), 'blob_sha256': hashlib.sha256(blob.encode()).hexdigest()}

        publisher = stop_later(LocalBus(shared_run_dir))
        publisher.publish('big', {'blob': blob, 'via': 'publish'})
        publisher.send_any('big', {'blob': blob, 'via': 'send_any'})

        def received(via: str) -> list[dict]:
            return [msg for m in trio for msg in m.messages('big') if msg['via'] == via]

        assert wait_until(lambda: len(received('publish')) == 3 and len(received('send_any')) == 1, 5)
        for msg in received('publish') + received('send_any'):
            assert {k: msg[k] for k in expected} == expected

        # Every receiver removed its copy of the file.
        assert wait_until(lambda: not blobs_in(shared_run_dir), 2)


def test_a_callback_that_raises_does_not_stop_later_deliveries(wait_until, run_dir, stop_later, caplog):
    bus = stop_later(LocalBus(run_dir))
    first: list[int] = []
    second: list[int] = []

    def failing(msg: dict) -> None:
        if msg['n'] == 0:
            raise RuntimeError('a failing callback, on purpose')
        first.append(msg['n'])

    bus.subscribe('config', failing)
    bus.subscribe('config', lambda msg: second.append(msg['n']))
    bus.start()

    with caplog.at_level(logging.ERROR, logger='zato.bus'):
        for n in range(3):
            bus.publish('config', {'n': n})
        assert wait_until(lambda: len(second) == 3 and len(first) == 2, 2)

    assert first == [1, 2]
    assert second == [0, 1, 2]
    assert any('a failing callback, on purpose' in r.exc_text for r in caplog.records if r.exc_text)


def test_a_stale_socket_of_a_killed_process_is_removed_and_breaks_neither_publish_nor_send_any(
        wait_until, run_dir, spawn_members, stop_later):
    alive, dead = spawn_members(2, {'backend': 'local', 'run_dir': run_dir}, ['config', 'invoke'])
    dead.kill()
    assert len(sockets_in(run_dir)) == 2  # the dead process left its socket file behind

    sender = stop_later(LocalBus(run_dir))
    sender.publish('config', {'version': 1})

    assert wait_until(lambda: alive.messages('config') == [{'version': 1}], 5)
    assert sockets_in(run_dir) == [f'{alive.member_id}.sock']

    # Another leftover, made by hand this time: bound, then closed without unlinking.
    # A send_any that picks it first must move on, not lose the message.
    leftover = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    leftover.bind(os.path.join(run_dir, 'crashed.sock'))
    leftover.close()

    for n in range(20):
        sender.send_any('invoke', {'n': n})

    assert wait_until(lambda: len(alive.messages('invoke')) == 20, 5)
    assert sockets_in(run_dir) == [f'{alive.member_id}.sock']


def test_publish_waits_for_a_full_receiver_queue_instead_of_dropping(wait_until, run_dir, stop_later):
    # Linux queues only net.unix.max_dgram_qlen (often 10) datagrams per receiver,
    # so 2000 back-to-back messages fill it many times over.
    sender = stop_later(LocalBus(run_dir))
    receiver = stop_later(LocalBus(run_dir))
    received: list[int] = []
    receiver.subscribe('burst', lambda msg: received.append(msg['n']))
    receiver.start()

    for n in range(2000):
        sender.publish('burst', {'n': n})

    assert wait_until(lambda: len(received) == 2000, 5)
    assert sorted(received) == list(range(2000))


def test_a_message_published_right_after_start_returns_is_received(wait_until, run_dir, stop_later):
    bus = stop_later(LocalBus(run_dir))
    bus.start()
    received: list[dict] = []
    bus.subscribe('late', received.append)  # subscribing after start works too

    bus.publish('late', {'a': 1})

    assert wait_until(lambda: received == [{'a': 1}], 2)


def test_stop_removes_the_socket_file_and_creates_the_run_dir_private(run_dir):
    bus = LocalBus(run_dir)
    bus.start()
    assert sockets_in(run_dir) == [f'{bus.member_id}.sock']
    assert os.stat(run_dir).st_mode & 0o777 == 0o700

    bus.stop()
    bus.stop()  # twice is harmless
    assert sockets_in(run_dir) == []


def test_a_file_left_by_a_receiver_that_died_is_removed_after_an_hour(run_dir, stop_later):
    os.makedirs(run_dir, mode=0o700)
    old = os.path.join(run_dir, f'old{BLOB_SUFFIX}')
    fresh = os.path.join(run_dir, f'fresh{BLOB_SUFFIX}')
    for path in (old, fresh):
        with open(path, 'wb') as f:
            f.write(b'{}')
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))

    stop_later(LocalBus(run_dir)).start()

    assert blobs_in(run_dir) == [f'fresh{BLOB_SUFFIX}']


def test_send_any_without_members_logs_a_warning(run_dir, stop_later, caplog):
    with caplog.at_level(logging.WARNING, logger='zato.bus'):
        stop_later(LocalBus(run_dir)).send_any('invoke', {})
    assert 'dropped' in caplog.text


def test_a_run_dir_too_long_for_a_socket_path_is_refused_clearly():
    with pytest.raises(ValueError, match='too long for a UNIX socket path'):
        LocalBus('/tmp/' + 'x' * 120)


def test_only_sock_files_in_the_run_dir_are_taken_for_members(wait_until, run_dir, stop_later):
    # Only *.sock entries are members; anything else in run_dir is not sent to.
    bus = stop_later(LocalBus(run_dir))
    bus.start()
    stray = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stray.bind(os.path.join(run_dir, 'other.socket'))
    try:
        received: list[dict] = []
        bus.subscribe('config', received.append)
        bus.publish('config', {'v': 1})
        assert wait_until(lambda: received == [{'v': 1}], 2)
        stray.setblocking(False)
        with pytest.raises(BlockingIOError):
            stray.recv(1024)
    finally:
        stray.close()


def test_make_bus_builds_a_local_bus(run_dir):
    bus = make_bus({'backend': 'local', 'run_dir': run_dir})
    assert isinstance(bus, LocalBus)
    assert bus.run_dir == run_dir


def test_make_bus_names_the_allowed_backends_for_an_unknown_one():
    with pytest.raises(ValueError, match="'redis'.*allowed: local, postgresql"):
        make_bus({'backend': 'redis'})


def test_make_bus_names_a_missing_setting():
    with pytest.raises(ValueError, match='`run_dir`'):
        make_bus({'backend': 'local'})
