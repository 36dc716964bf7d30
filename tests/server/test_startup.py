"""Startup services: once per server start on one worker, in order, a failure logged and passed over."""

from __future__ import annotations

import os
import sys
from typing import Any

from zato.server.startup import ANY_WORKER, FIRST_WORKER, is_first_worker, run_startup_services, startup_services
from zato.server.store import ServiceStore
from zato.service.invoker import Invoker

CONF = f'''[main]
cluster_name = x

[{FIRST_WORKER}]
st.Record = {{"n": 1}}
st.fails =
st.missing =
st.record = plain text

[{ANY_WORKER}]
st.record = any
'''

SERVICES = '''
from zato.server.service import Service

CALLS = []


class Record(Service):
    name = 'st.Record'

    def handle(self):
        CALLS.append((self.name, self.channel.type, self.request.payload))


class RecordLower(Service):
    name = 'st.record'

    def handle(self):
        CALLS.append((self.name, self.channel.type, self.request.payload))


class Fails(Service):
    name = 'st.fails'

    def handle(self):
        raise RuntimeError('broken')
'''


class FakeRuntime:
    def __init__(self, env_dir: str) -> None:
        self.env_dir = env_dir
        self.server_name = 'server1'
        store = ServiceStore()
        store.deploy('st_services.py', SERVICES)
        self.invoker = Invoker(store, self)  # type: ignore[arg-type]


def env(tmp_path) -> str:
    os.makedirs(tmp_path / 'config' / 'repo')
    (tmp_path / 'config' / 'repo' / 'server.conf').write_text(CONF)
    return str(tmp_path)


def calls() -> list[Any]:
    # The module the test deployed (store.deploy above), not a package: looked up by name
    return sys.modules['st_services'].CALLS


def test_the_sections_are_read_in_file_order_with_json_payloads_and_names_keeping_their_case(tmp_path):
    path = os.path.join(env(tmp_path), 'config', 'repo', 'server.conf')
    assert startup_services(path, FIRST_WORKER) == [('st.Record', {'n': 1}), ('st.fails', None),
                                                    ('st.missing', None), ('st.record', 'plain text')]
    assert startup_services(path, 'no_such_section') == []


def test_one_worker_per_master_is_the_first(tmp_path):
    run_dir = str(tmp_path / 'run')
    assert is_first_worker(run_dir, 'server1', 100) is True
    assert is_first_worker(run_dir, 'server2', 200) is True    # another server of the environment
    assert is_first_worker(run_dir, 'server1', 100) is False   # a sibling, or the same worker started again
    assert is_first_worker(run_dir, 'server2', 200) is False
    assert is_first_worker(run_dir, 'server1', 101) is True    # the next start of the server


def test_the_first_worker_runs_its_list_in_order_and_a_failure_does_not_stop_the_rest(tmp_path, caplog):
    runtime = FakeRuntime(env(tmp_path))
    calls().clear()
    done = run_startup_services(runtime)  # type: ignore[arg-type]
    assert done == [('st.Record', True), ('st.fails', False), ('st.missing', False), ('st.record', True)]
    assert calls() == [('st.Record', 'startup-service', {'n': 1}), ('st.record', 'startup-service', 'plain text')]
    assert 'Startup service `st.fails` [startup_services_first_worker] failed, the server goes on' in caplog.text
    calls().clear()
    # Another worker of the same server start runs the other list
    assert run_startup_services(runtime) == [('st.record', True)]  # type: ignore[arg-type]
    assert calls() == [('st.record', 'startup-service', 'any')]
