"""The contract every connector kind keeps, run against each kind's real remote end (cases.py):

- ping times a round trip, and the kind's own call works;
- a remote down at start: start() returns at once, ping says why, the client comes when the remote does;
- a remote that dies: calls get a ConnectorError naming the connection, not the library's exception,
  and the next call after it is back reconnects by itself;
- an edit while the connection is in use: calls in flight finish on the old client, new calls get
  the new definition, and the old client is closed after the grace;
- through a running Zato: admin ping, inactive (an error naming it, for services and ping alike),
  an edit back to active, and delete (a KeyError naming it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import pytest
import requests

from tests.integration.contract.cases import CASES, Case, Remote
from zato.connectors import registry
from zato.connectors.base import Connector, ConnectorError, ConnectorUnavailable, validate

NAME = 'contract conn'

pytestmark = pytest.mark.parametrize('case', CASES, ids=repr)


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Calls `check` until it returns without raising; its last error if the time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except (ConnectorError, AssertionError, pytest.fail.Exception):
            if time.monotonic() > deadline:
                raise AssertionError(f'{what} within {timeout} s') from None
        gevent.sleep(0.1)


@pytest.fixture
def remote(case: Case) -> Iterator[Remote]:
    r = case.remote().start()
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def connectors() -> Iterator[Callable[..., Connector]]:
    made: list[Connector] = []

    def make(case: Case, remote: Remote, **edit: Any) -> Connector:
        cls = registry.get(case.kind)
        data, secret = case.definition(remote)
        config, _ = validate(cls.fields, {**data, **edit})
        cls.check_config(config)
        conn = cls(NAME, config, secret)
        conn.retry_min, conn.retry_max = 0.05, 0.3  # type: ignore[misc] - quick retries for the waits below
        made.append(conn)
        started = time.monotonic()
        conn.start()
        assert time.monotonic() - started < 0.2, 'start() waited for the remote end'
        return conn
    yield make
    for conn in made:
        conn.stop()


def test_ping_times_a_round_trip_and_the_kinds_own_call_works(case, remote, connectors):
    conn = connectors(case, remote)
    took = wait_until(conn.ping, 15, 'ping answered')
    assert 0 < took < 5
    case.use(conn.conn)


def test_a_remote_down_at_start_is_explained_by_ping_and_the_client_comes_when_it_does(case, remote, connectors):
    remote.down()
    conn = connectors(case, remote)
    with pytest.raises(ConnectorError) as info:
        conn.ping()
    assert f'`{NAME}`' in str(info.value) and info.value.kind == case.kind

    remote.up()
    wait_until(conn.ping, 20, 'the client came when the remote did')
    case.use(conn.conn)


def test_a_remote_that_dies_gives_a_mapped_error_and_the_next_call_reconnects(case, remote, connectors):
    conn = connectors(case, remote)
    wait_until(conn.ping, 15, 'ping answered')
    case.use(conn.conn)

    remote.down()
    began = time.monotonic()
    with pytest.raises(ConnectorError) as info:
        conn.ping()
        case.use(conn.conn)  # a kind whose ping went through a cached session still fails here
    assert time.monotonic() - began < 15 and f'`{NAME}`' in str(info.value)

    remote.up()
    wait_until(lambda: case.use(conn.conn), 20, 'the next call reconnected')
    assert conn.ping() > 0


def test_an_edit_while_in_use_lets_calls_in_flight_finish_and_new_calls_get_the_new_definition(
        case, remote, connectors):
    old = connectors(case, remote)
    wait_until(old.ping, 15, 'ping answered')
    in_use = old.conn  # what a service running now holds

    field, value = case.edit
    new = connectors(case, remote, **{field: value})
    old.retire_grace = 1.0  # type: ignore[misc]
    grace = type(old).retire_grace
    old.retire()
    if grace > 0:
        case.use(in_use)  # the call in flight finishes on the old client
    wait_until(new.ping, 15, 'the new definition answered')
    case.use(new.conn)
    assert new.config[field] == value

    # The old client is gone after the grace: nothing leaks, and a late caller is told so
    def closed() -> None:
        with pytest.raises(ConnectorUnavailable, match='stopped'):
            _ = old.client
    wait_until(closed, 5, 'the old client closed')


# ################################################################################################ a running Zato

SERVICE = '''
from zato.connectors.base import ConnectorError
from zato.server.service import Service

class Use(Service):
    """Pings a connection of any kind through self.out, reporting what it got."""
    name = 'contract.use'

    def handle(self):
        req = self.request.payload
        try:
            getattr(self.out, req['kind'])[req['name']].conn.ping()
        except ConnectorError as e:
            self.response.payload = {'type': type(e).__name__, 'error': str(e)}
        except KeyError as e:
            self.response.payload = {'type': 'KeyError', 'error': e.args[0]}
        else:
            self.response.payload = {'type': 'ok'}
'''


@pytest.fixture(scope='module')
def deployed(env) -> Any:
    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'contract_use.py', 'source': SERVICE})
    env.channel('contract-use', '/contract/use', 'contract.use')
    return env


def use(env: Any, kind: str, name: str) -> dict[str, Any]:
    r = requests.post(env.url + '/contract/use', json={'kind': kind, 'name': name},
                      headers={'Connection': 'close'}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def on_every_worker(env: Any, check: Callable[[], bool]) -> None:
    """`check` holds on several calls in a row (new connections land on either worker)."""
    env.wait_for(lambda: all(check() for _ in range(4)), timeout=20)


def test_through_a_running_zato_ping_inactive_edit_and_delete(case, remote, deployed):
    env = deployed
    data, secret = case.definition(remote)
    name = f'contract {case.kind}'
    created = env.admin.call('POST', f'/zato/admin/outconns/{case.kind}',
                             {**data, 'name': name, **({'secret': secret} if secret else {})})
    path = f'/zato/admin/outconns/{case.kind}/{created["id"]}'
    assert created['has_secret'] is bool(secret) and (not secret or secret not in str(created))

    env.wait_for(lambda: env.admin.call('POST', path + '/ping')['ok'] is True, timeout=20)
    on_every_worker(env, lambda: use(env, case.kind, name)['type'] == 'ok')

    env.admin.call('PUT', path, {'is_active': False})
    on_every_worker(env, lambda: use(env, case.kind, name)['type'] == 'ConnectorInactive')
    assert use(env, case.kind, name)['error'] == f'Outgoing {case.kind} connection `{name}` is not active'
    pinged = env.admin.call('POST', path + '/ping')
    assert pinged['ok'] is False and 'not active' in pinged['error'], pinged

    field, value = case.edit
    edited = env.admin.call('PUT', path, {'is_active': True, field: value})
    assert edited[field] == value
    on_every_worker(env, lambda: use(env, case.kind, name)['type'] == 'ok')

    env.admin.call('DELETE', path)
    on_every_worker(env, lambda: use(env, case.kind, name)['type'] == 'KeyError')
    assert name in use(env, case.kind, name)['error']
    assert not secret or secret not in env.log()
