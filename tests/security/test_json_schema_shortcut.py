"""The shortcut in front of fastjsonschema (zato.security.json_schema.with_shortcut) may only ever
accept what fastjsonschema accepts: checked here against fastjsonschema itself on generated data,
with the verdict and the error of every input compared."""

from __future__ import annotations

from typing import Any

import fastjsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zato.security.json_schema import shortcut_source, with_shortcut

SCHEMAS: list[dict[str, Any]] = [
    {'$schema': 'http://json-schema.org/draft-07/schema#', 'type': 'object', 'required': ['name'],
     'properties': {'name': {'type': 'string'}}},
    {'type': 'object', 'required': ['id', 'qty'], 'additionalProperties': False,
     'properties': {'id': {'type': 'integer'}, 'qty': {'type': 'number'}, 'flag': {'type': 'boolean'},
                    'note': {'type': ['string', 'null'], 'description': 'optional'}}},
    {'type': 'object', 'required': ['a', 'missing-from-properties'],
     'properties': {'a': {'type': ['object', 'array']}, 'b': {'type': 'null'}}},
    {'type': 'object', 'properties': {}, 'additionalProperties': False},
    {'type': 'object', 'title': 'open', 'required': ["quote'd \"name\"\n"],
     'properties': {"quote'd \"name\"\n": {'type': 'integer'}}},
]

# What a JSON body decodes to, plus Python values a service may pass to invoke (subclasses, floats
# that are whole numbers, tuples), none of which the shortcut may wave through
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5),
                    st.just(1.0), st.just(True), st.just(False), st.just(0))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.tuples(inner),
                                                       st.dictionaries(st.text(max_size=3), inner, max_size=3)),
                      max_leaves=6)
keys = st.sampled_from(['name', 'id', 'qty', 'flag', 'note', 'a', 'b', 'missing-from-properties',
                        "quote'd \"name\"\n", 'other'])
documents = st.one_of(st.dictionaries(keys, values, max_size=6), values)


class Subclass(dict):  # type: ignore[type-arg]
    pass


def outcome(validate: Any, data: Any) -> tuple[bool, str]:
    try:
        validate(data)
    except fastjsonschema.JsonSchemaValueException as e:
        return False, f'{e.message}|{e.rule}|{e.name}'
    return True, ''


@pytest.mark.parametrize('schema', SCHEMAS)
def test_every_flat_schema_has_a_shortcut(schema: dict[str, Any]) -> None:
    assert shortcut_source(schema) is not None


@pytest.mark.parametrize('schema', [
    {'type': 'object', 'properties': {'a': {'type': 'string', 'minLength': 2}}},
    {'type': 'object', 'properties': {'a': {'$ref': '#/definitions/x'}}, 'definitions': {'x': {}}},
    {'type': 'object', 'additionalProperties': {'type': 'string'}},
    {'type': 'object', 'properties': {'a': {'type': 'string', 'format': 'date'}}},
    {'type': 'object', 'properties': {'a': {}}},
    {'type': 'object', 'minProperties': 1},
    {'type': 'array'},
    {'properties': {'a': {'type': 'string'}}},
])
def test_anything_else_goes_to_fastjsonschema_alone(schema: dict[str, Any]) -> None:
    full = fastjsonschema.compile(schema)
    assert shortcut_source(schema) is None
    assert with_shortcut(schema, full) is full


@pytest.mark.parametrize('index', range(len(SCHEMAS)))
@settings(max_examples=600, deadline=None)
@given(data=documents)
def test_same_verdict_and_error_as_fastjsonschema(index: int, data: Any) -> None:
    schema = SCHEMAS[index]
    full = fastjsonschema.compile(schema, use_default=False)
    assert outcome(with_shortcut(schema, full), data) == outcome(full, data)
    if isinstance(data, dict):
        assert outcome(with_shortcut(schema, full), Subclass(data)) == outcome(full, Subclass(data))


def test_the_shortcut_is_what_decides_a_valid_document() -> None:
    """Valid flat documents never reach fastjsonschema; everything else does."""
    schema = SCHEMAS[1]
    calls: list[Any] = []

    def full(data: Any) -> Any:
        calls.append(data)
        return fastjsonschema.compile(schema)(data)

    validate = with_shortcut(schema, full)
    assert validate({'id': 1, 'qty': 2.5, 'note': None}) == {'id': 1, 'qty': 2.5, 'note': None}
    assert calls == []
    for refused in ({'id': True, 'qty': 1}, {'id': 1, 'qty': 1, 'x': 1}, {'id': 1}):
        with pytest.raises(fastjsonschema.JsonSchemaValueException):
            validate(refused)
    assert len(calls) == 3
    # A whole float is an integer to JSON Schema: not the shortcut's to say, fastjsonschema's
    assert validate({'id': 1.0, 'qty': 1}) == {'id': 1.0, 'qty': 1}
    assert len(calls) == 4
