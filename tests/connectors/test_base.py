"""The Connector contract, with a tiny kind of our own (`tcp`: a line-based echo over TCP) against a
real listener: building in the background, backoff with jitter, ping, stop; field validation; the
registry with its aliases and third-party kinds from entry points.

The test process is not monkey-patched: the test kind uses gevent's sockets explicitly, and the
listener is a gevent StreamServer, so everything runs on the one hub.
"""

from __future__ import annotations

import logging
import socket
import time
from importlib.metadata import EntryPoint
from typing import Any, ClassVar

import gevent
import pytest
from gevent import socket as gsocket
from gevent.server import StreamServer

from zato.connectors import base, registry
from zato.connectors.base import (
    Connector, ConnectorAuthError, ConnectorError, ConnectorInactive, ConnectorTimeout, ConnectorUnavailable, Field,
    FieldError, backoff_delay, validate)
from zato.connectors.rest import RESTConnector
from zato.connectors.wsx import WSXConnector
from zato.server.outconns import OutConnHandle
from zato.service.facades import OutFacade


class TCPConnector(Connector):
    """Connects to host:port and expects a `hello` line; ping sends `ping` and expects `pong`."""

    kind: ClassVar[str] = 'tcp'
    aliases: ClassVar[tuple[str, ...]] = ('plain_tcp',)
    fields: ClassVar[tuple[Field, ...]] = (
        Field('host', str, '127.0.0.1'),
        Field('port', int, None, lambda v: None if 0 < v < 65536 else 'expected 1 to 65535'),
        Field('password', str, '', secret=True),
    )
    retry_min: ClassVar[float] = 0.02
    retry_max: ClassVar[float] = 0.2

    attempts: list[float]

    def connect(self) -> Any:
        self.attempts = getattr(self, 'attempts', [])
        self.attempts.append(time.monotonic())
        sock = gsocket.create_connection((self.config['host'], self.config['port']), timeout=5)
        try:
            if sock.makefile('rb').readline() != b'hello\n':
                raise ConnectionError('no hello')
        except BaseException:
            sock.close()
            raise
        return sock

    def ping_client(self, client: Any) -> None:
        client.sendall(b'ping\n')
        if client.recv(16) != b'pong\n':
            raise ConnectionError('no pong')

    def close_client(self, client: Any) -> None:
        client.close()


class NotAConnector:
    kind = 'nac'


class ClashingConnector(TCPConnector):
    kind: ClassVar[str] = 'rest'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return int(s.getsockname()[1])


class Remote:
    """A line-based TCP server: `hello` on connect, `pong` to each `ping`; `silent` sends nothing."""

    def __init__(self, port: int, silent: bool = False) -> None:
        self.port = port
        self.silent = silent
        self.closed_by_peer = 0
        self.server = StreamServer(('127.0.0.1', port), self.handle)

    def handle(self, sock: Any, _address: Any) -> None:
        if self.silent:
            gevent.sleep(30)
            return
        sock.sendall(b'hello\n')
        while True:
            line = sock.recv(16)
            if not line:
                self.closed_by_peer += 1
                return
            sock.sendall(b'pong\n')

    def __enter__(self) -> Remote:
        self.server.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.server.stop(timeout=1)


def wait_until(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        gevent.sleep(0.01)
    return True


@pytest.fixture
def connector():
    made: list[Connector] = []

    def make(port: int, cls: type[Connector] = TCPConnector) -> Connector:
        c = cls('my tcp', {'host': '127.0.0.1', 'port': port}, 'the password')
        made.append(c)
        return c
    yield make
    for c in made:
        c.stop()


# ################################################################################################ lifecycle

def test_with_the_remote_down_start_returns_at_once_ping_says_why_and_the_client_comes_when_the_remote_does(connector):
    port = free_port()
    c = connector(port)
    started = time.monotonic()
    c.start()
    assert time.monotonic() - started < 0.05

    assert c.wait_attempted(2) is False
    with pytest.raises(ConnectorUnavailable) as info:
        _ = c.client
    assert '`my tcp`' in str(info.value) and 'ConnectionRefusedError' in str(info.value)
    assert (info.value.kind, info.value.name) == ('tcp', 'my tcp')
    with pytest.raises(ConnectorUnavailable, match='last error: ConnectionRefusedError'):
        c.ping()

    with Remote(port):
        assert wait_until(lambda: c.is_built, timeout=3)
        took = c.ping()
        assert 0 < took < 1
        assert c.last_error == ''


def test_a_remote_that_accepts_but_never_answers_does_not_hold_start_back(connector):
    port = free_port()
    with Remote(port, silent=True):
        c = connector(port)
        started = time.monotonic()
        c.start()
        assert time.monotonic() - started < 0.05
        gevent.sleep(0.1)  # the connecting greenlet is now blocked in its read
        assert not c.is_built
        started = time.monotonic()
        c.stop()
        assert time.monotonic() - started < 0.5


def test_a_service_asking_during_the_first_attempt_waits_for_it_and_gets_the_client(connector):
    port = free_port()
    with Remote(port, silent=True) as remote:
        c = connector(port)
        c.start()
        gevent.sleep(0.05)  # the first attempt is now waiting for `hello`
        remote.silent = False  # the next connection gets its hello; this one still waits

        # A client asked for while a first attempt is under way: the caller waits for the attempt
        asked = gevent.spawn(lambda: c.client)
        gevent.sleep(0.1)
        assert not asked.ready()
        c.stop()  # stopping answers the waiter at once
        asked.join(1)
        assert isinstance(asked.exception, ConnectorUnavailable) and 'stopped' in str(asked.exception)

        c.start()  # a second first attempt, now answered
        started = time.monotonic()
        assert c.client is not None and time.monotonic() - started < 2


def test_after_a_failed_first_attempt_a_service_is_not_kept_waiting(connector, monkeypatch):
    monkeypatch.setattr(TCPConnector, 'retry_min', 5.0)
    c = connector(free_port())
    c.start()
    assert c.wait_attempted(2) is False
    started = time.monotonic()
    with pytest.raises(ConnectorUnavailable, match='ConnectionRefusedError'):
        _ = c.client
    assert time.monotonic() - started < 0.05


def test_the_first_attempt_wait_is_bounded(connector, monkeypatch):
    monkeypatch.setattr(TCPConnector, 'first_attempt_wait', 0.2)
    port = free_port()
    with Remote(port, silent=True):
        c = connector(port)
        c.start()
        started = time.monotonic()
        with pytest.raises(ConnectorUnavailable, match='not connected yet'):
            _ = c.client
        assert 0.15 < time.monotonic() - started < 1.5


def test_a_retired_connection_stops_connecting_at_once_and_closes_its_client_after_the_grace(connector, monkeypatch):
    monkeypatch.setattr(TCPConnector, 'retire_grace', 0.3)
    port = free_port()
    with Remote(port) as remote:
        c = connector(port)
        c.start()
        client = c.client
        c.retire()
        # A call already holding the client finishes on it
        client.sendall(b'ping\n')
        assert client.recv(16) == b'pong\n'
        assert remote.closed_by_peer == 0
        assert wait_until(lambda: remote.closed_by_peer == 1, timeout=2)
        with pytest.raises(ConnectorUnavailable, match='stopped'):
            _ = c.client


def test_connect_attempts_back_off_exponentially(connector, monkeypatch):
    monkeypatch.setattr(base, '_jitter', lambda: 1.0)
    c = connector(free_port())
    c.start()
    assert wait_until(lambda: len(getattr(c, 'attempts', [])) >= 5, timeout=3)
    c.stop()
    gaps = [b - a for a, b in zip(c.attempts, c.attempts[1:], strict=False)]
    # 0.02, 0.04, 0.08, 0.16, then capped at 0.2
    assert gaps[0] >= 0.02 and gaps[1] >= 0.04 and gaps[2] >= 0.08 and gaps[3] >= 0.16
    assert gaps[2] > 1.5 * gaps[0]


def test_the_backoff_is_full_jitter_over_a_capped_exponential():
    assert backoff_delay(0, 0.5, 30, 1.0) == 0.5
    assert backoff_delay(3, 0.5, 30, 1.0) == 4.0
    assert backoff_delay(10, 0.5, 30, 1.0) == 30.0
    assert backoff_delay(1000, 0.5, 30, 1.0) == 30.0
    assert backoff_delay(3, 0.5, 30, 0.25) == 1.0
    assert backoff_delay(3, 0.5, 30, 0.0) == 0.0


def test_jitter_spreads_the_delays(connector, monkeypatch):
    values = iter([0.0] * 100)
    monkeypatch.setattr(base, '_jitter', lambda: next(values))
    c = connector(free_port())
    c.start()
    # No delay at all with zero jitter: many attempts in very little time
    assert wait_until(lambda: len(getattr(c, 'attempts', [])) >= 20, timeout=1)


def test_stop_is_idempotent_closes_the_client_and_stops_retrying(connector):
    port = free_port()
    with Remote(port) as remote:
        c = connector(port)
        c.stop()  # never started: nothing to do
        c.start()
        assert wait_until(lambda: c.is_built)
        c.stop()
        c.stop()
        assert wait_until(lambda: remote.closed_by_peer == 1)
        with pytest.raises(ConnectorUnavailable, match='stopped'):
            _ = c.client


@pytest.mark.parametrize('how', ['stop', 'retire'])
def test_a_connection_never_built_stops_retrying_when_stopped_or_retired(connector, how):
    down = connector(free_port())
    down.start()
    gevent.sleep(0.05)
    getattr(down, how)()
    tried = len(down.attempts)
    gevent.sleep(0.3)
    assert len(down.attempts) == tried


def test_a_connector_can_be_started_again_after_stop(connector):
    port = free_port()
    with Remote(port):
        c = connector(port)
        c.start()
        assert wait_until(lambda: c.is_built)
        c.stop()
        c.start()
        assert wait_until(lambda: c.is_built)
        assert c.ping() > 0


def test_a_connector_that_connects_without_io_is_usable_as_soon_as_start_returns():
    c = RESTConnector('r', {'address_host': 'http://127.0.0.1:1'})
    c.start()
    assert c.is_built and c.client is not None
    c.stop()


def test_starting_a_started_connector_is_an_error(connector):
    c = connector(free_port())
    c.start()
    with pytest.raises(RuntimeError, match='already started'):
        c.start()
    rest = RESTConnector('r', {'address_host': 'http://127.0.0.1:1'})
    rest.start()
    with pytest.raises(RuntimeError, match='already started'):
        rest.start()
    rest.stop()


# ################################################################################################ errors

def test_every_connector_error_is_a_connection_error_naming_its_connection():
    inactive = ConnectorInactive('rest', 'CRM')
    assert str(inactive) == 'Outgoing rest connection `CRM` is not active'
    assert (inactive.kind, inactive.name) == ('rest', 'CRM')
    for cls in (ConnectorUnavailable, ConnectorTimeout, ConnectorAuthError, ConnectorInactive):
        assert issubclass(cls, ConnectorError) and issubclass(cls, ConnectionError)
    assert issubclass(ConnectorTimeout, TimeoutError)


def test_the_default_error_mapping_knows_the_standard_library():
    c = TCPConnector('t', {'port': 1})
    assert type(c.map_error(TimeoutError('slow'))) is ConnectorTimeout
    assert type(c.map_error(PermissionError('no'))) is ConnectorAuthError
    assert type(c.map_error(ConnectionResetError('reset'))) is ConnectorUnavailable
    mapped = c.map_error(ConnectionResetError('reset'))
    assert str(mapped) == 'Outgoing tcp connection `t`: ConnectionResetError: reset'


class _Failing(Connector):
    """Fails to connect with what `failures` holds next, then connects."""
    kind = 'failing'

    def __init__(self, failures):
        super().__init__('f', {})
        self.failures = list(failures)

    def connect(self):
        if self.failures:
            raise self.failures.pop(0)
        return object()


@pytest.mark.parametrize('raised, cls', [
    (TimeoutError('slow'), ConnectorTimeout),            # mapped by map_error
    (PermissionError('no'), ConnectorAuthError),
    (ConnectionRefusedError('down'), ConnectorUnavailable),
    (ConnectorAuthError('host: refused'), ConnectorAuthError),  # raised by connect() already mapped
])
def test_until_the_client_is_built_a_call_gets_the_class_the_last_failure_was_mapped_to(raised, cls):
    # Kept by the base class for every kind: no kind keeps its own copy of the last failure
    c = _Failing([raised])
    assert c._attempt() is False
    with pytest.raises(ConnectorError) as e:
        _ = c.client
    assert type(e.value) is cls and 'Outgoing failing connection `f`: not connected yet; last error:' in str(e.value)
    assert c._attempt() is True and c.client is not None


def test_a_failure_that_names_its_connection_is_described_without_the_name_twice():
    c = _Failing([])
    named = c.error(ConnectorAuthError, 'host:22: password refused')
    assert c.describe(named) == 'ConnectorAuthError: host:22: password refused'
    assert c.describe(ValueError('x')) == 'ValueError: x'


# ################################################################################################ fields

FIELDS = TCPConnector.fields


def test_validation_fills_defaults_and_keeps_the_secret_apart():
    config, secret = validate(FIELDS, {'port': 80, 'password': 'pw'})
    assert config == {'host': '127.0.0.1', 'port': 80} and secret == 'pw'
    config, secret = validate(FIELDS, {'port': 80})
    assert secret is None  # none given: the stored one, if any, stays


@pytest.mark.parametrize('data, field, message', [
    ({'port': 80, 'colour': 'red'}, 'colour', 'not a field'),
    ({'port': '80'}, 'port', 'expected an integer'),
    ({'port': True}, 'port', 'expected an integer'),
    ({'port': 70000}, 'port', 'expected 1 to 65535'),
    ({'host': 'h'}, 'port', 'required'),
    ({'port': 80, 'password': 1}, 'password', 'expected a string'),
])
def test_validation_refuses_bad_input_naming_the_field(data, field, message):
    with pytest.raises(FieldError) as info:
        validate(FIELDS, data)
    assert info.value.field == field and f'`{field}`' in str(info.value) and message in str(info.value)


def test_an_edit_keeps_what_it_does_not_change_and_none_resets_to_the_default():
    current = {'host': '10.0.0.1', 'port': 80}
    config, secret = validate(FIELDS, {'port': 81}, current)
    assert config == {'host': '10.0.0.1', 'port': 81} and secret is None
    config, _ = validate(FIELDS, {'host': None}, current)
    assert config == {'host': '127.0.0.1', 'port': 80}
    with pytest.raises(FieldError, match='`port`: required'):
        validate(FIELDS, {'port': None}, current)


def test_a_float_field_takes_an_integer_but_never_a_boolean():
    fields = (Field('timeout', float, 10.0),)
    assert validate(fields, {'timeout': 3})[0] == {'timeout': 3.0}
    with pytest.raises(FieldError, match='expected a number'):
        validate(fields, {'timeout': True})


# ################################################################################################ registry

@pytest.fixture
def fresh_registry():
    registry.reload()
    yield
    registry.reload()


def test_the_built_in_kinds_and_their_aliases(fresh_registry):
    assert {'rest', 'wsx'} <= set(registry.kinds())
    assert 'plain_http' not in registry.kinds()
    assert registry.resolve('plain_http') == 'rest'
    assert registry.get('plain_http') is RESTConnector is registry.get('rest')
    assert registry.get('wsx') is WSXConnector


def test_an_unknown_kind_is_a_key_error_with_close_names(fresh_registry):
    with pytest.raises(KeyError) as info:
        registry.get('rests')
    assert '`rest`' in info.value.args[0] and 'known:' in info.value.args[0]


def test_third_party_kinds_come_from_entry_points_and_broken_ones_are_skipped(fresh_registry, monkeypatch, caplog):
    group = registry.GROUP
    eps = [EntryPoint('tcp', 'tests.connectors.test_base:TCPConnector', group),
           EntryPoint('broken', 'tests.connectors.no_such_module:Connector', group),
           EntryPoint('nac', 'tests.connectors.test_base:NotAConnector', group),
           EntryPoint('rest', 'tests.connectors.test_base:ClashingConnector', group),
           EntryPoint('other', 'tests.connectors.test_base:TCPConnector', group)]

    def entry_points(**kw: Any) -> list[EntryPoint]:
        assert kw == {'group': 'zato.connectors'}
        return eps
    monkeypatch.setattr(registry.metadata, 'entry_points', entry_points)

    with caplog.at_level(logging.ERROR, logger='zato.connectors.registry'):
        kinds = registry.kinds()
    assert 'tcp' in kinds and {'broken', 'nac', 'other'}.isdisjoint(kinds)
    assert registry.get('tcp') is TCPConnector and registry.get('plain_tcp') is TCPConnector
    assert registry.get('rest') is RESTConnector
    logged = caplog.text
    assert 'Skipped connector `broken`' in logged and 'could not be loaded' in logged
    assert 'Skipped connector `nac`' in logged and 'not a subclass' in logged
    assert 'Skipped connector `rest`' in logged and 'already a kind' in logged
    assert 'Skipped connector `other`' in logged and 'its kind is `tcp`' in logged


def test_a_failing_entry_point_listing_leaves_the_built_in_kinds(fresh_registry, monkeypatch, caplog):
    def entry_points(**_: Any) -> list[EntryPoint]:
        raise RuntimeError('a broken distribution')
    monkeypatch.setattr(registry.metadata, 'entry_points', entry_points)
    with caplog.at_level(logging.ERROR, logger='zato.connectors.registry'):
        assert {'rest', 'wsx'} <= set(registry.kinds())
    assert 'no third-party connectors loaded' in caplog.text


# ################################################################################################ the facade

def test_a_service_reaches_a_kind_by_its_alias_and_an_inactive_one_raises_naming_it():
    active = RESTConnector('CRM', {'address_host': 'http://127.0.0.1:1'})
    by_kind = {'rest': {
        'CRM': OutConnHandle(1, 'CRM', 'rest', {}, True, active),
        'Billing': OutConnHandle(2, 'Billing', 'rest', {}, False, None),
    }}
    out = OutFacade(by_kind)
    assert out.rest['CRM'].conn is active and out.plain_http['CRM'].conn is active
    with pytest.raises(ConnectorInactive, match='Outgoing rest connection `Billing` is not active'):
        _ = out.plain_http['Billing'].conn
    with pytest.raises(KeyError, match='did you mean `CRM`'):
        out.rest['CRN']


def test_definition_im_and_email_reach_the_same_connections_as_out():
    from types import SimpleNamespace

    from zato.service.base import Service

    handle = object()
    svc = Service()
    svc.server = SimpleNamespace(outconns={'kafka': {'events': handle}, 'slack': {'team': handle},
                                           'smtp': {'mail': handle}, 'imap': {'inbox': handle}},
                                 outconn_mgr=SimpleNamespace(catch_up=lambda kind, name: None))
    assert svc.definition.kafka['events'] is svc.out.kafka['events'] is handle   # Zato 3.1's name for Kafka
    assert svc.im.slack['team'] is svc.out.slack['team'] is handle
    assert svc.email.smtp['mail'] is svc.out.smtp['mail'] is handle              # and for e-mail
    assert svc.email.imap['inbox'] is svc.out.imap['inbox'] is handle
    with pytest.raises(KeyError, match='evnts'):
        svc.definition.kafka['evnts']
