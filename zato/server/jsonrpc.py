"""The JSON-RPC 2.0 gateway: what a JSON-RPC channel does once the dispatcher has routed,
authenticated and rate-limited the HTTP request. The protocol itself is zato.proto.jsonrpc.

Each call runs its whitelisted service through the Invoker, on its own: one failing call never
affects the others of a batch. Every JSON-RPC answer is HTTP 200 (errors included), except that a
refused caller keeps 401, 403 or 429 with a JSON-RPC error body, and a request that needs no answer
(notifications only) gets 204 with no body.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from fastjsonschema import JsonSchemaValueException

from zato import accel
from zato.errors import BadRequest, ClientError, Forbidden, ServiceNotFound, TooManyRequests, Unauthorized
from zato.proto import jsonrpc as rpc
from zato.server.channels import JSONRPC_PREFIX as NAME_PREFIX
from zato.server.client_address import client_address
from zato.service.invoker import new_cid
from zato.service.reqresp import HTTPInfo, Request

if TYPE_CHECKING:
    from zato.server.channels import ChannelConfig
    from zato.server.runtime import Runtime
    from zato.service.base import Service
    from zato.service.channel import ChannelInfo

logger = logging.getLogger('zato.jsonrpc')

serialize_response = accel.load('zato.proto.http1').serialize_response

GATEWAY_SERVICE = 'pub.zato.channel.json-rpc.gateway'
JSON = 'application/json'

# A refused caller: the JSON-RPC code that goes with the HTTP status the dispatcher chose
_REFUSALS: dict[type[ClientError], int] = {
    Unauthorized: rpc.UNAUTHORIZED,
    Forbidden: rpc.FORBIDDEN,
    TooManyRequests: rpc.RATE_LIMITED,
}
_DECISION_CODES = {429: rpc.RATE_LIMITED, 403: rpc.FORBIDDEN}

_parse = rpc.parse
_encode_result = rpc.encode_result
_encode_error = rpc.encode_error
_encode_many = rpc.encode_many
_Invalid = rpc.Invalid


def user_name(row_name: str) -> str:
    """A channel's name as users know it (3.1 stored it with a prefix among the REST channels)."""
    return row_name[len(NAME_PREFIX):] if row_name.startswith(NAME_PREFIX) else row_name


class JSONRPCGateway:
    """One per worker, next to the Dispatcher."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.invoker = runtime.invoker

    def refused(self, e: ClientError, cid: str, keep_alive: bool, head: bool) -> bytes:
        """Authentication, the allow-list or a rate limit said no: their HTTP status, a JSON-RPC body.
        The body has not been read yet, so the id is null."""
        code = _REFUSALS.get(type(e), rpc.SERVER_ERROR)
        headers = [('X-Zato-CID', cid), ('Content-Type', JSON)]
        if e.headers:
            headers.extend(e.headers.items())
        return serialize_response(e.status, headers, _encode_error(None, code, cid), keep_alive, head)

    def dispatch(self, req: Any, cid: str, chan: ChannelConfig, channel_info: ChannelInfo, path: str,
                 path_params: dict[str, str], peer: str, keep_alive: bool, head: bool) -> bytes:
        body = req.body
        parsed = _parse(body)
        items = parsed.items
        is_batch = parsed.is_batch
        http_info = HTTPInfo(req.method, path, req.query, req.headers, path_params, body)
        status = 200
        extra: dict[str, str] | None = None
        parts = []
        for item in items:
            if isinstance(item, _Invalid):
                parts.append(_encode_error(item.id, item.code, cid, details=item.details))
                continue
            call_cid = new_cid() if is_batch else cid
            part, decision = self._call(item, call_cid, chan, channel_info, http_info, body, req, peer)
            if part is not None:
                parts.append(part)
            if decision is not None and not is_batch:
                status, extra = decision.status, decision.headers
        out = _encode_many(parts, is_batch)
        headers = [('X-Zato-CID', cid)]
        if out is None:
            return serialize_response(204, headers, b'', keep_alive, head)
        headers.append(('Content-Type', JSON))
        if extra:
            headers.extend(extra.items())
        return serialize_response(status, headers, out, keep_alive, head)

    def _call(self, call: rpc.Call, cid: str, chan: ChannelConfig, channel_info: ChannelInfo, http_info: HTTPInfo,
              body: bytes, req: Any, peer: str) -> tuple[bytes | None, Any]:
        """One call: its encoded response (None for a notification) and a rate-limit refusal, if any."""
        method = call.method
        id = call.id
        runtime = self.runtime
        # Not deployed and not whitelisted are answered alike: a caller cannot list what exists
        if method not in chan.jsonrpc:  # type: ignore[operator]
            return _encode_error(id, rpc.METHOD_NOT_FOUND, cid) if not call.is_notification else None, None
        try:
            cls = runtime.store.get(method)
        except ServiceNotFound:
            return _encode_error(id, rpc.METHOD_NOT_FOUND, cid) if not call.is_notification else None, None

        # The service's own rate limit applies per call, as it would behind a REST channel
        limits = runtime.limits
        limit = limits.by_service.get(method)
        if limit is not None:
            proxies = runtime.trusted_proxies
            client = client_address(peer, req.headers.get('x-forwarded-for'), proxies) if proxies else peer
            decision = limits.limiter.check([limit], client)
            if not decision.allowed:
                code = _DECISION_CODES.get(decision.status, rpc.FORBIDDEN)
                return (_encode_error(id, code, cid) if not call.is_notification else None), decision

        try:
            svc = self.invoker.run(cls, cid, channel_info, Request(call.params, body, http_info), 'POST')
            result = self._result_of(svc)
        except BadRequest as e:
            if call.is_notification:
                return None, None
            if isinstance(e.__context__, JsonSchemaValueException):
                # The invoker's details: 3.1's object, with what failed where only if the service says so
                details = e.details.get('message') if isinstance(e.details, dict) else e.details
                return _encode_error(id, rpc.INVALID_REQUEST, cid, details=details), None
            return _encode_error(id, rpc.INVALID_PARAMS, cid, details=_details(e)), None
        except ClientError as e:
            if call.is_notification:
                return None, None
            code = _REFUSALS.get(type(e), rpc.SERVER_ERROR)
            return _encode_error(id, code, cid, details=_details(e)), None
        except ServiceNotFound:
            return _encode_error(id, rpc.METHOD_NOT_FOUND, cid) if not call.is_notification else None, None
        except Exception:
            logger.exception('JSON-RPC call of `%s` failed on channel `%s`, cid `%s`', method, chan.name, cid)
            return _encode_error(id, rpc.INTERNAL_ERROR, cid) if not call.is_notification else None, None

        if call.is_notification:
            return None, None
        try:
            return _encode_result(id, result), None
        except TypeError:
            logger.exception('JSON-RPC result of `%s` is not JSON on channel `%s`, cid `%s`', method, chan.name, cid)
            return _encode_error(id, rpc.INTERNAL_ERROR, cid), None

    def _result_of(self, svc: Service) -> Any:
        """The service's output as a JSON-RPC result: SimpleIO without its response_elem wrapper
        (3.1's skip_response_elem), text as a string, no payload as null."""
        out = self.invoker.output_of(svc)
        if svc.response.has_sio_payload:
            elem = type(svc)._sio.response_elem  # type: ignore[union-attr]
            if elem and type(out) is dict and len(out) == 1 and elem in out:
                out = out[elem]
        elif type(out) is bytes:
            out = out.decode('utf-8')
        elif type(out) is str and not out:
            out = None
        return out


def _details(e: ClientError) -> Any:
    details = e.details
    return details if isinstance(details, (str, int, float, bool, list, dict)) else str(details)
