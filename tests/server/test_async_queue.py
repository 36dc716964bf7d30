"""invoke_async at least once, its callback, its expiration, and the fan-in of the patterns, with two
workers' queues over one real (SQLite) ODB and the bus replaced by a list of wake-ups."""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterator
from typing import Any

import gevent
import pytest
from sqlalchemy import func, select

from zato.errors import Inactive, RetryFailed, ServiceNotFound
from zato.odb.engine import make_engine, make_session_factory
from zato.odb.models import AsyncInvocation, Base, Cluster, InvocationGroup
from zato.server import pattern_services
from zato.server.async_queue import AsyncQueue
from zato.server.pattern_services import InvokeRetry
from zato.server.store import ServiceStore
from zato.service.invoker import Invoker

SERVICES = '''
import gevent

from zato.server.service import Service

RESULTS = []


class Target(Service):
    name = 'aq.target'

    def handle(self):
        RESULTS.append(('target', self.cid, self.channel.type, self.request.payload))
        self.response.payload = {'got': self.request.payload}


class TargetCallback(Service):
    name = 'aq.target-async-callback'

    def handle(self):
        RESULTS.append(('auto-callback', self.environ.get('in_reply_to'), self.channel.type, self.request.payload))


class Plain(Service):
    name = 'aq.plain'

    def handle(self):
        RESULTS.append(('plain', self.cid, self.channel.type, self.request.payload))
        self.response.payload = {'plain': self.request.payload}


class Callback(Service):
    name = 'aq.callback'

    def handle(self):
        RESULTS.append(('callback', self.environ.get('in_reply_to'), self.channel.type, self.request.payload))


class OnTarget(Service):
    name = 'aq.on-target'

    def handle(self):
        RESULTS.append(('on-target', None, self.channel.type, self.request.payload))


class OnFinal(Service):
    name = 'aq.on-final'

    def handle(self):
        RESULTS.append(('on-final', None, self.channel.type, self.request.payload))


class Slow(Service):
    name = 'aq.slow'

    def handle(self):
        RESULTS.append(('slow', self.cid, self.channel.type, self.request.payload))
        gevent.sleep(self.request.payload)


class Fails(Service):
    name = 'aq.fails'

    def handle(self):
        raise ValueError('always')


class Flaky(Service):
    """Fails until it was called `ok_after` times (counted per payload key)."""
    name = 'aq.flaky'
    calls = {}

    def handle(self):
        key = self.request.payload['key']
        Flaky.calls[key] = Flaky.calls.get(key, 0) + 1
        if Flaky.calls[key] <= self.request.payload['ok_after']:
            raise ValueError(f'attempt {Flaky.calls[key]}')
        self.response.payload = {'attempts': Flaky.calls[key]}


class Caller(Service):
    name = 'aq.caller'

    def handle(self):
        req = self.request.payload
        self.response.payload = {'result': getattr(self, req['what'])(req)}

    def retry(self, req):
        return self.patterns.invoke_retry.invoke('aq.flaky', req['payload'], repeats=req['repeats'], seconds=0,
                                                  async_fallback=req.get('async_fallback', False),
                                                  callback=req.get('callback'))

    def fanout(self, req):
        return self.patterns.fanout.invoke(req['targets'], 'aq.on-final', target_callbacks=req.get('on_target'))

    def parallel(self, req):
        return self.patterns.parallel.invoke(req['targets'], on_target='aq.on-target', on_final=req.get('on_final'))
'''


class Config:
    def __init__(self, claim_ttl: float) -> None:
        self.values = {('async', 'claim_ttl'): claim_ttl, ('async', 'sweep_interval'): 0.1}

    def get(self, section: str, key: str) -> Any:
        return self.values[(section, key)]


class Bus:
    """Collects wake-ups instead of sending them; the test decides which worker gets each."""

    def __init__(self) -> None:
        self.sent: list[int] = []

    def send_any(self, subject: str, msg: dict[str, Any]) -> None:
        self.sent.append(msg['id'])


class Worker:
    """The parts of a Runtime an AsyncQueue and its services use: one per simulated worker."""

    def __init__(self, session_factory: Any, cluster_id: int, store: ServiceStore, name: str, claim_ttl: float) -> None:
        self.Session = session_factory
        self.cluster_id = cluster_id
        self.server_name = name
        self.config = Config(claim_ttl)
        self.bus = Bus()
        self.store = store
        self.invoker = Invoker(store, self)
        self.async_queue = AsyncQueue(self)  # type: ignore[arg-type] - the parts of a Runtime it uses

    def run_woken(self) -> None:
        """Runs every row this worker's own wake-ups named (what the bus would have delivered to someone)."""
        while self.bus.sent:
            self.async_queue.run(self.bus.sent.pop(0))


@pytest.fixture
def odb(tmp_path) -> Iterator[tuple[Any, int]]:
    engine = make_engine(f'sqlite:///{tmp_path / "odb.sqlite3"}')
    Base.metadata.create_all(engine)
    session_factory = make_session_factory(engine)
    with session_factory() as session:
        cluster = Cluster(name='aq')
        session.add(cluster)
        session.commit()
        cluster_id = cluster.id
    yield session_factory, cluster_id
    engine.dispose()


@pytest.fixture
def store() -> ServiceStore:
    s = ServiceStore()
    s.deploy('aq_services.py', SERVICES)
    s.add_internal(pattern_services)
    return s


@pytest.fixture
def results(store) -> list[tuple[Any, ...]]:
    module = importlib.import_module('aq_services')
    module.RESULTS.clear()
    module.Flaky.calls.clear()
    return module.RESULTS


def workers(odb, store, claim_ttl: float = 30.0) -> tuple[Worker, Worker]:
    session_factory, cluster_id = odb
    return (Worker(session_factory, cluster_id, store, 'server1', claim_ttl),
            Worker(session_factory, cluster_id, store, 'server2', claim_ttl))


def rows(odb) -> int:
    session_factory, _ = odb
    with session_factory() as session:
        return session.scalar(select(func.count()).select_from(AsyncInvocation))


def test_invoke_async_commits_the_message_before_it_returns_and_one_worker_runs_it(odb, store, results):
    one, two = workers(odb, store)
    cid = one.invoker.invoke_async('aq.plain', {'a': 1})
    assert rows(odb) == 1 and len(cid) == 24  # in the ODB before anyone ran it
    row_id = one.bus.sent.pop()
    one.async_queue.run(row_id)
    two.async_queue.run(row_id)  # the same wake-up reaching another worker runs nothing more
    assert results == [('plain', cid, 'invoke-async', {'a': 1})]
    assert rows(odb) == 0


def test_the_callback_gets_the_response_and_the_cid_it_answers(odb, store, results):
    one, _ = workers(odb, store)
    cid = one.invoker.invoke_async('aq.plain', {'a': 1}, callback='aq.callback')
    one.run_woken()
    assert results[1] == ('callback', cid, 'invoke-async-callback', {'plain': {'a': 1}})


def test_a_service_named_after_the_target_with_async_callback_is_its_callback_by_default(odb, store, results):
    one, _ = workers(odb, store)
    cid = one.invoker.invoke_async('aq.target', 'x')
    one.run_woken()
    assert results == [('target', cid, 'invoke-async', 'x'), ('auto-callback', cid, 'invoke-async-callback',
                                                              {'got': 'x'})]
    results.clear()
    one.invoker.invoke_async('aq.target', 'y', callback=False)
    one.run_woken()
    assert [r[0] for r in results] == ['target']
    with pytest.raises(ServiceNotFound):
        one.invoker.invoke_async('aq.plain', 'z', callback=True)  # aq.plain-async-callback does not exist


def test_a_worker_that_died_while_running_a_message_leaves_it_to_another_after_its_claim_ran_out(odb, store, results):
    one, two = workers(odb, store, claim_ttl=0.3)
    cid = one.invoker.invoke_async('aq.plain', 'survives', expiration=0)
    row_id = one.bus.sent.pop()
    assert one.async_queue.claim(row_id) is not None  # worker one took it ... and died before running it
    assert two.async_queue.sweep() == 0  # its claim still holds: nobody else runs it
    time.sleep(0.4)
    assert two.async_queue.sweep() == 1
    two.async_queue._pool.join()
    assert results == [('plain', cid, 'invoke-async', 'survives')] and rows(odb) == 0


def test_a_claim_is_renewed_while_the_service_runs_so_no_other_worker_runs_it_meanwhile(odb, store, results):
    one, two = workers(odb, store, claim_ttl=0.3)
    one.invoker.invoke_async('aq.slow', 1.2, callback=False, expiration=0)
    running = gevent.spawn(one.run_woken)
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        two.async_queue.sweep()  # well past the first claim's 0.3 s: it must have been renewed
        gevent.sleep(0.05)
    running.join()
    two.async_queue._pool.join()
    assert [r[0] for r in results] == ['slow'] and rows(odb) == 0


def test_a_finish_after_the_claim_passed_to_another_worker_changes_nothing(odb, store, results):
    one, two = workers(odb, store, claim_ttl=0.2)
    one.invoker.invoke_async('aq.target', 1, callback=False, expiration=0)
    row_id = one.bus.sent.pop()
    stale = one.async_queue.claim(row_id)
    time.sleep(0.3)
    two.async_queue.run(row_id)  # the row is gone, run once by worker two
    assert stale is not None
    one.async_queue._finish(stale, True, {'late': True}, None)  # worker one wakes up late: nothing to record
    assert rows(odb) == 0 and [r[0] for r in results] == ['target']


def test_a_message_no_worker_started_before_its_expiration_is_dropped_with_a_warning(odb, store, results, caplog):
    one, _ = workers(odb, store)
    cid = one.invoker.invoke_async('aq.plain', 'late', expiration=0.1)
    time.sleep(0.2)
    one.run_woken()
    assert results == [] and rows(odb) == 0
    assert f'expired before a worker could run it; dropped, cid `{cid}`' in caplog.text


def test_a_service_that_raises_is_run_once_and_its_callback_is_not_invoked(odb, store, results):
    one, _ = workers(odb, store)
    one.invoker.invoke_async('aq.fails', None, callback='aq.callback')
    one.run_woken()
    assert results == [] and rows(odb) == 0


def test_invoke_async_of_an_unknown_or_inactive_service_fails_in_the_caller(odb, store, results):
    one, _ = workers(odb, store)
    with pytest.raises(ServiceNotFound):
        one.invoker.invoke_async('aq.nope')
    store.set_active('aq.plain', False)
    with pytest.raises(Inactive):
        one.invoker.invoke_async('aq.plain')
    with pytest.raises(Inactive, match='Service `aq.plain` is inactive'):
        one.invoker.invoke('aq.plain')
    assert rows(odb) == 0


def test_a_fanout_run_by_two_workers_calls_its_final_callback_once_with_every_answer(odb, store, results):
    one, two = workers(odb, store)
    group_cid = one.invoker.invoke('aq.caller', {'what': 'fanout', 'targets': [['aq.target', 0], ['aq.plain', 1],
                                                                               ['aq.target', 2]]})['result']
    first, second, third = one.bus.sent
    one.bus.sent.clear()
    two.async_queue.run(second)
    one.async_queue.run(first)
    two.async_queue.run(third)
    # The last answer queued the final callback, wherever it was recorded
    for worker in (one, two):
        worker.run_woken()
    finals = [r for r in results if r[0] == 'on-final']
    assert len(finals) == 1
    _, _, channel, payload = finals[0]
    assert channel == 'fanout-on-final' and payload['cid'] == group_cid and payload['source'] == 'aq.caller'
    assert [(d['target'], d['response'], d['ok']) for d in payload['data']] == [
        ('aq.target', {'got': 0}, True), ('aq.plain', {'plain': 1}, True), ('aq.target', {'got': 2}, True)]
    session_factory, _ = odb
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(InvocationGroup)) == 0
    assert rows(odb) == 0


def test_parallel_calls_on_target_for_each_answer_and_on_final_once_with_failures_included(odb, store, results):
    one, _ = workers(odb, store)
    one.invoker.invoke('aq.caller', {'what': 'parallel', 'targets': {'aq.plain': 'p', 'aq.fails': None},
                                     'on_final': 'aq.on-final'})
    for _ in range(3):
        one.run_woken()
    on_target = [r[3] for r in results if r[0] == 'on-target']
    assert sorted((d['target'], d['ok']) for d in on_target) == [('aq.fails', False), ('aq.plain', True)]
    assert {r[2] for r in results if r[0] == 'on-target'} == {'parallel-exec-on-target'}
    final = [r[3] for r in results if r[0] == 'on-final']
    assert len(final) == 1 and final[0]['data'][1]['exception'] == 'ValueError: always'


def test_invoke_retry_tries_again_until_the_target_answers_or_raises_retry_failed(odb, store, results):
    one, _ = workers(odb, store)
    got = one.invoker.invoke('aq.caller', {'what': 'retry', 'repeats': 3, 'payload': {'key': 'a', 'ok_after': 2}})
    assert got == {'result': {'attempts': 3}}
    with pytest.raises(RetryFailed, match='in 2 attempts'):
        one.invoker.invoke('aq.caller', {'what': 'retry', 'repeats': 2, 'payload': {'key': 'b', 'ok_after': 5}})


def test_invoke_retry_with_async_fallback_hands_the_rest_to_the_background_and_calls_back(odb, store, results):
    one, _ = workers(odb, store)
    got = one.invoker.invoke('aq.caller', {'what': 'retry', 'repeats': 3, 'async_fallback': True,
                                           'callback': 'aq.callback', 'payload': {'key': 'c', 'ok_after': 2}})
    retry_cid = got['result']
    assert isinstance(retry_cid, str) and len(retry_cid) == 24
    one.run_woken()
    one.run_woken()
    callbacks = [r for r in results if r[0] == 'callback']
    assert len(callbacks) == 1 and callbacks[0][1] == retry_cid
    result = callbacks[0][3]
    assert result['ok'] is True and result['response'] == {'attempts': 3} and result['attempts'] == 3
    assert InvokeRetry.name == 'zato.pattern.invoke-retry'
