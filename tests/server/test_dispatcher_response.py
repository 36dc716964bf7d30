"""The dispatcher's own head for a plain 200 JSON answer (zato.server.dispatcher.ok_json) is byte for
byte what serialize_response writes, compiled and pure Python alike."""

from __future__ import annotations

import importlib

import pytest

from zato.server.dispatcher import JSON, ok_json
from zato.service.invoker import new_cid

TWINS = ['zato.proto.http1'] + (['zato.cy.http1'] if importlib.util.find_spec('zato.cy.http1') else [])


@pytest.mark.parametrize('twin', TWINS)
@pytest.mark.parametrize('keep_alive', [True, False])
@pytest.mark.parametrize('data', [b'', b'{"message":"Hello, World!"}', b'[' + b'1,' * 50_000 + b'1]'])
def test_a_plain_json_200_is_what_serialize_response_writes(twin: str, keep_alive: bool, data: bytes) -> None:
    serialize_response = importlib.import_module(twin).serialize_response
    cid = new_cid()
    assert ok_json(cid, data, keep_alive) == serialize_response(200, [('X-Zato-CID', cid), ('Content-Type', JSON)],
                                                               data, keep_alive)
