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
from zato.errors import OURS, BadRequest, ClientError, Inactive, ServiceNotFound, failure_of, log_failure
from zato.proto import jsonrpc as rpc
from zato.server.channels import JSONRPC_PREFIX as NAME_PREFIX
from zato.server.guards import Caller
from zato.service.invoker import new_cid
from zato.service.reqresp import HTTPInfo, Request

if TYPE_CHECKING:
    from zato.server.channels import ChannelConfig
    from zato.server.runtime import Runtime
    from zato.service.base import Service
    from zato.config.channel import ChannelInfo

logger = logging.getLogger('zato.jsonrpc')

serialize_response = accel.load('zato.proto.http1').serialize_response

GATEWAY_SERVICE = 'pub.zato.channel.json-rpc.gateway'
JSON = 'application/json'

# The JSON-RPC code of an HTTP status zato.errors.failure_of chose; any other client error is SERVER_ERROR
_CODES: dict[int, int] = {
    401: rpc.UNAUTHORIZED, 403: rpc.FORBIDDEN, 429: rpc.RATE_LIMITED, 500: rpc.INTERNAL_ERROR,
    502: rpc.BAD_GATEWAY, 503: rpc.UNAVAILABLE, 504: rpc.GATEWAY_TIMEOUT,
}

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
        code = _CODES.get(e.status, rpc.SERVER_ERROR)
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
        caller = Caller(peer, req.headers, self.runtime.trusted_proxies)
        status = 200
        extra: dict[str, str] | None = None
        parts = []
        for item in items:
            if isinstance(item, _Invalid):
                parts.append(_encode_error(item.id, item.code, cid, details=item.details))
                continue
            call_cid = new_cid() if is_batch else cid
            part, refusal = self._call(item, call_cid, chan, channel_info, http_info, body, caller)
            if part is not None:
                parts.append(part)
            if refusal is not None and not is_batch:
                status, extra = refusal.status, refusal.headers
        out = _encode_many(parts, is_batch)
        headers = [('X-Zato-CID', cid)]
        if out is None:
            return serialize_response(204, headers, b'', keep_alive, head)
        headers.append(('Content-Type', JSON))
        if extra:
            headers.extend(extra.items())
        return serialize_response(status, headers, out, keep_alive, head)

    def _call(self, call: rpc.Call, cid: str, chan: ChannelConfig, channel_info: ChannelInfo, http_info: HTTPInfo,
              body: bytes, caller: Caller) -> tuple[bytes | None, ClientError | None]:
        """One call: its encoded response (None for a notification) and a rate-limit refusal, if any."""
        method = call.method
        id = call.id
        runtime = self.runtime
        # Not deployed and not whitelisted are answered alike: a caller cannot list what exists
        if method not in chan.jsonrpc:  # type: ignore[operator]
            return _encode_error(id, rpc.METHOD_NOT_FOUND, cid) if not call.is_notification else None, None
        try:
            cls = runtime.store.get(method)
        except (ServiceNotFound, Inactive):  # an inactive service is not there for its channels
            return _encode_error(id, rpc.METHOD_NOT_FOUND, cid) if not call.is_notification else None, None

        # The service's own rate limit applies per call, as it would behind a REST channel: the same
        # guard, built with the channels' (zato.server.guards)
        service_guard = runtime.service_guards.get(method)
        if service_guard is not None:
            try:
                service_guard(caller)
            except ClientError as e:
                code = _CODES.get(e.status, rpc.FORBIDDEN)
                return (_encode_error(id, code, cid) if not call.is_notification else None), e

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
            return _encode_error(id, rpc.INVALID_PARAMS, cid, details=_details(e.details)), None
        except ServiceNotFound:
            return _encode_error(id, rpc.METHOD_NOT_FOUND, cid) if not call.is_notification else None, None
        except Exception as e:  # noqa: BLE001 - every exception gets its answer, decided in one place
            failure = failure_of(e, cid)
            log_failure(logger, failure, e, f'JSON-RPC call of `{method}` on channel `{chan.name}`', cid)
            if call.is_notification:
                return None, None
            code = _CODES.get(failure.status, rpc.SERVER_ERROR)
            # Our own bug's details stay in the log; a client's mistake or a remote's failure is explained
            details = None if failure.cause == OURS else _details(failure.details)
            return _encode_error(id, code, cid, details=details), None

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


def _details(details: Any) -> Any:
    return details if isinstance(details, (str, int, float, bool, list, dict)) else str(details)
