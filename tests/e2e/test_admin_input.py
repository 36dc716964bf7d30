"""Bad input to the admin API, route by route from its routes table: an id that names no object is a
404, whatever int() would make of it, and a field of the wrong JSON type is a 400 naming the field,
never a 500 from the database."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from tests.e2e.harness import Env
from zato.admin_client import AdminCallError
from zato.server.internal_routes import _ADMIN

# The kind of outgoing connection the `{kind}` of a path stands for in the id tests
OUTCONN_KIND = 'rest'

MODULE = '''
from zato.server.service import Service

class Echo(Service):
    def handle(self):
        self.response.payload = {'ok': True}
'''

# Values of every JSON type, numbers no 64-bit column holds (10**30 arrives as a float), and a
# digit that str.isdigit() takes and int() does not
WRONG_VALUES: list[Any] = [['x'], {'a': 1}, 2 ** 64 - 1, 10 ** 30, 1.5, True, None, '²']

# What each object's create takes at least (`name` is added); `extras` are inputs its GET does not show
KINDS: dict[str, dict[str, Any]] = {
    '/zato/admin/channels/rest': {'base': {'url_path': '/ai/rest/{n}', 'service': 'ai-echo.echo', 'method': 'GET'},
                                  'extras': ('security', 'rate_limit')},
    '/zato/admin/channels/jsonrpc': {'base': {'url_path': '/ai/jsonrpc/{n}', 'service_whitelist': ['ai-echo.echo']},
                                     'extras': ('security',)},
    '/zato/admin/channels/wsx': {'base': {'url_path': '/ai/wsx/{n}', 'service': 'ai-echo.echo'},
                                 'extras': ()},
    '/zato/admin/channels/kafka': {'base': {'out_conn': 'ai-kafka', 'topics': ['ai'], 'service': 'ai-echo.echo',
                                            'is_active': False},
                                   'extras': ()},
    '/zato/admin/security': {'base': {'kind': 'basic_auth', 'username': 'ai-user-{n}'},
                             'extras': ('password', 'rate_limit')},
    '/zato/admin/rate-limits': {'base': {'rules': '* = 100/m'}, 'extras': ()},
    '/zato/admin/caches/builtin': {'base': {}, 'extras': ()},
    '/zato/admin/scheduler/jobs': {'base': {'job_type': 'interval_based', 'service': 'ai-echo.echo', 'hours': 1,
                                            'is_active': False}, 'extras': ()},
    '/zato/admin/pubsub/topics': {'base': {'name': '/ai/topic/{n}'}, 'extras': ()},
    '/zato/admin/pubsub/endpoints': {'base': {'endpoint_type': 'srv', 'role': 'pub-sub', 'service': 'ai-echo.echo',
                                              'topic_patterns': 'pub=/ai/**'}, 'extras': ()},
    # A subscription has no name: of the endpoint and topic admin_env makes
    '/zato/admin/pubsub/subscriptions': {'base': {'name': None, 'endpoint': 'ai-subscriber', 'topic': '/ai/subscribed'},
                                         'extras': ()},
}

# More kinds of security definition, fuzzed through the same route
SECURITY_KINDS = [{'kind': 'apikey', 'header': 'X-AI-{n}'}, {'kind': 'jwt', 'username': 'ai-jwt-{n}', 'ttl': 60}]

# A valid value for each required field of an outgoing connection, by field name
OUTCONN_SAMPLES = {'address_host': 'http://127.0.0.1:1', 'server_list': '127.0.0.1:1', 'host': '127.0.0.1',
                   'username': 'ai', 'hosts': ['127.0.0.1'], 'address': 'ws://127.0.0.1:1/ai'}

# What a kind needs besides its required fields to be valid
OUTCONN_VALID = {'sftp': {'host_key_policy': 'no-check'}, 'ssh': {'host_key_policy': 'no-check'}}

_counter = itertools.count(1)


def call(env: Env, method: str, path: str, payload: Any = None) -> tuple[int, Any]:
    try:
        return 200, env.admin.call(method, path, payload)
    except AdminCallError as e:
        return e.status, e.details


def fill(base: dict[str, Any]) -> dict[str, Any]:
    """The base payload with a fresh name and its `{n}` placeholders filled, so each create is new."""
    n = next(_counter)
    out = {k: v.replace('{n}', str(n)) if isinstance(v, str) else v for k, v in base.items()}
    out = {'name': f'ai-{n}', **out}
    return {k: v for k, v in out.items() if not (k == 'name' and v is None)}


def create(env: Env, prefix: str, base: dict[str, Any]) -> dict[str, Any]:
    return env.admin.call('POST', prefix, fill(base))


@pytest.fixture(scope='module')
def admin_env(tmp_path_factory) -> Iterator[Env]:
    """An environment of its own: the fuzzing below leaves objects in odd (valid) states."""
    env = Env(str(tmp_path_factory.mktemp('admin-input') / 'env'), workers=2)
    env.start()
    try:
        env.admin.call('POST', '/zato/admin/deploy', {'file_name': 'ai_echo.py', 'source': MODULE})
        env.wait_for(lambda: 'ai-echo.echo' in [s['name'] for s in env.admin.call('GET', '/zato/admin/services')])
        env.admin.call('POST', '/zato/admin/outconns/kafka', {'name': 'ai-kafka', 'is_active': False,
                                                              'server_list': '127.0.0.1:1'})
        env.admin.call('POST', '/zato/admin/pubsub/topics', {'name': '/ai/subscribed'})
        env.admin.call('POST', '/zato/admin/pubsub/endpoints', {'name': 'ai-subscriber', 'endpoint_type': 'srv',
                                                                'role': 'sub-only', 'service': 'ai-echo.echo',
                                                                'topic_patterns': 'sub=/ai/**'})
        yield env
    finally:
        env.stop()


@pytest.fixture(scope='module')
def objects(admin_env: Env) -> dict[str, dict[str, Any]]:
    """One object behind each admin path prefix that takes an `{id}`."""
    env = admin_env
    out = {prefix: create(env, prefix, spec['base']) for prefix, spec in KINDS.items()}
    out[f'/zato/admin/outconns/{OUTCONN_KIND}'] = create(
        env, f'/zato/admin/outconns/{OUTCONN_KIND}', {'is_active': False, 'address_host': 'http://127.0.0.1:1'})
    return out


def id_routes() -> list[tuple[str, str, str]]:
    return [(path.replace('{kind}', OUTCONN_KIND), method, service)
            for path, method, service in _ADMIN if '{id}' in path]


def loose_spellings(obj_id: int) -> list[str]:
    """What int() reads as `obj_id` though it is not its digits."""
    digits = str(obj_id)
    return [f'{digits} ', f' {digits}', f'+{digits}', f'0_{digits}', f'{digits}\n', f'\t{digits}',
            digits.translate(str.maketrans('0123456789', '٠١٢٣٤٥٦٧٨٩')),
            digits.translate(str.maketrans('0123456789', '０１２３４５６７８９'))]


TOO_LARGE = ['99999999999999999999', str(2 ** 63), str(2 ** 64), '9' * 300]


def body_for(path: str, method: str) -> Any:
    if path.endswith('/broadcast'):
        return {'data': 'ai'}
    return {'name': 'ai-renamed'} if method == 'PUT' else None


def test_every_route_with_an_id_is_tested_here(objects):
    prefixes = {path.split('/{id}')[0] for path, _, _ in id_routes()}
    assert prefixes == set(objects)


def test_an_id_beyond_64_bits_is_a_404_on_every_route(admin_env, objects):
    env = admin_env
    failures = []
    for path, method, service in id_routes():
        for bad in TOO_LARGE:
            status, details = call(env, method, path.replace('{id}', bad), body_for(path, method))
            if status != 404 or not str(details).endswith('not found'):
                failures.append((method, path, bad[:30], service, status, details))
    assert not failures, failures


def test_an_id_is_ascii_digits_only_on_every_route_and_a_loose_spelling_touches_nothing(admin_env, objects):
    env = admin_env
    failures = []
    for path, method, service in id_routes():
        prefix = path.split('/{id}')[0]
        obj = objects[prefix]
        for bad in loose_spellings(obj['id']):
            status, details = call(env, method, path.replace('{id}', quote(bad, safe='')), body_for(path, method))
            if status != 404 or not str(details).endswith('not found'):
                failures.append((method, path, bad, service, status, details))
        # Nothing was renamed or deleted through a loose spelling of its id
        status, now = call(env, 'GET', f'{prefix}/{obj["id"]}')
        if status != 200 or now.get('name') != obj.get('name'):
            failures.append(('GET', prefix, obj['id'], 'changed or gone', status, now))
    assert not failures, failures


def _check(failures: list, what: tuple, field: str, value: Any, status: int, details: Any) -> None:
    if status >= 500:
        failures.append((*what, status, details))
    elif status == 400 and value is not None and not isinstance(value, str):
        # Of the wrong JSON type, refused by the field's own check. (A null is the field's default,
        # and a string of the right type, either of which a check of another field may refuse.)
        if not isinstance(details, str) or f'`{field}`' not in details:
            failures.append((*what, 'a 400 not naming the field', details))


def _cleanup(env: Env, prefix: str, status: int, created: Any) -> None:
    if status == 200 and isinstance(created, dict) and 'id' in created:
        if prefix.endswith('/caches/builtin') and created.get('is_default') is True:
            # A cache made the default (`is_default: true` is a right value) cannot be deleted until
            # another one is the default again
            default = next(c for c in env.admin.call('GET', prefix) if c['name'] == 'default')
            env.admin.call('PUT', f'{prefix}/{default["id"]}', {'is_default': True})
        env.admin.call('DELETE', f'{prefix}/{created["id"]}')


def _fuzz_crud(env: Env, prefix: str, base: dict[str, Any], obj: dict[str, Any], extras: tuple[str, ...],
               failures: list, create_fields: set[str] | None = None) -> None:
    """Each field with each wrong value, in a create (of `create_fields` only, if given) and in an edit."""
    fields = (set(base) | set(obj) | set(extras) | {'name', 'is_active'}) - {'id'}
    for field in sorted(fields):
        for value in WRONG_VALUES:
            if create_fields is None or field in create_fields:
                status, details = call(env, 'POST', prefix, {**fill(base), field: value})
                _check(failures, ('POST', prefix, field, value), field, value, status, details)
                _cleanup(env, prefix, status, details)
            status, details = call(env, 'PUT', f'{prefix}/{obj["id"]}', {field: value})
            _check(failures, ('PUT', prefix, field, value), field, value, status, details)


def test_a_field_of_the_wrong_json_type_is_never_a_500_on_any_create_or_edit(admin_env, objects):
    env = admin_env
    failures: list = []
    for prefix, spec in KINDS.items():
        _fuzz_crud(env, prefix, spec['base'], objects[prefix], spec['extras'], failures)
    for base in SECURITY_KINDS:
        obj = create(env, '/zato/admin/security', base)
        _fuzz_crud(env, '/zato/admin/security', base, obj, ('password', 'rate_limit'), failures)
    assert not failures, failures


def test_every_outgoing_connection_kind_refuses_a_field_of_the_wrong_json_type_with_a_400(admin_env):
    env = admin_env
    failures: list = []
    for kind in env.admin.call('GET', '/zato/admin/outconns'):
        prefix = f'/zato/admin/outconns/{kind["kind"]}'
        required = [f['name'] for f in kind['fields'] if f['required']]
        missing = [name for name in required if name not in OUTCONN_SAMPLES]
        assert not missing, f'no sample value for the required fields of {kind["kind"]}: {missing}'
        base = {'is_active': False, **{name: OUTCONN_SAMPLES[name] for name in required},
                **OUTCONN_VALID.get(kind['kind'], {})}
        obj = create(env, prefix, base)
        fields = tuple(f['name'] for f in kind['fields'])
        # Every kind's fields are checked by one function, alike for a create and an edit: a create
        # is fuzzed in the fields it requires, an edit in all
        _fuzz_crud(env, prefix, base, obj, fields, failures, create_fields={'name', 'is_active', *required})
    assert not failures, failures


# The other routes that take input, by service: the path, a valid payload, and the fields to fuzz
OTHER_INPUTS: dict[str, tuple[str, dict[str, Any], tuple[str, ...]]] = {
    'zato.service.invoke': ('/zato/admin/invoke', {'name': 'ai-echo.echo'}, ('name', 'async')),
    'zato.service.edit': ('/zato/admin/services/ai-echo.echo', {},
                          ('is_json_schema_enabled', 'needs_json_schema_err_details', 'rate_limit')),
    'zato.hot-deploy.create': ('/zato/admin/deploy', {'file_name': 'ai_echo.py', 'source': MODULE},
                               ('file_name', 'source')),
    'zato.rate-limit.check': ('/zato/admin/rate-limits/check', {'rules': '* = 1/m'}, ('rules',)),
    'zato.security.change-password': ('/zato/admin/security/{id}/change-password', {}, ('password',)),
    'zato.outconn.change-password': (f'/zato/admin/outconns/{OUTCONN_KIND}/{{id}}/change-password',
                                     {'secret': 'ai'}, ('secret',)),
    'zato.channel.web-socket.invoke-wsx': ('/zato/admin/wsx/clients/ai-nobody/send', {'data': 1}, ('client_id',)),
    'zato.stats.service.get-list': ('/zato/admin/stats/services', {}, ('minutes',)),
    'zato.pubsub.topic.publish': ('/zato/admin/pubsub/topics/{id}/publish', {'data': 'ai'},
                                  ('priority', 'expiration', 'correl_id', 'ext_pub_time', 'has_gd', 'data_list')),
    'zato.pubsub.delivery-task.get-list': ('/zato/admin/pubsub/delivery-tasks', {}, ('server',)),
}

# Routes whose input is a path alone, or `data` of any type
NO_TYPED_INPUT = {'zato.channel.web-socket.broadcast', 'zato.outconn.ping', 'zato.scheduler.job.execute',
                  'zato.pubsub.subscription.clear'}


def test_the_other_routes_that_take_input_refuse_a_field_of_the_wrong_json_type_with_a_400(admin_env, objects):
    env = admin_env
    crud = {f'{p}' for p in KINDS} | {'/zato/admin/outconns/{kind}'}
    uncovered = [service for path, method, service in _ADMIN
                 if method in ('POST', 'PUT') and path.split('/{id}')[0] not in crud
                 and service not in OTHER_INPUTS and service not in NO_TYPED_INPUT]
    assert not uncovered, f'routes taking input that no test here fuzzes: {uncovered}'
    ids = {'/zato/admin/security': objects['/zato/admin/security']['id'],
           '/zato/admin/outconns': objects[f'/zato/admin/outconns/{OUTCONN_KIND}']['id'],
           '/zato/admin/pubsub/topics': objects['/zato/admin/pubsub/topics']['id']}
    failures: list = []
    for service, (path, base, fields) in OTHER_INPUTS.items():
        method = next(m for p, m, s in _ADMIN if s == service)
        if '{id}' in path:
            path = path.replace('{id}', str(next(v for k, v in ids.items() if path.startswith(k))))
        for field in fields:
            for value in WRONG_VALUES:
                status, details = call(env, method, path, {**base, field: value})
                _check(failures, (method, path, field, value), field, value, status, details)
    assert not failures, failures


def test_a_name_or_a_number_that_names_nothing_is_a_4xx_through_any_entry_point(admin_env):
    env = admin_env
    cases = [
        ('GET', '/zato/admin/stats/services?minutes=%C2%B2', None, 400, 'minutes'),
        ('GET', '/zato/admin/stats/services?minutes=' + '9' * 5000, None, 400, 'minutes'),
        ('POST', '/zato/admin/invoke', {'name': 'zato.service.get', 'payload': {'name': ['x']}}, 400, 'name'),
        ('POST', '/zato/admin/invoke', {'name': 'zato.service.edit', 'payload': {'name': {'a': 1}}}, 400, 'name'),
        ('POST', '/zato/admin/invoke', {'name': 'zato.channel.rest.get', 'payload': {'id': [1]}}, 400, 'id'),
        ('POST', '/zato/admin/invoke', {'name': 'zato.channel.rest.get', 'payload': {'id': 2 ** 64 - 1}}, 404, ''),
    ]
    for method, path, payload, expected, field in cases:
        status, details = call(env, method, path, payload)
        assert status == expected, (path[:60], payload, status, details)
        assert f'`{field}`' in details if field else details.endswith('not found'), (path[:60], details)
