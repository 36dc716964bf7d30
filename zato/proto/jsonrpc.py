"""Sans-IO JSON-RPC 2.0 (https://www.jsonrpc.org/specification): a request body in, calls out;
results and errors in, a response body out. Nothing here does I/O or knows about the server.

The rules, in prose (each one has a named test in tests/proto/test_jsonrpc.py):

* The body is strict JSON (orjson: no NaN or Infinity, valid UTF-8); anything else is a parse error
  (-32700) with a null id, answered even though no id could be read.
* A body that is an object is one call; an array is a batch. An empty array, or any other JSON value
  at the top, is a single Invalid Request error (-32600), never an array.
* A call is an object with ``"jsonrpc": "2.0"`` exactly, a string ``method`` and optionally
  ``params`` and ``id``. Members the specification does not name are ignored.
* ``id`` is a string, a number or null (never true or false); a call without ``id`` is a
  notification, a call with ``"id": null`` is not.
* An element that breaks a rule is answered with Invalid Request even without an ``id`` (it is not a
  valid notification, so the rule that notifications get no answer does not cover it). Its id is
  echoed when it had a valid one, else null.
* ``params``, when present, is an object or an array; anything else is Invalid params (-32602).
* A well-formed notification is never answered, whatever happens when it runs; if every element of a
  request needs no answer, the response has no body at all (``encode_many`` returns None).
* Responses keep the order of the calls. Each response is encoded on its own, so a result that cannot
  be encoded spoils only its own call.
* A batch holds at most ``max_batch`` elements; a longer one is a single Invalid Request error.
"""

from __future__ import annotations

from typing import Any

import orjson

VERSION = '2.0'

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000
# Zato's own codes in the range the specification leaves to servers (-32429 and -32403 as in 3.1)
UNAUTHORIZED = -32001
FORBIDDEN = -32403
RATE_LIMITED = -32429
# A remote end a service uses failed: as the HTTP status would say (502, 503, 504)
BAD_GATEWAY = -32502
UNAVAILABLE = -32503
GATEWAY_TIMEOUT = -32504

MESSAGES: dict[int, str] = {
    PARSE_ERROR: 'Parse error',
    INVALID_REQUEST: 'Invalid Request',
    METHOD_NOT_FOUND: 'Method not found',
    INVALID_PARAMS: 'Invalid params',
    INTERNAL_ERROR: 'Internal error',
    SERVER_ERROR: 'Server error',
    UNAUTHORIZED: 'Unauthorized',
    FORBIDDEN: 'Forbidden',
    RATE_LIMITED: 'Rate limit reached',
    BAD_GATEWAY: 'Bad gateway',
    UNAVAILABLE: 'Service unavailable',
    GATEWAY_TIMEOUT: 'Gateway timeout',
}

MAX_BATCH = 1000

_loads = orjson.loads
_dumps = orjson.dumps
_JSONDecodeError = orjson.JSONDecodeError
_OPT = orjson.OPT_NON_STR_KEYS
_ID_TYPES = (str, int, float, type(None))
_PARAMS_TYPES = (dict, list)
_NO_ID = object()


class Call:
    """One well-formed call: ``method``, ``params`` (a dict, a list or None when absent) and ``id``
    (``is_notification`` when the call had none, and then ``id`` is None)."""

    __slots__ = ('method', 'params', 'id', 'is_notification')

    def __init__(self, method: str, params: Any, id: Any, is_notification: bool) -> None:
        self.method = method
        self.params = params
        self.id = id
        self.is_notification = is_notification

    def __repr__(self) -> str:
        return f'Call({self.method!r}, params={self.params!r}, id={self.id!r}, notification={self.is_notification})'


class Invalid:
    """An element that breaks the rules: answered with ``code`` and ``details``, with ``id`` (or null)."""

    __slots__ = ('id', 'code', 'details')

    # Always answered, see the module docstring
    is_notification = False

    def __init__(self, id: Any, code: int, details: str) -> None:
        self.id = id
        self.code = code
        self.details = details

    def __repr__(self) -> str:
        return f'Invalid(id={self.id!r}, code={self.code}, details={self.details!r})'


class Parsed:
    """What a body holds: ``items`` (Call or Invalid, in order) and whether it was a batch."""

    __slots__ = ('items', 'is_batch')

    def __init__(self, items: list[Call | Invalid], is_batch: bool) -> None:
        self.items = items
        self.is_batch = is_batch


def _valid_id(value: Any) -> bool:
    # bool is an int to Python but not a number to JSON-RPC
    return isinstance(value, _ID_TYPES) and value is not True and value is not False


def parse_item(item: Any) -> Call | Invalid:
    """One element of a batch (or the whole body) as a Call, or as Invalid saying why."""
    if type(item) is not dict:
        return Invalid(None, INVALID_REQUEST, 'A request must be a JSON object')
    id = item.get('id', _NO_ID)
    is_notification = id is _NO_ID
    if is_notification:
        id = None
    elif not _valid_id(id):
        return Invalid(None, INVALID_REQUEST, '`id` must be a string, a number or null')
    if item.get('jsonrpc') != VERSION:
        return Invalid(id, INVALID_REQUEST, '`jsonrpc` must be "2.0"')
    method = item.get('method')
    if type(method) is not str:
        return Invalid(id, INVALID_REQUEST, '`method` must be a string')
    params = item.get('params', _NO_ID)
    if params is _NO_ID:
        params = None
    elif not isinstance(params, _PARAMS_TYPES):
        return Invalid(id, INVALID_PARAMS, '`params` must be an object or an array')
    return Call(method, params, id, is_notification)


def parse(body: bytes | bytearray | memoryview | str, max_batch: int = MAX_BATCH) -> Parsed:
    """Turns a request body into calls; never raises for any input."""
    try:
        data = _loads(body)
    except _JSONDecodeError as e:
        return Parsed([Invalid(None, PARSE_ERROR, f'Invalid JSON: {e}')], False)
    if type(data) is dict:
        return Parsed([parse_item(data)], False)
    if type(data) is list:
        if not data:
            return Parsed([Invalid(None, INVALID_REQUEST, 'An empty batch')], False)
        if len(data) > max_batch:
            return Parsed([Invalid(None, INVALID_REQUEST, f'A batch holds at most {max_batch} requests')], False)
        return Parsed([parse_item(item) for item in data], True)
    return Parsed([Invalid(None, INVALID_REQUEST, 'A request must be a JSON object or array')], False)


def error_object(id: Any, code: int, cid: str, message: str | None = None, details: Any = None) -> dict[str, Any]:
    """An error response as a dict (3.1's shape: data.ctx.cid), with optional data.details."""
    data: dict[str, Any] = {'ctx': {'cid': cid}}
    if details is not None:
        data['details'] = details
    return {'jsonrpc': VERSION, 'id': id,
            'error': {'code': code, 'message': message or MESSAGES.get(code, 'Server error'), 'data': data}}


def encode_error(id: Any, code: int, cid: str, message: str | None = None, details: Any = None) -> bytes:
    """An error response as bytes; ``details`` must be JSON-encodable (a string, usually)."""
    return _dumps(error_object(id, code, cid, message, details), option=_OPT)


def encode_result(id: Any, result: Any) -> bytes:
    """A success response as bytes; raises TypeError (orjson.JSONEncodeError) if ``result`` cannot
    be encoded as JSON, so that the caller can answer with an error instead."""
    return _dumps({'jsonrpc': VERSION, 'id': id, 'result': result}, option=_OPT)


def encode_many(parts: list[bytes], is_batch: bool) -> bytes | None:
    """The response body from encoded responses: None when there is nothing to answer, one object
    for a single call, an array for a batch."""
    if not parts:
        return None
    if is_batch:
        return b'[' + b','.join(parts) + b']'
    return parts[0]
