"""Startup services and local user config on a real start: an environment of two servers (two workers
each) whose server.conf lists startup services and whose config/repo/user-conf holds an INI file."""

from __future__ import annotations

import os
import signal

import pytest
import requests

from tests.e2e.harness import Env

SERVICES = '''
import os
import signal

from zato.server.service import Service


class Record(Service):
    """Appends one line per invocation: which list, which server, which process, which payload, which channel."""
    name = 'boot.record'

    def handle(self):
        record = os.path.join(self.user_config.boot.files.dir, 'startup.log')
        payload = self.request.payload
        with open(record, 'a', encoding='utf-8') as f:
            f.write(f'{payload["list"]} {self.server.server_name} {os.getpid()} {payload["n"]} {self.channel.type}\\n')


class Second(Record):
    name = 'boot.second'


class Fails(Service):
    name = 'boot.fails'

    def handle(self):
        raise RuntimeError('cannot warm up')


class Config(Service):
    name = 'boot.config'

    def handle(self):
        self.response.payload = {'dir': self.user_config.boot.files.dir}
'''


@pytest.fixture(scope='module')
def env(tmp_path_factory):
    e = Env(str(tmp_path_factory.mktemp('boot') / 'env'), servers=2, workers=2)
    e.records = str(tmp_path_factory.mktemp('records'))
    with open(os.path.join(e.path, 'config', 'repo', 'user-conf', 'boot.ini'), 'w', encoding='utf-8') as f:
        f.write(f'[files]\ndir = {e.records}\n')
    conf = os.path.join(e.path, 'config', 'repo', 'server.conf')
    with open(conf, encoding='utf-8') as f:
        text = f.read()
    text = text.replace('[startup_services_first_worker]\n', '[startup_services_first_worker]\n'
                        'boot.record = {"list": "first", "n": 1}\nboot.fails =\nboot.missing =\n'
                        'boot.second = {"list": "first", "n": 2}\n')
    text = text.replace('[startup_services_any_worker]\n',
                        '[startup_services_any_worker]\nboot.record = {"list": "any", "n": 1}\n')
    with open(conf, 'w', encoding='utf-8') as f:
        f.write(text)
    # The services are in the ODB before the servers start, as after any earlier deployment
    e.start()
    e.admin.call('POST', '/zato/admin/deploy', {'file_name': 'boot.py', 'source': SERVICES})
    e.stop()
    with open(os.path.join(e.records, 'startup.log'), 'w'):
        pass
    e.start()
    yield e
    e.stop()


def lines(env) -> list[list[str]]:
    with open(os.path.join(env.records, 'startup.log'), encoding='utf-8') as f:
        return [line.split() for line in f.read().splitlines()]


def test_the_first_list_runs_once_per_server_in_order_and_the_other_list_on_each_other_worker(env):
    env.wait_for(lambda: len(lines(env)) >= 6, timeout=20)
    got = lines(env)
    for server in ('server1', 'server2'):
        mine = [line for line in got if line[1] == server]
        firsts = [line for line in mine if line[0] == 'first']
        anys = [line for line in mine if line[0] == 'any']
        # In order, the failing and the missing ones passed over
        assert [line[3] for line in firsts] == ['1', '2'], got
        assert len(anys) == 1 and anys[0][2] != firsts[0][2], got  # the server's other worker
        assert {line[4] for line in mine} == {'startup-service'}


def test_a_failing_or_missing_startup_service_is_logged_and_the_server_serves(env):
    env.wait_for(lambda: "Startup service `boot.fails` [startup_services_first_worker] failed, the server goes on"
                 in env.log('server1'), timeout=20)
    assert 'Startup service `boot.missing` [startup_services_first_worker] failed' in env.log('server2')
    for url in env.urls:
        assert requests.get(url + '/zato/ping', timeout=10).json() == {'pong': 'zato'}


def test_user_config_of_the_servers_own_directory_is_read_at_start(env):
    out = env.admin.call('POST', '/zato/admin/invoke', {'name': 'boot.config'})
    assert out == {'dir': env.records}


def test_a_worker_started_again_after_one_died_does_not_run_the_first_list_again(env):
    env.wait_for(lambda: len(lines(env)) >= 6, timeout=20)
    [first] = [line for line in lines(env) if line[0] == 'first' and line[1] == 'server1' and line[3] == '1']
    os.kill(int(first[2]), signal.SIGKILL)
    # gunicorn starts a new worker, which runs the other workers' list, not the first one again
    env.wait_for(lambda: len([line for line in lines(env) if line[0] == 'any' and line[1] == 'server1']) == 2,
                 timeout=30)
    assert [line[3] for line in lines(env) if line[0] == 'first' and line[1] == 'server1'] == ['1', '2']
