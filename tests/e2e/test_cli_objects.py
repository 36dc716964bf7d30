"""Every kind of object the admin API manages is managed with the CLI, by name, with the credential it
keeps (no admin password given): `zato channel rest create PATH name=...`, list, get, edit, delete."""

from __future__ import annotations

import json

import pytest
import requests

from tests.e2e.harness import zato
from zato.connectors import registry

SERVICE = '''
from zato.server.service import Service

class Echo(Service):
    def handle(self):
        self.response.payload = self.request.payload
'''

# kind: (the command's words, its parameters, fields of a create, (field, new value, as the API shows it))
KINDS = {
    'rest-channel': (['channel', 'rest'], [], ['url_path=/cli/rest', 'service=cli-objects.echo'],
                     ('method', 'GET', 'GET')),
    'wsx-channel': (['channel', 'web-socket'], [], ['url_path=/cli/wsx', 'service=cli-objects.echo'],
                    ('max_message_size', '2048', 2048)),
    'jsonrpc-channel': (['channel', 'json-rpc'], [], ['url_path=/cli/jsonrpc', 'service_whitelist=["cli-objects.echo"]'],
                        ('service_whitelist', '["cli-objects.echo", "cli-objects.other"]',
                         ['cli-objects.echo', 'cli-objects.other'])),
    'kafka-channel': (['channel', 'kafka'], [], ['out_conn=cli-kafka', 'topics=orders', 'service=cli-objects.echo',
                                                 'is_active=false'],
                      ('max_attempts', '7', 7)),
    'rate-limit': (['rate-limit'], [], ['rules=* = 10/m'], ('rules', '* = 20/m', '* = 20/m')),
}

# An outgoing connection of each kind: the fields of a create (inactive: nothing is dialled), and an edit
OUTCONNS = {
    'imap': (['host=127.0.0.1', 'username=u'], ('get_criteria', 'ALL', 'ALL')),
    'jsonrpc': (['address_host=http://127.0.0.1:9'], ('address_host', 'http://127.0.0.1:10', 'http://127.0.0.1:10')),
    'kafka': ([], ('client_id', 'cli', 'cli')),
    'ldap': (['server_list=127.0.0.1:389'], ('username', 'cn=zato', 'cn=zato')),
    'mongodb': ([], ('app_name', 'cli', 'cli')),
    'rest': (['address_host=http://127.0.0.1:9'], ('address_url_path', '/v2', '/v2')),
    'sftp': (['host=127.0.0.1', 'username=u', 'host_key_policy=accept-new'], ('port', '2222', 2222)),
    'slack': ([], ('timeout', '5', 5)),
    'smtp': (['host=127.0.0.1'], ('mode', 'ssl', 'ssl')),
    'ssh': (['hosts=["127.0.0.1"]', 'username=u', 'host_key_policy=accept-new'], ('username', 'v', 'v')),
    'telegram': ([], ('invoke_timeout', '5', 5)),
    'wsx': (['address=ws://127.0.0.1:9/x'], ('address', 'ws://127.0.0.1:9/y', 'ws://127.0.0.1:9/y')),
}
for _kind, (_fields, _edit) in OUTCONNS.items():
    KINDS[f'{_kind}-outconn'] = (['outconn'], [_kind], [*_fields, 'is_active=false'], _edit)


def cli(*args: str, input_text: str | None = None):
    """What a CLI command printed, as JSON."""
    return json.loads(zato(*args, input_text=input_text).stdout)


@pytest.fixture(scope='module')
def ready(env):
    env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'cli_objects.py', 'source': SERVICE})
    env.wait_for(lambda: 'cli-objects.echo' in [s['name'] for s in env.admin.call('GET', '/zato/admin/services')])
    # What the Kafka channel reads from (inactive: no broker is needed)
    zato('outconn', 'create', env.path, 'kafka', 'name=cli-kafka', 'is_active=false')
    return env


def test_every_kind_of_outgoing_connection_has_a_case_here():
    assert sorted(OUTCONNS) == registry.kinds()


@pytest.mark.parametrize('kind', sorted(KINDS))
def test_the_cli_creates_lists_gets_edits_and_deletes_by_name(ready, kind):
    env = ready
    words, params, fields, (field, value, shown) = KINDS[kind]
    name = f'cli-{kind}'
    created = cli(*words, 'create', env.path, *params, f'name={name}', *fields)
    assert created['name'] == name

    assert name in [item['name'] for item in cli(*words, 'list', env.path, *params)]
    assert cli(*words, 'get', env.path, *params, name) == created
    assert cli(*words, 'get', env.path, *params, str(created['id'])) == created  # an id does too

    edited = cli(*words, 'edit', env.path, *params, name, f'{field}={value}')
    assert edited[field] == shown
    assert cli(*words, 'get', env.path, *params, name)[field] == shown

    assert cli(*words, 'delete', env.path, *params, name) == {'id': created['id'], 'deleted': True}
    gone = zato(*words, 'get', env.path, *params, name, check=False)
    assert gone.returncode == 1 and gone.stderr.count('\n') == 1
    assert f'no object named `{name}`' in gone.stderr and 'Traceback' not in gone.stderr


def test_a_security_definition_is_created_by_its_command_and_managed_as_any_other(ready):
    env = ready
    out = zato('security', 'create', env.path, 'cli-sec', '--kind', 'jwt', '--username', 'cli-user', 'ttl=600',
               '--realm', 'CLI', 'audience=cli')  # FIELD=VALUE after an option too
    assert 'Secret: ' in out.stdout
    got = cli('security', 'get', env.path, 'cli-sec')
    assert (got['kind'], got['username'], got['realm'], got['ttl'], got['audience']) == ('jwt', 'cli-user', 'CLI',
                                                                                        600, 'cli')
    assert 'cli-sec' in [d['name'] for d in cli('security', 'list', env.path)]
    assert cli('security', 'edit', env.path, 'cli-sec', 'realm=Other')['realm'] == 'Other'
    assert cli('security', 'delete', env.path, 'cli-sec')['deleted'] is True


def test_a_secret_is_read_from_stdin_and_never_shown(ready):
    env = ready
    created = cli('outconn', 'create', env.path, 'ldap', 'name=cli-secret', 'server_list=127.0.0.1:389',
                  'is_active=false', '--stdin', 'secret', input_text='a long LDAP secret\n')
    assert created['has_secret'] is True and 'a long LDAP secret' not in json.dumps(created)
    changed = cli('outconn', 'change-password', env.path, 'ldap', 'cli-secret', '--stdin', 'secret', input_text='\n')
    assert changed == {'id': created['id'], 'has_secret': False}
    out = zato('outconn', 'create', env.path, 'ldap', 'name=cli-secret-2', 'server_list=127.0.0.1:389',
               '--stdin', 'secret', input_text='', check=False)
    assert out.returncode == 1 and 'standard input has no line left' in out.stderr


def test_services_are_listed_shown_and_their_options_changed(ready):
    env = ready
    assert 'cli-objects.echo' in [s['name'] for s in cli('service', 'list', env.path)]
    got = cli('service', 'get', env.path, 'cli-objects.echo')
    assert got['name'] == 'cli-objects.echo' and 'class Echo' in got['source']
    edited = cli('service', 'edit', env.path, 'cli-objects.echo', 'needs_json_schema_err_details=true')
    assert edited['needs_json_schema_err_details'] is True
    assert cli('stats', 'service', 'list', env.path, 'minutes=5') is not None  # a GET's fields: the query string


def test_a_channel_made_with_the_cli_serves_at_once(ready):
    env = ready
    cli('channel', 'rest', 'create', env.path, 'name=cli-served', 'url_path=/cli/served', 'service=cli-objects.echo')
    env.wait_for(lambda: requests.post(env.url + '/cli/served', json={'a': 1}, timeout=5).json() == {'a': 1})


def test_a_refused_request_is_one_line_with_its_status_and_exit_1(ready):
    env = ready
    for args, says in (
            (('channel', 'rest', 'create', env.path, 'name=x', 'url_path=no-slash', 'service=zato.ping'),
             'zato: error: HTTP 400: Invalid input `url_path`'),
            (('service', 'get', env.path, 'no.such-service'), 'zato: error: HTTP 404: Service `no.such-service` not found'),
            (('outconn', 'list', env.path, 'no-such-kind'), 'zato: error: HTTP 404: No kind of outgoing connection'),
            (('rate-limit', 'create', env.path, 'name=cli-bad', 'rules=* = 10/x'), 'zato: error: HTTP 400: Invalid input `rules`'),
    ):
        out = zato(*args, check=False)
        assert out.returncode == 1 and out.stdout == '', args
        assert out.stderr.startswith(says) and out.stderr.count('\n') == 1 and 'Traceback' not in out.stderr, out.stderr


def test_a_value_is_json_when_it_parses_as_json_and_a_string_otherwise(ready):
    env = ready
    created = cli('rate-limit', 'create', env.path, 'name="2024"', 'rules=* = 1/s', 'is_active=false')
    assert created['name'] == '2024' and created['is_active'] is False and created['rules'] == '* = 1/s'
    out = zato('rate-limit', 'create', env.path, 'name=2024', 'rules=* = 1/s', check=False)
    assert out.returncode == 1 and 'Invalid input `name`' in out.stderr  # a number, unless quoted as JSON


def test_a_bad_argument_is_a_usage_error(ready):
    out = zato('channel', 'rest', 'create', ready.path, 'no-equals-sign', check=False)
    assert out.returncode == 2 and 'expected FIELD=VALUE' in out.stderr and out.stderr.count('\n') == 1
    out = zato('channel', 'rest', 'create', ready.path, 'name=a', 'name=b', check=False)
    assert out.returncode == 1 and 'field `name` is given twice' in out.stderr
