"""Loopback stand-ins for Slack's Web API and Telegram's Bot API, spoken over real HTTP.

No real Slack or Telegram is reachable from the test machines, so the real client (slack_sdk's
`WebClient`, our `TelegramClient`) talks to these instead: each is a threaded HTTP server on
127.0.0.1 that checks the token, answers a few methods the way the service documents them, and
records every call. `fault` makes it misbehave: 'drop' closes the connection without an answer (the
remote end dying mid-call), 'slow' answers after `delay` seconds, 'bad-gateway' answers 502 with an
HTML page, as a proxy in front of the service would.

`start(port)` can be called again after `stop()` on the same port, for remote-down-and-back tests.
The server speaks HTTP/1.0 (a connection per request), so a stopped server answers nobody.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        self.server.owner.handle(self)

    do_GET = do_POST  # noqa: N815 - the name http.server looks for

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the name in the base class
        pass

    def params(self) -> dict[str, Any]:
        """Query string and body together, whether the body is a form or JSON."""
        out: dict[str, Any] = dict(parse_qsl(urlsplit(self.path).query))
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length) if length else b''
        content_type = (self.headers.get('Content-Type') or '').split(';')[0].strip()
        if body and content_type == 'application/json':
            out.update(json.loads(body))
        elif body:
            out.update(parse_qsl(body.decode('utf-8')))
        return out

    def answer(self, status: int, body: Any, content_type: str = 'application/json; charset=utf-8') -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode('utf-8')
        self.send_response(status)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: FakeAPI) -> None:
        self.owner = owner
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up on a slow answer (a timeout test) is expected; anything else is printed
        import sys
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeAPI:
    """What both fakes share: the server's life, the record of calls and the faults."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fault: str | None = None
        self.received = 0  # HTTP requests, whether answered or not
        self.delay = 2.0
        self.port = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self, port: int | None = None) -> Self:
        server = _Server(('127.0.0.1', self.port if port is None else port), self)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def methods(self) -> list[str]:
        with self._lock:
            return [method for method, _ in self.calls]

    def handle(self, request: _Handler) -> None:
        fault = self.fault
        with self._lock:
            self.received += 1
        if fault == 'drop':
            request.params()  # read the request first, so that the client sees a closed connection, not a reset
            request.close_connection = True
            request.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault == 'slow':
            time.sleep(self.delay)
        if fault == 'bad-gateway':
            request.answer(502, b'<html><body>502 Bad Gateway</body></html>', 'text/html')
            return
        self.dispatch(request)

    def record(self, method: str, params: dict[str, Any]) -> None:
        with self._lock:
            self.calls.append((method, params))

    def dispatch(self, request: _Handler) -> None:
        raise NotImplementedError


# ################################################################################################ Slack

class FakeSlack(FakeAPI):
    """Slack's Web API at ``http://127.0.0.1:PORT/api/{method}``: `api.test`, `auth.test`,
    `chat.postMessage` and `conversations.list` (paginated by cursor). A wrong token gets
    ``{"ok": false, "error": "invalid_auth"}``, none ``not_authed``, both with status 200 as Slack does."""

    def __init__(self, token: str = 'xoxb-zato-test') -> None:
        super().__init__(token)
        self.channels = [{'id': 'C0001', 'name': 'general'}, {'id': 'C0002', 'name': 'random'},
                         {'id': 'C0003', 'name': 'zato'}]
        self.messages: list[dict[str, Any]] = []
        self._ts = 1700000000

    @property
    def base_url(self) -> str:
        return f'http://127.0.0.1:{self.port}/api/'

    def dispatch(self, request: _Handler) -> None:
        path = urlsplit(request.path).path
        if not path.startswith('/api/'):
            request.answer(404, {'ok': False, 'error': 'not_found'})
            return
        method = path[len('/api/'):]
        params = request.params()
        self.record(method, params)

        if method == 'api.test':
            request.answer(200, {'ok': True, 'args': params})
            return

        auth = request.headers.get('Authorization') or ''
        token = auth[len('Bearer '):] if auth.startswith('Bearer ') else params.get('token', '')
        if not token:
            request.answer(200, {'ok': False, 'error': 'not_authed'})
            return
        if token != self.token:
            request.answer(200, {'ok': False, 'error': 'invalid_auth'})
            return

        handler = getattr(self, 'm_' + method.replace('.', '_'), None)
        if handler is None:
            request.answer(200, {'ok': False, 'error': 'unknown_method', 'req_method': method})
            return
        request.answer(200, handler(params))

    def m_auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {'ok': True, 'url': 'https://zato-test.slack.com/', 'team': 'Zato Test', 'user': 'zato-bot',
                'team_id': 'T0001', 'user_id': 'U0001', 'bot_id': 'B0001', 'is_enterprise_install': False}

    def m_chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802 - Slack's method name
        channel = str(params.get('channel') or '')
        found = next((c for c in self.channels if channel in (c['id'], c['name'], '#' + c['name'])), None)
        if found is None:
            return {'ok': False, 'error': 'channel_not_found'}
        if not params.get('text') and not params.get('blocks'):
            return {'ok': False, 'error': 'no_text'}
        with self._lock:
            self._ts += 1
            message = {'type': 'message', 'text': params.get('text', ''), 'user': 'U0001', 'bot_id': 'B0001',
                       'ts': f'{self._ts}.000100', 'channel': found['id']}
            self.messages.append(message)
        return {'ok': True, 'channel': found['id'], 'ts': message['ts'], 'message': message}

    def m_conversations_list(self, params: dict[str, Any]) -> dict[str, Any]:
        limit = int(params.get('limit') or 100)
        start = int(params.get('cursor') or 0)
        page = self.channels[start:start + limit]
        following = start + limit
        next_cursor = str(following) if following < len(self.channels) else ''
        channels = [{**c, 'is_channel': True, 'is_archived': False} for c in page]
        return {'ok': True, 'channels': channels, 'response_metadata': {'next_cursor': next_cursor}}


# ################################################################################################ Telegram

class FakeTelegram(FakeAPI):
    """Telegram's Bot API at ``http://127.0.0.1:PORT/bot{token}/{method}``: `getMe`, `sendMessage`
    (to chats in `chats`) and `getUpdates` (of what `add_update` queued, confirmed by `offset`). A wrong
    token gets 401 ``{"ok": false, "error_code": 401, "description": "Unauthorized"}``."""

    def __init__(self, token: str = '123456:zato-test-token') -> None:
        super().__init__(token)
        self.chats = {1001: 'private', -2002: 'group'}
        self.messages: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []
        self._next_update = 500
        self._next_message = 1

    @property
    def address(self) -> str:
        return f'http://127.0.0.1:{self.port}/bot{{token}}/{{method}}'

    def add_update(self, chat_id: int, text: str) -> int:
        with self._lock:
            self._next_update += 1
            self.updates.append({'update_id': self._next_update, 'message': {
                'message_id': 10000 + self._next_update, 'date': int(time.time()), 'text': text,
                'chat': {'id': chat_id, 'type': self.chats.get(chat_id, 'private')}}})
            return self._next_update

    def dispatch(self, request: _Handler) -> None:
        path = urlsplit(request.path).path
        token, _, method = path[len('/bot'):].partition('/') if path.startswith('/bot') else ('', '', '')
        params = request.params()
        self.record(method, params)
        if token != self.token:
            request.answer(401, {'ok': False, 'error_code': 401, 'description': 'Unauthorized'})
            return
        handler = getattr(self, 'm_' + method, None)
        if handler is None:
            request.answer(404, {'ok': False, 'error_code': 404, 'description': 'Not Found'})
            return
        status, body = handler(params)
        request.answer(status, body)

    @staticmethod
    def bad_request(description: str) -> tuple[int, dict[str, Any]]:
        return 400, {'ok': False, 'error_code': 400, 'description': f'Bad Request: {description}'}

    def m_getMe(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802 - the Bot API's name
        return 200, {'ok': True, 'result': {'id': 123456, 'is_bot': True, 'first_name': 'Zato',
                                            'username': 'zato_test_bot', 'can_join_groups': True}}

    def m_sendMessage(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        try:
            chat_id = int(params.get('chat_id', ''))
        except ValueError:
            return self.bad_request('chat not found')
        if chat_id not in self.chats:
            return self.bad_request('chat not found')
        if not params.get('text'):
            return self.bad_request('message text is empty')
        with self._lock:
            message = {'message_id': self._next_message, 'date': int(time.time()), 'text': params['text'],
                       'chat': {'id': chat_id, 'type': self.chats[chat_id]},
                       'from': {'id': 123456, 'is_bot': True, 'username': 'zato_test_bot'}}
            self._next_message += 1
            self.messages.append(message)
        return 200, {'ok': True, 'result': message}

    def m_getUpdates(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        offset = int(params.get('offset') or 0)
        limit = int(params.get('limit') or 100)
        with self._lock:
            if offset:
                # As Telegram does: asking from an offset confirms every update before it
                self.updates = [u for u in self.updates if u['update_id'] >= offset]
            return 200, {'ok': True, 'result': self.updates[:limit]}
