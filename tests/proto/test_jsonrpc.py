"""The sans-IO JSON-RPC 2.0 core (zato/proto/jsonrpc.py): bytes in, calls out; responses in, bytes out.
jsonrpcclient (an independent implementation) builds requests and reads our responses."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zato.proto import jsonrpc as rpc

ROOT = Path(__file__).resolve().parents[2]
CID = 'c' * 24


def one(body: bytes) -> rpc.Call | rpc.Invalid:
    parsed = rpc.parse(body)
    assert not parsed.is_batch and len(parsed.items) == 1
    return parsed.items[0]


def dumps(value) -> bytes:
    return orjson.dumps(value)


# The module itself


def test_the_module_imports_no_io_modules_and_nothing_of_the_server():
    tree = ast.parse((ROOT / 'zato/proto/jsonrpc.py').read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    tops = {name.split('.')[0] for name in imported}
    assert tops.isdisjoint({'socket', 'ssl', 'gevent', 'select', 'time', 'asyncio'}), imported
    assert not any(name.startswith(('zato.server', 'zato.service')) for name in imported), imported


def test_the_codes_have_their_specification_and_3_1_values():
    assert (rpc.PARSE_ERROR, rpc.INVALID_REQUEST, rpc.METHOD_NOT_FOUND, rpc.INVALID_PARAMS, rpc.INTERNAL_ERROR) == \
        (-32700, -32600, -32601, -32602, -32603)
    assert (rpc.SERVER_ERROR, rpc.FORBIDDEN, rpc.RATE_LIMITED, rpc.UNAUTHORIZED) == (-32000, -32403, -32429, -32001)


# Parsing: single calls


def test_a_single_call_is_parsed_with_its_method_params_and_id():
    call = one(b'{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}')
    assert isinstance(call, rpc.Call)
    assert (call.method, call.params, call.id, call.is_notification) == ('subtract', [42, 23], 1, False)


def test_named_params_are_an_object():
    call = one(b'{"jsonrpc": "2.0", "method": "m", "params": {"a": 1}, "id": "x"}')
    assert isinstance(call, rpc.Call) and call.params == {'a': 1} and call.id == 'x'


def test_params_may_be_omitted_and_are_then_none():
    call = one(b'{"jsonrpc": "2.0", "method": "m", "id": 7}')
    assert isinstance(call, rpc.Call) and call.params is None


@pytest.mark.parametrize('id', ['abc', '', 0, -5, 2**64 - 1, -2**63, 1.5, None])
def test_an_id_that_is_a_string_a_number_or_null_is_kept_as_sent(id):
    call = one(dumps({'jsonrpc': '2.0', 'method': 'm', 'id': id}))
    assert isinstance(call, rpc.Call) and call.id == id and type(call.id) is type(id)
    assert call.is_notification is False


def test_an_integer_id_beyond_64_bits_is_read_as_the_nearest_float_and_stays_a_number():
    call = one(b'{"jsonrpc": "2.0", "method": "m", "id": 1180591620717411303424}')
    assert isinstance(call, rpc.Call) and call.id == float(2**70)
    assert orjson.loads(rpc.encode_result(call.id, 1))['id'] == float(2**70)


def test_a_call_without_an_id_is_a_notification_but_one_with_a_null_id_is_not():
    note = one(b'{"jsonrpc": "2.0", "method": "m"}')
    with_null = one(b'{"jsonrpc": "2.0", "method": "m", "id": null}')
    assert isinstance(note, rpc.Call) and note.is_notification and note.id is None
    assert isinstance(with_null, rpc.Call) and not with_null.is_notification


@pytest.mark.parametrize('id', [True, False, [1], {'a': 1}])
def test_an_id_of_another_type_is_an_invalid_request_answered_with_a_null_id(id):
    item = one(dumps({'jsonrpc': '2.0', 'method': 'm', 'id': id}))
    assert isinstance(item, rpc.Invalid) and item.code == rpc.INVALID_REQUEST and item.id is None
    assert '`id`' in item.details


@pytest.mark.parametrize('version', ['1.0', '2', 2.0, 2, None, '2.0 ', ['2.0']])
def test_any_version_but_the_string_2_0_is_an_invalid_request_that_echoes_the_id(version):
    item = one(dumps({'jsonrpc': version, 'method': 'm', 'id': 9}))
    assert isinstance(item, rpc.Invalid) and item.code == rpc.INVALID_REQUEST and item.id == 9
    assert '`jsonrpc`' in item.details


def test_a_missing_version_is_an_invalid_request():
    item = one(b'{"method": "m", "id": 1}')
    assert isinstance(item, rpc.Invalid) and item.code == rpc.INVALID_REQUEST and item.id == 1


@pytest.mark.parametrize('method', [1, None, ['m'], {'m': 1}, True])
def test_a_method_that_is_not_a_string_is_an_invalid_request(method):
    item = one(dumps({'jsonrpc': '2.0', 'method': method, 'id': 1}))
    assert isinstance(item, rpc.Invalid) and item.code == rpc.INVALID_REQUEST and '`method`' in item.details


def test_a_missing_method_is_an_invalid_request():
    item = one(b'{"jsonrpc": "2.0", "id": 1}')
    assert isinstance(item, rpc.Invalid) and item.code == rpc.INVALID_REQUEST


@pytest.mark.parametrize('params', ['bar', 1, 1.5, True, None])
def test_params_that_are_neither_an_object_nor_an_array_are_invalid_params(params):
    item = one(dumps({'jsonrpc': '2.0', 'method': 'm', 'params': params, 'id': 3}))
    assert isinstance(item, rpc.Invalid) and item.code == rpc.INVALID_PARAMS and item.id == 3


def test_an_invalid_element_without_an_id_is_still_answered():
    # Not a valid request, so not a valid notification either
    item = one(b'{"jsonrpc": "1.0", "method": "m"}')
    assert isinstance(item, rpc.Invalid) and item.is_notification is False and item.id is None


def test_members_the_specification_does_not_name_are_ignored():
    call = one(b'{"jsonrpc": "2.0", "method": "m", "id": 1, "extra": {"x": 1}}')
    assert isinstance(call, rpc.Call) and call.method == 'm'


def test_a_method_named_like_an_rpc_extension_is_parsed_and_left_to_the_whitelist():
    call = one(b'{"jsonrpc": "2.0", "method": "rpc.discover", "id": 1}')
    assert isinstance(call, rpc.Call) and call.method == 'rpc.discover'


# Parsing: bodies that are not JSON, or not a request


@pytest.mark.parametrize('body', [b'', b'{', b'{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]',
                                  b'[1, 2', b'\xff\xfe{}', b'{"a": "\xc3\x28"}', b'{"a": NaN}', b'[Infinity]',
                                  b'{"jsonrpc": "2.0", "method": "m", "id": 1} x'])
def test_a_body_that_is_not_strict_json_is_a_parse_error_with_a_null_id(body):
    item = one(body)
    assert isinstance(item, rpc.Invalid) and item.code == rpc.PARSE_ERROR and item.id is None


def test_an_empty_batch_is_one_invalid_request_error_not_an_array():
    parsed = rpc.parse(b'[]')
    assert not parsed.is_batch and len(parsed.items) == 1
    assert parsed.items[0].code == rpc.INVALID_REQUEST  # type: ignore[union-attr]


@pytest.mark.parametrize('body', [b'1', b'"x"', b'null', b'true', b'1.5'])
def test_a_body_that_is_neither_an_object_nor_an_array_is_one_invalid_request(body):
    item = one(body)
    assert isinstance(item, rpc.Invalid) and item.code == rpc.INVALID_REQUEST and item.id is None


def test_a_batch_of_non_objects_is_an_invalid_request_per_element():
    parsed = rpc.parse(b'[1, 2, 3]')
    assert parsed.is_batch and [(type(i), i.code, i.id) for i in parsed.items] == \
        [(rpc.Invalid, rpc.INVALID_REQUEST, None)] * 3  # type: ignore[union-attr]


def test_a_batch_keeps_the_order_and_mixes_calls_notifications_and_invalid_elements():
    body = dumps([{'jsonrpc': '2.0', 'method': 'sum', 'params': [1, 2, 4], 'id': '1'},
                  {'jsonrpc': '2.0', 'method': 'notify_hello', 'params': [7]},
                  {'jsonrpc': '2.0', 'method': 'subtract', 'params': [42, 23], 'id': '2'},
                  {'foo': 'boo'},
                  {'jsonrpc': '2.0', 'method': 'foo.get', 'params': {'name': 'myself'}, 'id': '5'},
                  {'jsonrpc': '2.0', 'method': 'get_data', 'id': '9'}])
    parsed = rpc.parse(body)
    assert parsed.is_batch
    kinds = [(type(i).__name__, i.id, i.is_notification) for i in parsed.items]
    assert kinds == [('Call', '1', False), ('Call', None, True), ('Call', '2', False), ('Invalid', None, False),
                     ('Call', '5', False), ('Call', '9', False)]


def test_a_batch_of_one_is_still_a_batch():
    parsed = rpc.parse(b'[{"jsonrpc": "2.0", "method": "m", "id": 1}]')
    assert parsed.is_batch and len(parsed.items) == 1


def test_a_batch_longer_than_the_cap_is_one_invalid_request():
    call = {'jsonrpc': '2.0', 'method': 'm', 'id': 1}
    assert rpc.parse(dumps([call] * 10), max_batch=10).is_batch
    parsed = rpc.parse(dumps([call] * 11), max_batch=10)
    assert not parsed.is_batch and parsed.items[0].code == rpc.INVALID_REQUEST  # type: ignore[union-attr]


def test_bytes_like_bodies_are_accepted():
    for body in (bytearray(b'{"jsonrpc": "2.0", "method": "m", "id": 1}'),
                 memoryview(b'{"jsonrpc": "2.0", "method": "m", "id": 1}')):
        assert isinstance(one(body), rpc.Call)


# Building responses


def test_a_result_has_the_version_the_id_and_the_result():
    assert orjson.loads(rpc.encode_result(1, {'a': [1, 2]})) == {'jsonrpc': '2.0', 'id': 1, 'result': {'a': [1, 2]}}
    assert orjson.loads(rpc.encode_result(None, None)) == {'jsonrpc': '2.0', 'id': None, 'result': None}


def test_an_error_has_3_1s_shape_with_the_cid_in_data_ctx():
    assert orjson.loads(rpc.encode_error('a', rpc.METHOD_NOT_FOUND, CID)) == {
        'jsonrpc': '2.0', 'id': 'a',
        'error': {'code': -32601, 'message': 'Method not found', 'data': {'ctx': {'cid': CID}}}}


def test_an_error_carries_details_only_when_given():
    out = orjson.loads(rpc.encode_error(1, rpc.INVALID_PARAMS, CID, details='Missing input `x`'))
    assert out['error']['data'] == {'ctx': {'cid': CID}, 'details': 'Missing input `x`'}
    assert out['error']['message'] == 'Invalid params'


@pytest.mark.parametrize('code, message', [(-32700, 'Parse error'), (-32600, 'Invalid Request'),
                                           (-32603, 'Internal error'), (-32429, 'Rate limit reached'),
                                           (-32001, 'Unauthorized'), (-32403, 'Forbidden')])
def test_each_code_has_its_standard_message(code, message):
    assert orjson.loads(rpc.encode_error(None, code, CID))['error']['message'] == message


def test_a_result_that_is_not_json_raises_type_error_for_the_caller_to_answer():
    with pytest.raises(TypeError):
        rpc.encode_result(1, object())


def test_non_string_keys_in_a_result_are_encoded_as_strings():
    assert orjson.loads(rpc.encode_result(1, {1: 'a'}))['result'] == {'1': 'a'}


def test_nothing_to_answer_is_none_and_not_an_empty_array():
    assert rpc.encode_many([], True) is None
    assert rpc.encode_many([], False) is None


def test_a_single_response_is_an_object_and_a_batch_is_an_array_in_order():
    parts = [rpc.encode_result(1, 'a'), rpc.encode_error(2, rpc.INTERNAL_ERROR, CID)]
    assert orjson.loads(rpc.encode_many(parts[:1], False)) == {'jsonrpc': '2.0', 'id': 1, 'result': 'a'}
    out = orjson.loads(rpc.encode_many(parts, True))
    assert [r['id'] for r in out] == [1, 2] and 'result' in out[0] and 'error' in out[1]
    assert orjson.loads(rpc.encode_many(parts[:1], True)) == [{'jsonrpc': '2.0', 'id': 1, 'result': 'a'}]


# Hypothesis: round trips and total parsing

json_scalars = st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | \
    st.floats(allow_nan=False, allow_infinity=False) | st.text()
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4) |
                           st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
ids = st.text(max_size=20) | st.integers(-2**63, 2**64 - 1) | st.none() | \
    st.floats(allow_nan=False, allow_infinity=False)
params = st.lists(json_values, max_size=4) | st.dictionaries(st.text(max_size=8), json_values, max_size=4)


@st.composite
def calls(draw):
    out = {'jsonrpc': '2.0', 'method': draw(st.text(max_size=30))}
    if draw(st.booleans()):
        out['params'] = draw(params)
    if draw(st.booleans()):
        out['id'] = draw(ids)
    return out


def same_id(a, b) -> bool:
    return a == b and type(a) is type(b) or (isinstance(a, float) and math.isnan(a) and math.isnan(b))


@settings(max_examples=300, deadline=None)
@given(calls())
def test_every_valid_call_parses_back_to_what_was_sent(sent):
    call = one(dumps(sent))
    assert isinstance(call, rpc.Call)
    assert call.method == sent['method'] and call.params == sent.get('params')
    assert call.is_notification == ('id' not in sent)
    assert same_id(call.id, sent.get('id'))


@settings(max_examples=150, deadline=None)
@given(st.lists(calls(), min_size=1, max_size=8))
def test_every_valid_batch_parses_back_element_by_element_in_order(sent):
    parsed = rpc.parse(dumps(sent))
    assert parsed.is_batch and len(parsed.items) == len(sent)
    for call, item in zip(parsed.items, sent, strict=True):
        assert isinstance(call, rpc.Call) and call.method == item['method'] and same_id(call.id, item.get('id'))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_parsing_never_raises_for_any_bytes(body):
    parsed = rpc.parse(body)
    assert parsed.items
    for item in parsed.items:
        assert isinstance(item, (rpc.Call, rpc.Invalid))


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_value_parses_into_calls_or_errors_with_standard_codes(value):
    parsed = rpc.parse(dumps(value))
    assert parsed.items
    for item in parsed.items:
        if isinstance(item, rpc.Invalid):
            assert item.code in (rpc.INVALID_REQUEST, rpc.INVALID_PARAMS)
            assert item.id is None or rpc._valid_id(item.id)


@settings(max_examples=200, deadline=None)
@given(ids, json_values)
def test_a_result_round_trips_through_json(id, result):
    out = orjson.loads(rpc.encode_result(id, result))
    assert out['jsonrpc'] == '2.0' and same_id(out['id'], id) and out['result'] == result


@settings(max_examples=200, deadline=None)
@given(ids, st.sampled_from(sorted(rpc.MESSAGES)), st.none() | st.text())
def test_an_error_round_trips_through_json(id, code, details):
    out = orjson.loads(rpc.encode_error(id, code, CID, details=details))
    assert same_id(out['id'], id) and out['error']['code'] == code and out['error']['data']['ctx'] == {'cid': CID}
    assert out['error'].get('data', {}).get('details') == details


# An independent implementation on the other side


def test_jsonrpcclients_requests_parse_and_our_responses_read_back_in_it():
    jc = pytest.importorskip('jsonrpcclient')
    req = jc.request('sum', params=[1, 2], id=11)
    call = one(dumps(req))
    assert isinstance(call, rpc.Call) and (call.method, call.params, call.id) == ('sum', [1, 2], 11)
    note = one(dumps(jc.notification('ping')))
    assert isinstance(note, rpc.Call) and note.is_notification

    ok = jc.parse(orjson.loads(rpc.encode_result(11, 3)))
    assert isinstance(ok, jc.Ok) and ok.result == 3 and ok.id == 11
    err = jc.parse(orjson.loads(rpc.encode_error(12, rpc.METHOD_NOT_FOUND, CID)))
    assert isinstance(err, jc.Error) and err.code == -32601 and err.message == 'Method not found'
    assert err.data == {'ctx': {'cid': CID}} and err.id == 12
    batch = list(jc.parse(orjson.loads(rpc.encode_many([rpc.encode_result(1, 'a'), rpc.encode_result(2, 'b')],
                                                       True))))
    assert [r.result for r in batch] == ['a', 'b']
