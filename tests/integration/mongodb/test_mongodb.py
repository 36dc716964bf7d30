"""The mongodb connector against SecantusDB (MongoDB's wire protocol): its fields and what they
become for pymongo, ping, insert and find, credentials right and wrong, the server down at start,
dying between calls and coming back on the same port.

The test process is not monkey-patched, so the connecting greenlet blocks the hub while pymongo
waits for a server; the timeouts here are short to keep that brief.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import gevent
import pytest

from tests.integration.peers import MongoPeer
from zato.connectors import registry
from zato.connectors.base import (
    ConnectorAuthError, ConnectorError, ConnectorTimeout, ConnectorUnavailable, FieldError, validate)
from zato.connectors.mongodb import MongoDBConnector, error_class
from zato.connectors.mongodb_config import client_options, parse_server, server_list

FAST = {'server_select_timeout': 1, 'connect_timeout': 1, 'socket_timeout': 5, 'hb_frequency': 0.5}


def config(**data: Any) -> tuple[dict[str, Any], str | None]:
    cfg, secret = validate(MongoDBConnector.fields, data, ignore=('name',))
    MongoDBConnector.check_config(cfg)
    return cfg, secret


def make(servers: str | list[str], **data: Any) -> MongoDBConnector:
    cfg, secret = config(server_list=servers, **{**FAST, **data})
    conn = MongoDBConnector('test mongo', cfg, secret or '')
    conn.retry_min, conn.retry_max = 0.05, 0.2  # type: ignore[misc]
    return conn


@pytest.fixture
def connectors() -> Iterator[list[MongoDBConnector]]:
    started: list[MongoDBConnector] = []
    yield started
    for conn in started:
        conn.stop()


def started(connectors: list[MongoDBConnector], conn: MongoDBConnector) -> MongoDBConnector:
    connectors.append(conn)
    began = time.monotonic()
    conn.start()
    assert time.monotonic() - began < 0.1, 'start() waited for the server'
    return conn


def wait_built(conn: MongoDBConnector, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not conn.is_built:
        assert time.monotonic() < deadline, f'not built within {timeout} s: {conn.last_error}'
        gevent.sleep(0.05)


def collection(conn: MongoDBConnector) -> Any:
    return conn.client['zato_test'][f'c_{uuid.uuid4().hex[:8]}']


# ################################################################################################ fields

def test_the_kind_is_registered_under_its_name():
    assert registry.get('mongodb') is MongoDBConnector


def test_the_defaults_are_zato_31s_and_times_go_to_pymongo_in_milliseconds():
    cfg, secret = config()
    assert secret is None and cfg['server_list'] == '127.0.0.1:27017' and cfg['pool_size_max'] == 5
    options = client_options(cfg, '')
    assert options['host'] == ['127.0.0.1:27017'] and options['connect'] is False
    assert options['connectTimeoutMS'] == 10000 and options['socketTimeoutMS'] == 30000
    assert options['serverSelectionTimeoutMS'] == 5000 and options['waitQueueTimeoutMS'] == 10000
    assert options['maxIdleTimeMS'] == 600000 and options['heartbeatFrequencyMS'] == 10000
    assert options['maxPoolSize'] == 5 and options['authSource'] == 'admin' and options['readPreference'] == 'primary'
    assert 'username' not in options and 'w' not in options and 'tls' not in options


def test_every_field_reaches_pymongo(tmp_path):
    ca = tmp_path / 'ca.pem'
    ca.write_text('x')
    cfg, secret = config(server_list=['db1:27018', 'db2', '[::1]:27019'], username='u', password='p',
                         auth_source='crm', auth_mechanism='SCRAM-SHA-256', app_name='zato', replica_set='rs0',
                         pool_size_max=7, connect_timeout=1.5, write_to_replica='majority', write_timeout=2,
                         is_write_journal_enabled=True, should_retry_write=False, read_pref_type='nearest',
                         read_pref_tag_list=['dc:ny,rack:1', ''], read_pref_max_stale=120, compressor_list=['zlib'],
                         zlib_level=6, is_tz_aware=True, is_tls_enabled=True, tls_validate='CERT_NONE',
                         is_tls_match_hostname_enabled=False, tls_ca_certs_file=str(ca))
    assert secret == 'p' and 'password' not in cfg
    options = client_options(cfg, 'p')
    assert options['host'] == ['db1:27018', 'db2:27017', '[::1]:27019']
    assert {k: options[k] for k in ('username', 'password', 'authSource', 'authMechanism', 'appname', 'replicaSet')} == {
        'username': 'u', 'password': 'p', 'authSource': 'crm', 'authMechanism': 'SCRAM-SHA-256', 'appname': 'zato',
        'replicaSet': 'rs0'}
    assert options['maxPoolSize'] == 7 and options['connectTimeoutMS'] == 1500
    assert options['w'] == 'majority' and options['wTimeoutMS'] == 2000 and options['journal'] is True
    assert options['retryWrites'] is False and options['readPreference'] == 'nearest'
    assert options['readPreferenceTags'] == ['dc:ny,rack:1', ''] and options['maxStalenessSeconds'] == 120
    assert options['compressors'] == 'zlib' and options['zlibCompressionLevel'] == 6 and options['tz_aware'] is True
    assert options['tls'] is True and options['tlsAllowInvalidCertificates'] is True
    assert options['tlsAllowInvalidHostnames'] is True and options['tlsCAFile'] == str(ca)
    assert client_options(config(write_to_replica='2')[0], '')['w'] == 2

    # pymongo itself takes all of it (connect=False: no I/O), but for the CA file, which it loads
    import pymongo
    del options['tlsCAFile']
    pymongo.MongoClient(**options).close()


def test_a_server_list_is_lines_or_a_list():
    assert server_list('a:1\n\n  b \r\n') == ['a:1', 'b:27017']
    assert server_list(['a:1', ' b:2 ']) == ['a:1', 'b:2']
    for bad in ('a:', 'a:0', 'a:65536', 'a:+1', 'a: 1', 'mongodb://a:1', '::1', '[::1', 'a b', '[zz]:1'):
        with pytest.raises(ValueError):
            parse_server(bad)


@pytest.mark.parametrize('data, field', [
    ({'server_list': ''}, 'server_list'),
    ({'server_list': 'db:99999'}, 'server_list'),
    ({'server_list': 27017}, 'server_list'),
    ({'server_list': ['db', 1]}, 'server_list'),
    ({'colour': 'red'}, 'colour'),
    ({'pool_size_max': 0}, 'pool_size_max'),
    ({'pool_size_max': True}, 'pool_size_max'),
    ({'connect_timeout': 0}, 'connect_timeout'),
    ({'socket_timeout': '30'}, 'socket_timeout'),
    ({'hb_frequency': 0.1}, 'hb_frequency'),
    ({'auth_mechanism': 'MONGODB-CR'}, 'auth_mechanism'),
    ({'auth_mechanism': 'SCRAM-SHA-256'}, 'auth_mechanism'),  # without a username
    ({'read_pref_type': 'any'}, 'read_pref_type'),
    ({'read_pref_tag_list': ['dc=ny']}, 'read_pref_tag_list'),
    ({'read_pref_tag_list': ['dc:ny']}, 'read_pref_tag_list'),  # with 'primary'
    ({'read_pref_type': 'secondary', 'read_pref_max_stale': 10}, 'read_pref_max_stale'),
    ({'write_to_replica': 'majorty'}, 'write_to_replica'),
    ({'write_to_replica': '0', 'is_write_journal_enabled': True}, 'is_write_journal_enabled'),
    ({'compressor_list': ['gzip']}, 'compressor_list'),
    ({'zlib_level': 10}, 'zlib_level'),
    ({'tls_validate': 'CERT_OPTIONAL'}, 'tls_validate'),
    ({'is_tls_enabled': True, 'tls_ca_certs_file': '/no/such/ca.pem'}, 'tls_ca_certs_file'),
    ({'tls_ca_certs_file': '/etc/hostname'}, 'tls_ca_certs_file'),  # without is_tls_enabled
])
def test_a_config_that_cannot_be_valid_is_refused_naming_the_field(data, field):
    with pytest.raises(FieldError) as info:
        config(**data)
    assert info.value.field == field


# ################################################################################################ against the peer

def test_the_client_inserts_and_finds_and_ping_times_hello(mongo_peer, connectors):
    conn = started(connectors, make(f'{mongo_peer.host}:{mongo_peer.port}', app_name='zato-test',
                                    write_to_replica='majority', read_pref_type='primaryPreferred'))
    assert conn.wait_attempted(10), conn.last_error
    assert conn.conn is conn
    import pymongo
    assert isinstance(conn.client, pymongo.MongoClient)
    assert 0 < conn.ping() < 1

    coll = collection(conn)
    coll.insert_one({'name': 'Jane', 'n': 1})
    coll.insert_many([{'name': 'John', 'n': 2}, {'name': 'Jim', 'n': 3}])
    assert [d['name'] for d in coll.find({}, {'_id': False}).sort('n')] == ['Jane', 'John', 'Jim']

    # Errors about the operation, not the connection, pass through mapped_errors as pymongo's own
    from pymongo.errors import DuplicateKeyError
    doc = coll.find_one({'n': 1})
    with pytest.raises(DuplicateKeyError), conn.mapped_errors():
        coll.insert_one(doc)


def test_a_replica_set_name_and_a_server_list_as_lines_connect(mongo_peer, connectors):
    # SecantusDB answers hello as the primary of a one-member replica set named `secantus`
    conn = started(connectors, make(f'\n{mongo_peer.host}:{mongo_peer.port}\n', replica_set='secantus'))
    assert conn.wait_attempted(10), conn.last_error
    assert conn.ping() < 1

    wrong = started(connectors, make(f'{mongo_peer.host}:{mongo_peer.port}', replica_set='no-such-set'))
    assert not wrong.wait_attempted(10)
    with pytest.raises(ConnectorUnavailable, match='`test mongo`.*no-such-set|`test mongo`.*ServerSelectionTimeout'):
        wrong.ping()


def test_the_right_password_connects_and_a_wrong_one_is_an_auth_error_that_ping_explains(mongo_auth_peer, connectors):
    peer = mongo_auth_peer
    right = started(connectors, make(f'{peer.host}:{peer.port}', username=peer.user, password=peer.password,
                                     auth_mechanism='SCRAM-SHA-256'))
    assert right.wait_attempted(10), right.last_error
    coll = collection(right)
    coll.insert_one({'k': 1})
    assert coll.find_one({}, {'_id': False}) == {'k': 1}

    wrong = started(connectors, make(f'{peer.host}:{peer.port}', username=peer.user, password='wrong'))
    assert not wrong.wait_attempted(10)
    with pytest.raises(ConnectorAuthError) as info:
        wrong.ping()
    assert '`test mongo`' in str(info.value) and 'authentication failed' in str(info.value).lower()
    assert 'wrong' not in str(info.value)  # the password itself is never in a message
    with pytest.raises(ConnectorAuthError):
        wrong.client  # noqa: B018

    # No credentials: the server answers hello, and refuses the first real command
    anonymous = started(connectors, make(f'{peer.host}:{peer.port}'))
    assert anonymous.wait_attempted(10)
    with pytest.raises(ConnectorAuthError, match='requires authentication'), anonymous.mapped_errors():
        collection(anonymous).find_one()


@pytest.fixture
def own_peer() -> Iterator[MongoPeer]:
    """A peer of this test's own, to stop and start again on the same port."""
    peer = MongoPeer().start()
    try:
        yield peer
    finally:
        peer.stop()


def test_the_server_down_at_start_then_dying_between_calls_and_coming_back_on_the_same_port(own_peer, connectors):
    peer = own_peer
    peer.kill()
    conn = started(connectors, make(f'{peer.host}:{peer.port}'))

    # Down at start: start() returned at once (above), ping says why
    assert not conn.wait_attempted(10)
    with pytest.raises(ConnectorUnavailable) as info:
        conn.ping()
    message = str(info.value)
    assert '`test mongo`' in message and 'not connected yet' in message and 'refused' in message.lower(), message

    # The server comes back: the client is built by the connecting greenlet, nobody asking
    peer.spawn(peer.command())
    wait_built(conn)
    coll = collection(conn)
    coll.insert_one({'n': 1})

    # The server dies between calls: the next call fails with a mapped error, not a hang
    peer.kill()
    began = time.monotonic()
    with pytest.raises(ConnectorUnavailable) as info, conn.mapped_errors():
        coll.insert_one({'n': 2})
    assert time.monotonic() - began < 5 and '`test mongo`' in str(info.value)
    with pytest.raises(ConnectorUnavailable):
        conn.ping()

    # Back on the same port (an empty in-memory store): the same client reconnects by itself
    peer.spawn(peer.command())
    deadline = time.monotonic() + 10
    while True:
        try:
            with conn.mapped_errors():
                coll.insert_one({'n': 3})
            break
        except ConnectorUnavailable:
            assert time.monotonic() < deadline
            gevent.sleep(0.1)
    assert [d['n'] for d in coll.find({}, {'_id': False})] == [3]
    assert conn.ping() < 1


def test_a_server_that_never_answers_is_a_timeout_and_stop_is_idempotent(connectors):
    # A listener that accepts and says nothing: pymongo's handshake times out
    import socket
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(16)
    try:
        conn = started(connectors, make(f'127.0.0.1:{listener.getsockname()[1]}', connect_timeout=0.3))
        assert not conn.wait_attempted(10)
        assert conn.last_error
        with pytest.raises(ConnectorError):
            conn.ping()
    finally:
        listener.close()
    conn.stop()
    conn.stop()
    with pytest.raises(ConnectorUnavailable, match='stopped'):
        conn.client  # noqa: B018


def test_pymongo_errors_map_to_the_hierarchy():
    from pymongo import errors
    assert error_class(errors.ServerSelectionTimeoutError('x')) is ConnectorUnavailable
    assert error_class(errors.AutoReconnect('x')) is ConnectorUnavailable
    assert error_class(errors.ConnectionFailure('x')) is ConnectorUnavailable
    assert error_class(errors.NetworkTimeout('x')) is ConnectorTimeout
    assert error_class(errors.ExecutionTimeout('x', 50)) is ConnectorTimeout
    assert error_class(errors.WTimeoutError('x', 64)) is ConnectorTimeout
    assert error_class(errors.OperationFailure('x', 18)) is ConnectorAuthError
    assert error_class(errors.OperationFailure('x', 13)) is ConnectorAuthError
    assert error_class(errors.OperationFailure('x', 11000)) is None
    conn = MongoDBConnector('m', config()[0])
    mapped = conn.map_error(errors.NetworkTimeout('slow'))
    assert isinstance(mapped, ConnectorTimeout) and isinstance(mapped, TimeoutError)
    assert str(mapped) == 'Outgoing mongodb connection `m`: 127.0.0.1:27017: NetworkTimeout: slow'
