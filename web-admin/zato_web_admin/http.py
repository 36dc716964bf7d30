"""The web-admin's HTTP layer over WSGI: a request, a response and a router. Small on purpose."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from email.parser import BytesParser
from email.policy import HTTP
from http import HTTPStatus
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, quote

MAX_BODY = 10 * 1024 * 1024  # an uploaded service module included


class HTTPError(Exception):
    def __init__(self, status: int, message: str = '') -> None:
        super().__init__(message or HTTPStatus(status).phrase)
        self.status = status
        self.message = message or HTTPStatus(status).phrase


class Request:
    def __init__(self, environ: dict[str, Any]) -> None:
        self.environ = environ
        self.method = environ.get('REQUEST_METHOD', 'GET').upper()
        self.path = environ.get('PATH_INFO', '') or '/'
        self.query = {k: v[-1] for k, v in parse_qs(environ.get('QUERY_STRING', ''), keep_blank_values=True).items()}
        self._form: dict[str, str] | None = None
        self._files: dict[str, tuple[str, bytes]] = {}
        self.current: Any = None  # the signed-in user's session, set by the app

    @property
    def remote_addr(self) -> str:
        return str(self.environ.get('REMOTE_ADDR', ''))

    @property
    def is_https(self) -> bool:
        if self.environ.get('wsgi.url_scheme') == 'https':
            return True
        return self.environ.get('HTTP_X_FORWARDED_PROTO', '').split(',')[0].strip().lower() == 'https'

    @property
    def cookies(self) -> dict[str, str]:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(self.environ.get('HTTP_COOKIE', ''))
        except Exception:  # noqa: BLE001 - a malformed Cookie header is no cookie
            return {}
        return {k: m.value for k, m in jar.items()}

    @property
    def form(self) -> dict[str, str]:
        if self._form is None:
            self._form = self._read_form()
        return self._form

    @property
    def files(self) -> dict[str, tuple[str, bytes]]:
        """A multipart form's files, {field: (file name, content)}: read with the form, whichever comes first."""
        _ = self.form
        return self._files

    def _read_form(self) -> dict[str, str]:
        try:
            length = int(self.environ.get('CONTENT_LENGTH') or 0)
        except ValueError:
            raise HTTPError(400, 'Bad Content-Length') from None
        if length > MAX_BODY:
            raise HTTPError(413)
        body = self.environ['wsgi.input'].read(length) if length else b''
        content_type = self.environ.get('CONTENT_TYPE', '')
        if content_type.startswith('multipart/form-data'):
            return self._multipart(content_type, body)
        try:
            text = body.decode('utf-8')
        except UnicodeDecodeError:
            raise HTTPError(400, 'The form is not UTF-8') from None
        return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}

    def _multipart(self, content_type: str, body: bytes) -> dict[str, str]:
        message = BytesParser(policy=HTTP).parsebytes(b'Content-Type: ' + content_type.encode('latin-1') + b'\r\n\r\n'
                                                      + body)
        if not message.is_multipart():
            raise HTTPError(400, 'A malformed multipart form')
        form: dict[str, str] = {}
        for part in message.iter_parts():
            name = part.get_param('name', header='content-disposition')
            if not isinstance(name, str):
                continue
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes):
                payload = b''
            filename = part.get_filename()
            if filename is not None:
                self._files[name] = (filename, payload)
            else:
                form[name] = payload.decode('utf-8', 'replace')
        return form


class Response:
    def __init__(self, body: str | bytes = '', status: int = 200, content_type: str = 'text/html; charset=utf-8',
                 headers: list[tuple[str, str]] | None = None) -> None:
        self.body = body.encode('utf-8') if isinstance(body, str) else body
        self.status = status
        self.headers = [('Content-Type', content_type), *(headers or [])]

    def set_cookie(self, name: str, value: str, *, max_age: int | None = None, secure: bool = False,
                   path: str = '/') -> None:
        parts = [f'{name}={value}', f'Path={path}', 'HttpOnly', 'SameSite=Strict']
        if max_age is not None:
            parts.append(f'Max-Age={max_age}')
        if secure:
            parts.append('Secure')
        self.headers.append(('Set-Cookie', '; '.join(parts)))

    def delete_cookie(self, name: str, secure: bool = False) -> None:
        self.set_cookie(name, '', max_age=0, secure=secure)


def redirect(location: str, status: int = 303) -> Response:
    return Response('', status, headers=[('Location', location)])


def json_response(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status, 'application/json')


def safe_next(target: str) -> str:
    """Where to go after sign-in: a path of ours only, never another site."""
    if not target.startswith('/') or target.startswith('//') or '\\' in target:
        return '/'
    return quote(target, safe='/?=&-_.~%')


# A page: called as view(app, request, **params), params being the values of its pattern's {names}
View = Callable[..., Response]

# (method, pattern, view, public): public pages are open without a session (the sign-in form)
Route = tuple[str, str, View, bool]


class Router:
    """Routes by method and path; `{name}` in a pattern matches one path segment."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], View, bool]] = []

    def add(self, method: str, pattern: str, view: View, public: bool = False) -> None:
        regex = re.sub(r'\{(\w+)\}', r'(?P<\1>[^/]+)', pattern)
        self.routes.append((method, re.compile(f'^{regex}$'), view, public))

    def match(self, method: str, path: str) -> tuple[View, dict[str, str], bool]:
        allowed: list[str] = []
        for route_method, regex, view, public in self.routes:
            m = regex.match(path)
            if m is None:
                continue
            if route_method == method or (method == 'HEAD' and route_method == 'GET'):
                return view, m.groupdict(), public
            allowed.append(route_method)
        if allowed:
            raise HTTPError(405)
        raise HTTPError(404)

    def extend(self, routes: Iterable[Route]) -> None:
        for method, pattern, view, public in routes:
            self.add(method, pattern, view, public)
