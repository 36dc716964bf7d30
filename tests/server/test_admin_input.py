"""The admin API's two input rules (zato/server/admin/base.py): what an object id is, and how a
typed or reference field refuses a value of the wrong JSON type."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zato.errors import BadRequest
from zato.server.admin.base import MAX_ID, AdminService, parse_id

field = AdminService.field
ref_name = AdminService.ref_name


@pytest.mark.parametrize('text, expected', [
    ('1', 1), ('42', 42), ('007', 7), (str(MAX_ID), MAX_ID), ('0' * 40 + '5', 5),
])
def test_an_id_of_ascii_digits_names_that_id(text: str, expected: int) -> None:
    assert parse_id(text) == expected


@pytest.mark.parametrize('text', [
    '1 ', ' 1', '1\n', '\t1', '+1', '-1', '1_0', '0_1', '1.0', '1e3', '0x1', '', ' ', '٣', '１', '²', '𝟙',
    '99999999999999999999', str(MAX_ID + 1), str(2 ** 64), '9' * 5000, 'abc', '1a',
])
def test_anything_else_names_no_object_though_int_takes_much_of_it(text: str) -> None:
    assert parse_id(text) is None


@pytest.mark.parametrize('value, expected', [
    (1, 1), (MAX_ID, MAX_ID), (0, 0), (-1, None), (MAX_ID + 1, None), (True, None), (1.0, None), (None, None),
    ([1], None), ({'id': 1}, None),
])
def test_an_id_input_is_a_json_integer_of_64_bits(value: Any, expected: int | None) -> None:
    assert parse_id(value) == expected


@given(st.text(max_size=30))
def test_an_id_is_named_exactly_by_ascii_digits_within_64_bits(text: str) -> None:
    got = parse_id(text)
    if re.fullmatch(r'[0-9]+', text) and int(text) <= MAX_ID:
        assert got == int(text)
    else:
        assert got is None


def refused(data: dict[str, Any], name: str, kind: type) -> str:
    with pytest.raises(BadRequest) as info:
        field(data, name, kind)
    return str(info.value.details)


WRONG_TYPES = [['x'], {'a': 1}, 2 ** 64 - 1, 10 ** 30, 1.5, True, 'text']


def _is_of(value: Any, kind: type) -> bool:
    """Whether a JSON value is of a field's kind, as the admin API means it."""
    if kind is int:
        return type(value) is int and -2 ** 63 <= value < 2 ** 63
    if kind is float:
        return type(value) in (int, float)
    return type(value) is kind


@pytest.mark.parametrize('kind', [bool, int, float, str, list, dict])
@pytest.mark.parametrize('value', WRONG_TYPES)
def test_a_field_of_another_json_type_is_a_400_naming_it(kind: type, value: Any) -> None:
    if _is_of(value, kind):
        assert field({'x': value}, 'x', kind) == (float(value) if kind is float else value)
    else:
        assert refused({'x': value}, 'x', kind).startswith('Invalid input `x`: expected ')


def test_an_int_field_takes_a_64_bit_integer_or_digits_from_a_query_string() -> None:
    assert field({'x': 5}, 'x', int) == 5
    assert field({'x': '5'}, 'x', int) == 5
    assert field({'x': -(2 ** 63)}, 'x', int) == -(2 ** 63)
    for value in (2 ** 63, '9' * 30, '²', '٣', '1_0', ' 5', 5.0):
        assert refused({'x': value}, 'x', int).startswith('Invalid input `x`: expected an integer')


def test_a_float_field_takes_an_integer_but_never_a_bool_nor_a_number_no_float_holds() -> None:
    assert field({'x': 2}, 'x', float) == 2.0
    assert type(field({'x': 2}, 'x', float)) is float
    for value in (True, '1.5', 10 ** 400):
        assert refused({'x': value}, 'x', float) == 'Invalid input `x`: expected a number'


def test_a_missing_or_null_field_is_its_default_or_a_400_when_required() -> None:
    assert field({}, 'x', int, False, 7) == 7
    assert field({'x': None}, 'x', str, False, 'd') == 'd'
    assert refused({'x': None}, 'x', str) == 'Missing input `x`'


@pytest.mark.parametrize('value', [['x'], {'a': 1}, 2 ** 64 - 1, 1.5, True])
def test_a_reference_that_is_not_a_name_is_a_400_naming_the_field(value: Any) -> None:
    with pytest.raises(BadRequest) as info:
        ref_name({'security': value}, 'security', 'a security definition')
    assert info.value.details == 'Invalid input `security`: expected the name of a security definition'


def test_a_reference_absent_null_or_empty_names_nothing() -> None:
    for data in ({}, {'parent': None}, {'parent': ''}):
        assert ref_name(data, 'parent', 'a rate-limit definition') is None
    assert ref_name({'parent': 'p1'}, 'parent', 'a rate-limit definition') == 'p1'
