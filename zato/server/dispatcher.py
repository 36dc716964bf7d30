"""From a parsed HTTP request to response bytes: routing, security, body decoding, the service,
and the one place where exceptions become responses."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import orjson

from zato import accel
from zato.errors import ClientError, Forbidden, ServiceNotFound, TooManyRequests
from zato.server.client_address import client_address
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


def error_body(cid: str, details: Any) -> bytes:
    return _dumps({'result': 'ZATO_ERROR', 'cid': cid, 'details': details})


class Dispatcher:
    """One per worker; reads the runtime's current router and config on every request."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.invoker: Invoker = runtime.invoker
        self.jsonrpc = JSONRPCGateway(runtime)

    def error(self, cid: str, status: int, details: Any, keep_alive: bool, head: bool = False,
              headers: dict[str, str] | None = None) -> bytes:
        out = [('X-Zato-CID', cid), ('Content-Type', JSON)]
        if headers:
            out.extend(headers.items())
        return serialize_response(status, out, error_body(cid, details), keep_alive, head)

    def dispatch(self, req: Any, peer: str) -> bytes:
        cid = new_cid()
        keep_alive = req.keep_alive
        method = req.method
        head = method == 'HEAD'
        try:
            return self._dispatch(req, cid, method, keep_alive, head, peer)
        except ClientError as e:
            return self.error(cid, e.status, e.details, keep_alive, head, e.headers)
        except ServiceNotFound as e:
            logger.warning('%s, cid `%s`', e, cid)
            return self.error(cid, 404, str(e), keep_alive, head)
        except Exception:
            logger.exception('Error while handling %s %s, cid `%s`', method, req.path, cid)
            return self.error(cid, 500, f'Internal server error; the server log has the details under cid {cid}',
                              keep_alive, head)

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

        channel_info = chan.info
        client = ''
        limits = runtime.limits
        # A try block costs nothing in 3.11 until something raises: only a refusal pays for it
        try:
            if not chan.is_internal and limits.allow_list_channels is not None and \
                    (limits.default_allow_list or chan.id in limits.allow_list_channels):
                client = client_address(peer, req.headers.get('x-forwarded-for'), runtime.trusted_proxies)
                if not limits.address_allowed(chan.id, client):
                    raise Forbidden(headers={'Cache-Control': 'no-store'})
            sec_id = chan.security_id
            if sec_id is not None:
                sec_info = runtime.authenticator.authenticate(runtime.security.get(sec_id), req.headers)
                # One ChannelInfo per (channel, caller), built once: not an allocation per request
                by_caller = chan.info_by_caller
                known = by_caller.get(sec_info)
                if known is None:
                    if len(by_caller) > 1000:
                        by_caller.clear()
                    info = chan.info
                    known = by_caller[sec_info] = type(info)(info.id, info.name, info.type, info.data_format,
                                                             info.is_internal, sec_info)
                channel_info = known

            if not chan.is_internal:
                levels = limits.levels(chan.id, sec_id, chan.service_name)
                if levels:
                    if not client:
                        proxies = runtime.trusted_proxies
                        client = client_address(peer, req.headers.get('x-forwarded-for'), proxies) if proxies else peer
                    decision = limits.limiter.check(levels, client)
                    if not decision.allowed:
                        error = TooManyRequests if decision.status == 429 else Forbidden
                        raise error(headers=decision.headers)
        except ClientError as e:
            if chan.jsonrpc is not None:
                return self.jsonrpc.refused(e, cid, keep_alive, head)
            raise

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
                http_info = HTTPInfo(method, path, query, req.headers, path_params, body)
                if chan.url_params_pri == 'qs-over-path':
                    params = {**path_params, **http_info.GET}
                else:
                    params = {**http_info.GET, **path_params}
            else:
                http_info = HTTPInfo(method, path, query, req.headers, path_params, body)
                params = path_params
        else:
            http_info = HTTPInfo(method, path, req.query, req.headers, path_params, body)
            params = {}

        request = Request(payload, body, http_info, params, chan.msg_over_params)
        svc = self.invoker.run(cls, cid, channel_info, request, method)
        response = svc.response
        out = self.invoker.output_of(svc)

        content_type = response.content_type
        if isinstance(out, (dict, list)):
            data = _dumps(out, option=_OPT_NON_STR_KEYS)
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

        headers = [('X-Zato-CID', cid), ('Content-Type', content_type or TEXT)]
        if response.headers:
            headers.extend(response.headers.items())
        return serialize_response(response.status_code, headers, data, keep_alive, head)
