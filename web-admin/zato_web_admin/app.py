"""The web-admin as one WSGI callable: static files, sessions, CSRF on every POST, security headers,
templates, and the pages each views module declares."""

from __future__ import annotations

import hmac
import logging
import mimetypes
import os
import secrets
from collections.abc import Callable, Iterable
from typing import Any

from zato.errors import REMOTE, ZatoError, failure_of, log_failure
from jinja2 import Environment, FileSystemLoader, select_autoescape

from zato_web_admin import flash, sessions
from zato_web_admin.config import WebAdminConfig
from zato_web_admin.http import HTTPError, Request, Response, Router, redirect
from zato_web_admin.views import all_routes
from zato_web_admin.views.resources import OutgoingKinds

logger = logging.getLogger('zato.web_admin')

HERE = os.path.dirname(os.path.abspath(__file__))
STATIC = os.path.join(HERE, 'static')

# Cookie of the sign-in form's CSRF token, before any session exists
LOGIN_CSRF_COOKIE = 'zato_web_admin_login'

SECURITY_HEADERS = [
    ('Content-Security-Policy', "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                                "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    ('X-Content-Type-Options', 'nosniff'),
    ('X-Frame-Options', 'DENY'),
    ('Referrer-Policy', 'same-origin'),
]


class WebAdmin:
    def __init__(self, config: WebAdminConfig) -> None:
        self.config = config
        self.templates = Environment(loader=FileSystemLoader(os.path.join(HERE, 'templates')),
                                     autoescape=select_autoescape(default=True, default_for_string=True),
                                     trim_blocks=True, lstrip_blocks=True)
        self.router = Router()
        self.router.extend(all_routes())
        self.outgoing = OutgoingKinds(self)  # the menu's and the outgoing pages' kinds, read once

    # ------------------------------------------------------------------ what views use

    def render(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        message = flash.peek(request)
        page = self.templates.get_template(template).render(
            request=request, current=request.current, csrf_token=self.csrf_token(request),
            cluster_name=self.config.cluster_name, flash=message, outgoing_kinds=self.outgoing_kinds(request),
            **context)
        response = Response(page, status)
        if message is not None:
            response.delete_cookie(flash.COOKIE, secure=self.secure(request))
        return response

    def done(self, request: Request, location: str, text: str, kind: str = 'ok') -> Response:
        """A redirect after a POST, with a message for the page it leads to."""
        return flash.set(redirect(location), kind, text, self.secure(request))

    def outgoing_kinds(self, request: Request) -> list[tuple[str, Any]]:
        """The menu's kinds of outgoing connections; none while no server answers."""
        if request.current is None:
            return []
        try:
            return sorted(self.outgoing.all().items())
        except ZatoError:
            return []

    def csrf_token(self, request: Request) -> str:
        if request.current is not None:
            return str(request.current.csrf_token)
        return request.environ.get('zato.login_csrf', '')

    def db(self) -> Any:
        return self.config.session_factory()

    def secure(self, request: Request) -> bool:
        mode = self.config.secure_cookies
        return mode == 'true' or (mode == 'auto' and request.is_https)

    # ------------------------------------------------------------------ WSGI

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self.handle(request)
        except HTTPError as e:
            response = self.error_page(request, e.status, e.message)
        except Exception as e:  # noqa: BLE001 - answered by failure_page: 503 for a dependency, else 500 logged
            response = self.failure_page(request, e)
        headers = [*response.headers, *SECURITY_HEADERS]
        if not request.path.startswith('/static/'):
            headers.append(('Cache-Control', 'no-store'))
        headers.append(('Content-Length', str(len(response.body))))
        start_response(f'{response.status} {_phrase(response.status)}', headers)
        return [b''] if request.method == 'HEAD' else [response.body]

    def handle(self, request: Request) -> Response:
        if request.path.startswith('/static/'):
            return self.static(request.path[len('/static/'):])
        token = request.cookies.get(sessions.COOKIE, '')
        with self.db() as db:
            request.current = sessions.load(db, token, self.config.idle_seconds, self.config.max_seconds)
        try:
            view, params, public = self.router.match(request.method, request.path)
        except HTTPError:
            if request.current is not None:
                raise
            # Without a session, a path that does not exist looks like one that does: sign in first
            view, params, public = not_found, {}, False

        login_cookie = ''
        if request.current is None:
            if not public:
                if request.method == 'GET':
                    return redirect('/login?next=' + request.path)
                raise HTTPError(403, 'Your session has ended; sign in again.')
            # The sign-in form's CSRF token lives in a cookie of its own until a session exists
            login_cookie = request.cookies.get(LOGIN_CSRF_COOKIE, '') or secrets.token_urlsafe(32)
            request.environ['zato.login_csrf'] = login_cookie

        if request.method == 'POST':
            sent = request.form.get('csrf_token', '') or request.environ.get('HTTP_X_CSRF_TOKEN', '')
            expected = self.csrf_token(request)
            if not sent or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
                raise HTTPError(403, 'The form had no valid CSRF token; reload the page and try again.')

        response = view(self, request, **params)
        if login_cookie and not any(name == 'Set-Cookie' for name, _ in response.headers):
            response.set_cookie(LOGIN_CSRF_COOKIE, login_cookie, secure=self.secure(request))
        return response

    def static(self, name: str) -> Response:
        path = os.path.normpath(os.path.join(STATIC, name))
        if not path.startswith(STATIC + os.sep) or not os.path.isfile(path):
            raise HTTPError(404)
        with open(path, 'rb') as f:
            body = f.read()
        content_type = mimetypes.guess_type(path)[0] or 'application/octet-stream'
        return Response(body, 200, content_type, [('Cache-Control', 'max-age=3600')])

    def failure_page(self, request: Request, e: Exception) -> Response:
        """The page for an exception no view answered: a dependency out of reach (the ODB: zato.odb.outage)
        is a 503 with Retry-After, logged as its failure without a traceback; anything else is our bug, a
        500 with its traceback in the log. Either way the page names the cid the log has."""
        cid = secrets.token_hex(8)
        failure = failure_of(e, cid)
        if failure.cause == REMOTE:
            log_failure(logger, failure, e, f'{request.method} {request.path}', cid)
            retry = failure.headers.get('Retry-After', '')
            response = self.error_page(request, failure.status,
                                       f'Something the web-admin depends on could not be used ({failure.code})'
                                       + (f'; try again in {retry} s' if retry else '')
                                       + f'. The web-admin log has the details under cid {cid}')
            response.headers.extend(failure.headers.items())
            return response
        logger.error('Error while handling %s %s, cid `%s`', request.method, request.path, cid, exc_info=e)
        return self.error_page(request, 500, f'Internal error; the web-admin log has the details under cid {cid}')

    def error_page(self, request: Request, status: int, message: str) -> Response:
        try:
            return self.render(request, 'error.html', status, code=status, message=message)
        except Exception:  # noqa: BLE001 - a broken template must not hide the error itself
            return Response(message, status, 'text/plain; charset=utf-8')


def not_found(_app: WebAdmin, _request: Request) -> Response:
    raise HTTPError(404)


def _phrase(status: int) -> str:
    from http import HTTPStatus
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ''
