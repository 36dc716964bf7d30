"""From a parsed HTTP request to response bytes: routing, the channel's guards, body decoding, the
service, and the answer to whatever it raised (zato.errors.failure_of, the same for every entry point)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import orjson

from zato import accel
from zato.errors import STATUS_CODES, ClientError, failure_of, log_failure
from zato.server import response_cache
from zato.server.jsonrpc import JSONRPCGateway
from zato.service.invoker import Invoker, new_cid
from zato.service.reqresp import HTTPInfo, Request

if TYPE_CHECKING:
    from zato.server.runtime import Runtime

http1 = accel.load('zato.proto.http1')
serialize_response = http1.serialize_response

logger = logging.getLogger('zato.dispatcher')

JSON = 'application/json'
TEXT = 'text/plain; charset=utf-8'
_dumps = orjson.dumps
_loads = orjson.loads
_OPT_NON_STR_KEYS = orjson.OPT_NON_STR_KEYS


# The head of the most common answer, a 200 with a JSON body the dispatcher itself typed: only the
# CID (24 hex characters, zato.service.invoker.new_cid) and the length vary, neither of which can
# carry a CR or LF, so it is put together here instead of by serialize_response, to the same bytes
_OK_JSON_HEAD = b'HTTP/1.1 200 OK\r\nX-Zato-CID: '
_OK_JSON_LENGTH = f'\r\nContent-Type: {JSON}\r\nContent-Length: '.encode('latin-1')
_END_KEEP_ALIVE = b'\r\n\r\n'
_END_CLOSE = b'\r\nConnection: close\r\n\r\n'


def ok_json(cid: str, data: bytes, keep_alive: bool) -> bytes:
    """``serialize_response(200, [('X-Zato-CID', cid), ('Content-Type', JSON)], data, keep_alive)``."""
    return b''.join((_OK_JSON_HEAD, cid.encode('ascii'), _OK_JSON_LENGTH, str(len(data)).encode('ascii'),
                     _END_KEEP_ALIVE if keep_alive else _END_CLOSE, data))


def error_body(cid: str, details: Any, code: str, body: dict[str, Any] | None = None) -> bytes:
    """The one error envelope: 3.1's `result`, `cid` and `details`, and the error's stable `code`;
    or, for an error that brings its own (3.1's SSO envelope), that body with the `cid`."""
    if body is not None:
        return _dumps({'cid': cid, **body})
    return _dumps({'result': 'ZATO_ERROR', 'cid': cid, 'details': details, 'code': code})


class Dispatcher:
    """One per worker; reads the runtime's current router and config on every request."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.invoker: Invoker = runtime.invoker
        self.jsonrpc = JSONRPCGateway(runtime)

    def error(self, cid: str, status: int, details: Any, keep_alive: bool, head: bool = False,
              headers: dict[str, str] | None = None, code: str = '', own_body: dict[str, Any] | None = None) -> bytes:
        out = [('X-Zato-CID', cid), ('Content-Type', JSON)]
        if headers:
            out.extend(headers.items())
        body = error_body(cid, details, code or STATUS_CODES.get(status, 'error'), own_body)
        return serialize_response(status, out, body, keep_alive, head)

    def dispatch(self, req: Any, peer: str) -> bytes:
        cid = new_cid()
        keep_alive = req.keep_alive
        method = req.method
        head = method == 'HEAD'
        try:
            return self._dispatch(req, cid, method, keep_alive, head, peer)
        except Exception as e:  # noqa: BLE001 - every exception gets its answer, decided in one place
            failure = failure_of(e, cid)
            log_failure(logger, failure, e, f'{method} {req.path}', cid)
            return self.error(cid, failure.status, failure.details, keep_alive, head, failure.headers, failure.code,
                              failure.body)

    def _dispatch(self, req: Any, cid: str, method: str, keep_alive: bool, head: bool, peer: str) -> bytes:
        runtime = self.runtime
        path = req.path
        if '%' in path:
            try:
                path = unquote(path, errors='strict')
            except UnicodeDecodeError:
                return self.error(cid, 400, 'Invalid percent-encoding in URL path', keep_alive, head)

        matched = runtime.router.route(method, path)
        if matched is None:
            allowed = runtime.router.allowed(path)
            if not allowed:
                return self.error(cid, 404, f'URL not found `{path}`', keep_alive, head)
            return self.error(cid, 405, f'Method {method} not allowed', keep_alive, head, {'Allow': ', '.join(allowed)})
        chan, path_params = matched
        if not chan.is_active:
            return self.error(cid, 404, f'URL not found `{path}`', keep_alive, head)

        # The channel's guards, built at config load: none at all for an open channel without limits
        guards = chan.guards
        if guards.steps:  # an open channel without limits has none and pays nothing
            try:
                channel_info = guards.run(peer, req.headers, runtime.trusted_proxies)
            except ClientError as e:
                if chan.jsonrpc is not None:
                    return self.jsonrpc.refused(e, cid, keep_alive, head)
                raise
        else:
            channel_info = chan.info

        if chan.jsonrpc is not None:
            return self.jsonrpc.dispatch(req, cid, chan, channel_info, path, path_params, peer, keep_alive, head)

        cls = runtime.store.get(chan.service_name)

        body = req.body
        payload: Any = None
        if body:
            if chan.data_format == 'json':
                try:
                    payload = _loads(body)
                except orjson.JSONDecodeError as e:
                    return self.error(cid, 400, f'Invalid JSON in request body: {e}', keep_alive, head)
            else:
                payload = body

        params: dict[str, Any]
        if chan.merge_url_params_req:
            query = req.query
            if query:
                http_info = HTTPInfo(method, path, query, req.headers, path_params, body, peer)
                if chan.url_params_pri == 'qs-over-path':
                    params = {**path_params, **http_info.GET}
                else:
                    params = {**http_info.GET, **path_params}
            else:
                http_info = HTTPInfo(method, path, query, req.headers, path_params, body, peer)
                params = path_params
        else:
            http_info = HTTPInfo(method, path, req.query, req.headers, path_params, body, peer)
            params = {}

        request = Request(payload, body, http_info, params, chan.msg_over_params)

        # Response caching: looked up only now, after the guards (docs/cache.md)
        cache_key = None
        if chan.cache_id is not None and method == 'GET':
            cache_key = response_cache.response_key(chan, method, path, req.query, channel_info,
                                                    response_cache.request_hash(cls, cid, channel_info, request,
                                                                                self.invoker.host))
            hit = response_cache.cached(runtime.caches, chan.cache_id, cache_key)
            if hit is not None:
                return serialize_response(hit[0], [('X-Zato-CID', cid), *hit[1]], hit[2], keep_alive, head)

        svc = self.invoker.run(cls, cid, channel_info, request, method)
        response = svc.response
        out = self.invoker.output_of(svc)

        content_type = response.content_type
        if isinstance(out, (dict, list)):
            data = _dumps(out, option=_OPT_NON_STR_KEYS)
            if content_type is None and response.status_code == 200 and not response.headers and not head \
                    and cache_key is None:
                return ok_json(cid, data, keep_alive)
            content_type = content_type or JSON
        elif isinstance(out, bytes):
            data = out
        elif isinstance(out, str):
            data = out.encode('utf-8')
            if content_type is None:
                content_type = JSON if chan.data_format == 'json' and out else TEXT
        elif out is None:
            data = b''
        else:
            data = _dumps(out, option=_OPT_NON_STR_KEYS)
            content_type = content_type or JSON

        headers = [('Content-Type', content_type or TEXT)]
        if response.headers:
            headers.extend(response.headers.items())
        if cache_key is not None:
            response_cache.keep(runtime.caches, chan, cache_key, response.status_code, headers, data)
        return serialize_response(response.status_code, [('X-Zato-CID', cid), *headers], data, keep_alive, head)
