"""Outgoing JSON-RPC 2.0 connections: ``self.out.jsonrpc['name'].conn.invoke(method, params)``.

A JSON-RPC connection is a REST connection whose every call is a JSON-RPC 2.0 request POSTed to
its address: the same fields (address, timeout, pool, Basic Auth or API key, TLS), JSON always.
A response's ``result`` is returned; an ``error`` object is raised as JSONRPCError with its code,
message and data, so a caller never mistakes an error for a result.
"""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

from zato.connectors.base import ConnectorError, ConnectorUnavailable, Field
from zato.connectors.rest import REST_FIELDS, RESTConnector

JSONRPC_FIELDS: tuple[Field, ...] = tuple(field for field in REST_FIELDS if field.name != 'data_format')


class JSONRPCError(Exception):
    """The remote end answered with a JSON-RPC error object."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f'JSON-RPC error {code}: {message}')
        self.code = code
        self.message = message
        self.data = data


class JSONRPCConnector(RESTConnector):
    """`conn` is the connector: invoke, notify and batch."""

    kind: ClassVar[str] = 'jsonrpc'
    aliases: ClassVar[tuple[str, ...]] = ()
    fields: ClassVar[tuple[Field, ...]] = JSONRPC_FIELDS

    def __init__(self, name: str, config: dict[str, Any], secret: str = '', hooks: Any = None) -> None:
        super().__init__(name, {**config, 'data_format': 'json'}, secret, hooks)
        self._ids = itertools.count(1)

    def invoke(self, method: str, params: dict[str, Any] | list[Any] | None = None, *, cid: str = '') -> Any:
        """Calls `method` and returns its result; JSONRPCError for an error object, ConnectorError
        subclasses when no valid JSON-RPC response came."""
        request_id = next(self._ids)
        response = self._post(cid, self._request(method, params, request_id))
        if isinstance(response, dict) and response.get('error') is not None and response.get('id') is None:
            # An error the server met before it could read our id: authentication, rate limit, parse error
            return self._result(response)
        if not isinstance(response, dict) or response.get('id') != request_id:
            raise self.error(ConnectorUnavailable, f'not a JSON-RPC response to request {request_id}: '
                                                   f'{str(response)[:200]}')
        return self._result(response)

    def notify(self, method: str, params: dict[str, Any] | list[Any] | None = None, *, cid: str = '') -> None:
        """Sends a notification: the remote end runs it and answers nothing."""
        self._post(cid, self._request(method, params, None), expect_body=False)

    def batch(self, calls: list[tuple[str, dict[str, Any] | list[Any] | None]], *, cid: str = '') -> list[Any]:
        """Calls several methods in one request; returns, in the order of `calls`, each result, or the
        JSONRPCError of a call that failed (returned, not raised, so one failure loses no other result)."""
        ids = [next(self._ids) for _ in calls]
        body = [self._request(method, params, request_id)
                for (method, params), request_id in zip(calls, ids, strict=True)]
        response = self._post(cid, body)
        if not isinstance(response, list):
            raise self.error(ConnectorUnavailable, f'not a JSON-RPC batch response: {str(response)[:200]}')
        by_id = {item.get('id'): item for item in response if isinstance(item, dict)}
        out: list[Any] = []
        for request_id in ids:
            item = by_id.get(request_id)
            if item is None:
                out.append(self.error(ConnectorUnavailable, f'no response to call {request_id} of the batch'))
                continue
            try:
                out.append(self._result(item))
            except JSONRPCError as e:
                out.append(e)
        return out

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _request(method: str, params: Any, request_id: int | None) -> dict[str, Any]:
        if not isinstance(method, str) or not method:
            raise ValueError('method must be a non-empty string')
        if params is not None and not isinstance(params, (dict, list)):
            raise TypeError(f'params must be a dict, a list or None, not {type(params).__name__}')
        request: dict[str, Any] = {'jsonrpc': '2.0', 'method': method}
        if params is not None:
            request['params'] = params
        if request_id is not None:
            request['id'] = request_id
        return request

    def _post(self, cid: str, body: Any, expect_body: bool = True) -> Any:
        response = self.post(cid or '-', body)
        if not expect_body:
            if response.status_code >= 400:
                raise self.error(ConnectorError, f'HTTP {response.status_code} for a notification')
            return None
        if response.data is None:
            raise self.error(ConnectorUnavailable, f'HTTP {response.status_code} without a JSON-RPC body')
        return response.data

    @staticmethod
    def _result(response: dict[str, Any]) -> Any:
        error = response.get('error')
        if error is not None:
            if not isinstance(error, dict):
                raise JSONRPCError(-32603, f'malformed error object: {str(error)[:200]}')
            raise JSONRPCError(int(error.get('code', -32603)), str(error.get('message', '')), error.get('data'))
        return response.get('result')
