"""The web-admin's parts on their own: TOTP steps, form fields, the HTTP layer, and what it imports."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pyotp
import pytest

import zato_web_admin
from tests.e2e.harness import WEB_ADMIN, child_env
from zato_web_admin import totp
from zato_web_admin.http import HTTPError, Request, Router, safe_next
from zato_web_admin.resources import Field, field_of_message

KEY = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'
NOW = 1_800_000_015.0  # inside step 60_000_000


def test_a_code_is_accepted_for_its_step_and_the_ones_next_to_it_never_twice():
    step = int(NOW // 30)
    code = pyotp.TOTP(KEY).at(NOW)
    assert totp.accept(KEY, code, 0, NOW) == step
    assert totp.accept(KEY, code, step, NOW) is None          # used once already
    assert totp.accept(KEY, f'{code[:3]} {code[3:]}', 0, NOW) == step  # as apps show it
    previous = pyotp.TOTP(KEY).at(NOW - 30)
    assert totp.accept(KEY, previous, 0, NOW) == step - 1
    assert totp.accept(KEY, previous, step, NOW) is None      # older than the last one used
    assert totp.accept(KEY, pyotp.TOTP(KEY).at(NOW - 90), 0, NOW) is None  # out of the window
    for bad in ('', '12345', '1234567', 'abcdef', '000000' if code != '000000' else '111111'):
        assert totp.accept(KEY, bad, 0, NOW) is None
    assert totp.accept('', code, 0, NOW) is None


def test_a_new_key_is_base32_and_its_uri_and_qr_code_name_the_user():
    key = totp.new_key()
    assert len(key) == 32 and set(key) <= set('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567')
    uri = totp.provisioning_uri(key, 'jane', 'Zato prod')
    assert uri.startswith('otpauth://totp/Zato%20prod:jane?secret=' + key)
    assert totp.qr_svg(uri).startswith('<svg')


@pytest.mark.parametrize(('field', 'text', 'value'), [
    (Field('n', 'N', 'number'), '42', 42),
    (Field('n', 'N', 'number'), '', None),
    (Field('f', 'F', 'float'), '2.5', 2.5),
    (Field('c', 'C', 'checkbox'), 'on', True),
    (Field('c', 'C', 'checkbox'), '', False),
    (Field('l', 'L', 'lines'), ' a \n\n b\n', ['a', 'b']),
    (Field('j', 'J', 'json'), '{"a": "1"}', {'a': '1'}),
    (Field('j', 'J', 'json'), '', {}),
    (Field('t', 'T'), '  x ', 'x'),
])
def test_form_text_becomes_the_api_value(field, text, value):
    assert field.from_form(text) == value


@pytest.mark.parametrize(('field', 'text', 'error'), [
    (Field('n', 'N', 'number'), 'ten', 'expected a number'),
    (Field('n', 'N', 'number', required=True), '', 'required'),
    (Field('j', 'J', 'json'), '[1]', 'expected a JSON object'),
    (Field('j', 'J', 'json'), '{', 'not valid JSON'),
    (Field('t', 'T', required=True), ' ', 'required'),
])
def test_form_text_that_cannot_be_a_value_is_refused_with_a_reason(field, text, error):
    with pytest.raises(ValueError, match=error):
        field.from_form(text)


def test_api_values_show_in_the_form_as_typed():
    assert Field('l', 'L', 'lines').to_form(['a', 'b']) == 'a\nb'
    assert Field('c', 'C', 'checkbox').to_form(True) == 'on'
    assert Field('j', 'J', 'json').to_form({'a': 1}) == '{\n  "a": 1\n}'
    assert Field('t', 'T').to_form(None) == ''


def test_the_field_a_server_message_names_is_found():
    fields = (Field('name', 'Name'), Field('url_path', 'URL path'))
    assert field_of_message('Invalid input `url_path`: must start with /', fields) == 'url_path'
    assert field_of_message('Channel `orders` already serves GET on `/x`', fields) == ''
    assert field_of_message('no backticks', fields) == ''


def _request(method: str = 'GET', path: str = '/', body: bytes = b'', content_type: str = '',
             **environ: str) -> Request:
    return Request({'REQUEST_METHOD': method, 'PATH_INFO': path, 'QUERY_STRING': '', 'CONTENT_TYPE': content_type,
                    'CONTENT_LENGTH': str(len(body)), 'wsgi.input': io.BytesIO(body), **environ})


def test_forms_urlencoded_and_multipart_with_a_file():
    assert _request('POST', body=b'a=1&b=x+y&a=2', content_type='application/x-www-form-urlencoded').form == \
        {'a': '2', 'b': 'x y'}
    boundary = 'zzz'
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\nT\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="module"; filename="svc.py"\r\n'
            f'Content-Type: text/x-python\r\n\r\nclass A: pass\n\r\n--{boundary}--\r\n').encode()
    req = _request('POST', body=body, content_type=f'multipart/form-data; boundary={boundary}')
    assert req.form == {'csrf_token': 'T'}
    assert req.files == {'module': ('svc.py', b'class A: pass\n')}
    with pytest.raises(HTTPError) as info:
        _ = _request('POST', body=b'\xff\xfe', content_type='application/x-www-form-urlencoded').form
    assert info.value.status == 400


def test_https_is_known_from_the_scheme_or_the_load_balancer():
    assert not _request().is_https
    assert _request(**{'wsgi.url_scheme': 'https'}).is_https
    assert _request(HTTP_X_FORWARDED_PROTO='https').is_https


def test_after_sign_in_only_our_own_paths_are_followed():
    assert safe_next('/channels/rest?q=x') == '/channels/rest?q=x'
    for bad in ('https://evil.example/', '//evil.example/', '/\\evil.example', 'javascript:alert(1)', ''):
        assert safe_next(bad) == '/'


def test_the_router_matches_segments_and_tells_404_from_405():
    router = Router()
    router.add('GET', '/things/{id}', lambda r: r, public=False)
    handler, params, public = router.match('GET', '/things/7')
    assert params == {'id': '7'} and public is False
    assert router.match('HEAD', '/things/7')[1] == {'id': '7'}
    with pytest.raises(HTTPError) as info:
        router.match('POST', '/things/7')
    assert info.value.status == 405
    with pytest.raises(HTTPError) as info:
        router.match('GET', '/things/7/more')
    assert info.value.status == 404


def test_the_web_admin_imports_no_server_internals():
    code = ('import sys, zato_web_admin.app, zato_web_admin.__main__, zato_web_admin.views\n'
            'from zato_web_admin.views import MODULES\n'
            'import importlib\n'
            '[importlib.import_module("zato_web_admin.views." + m) for m in MODULES]\n'
            'print("\\n".join(sorted(m for m in sys.modules if m.startswith(("zato.server", "zato.connectors", '
            '"zato.service", "zato.proto", "gevent")))))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True,
                         env=child_env()).stdout.split()
    assert out == [], out  # not even zato.server's package: settings and the admin client live below it


def test_the_tests_and_the_processes_they_start_run_this_checkouts_web_admin():
    expected = os.path.join(WEB_ADMIN, 'zato_web_admin', '__init__.py')
    assert zato_web_admin.__file__ == expected
    code = 'import zato_web_admin; print(zato_web_admin.__file__)'
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True, cwd='/',
                         env=child_env()).stdout.strip()
    assert out == expected
