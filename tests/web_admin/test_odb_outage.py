"""The web-admin with its ODB out of reach: every page is a 503 naming `odb_unavailable`, with a
Retry-After and a cid the log has, logged as the ODB's failure without a traceback (not a 500 and an
internal error); once the ODB is back, the same page works again."""

from __future__ import annotations

import io
import logging

import psycopg2
import pytest

from tests import pg
from tests.e2e.harness import free_port_block
from tests.web_admin.views.standalone import web_admin
from zato_web_admin import sessions

pytestmark = pytest.mark.postgresql


def call(app, path: str) -> tuple[str, dict[str, str], str]:
    environ = {'REQUEST_METHOD': 'GET', 'PATH_INFO': path, 'QUERY_STRING': '', 'CONTENT_LENGTH': '0',
               'wsgi.input': io.BytesIO(b''), 'REMOTE_ADDR': '192.0.2.7',
               'HTTP_COOKIE': f'{sessions.COOKIE}=a-session-token-the-odb-is-asked-about'}
    out = {}

    def start_response(status, headers):
        out['status'], out['headers'] = status, dict(headers)

    body = b''.join(app(environ, start_response)).decode()
    return out['status'], out['headers'], body


def test_the_odb_down_is_a_503_page_then_the_web_admin_works_again(caplog):
    with pg.private_server(free_port_block(1)) as server:
        conn = psycopg2.connect(server.dsn())
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute('CREATE DATABASE zato')
        conn.close()
        app, engine = web_admin('', url=server.dsn('zato').replace('postgresql://', 'postgresql+psycopg2://'))
        try:
            status, _, _ = call(app, '/login')
            assert status.startswith('200')

            server.stop('immediate')
            try:
                with caplog.at_level(logging.INFO):
                    status, headers, body = call(app, '/login')
                assert status == '503 Service Unavailable'
                assert headers['Retry-After'] == '5'
                assert 'could not be used (odb_unavailable); try again in 5 s' in body
                cid = body.split('details under cid ')[1][:16]
                logged = [r for r in caplog.records if cid in r.getMessage()]
                assert logged and all(r.levelno == logging.WARNING and r.exc_info is None for r in logged), logged
                assert 'the ODB could not be used' in logged[0].getMessage()
            finally:
                server.start()

            status, _, _ = call(app, '/login')
            assert status.startswith('200')
        finally:
            engine.dispose()
