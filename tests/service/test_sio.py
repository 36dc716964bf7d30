"""SimpleIO: element types, the compiler, the reader, the writer and the payload objects."""

from __future__ import annotations

import copy
import math
import pickle
import re
import sys
from collections import OrderedDict, namedtuple
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType, SimpleNamespace
from typing import Any
from uuid import UUID

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zato.service.sio import (
    CompiledSIO, Input, SIODefinitionError, SIOInputError, SIOOutputError, SIOPayload, compile_sio,
)
from zato.service.sio_types import (
    NOT_GIVEN, AsIs, Bool, Boolean, Date, DateTime, Dict, Float, Int, Integer, List, Nested, Opaque, Text,
    Unicode, element_from_decl,
)

DOCS_PAGE = Path(__file__).resolve().parents[2] / 'docs' / 'simpleio.md'

# Under a loaded CI machine a slow example is not a bug
settings.register_profile('sio', deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile('sio')


def sio(**attrs: Any) -> CompiledSIO:
    """Compiles a SimpleIO class with the given attributes."""
    compiled = compile_sio(type('SimpleIO', (), attrs), 'test.service')
    assert compiled is not None
    return compiled


def rejects(elem: Any, value: Any, direction: str = 'to_python') -> str:
    with pytest.raises(ValueError) as info:
        getattr(elem, direction)(value)
    return str(info.value)


# ################################################################################################
# Int

def test_int_accepts_an_int_and_a_string_of_digits_with_an_optional_sign() -> None:
    elem = Int('n')
    assert elem.to_python(7) == 7
    assert elem.to_python('7') == 7
    assert elem.to_python('-7') == -7
    assert elem.to_python('+7') == 7
    assert elem.to_python('007') == 7
    assert elem.to_python(str(2 ** 63 - 1)) == 2 ** 63 - 1
    assert elem.to_python(str(-2 ** 63)) == -2 ** 63
    assert elem.to_python('0' * 30 + '1') == 1


@pytest.mark.parametrize('value', [
    True, False, 1.0, 1.5, '1.5', '1.0', ' 1', '1 ', '1\n', '', '+', '-', '1_000', '0x10', '1e3',
    '²', '٣', '１', None, [1], {'n': 1}, Decimal('1'),
])
def test_int_rejects_bools_floats_and_anything_but_plain_digits(value: Any) -> None:
    assert rejects(Int('n'), value) == 'expected an integer'


INT_RANGE = 'expected an integer from -9223372036854775808 to 9223372036854775807'


@pytest.mark.parametrize('value', [
    2 ** 63, -2 ** 63 - 1, 2 ** 64, 10 ** 400, str(2 ** 63), str(-2 ** 63 - 1), '99999999999999999999999',
    '+' + '9' * 20, '9' * 5000,
])
def test_int_refuses_a_number_beyond_64_bits_as_an_int_or_as_digits(value: Any) -> None:
    assert rejects(Int('n'), value) == INT_RANGE
    assert rejects(Int('n'), value, 'to_json') == INT_RANGE


def test_int_output_converts_a_string_of_digits_and_rejects_a_bool() -> None:
    assert Int('n').to_json('12') == 12
    assert Int('n').to_json(12) == 12
    assert rejects(Int('n'), True, 'to_json') == 'expected an integer'


# ################################################################################################
# Float

def test_float_accepts_ints_floats_and_decimal_strings() -> None:
    elem = Float('x')
    assert elem.to_python(1) == 1.0 and type(elem.to_python(1)) is float
    assert elem.to_python(1.5) == 1.5
    assert elem.to_python('1.5') == 1.5
    assert elem.to_python('-.5') == -0.5
    assert elem.to_python('1e3') == 1000.0
    assert elem.to_python('3.') == 3.0


@pytest.mark.parametrize('value', [
    True, math.nan, math.inf, -math.inf, 'nan', 'inf', 'Infinity', '1e999', 10 ** 400, ' 1', '1 ', '1_0', '',
    '.', 'e5', None, [1.0], '1' * 65,
])
def test_float_rejects_bools_nan_infinity_and_unusual_strings(value: Any) -> None:
    assert rejects(Float('x'), value).startswith('expected a')


def test_float_output_is_a_float_and_never_nan() -> None:
    assert Float('x').to_json(Decimal('2.5')) == 2.5
    assert Float('x').to_json(2) == 2.0
    assert rejects(Float('x'), math.nan, 'to_json') == 'expected a finite number'


# ################################################################################################
# Bool

@pytest.mark.parametrize(('value', 'expected'), [
    (True, True), (False, False), (1, True), (0, False),
    ('true', True), ('TRUE', True), ('True', True), ('false', False), ('1', True), ('0', False),
    ('yes', True), ('No', False), ('on', True), ('OFF', False),
])
def test_bool_accepts_booleans_zero_and_one_and_the_usual_words(value: Any, expected: bool) -> None:
    assert Bool('b').to_python(value) is expected


@pytest.mark.parametrize('value', [2, -1, 1.0, 0.0, 'maybe', 't', 'y', '', ' true', 'truee', None, [], {}])
def test_bool_rejects_anything_else(value: Any) -> None:
    assert rejects(Bool('b'), value) == 'expected a boolean'


# ################################################################################################
# Text

def test_text_accepts_strings_and_converts_numbers_with_str() -> None:
    elem = Text('t')
    assert elem.to_python('abc') == 'abc'
    assert elem.to_python('') == ''
    assert elem.to_python(7) == '7'
    assert elem.to_python(1.5) == '1.5'


@pytest.mark.parametrize('value', [True, False, None, {'a': 1}, ['a'], b'abc'])
def test_text_rejects_bools_objects_lists_and_bytes(value: Any) -> None:
    assert rejects(Text('t'), value) == 'expected a string'


def test_text_output_also_takes_decimals_and_uuids() -> None:
    uuid = UUID('12345678-1234-5678-1234-567812345678')
    assert Text('t').to_json(uuid) == str(uuid)
    assert Text('t').to_json(Decimal('1.10')) == '1.10'


# ################################################################################################
# Date and DateTime

def test_date_parses_iso_dates_and_passes_dates_through() -> None:
    elem = Date('d')
    assert elem.to_python('2024-02-29') == date(2024, 2, 29)
    assert elem.to_python('0812-01-05') == date(812, 1, 5)
    assert elem.to_python(date(2020, 1, 1)) == date(2020, 1, 1)
    assert elem.to_python(datetime(2020, 1, 1, 10, 30)) == date(2020, 1, 1)


@pytest.mark.parametrize('value', [
    '2023-02-29', '2024-1-02', '20240102', '2024-W01-1', '2024-01-02 ', '2024-01-02T00:00', '0000-01-01', '', 5, None,
])
def test_date_rejects_anything_but_a_valid_yyyy_mm_dd_date(value: Any) -> None:
    assert rejects(Date('d'), value) == 'expected a date (YYYY-MM-DD)'


def test_date_with_a_format_parses_that_format_and_outputs_iso() -> None:
    elem = Date('d', format='%d/%m/%Y')
    assert elem.to_python('31/12/2024') == date(2024, 12, 31)
    assert rejects(elem, '2024-12-31') == 'expected a date (format %d/%m/%Y)'
    assert elem.to_json('31/12/2024') == '2024-12-31'
    assert Date('d').to_json(date(1850, 3, 4)) == '1850-03-04'


def test_datetime_parses_iso_8601_with_or_without_an_offset() -> None:
    elem = DateTime('t')
    assert elem.to_python('2024-01-02T03:04:05') == datetime(2024, 1, 2, 3, 4, 5)
    assert elem.to_python('2024-01-02T03:04:05Z') == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert elem.to_python('2024-01-02 03:04:05.123+02:00').utcoffset() == timedelta(hours=2)
    assert rejects(elem, 'yesterday') == 'expected a date-time (ISO 8601)'
    assert rejects(elem, 1700000000) == 'expected a date-time (ISO 8601)'


def test_datetime_with_a_format_uses_strptime_and_outputs_iso() -> None:
    elem = DateTime('t', format='%d/%m/%Y %H:%M')
    assert elem.to_python('02/01/2024 03:04') == datetime(2024, 1, 2, 3, 4)
    assert elem.to_json('02/01/2024 03:04') == '2024-01-02T03:04:00'
    assert rejects(elem, '2024-01-02T03:04') == 'expected a date-time (format %d/%m/%Y %H:%M)'


# ################################################################################################
# List, Dict, AsIs, Opaque

def test_list_takes_lists_tuples_and_turns_a_single_string_into_a_list_of_one() -> None:
    elem = List('l')
    assert elem.to_python([1, 2]) == [1, 2]
    assert elem.to_python((1, 2)) == [1, 2]
    assert elem.to_python('a') == ['a']
    assert rejects(elem, {'a': 1}) == 'expected a list'
    assert rejects(elem, 1) == 'expected a list'
    assert elem.to_json((1, 2)) == [1, 2]


def test_dict_requires_an_object_with_its_required_keys() -> None:
    elem = Dict('address', 'street', 'city')
    assert elem.to_python({'street': 'a', 'city': 'b', 'zip': 'c'}) == {'street': 'a', 'city': 'b', 'zip': 'c'}
    assert rejects(elem, {'street': 'a'}) == 'missing key `city`'
    assert rejects(elem, ['street', 'city']) == 'expected an object'
    assert Dict('any').to_python({}) == {}


@pytest.mark.parametrize('cls', [AsIs, Opaque])
@pytest.mark.parametrize('value', [None, True, 1, 'x', [1], {'a': [1]}, object])
def test_asis_and_opaque_pass_anything_through_untouched(cls: type, value: Any) -> None:
    assert cls('x').to_python(value) is value
    assert cls('x').to_json(value) is value


# ################################################################################################
# What every type shares

def test_the_31_aliases_are_the_same_classes() -> None:
    assert (Boolean, Integer, Nested, Unicode) == (Bool, Int, Opaque, Text)


def test_types_keep_their_name_and_default_and_are_immutable() -> None:
    elem = Bool('is_active', default=True)
    assert (elem.name, elem.default) == ('is_active', True)
    assert Int('n').default is NOT_GIVEN
    with pytest.raises(AttributeError):
        elem.name = 'other'  # type: ignore[misc]


def test_types_repr_as_they_were_written() -> None:
    assert repr(Bool('is_active', default=True)) == "Bool('is_active', default=True)"
    assert repr(Dict('address', 'city')) == "Dict('address', 'city')"
    assert repr(Date('d', format='%d/%m/%Y')) == "Date('d', format='%d/%m/%Y')"


def test_types_survive_pickling_and_compare_by_value() -> None:
    for elem in (Int('n', default=3), Date('d', format='%d.%m.%Y'), Dict('a', 'k')):
        assert pickle.loads(pickle.dumps(elem)) == elem
    assert pickle.loads(pickle.dumps(NOT_GIVEN)) is NOT_GIVEN
    assert Int('n') != Text('n')
    assert len({Int('n'), Int('n')}) == 1


@pytest.mark.parametrize('name', [None, 1, ''])
def test_a_type_needs_a_non_empty_str_name(name: Any) -> None:
    with pytest.raises(SIODefinitionError):
        Int(name)


# ################################################################################################
# Name-based conversions

@pytest.mark.parametrize(('name', 'cls'), [
    ('id', Int), ('user_id', Int), ('item_count', Int), ('page_size', Int), ('page_size_min', Int),
    ('page_size_max', Int), ('read_timeout', Int),
    ('by_name', Bool), ('has_orders', Bool), ('is_active', Bool), ('may_retry', Bool), ('needs_auth', Bool),
    ('should_notify', Bool), ('is_id', Bool),
    ('name', AsIs), ('identity', AsIs), ('idea', AsIs), ('island', AsIs), ('valid', AsIs), ('ids', AsIs),
])
def test_a_plain_name_gets_the_31_name_based_conversion(name: str, cls: type) -> None:
    elem = element_from_decl(name)
    assert type(elem) is cls and elem.name == name


def test_a_declared_type_opts_a_name_out_of_the_name_based_conversion() -> None:
    elem = AsIs('user_id')
    assert element_from_decl(elem) is elem
    assert elem.to_python('007') == '007'


def test_a_type_class_without_a_name_is_explained() -> None:
    with pytest.raises(SIODefinitionError, match=r"write Int\('my_name'\)"):
        element_from_decl(Int)


# ################################################################################################
# Hypothesis: conversions

INT_MIN, INT_MAX = -2 ** 63, 2 ** 63 - 1


@given(st.integers(min_value=INT_MIN, max_value=INT_MAX))
def test_int_accepts_every_64_bit_int_and_its_decimal_string(n: int) -> None:
    assert Int('n').to_python(n) == n
    assert Int('n').to_python(str(n)) == n
    assert Int('n').to_json(str(n)) == n


@given(st.integers())
def test_int_accepts_an_int_exactly_when_it_fits_in_64_bits(n: int) -> None:
    if INT_MIN <= n <= INT_MAX:
        assert Int('n').to_python(n) == n
    else:
        assert rejects(Int('n'), n) == INT_RANGE


@given(st.one_of(st.booleans(), st.floats()))
def test_int_rejects_every_bool_and_every_float(value: Any) -> None:
    assert rejects(Int('n'), value) == 'expected an integer'


@given(st.text(max_size=50))
def test_int_accepts_a_string_only_when_it_is_plain_decimal_digits(text: str) -> None:
    try:
        result = Int('n').to_python(text)
    except ValueError:
        assert not re.fullmatch(r'[+-]?[0-9]+', text) or not INT_MIN <= int(text) <= INT_MAX
    else:
        assert re.fullmatch(r'[+-]?[0-9]+', text) and result == int(text)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_accepts_every_finite_float_and_its_repr(x: float) -> None:
    assert Float('x').to_python(x) == x
    assert Float('x').to_python(repr(x)) == x


@given(st.text(max_size=30))
def test_float_never_returns_nan_or_infinity(text: str) -> None:
    try:
        result = Float('x').to_python(text)
    except ValueError:
        return
    assert math.isfinite(result)


@given(st.booleans())
def test_bool_round_trips_through_json_and_through_its_words(b: bool) -> None:
    elem = Bool('b')
    assert elem.to_python(elem.to_json(b)) is b
    assert elem.to_python(str(b).lower()) is b
    assert elem.to_python(str(int(b))) is b
    assert elem.to_python(orjson.loads(orjson.dumps(elem.to_json(b)))) is b


@given(st.dates())
def test_date_round_trips_through_isoformat(d: date) -> None:
    assert Date('d').to_python(Date('d').to_json(d)) == d
    assert Date('d').to_json(d) == d.isoformat()


@given(st.text(max_size=12))
def test_date_accepts_a_string_only_when_it_is_its_own_isoformat(text: str) -> None:
    try:
        result = Date('d').to_python(text)
    except ValueError:
        return
    assert result.isoformat() == text


offsets = st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59))
timezones = st.none() | st.builds(timezone, offsets)


@given(st.datetimes(timezones=timezones))
def test_datetime_round_trips_through_isoformat(dt: datetime) -> None:
    parsed = DateTime('t').to_python(DateTime('t').to_json(dt))
    assert parsed == dt and parsed.utcoffset() == dt.utcoffset()


# ################################################################################################
# Compiling a declaration

def test_no_simpleio_class_compiles_to_none() -> None:
    assert compile_sio(None, 'test.service') is None


def test_a_compiled_declaration_describes_its_fields() -> None:
    compiled = sio(input_required=('customer_id', Text('name')), input_optional=Bool('is_active'),
                   output_required='cust_id', output_optional=(DateTime('created'),))
    assert compiled.input_names == ('customer_id', 'name', 'is_active')
    assert compiled.output_names == ('cust_id', 'created')
    assert compiled.has_input and compiled.has_output
    assert type(compiled.input_required[0]) is Int
    assert compiled.response_elem is None
    assert (compiled.skip_empty_keys, compiled.output_repeated, compiled.allow_empty_required) == (False, False, False)
    assert compiled.force_empty_keys == frozenset()


def test_a_declaration_without_fields_has_no_input_and_no_output() -> None:
    compiled = sio()
    assert not compiled.has_input and not compiled.has_output


def test_a_bare_string_or_a_single_type_is_a_declaration_of_one_element() -> None:
    compiled = sio(input_required='name', input_optional=Int('age'), output_required=['a', 'b'])
    assert compiled.input_names == ('name', 'age')
    assert compiled.output_names == ('a', 'b')


def test_an_unknown_attribute_is_rejected_with_a_suggestion_and_the_allowed_names() -> None:
    with pytest.raises(SIODefinitionError) as info:
        sio(input_requried=('name',))
    message = str(info.value)
    assert 'test.service' in message
    assert '`input_requried`' in message and 'did you mean `input_required`?' in message
    assert 'output_optional' in message and 'params_priority' in message


def test_encrypt_secrets_is_rejected_with_the_reason() -> None:
    with pytest.raises(SIODefinitionError, match='security layer'):
        sio(encrypt_secrets=True)


def test_request_elem_and_namespace_are_accepted_and_ignored() -> None:
    assert sio(input_required='a', request_elem='request', namespace='urn:x').parse_input({'a': 1}, None).a == 1


def test_an_element_declared_twice_is_rejected() -> None:
    with pytest.raises(SIODefinitionError, match='`name` is declared twice in input_required'):
        sio(input_required=('name', Text('name')))
    with pytest.raises(SIODefinitionError, match='`x` is declared twice in output_optional'):
        sio(output_optional=('x', 'x'))


def test_an_input_both_required_and_optional_is_rejected() -> None:
    with pytest.raises(SIODefinitionError, match='input `name` is both required and optional'):
        sio(input_required='name', input_optional=Text('name'))
    with pytest.raises(SIODefinitionError, match='output `a` is both required and optional'):
        sio(output_required='a', output_optional='a')


def test_the_same_name_may_be_both_an_input_and_an_output() -> None:
    assert sio(input_required='id', output_required='id').output_names == ('id',)


@pytest.mark.parametrize('decl', [(42,), (None,), ({'name': 'x'},), 42, {'a'}])
def test_an_element_that_is_neither_a_name_nor_a_type_is_rejected(decl: Any) -> None:
    with pytest.raises(SIODefinitionError, match='input_required'):
        sio(input_required=decl)


def test_force_empty_keys_must_name_outputs() -> None:
    with pytest.raises(SIODefinitionError, match='`nme`, which is not an output'):
        sio(output_optional='name', force_empty_keys=('nme',))


def test_flags_must_be_booleans_and_params_priority_one_of_two_values() -> None:
    with pytest.raises(SIODefinitionError, match='skip_empty_keys must be True or False'):
        sio(skip_empty_keys='yes')
    with pytest.raises(SIODefinitionError, match='params_priority'):
        sio(params_priority='channel-first')
    with pytest.raises(SIODefinitionError, match='response_elem'):
        sio(response_elem=1)


def test_simpleio_must_be_a_class() -> None:
    with pytest.raises(SIODefinitionError, match='must be a class'):
        compile_sio({'input_required': 'a'}, 'test.service')  # type: ignore[arg-type]


def test_attributes_inherited_from_a_base_simpleio_class_are_used_and_checked() -> None:
    class Base:
        input_required = ('customer_id',)
        skip_empty_keys = True

    class SimpleIO(Base):
        output_optional = ('notes',)

    compiled = compile_sio(SimpleIO, 'test.service')
    assert compiled is not None and compiled.input_names == ('customer_id',) and compiled.skip_empty_keys

    class Bad(Base):
        input_optinal = ('x',)

    with pytest.raises(SIODefinitionError, match='input_optinal'):
        compile_sio(Bad, 'test.service')


def test_the_reader_and_writer_are_straight_line_code_for_the_declared_fields() -> None:
    compiled = sio(input_required=('customer_id', Text('name')), output_optional=('notes',))
    for source in (compiled.reader_source, compiled.writer_source):
        assert 'for ' not in source and 'while ' not in source
    assert "'customer_id'" in compiled.reader_source and "'notes'" in compiled.writer_source


@pytest.mark.parametrize('value', [math.nan, math.inf, -math.inf, '1.5', 2, Decimal('2.5'), True])
def test_a_float_field_converts_or_refuses_all_but_a_finite_float_which_skips_the_conversion(value: Any) -> None:
    compiled = sio(input_required=Float('x'), output_required=Float('x'))
    # The generated code passes a finite float straight through, as its conversion would
    assert 'if _type(v) is not _n0 or not _lo0 <= v <= _hi0:' in compiled.reader_source
    assert 'if t is not _n0 or not _lo0 <= v <= _hi0:' in compiled.writer_source
    assert compiled.parse_input({'x': 1.5}, None).x == 1.5 and compiled.serialize({'x': -0.0}) == {'x': -0.0}
    try:
        expected = Float('x').to_python(value)
    except ValueError:
        with pytest.raises(SIOInputError):
            compiled.parse_input({'x': value}, None)
        with pytest.raises(SIOOutputError):
            compiled.serialize({'x': value})
    else:
        assert compiled.parse_input({'x': value}, None).x == expected == compiled.serialize({'x': value})['x']


def test_the_generated_functions_take_no_keyword_only_defaults() -> None:
    # What they use are globals of their own namespace: 30 keyword-only defaults cost a dict
    # lookup each on every call (CPython 3.11), a global read is cached
    compiled = sio(input_required=('customer_id', Float('x')), output_required=(Text('name'), Date('since')))
    for func in (compiled._read, compiled._write_mapping, compiled._write_object):
        assert func.__kwdefaults__ is None and func.__code__.co_kwonlyargcount == 0
    assert compiled.parse_input({'customer_id': '1', 'x': 2}, None).to_dict() == {'customer_id': 1, 'x': 2.0}


def test_field_names_that_are_not_identifiers_work_everywhere() -> None:
    name = "it's a \"name\"\n"
    compiled = sio(input_required=Text(name), output_required=Text(name))
    assert compiled.parse_input({name: 'v'}, None)[name] == 'v'
    assert compiled.serialize({name: 'v'}) == {name: 'v'}


# ################################################################################################
# Reading input

CUSTOMER = dict(
    input_required=('customer_id', Text('name')),
    input_optional=(Bool('is_active', default=True), Date('since'), 'page_size'),
)


def test_declared_inputs_are_converted_by_type() -> None:
    got = sio(**CUSTOMER).parse_input({'customer_id': '12', 'name': 'Bo', 'since': '2024-01-02', 'page_size': 5}, None)
    assert got.to_dict() == {'customer_id': 12, 'name': 'Bo', 'is_active': True, 'since': date(2024, 1, 2),
                             'page_size': 5}


def test_a_missing_required_input_is_reported_by_name() -> None:
    with pytest.raises(SIOInputError) as info:
        sio(**CUSTOMER).parse_input({'name': 'Bo'}, None)
    assert str(info.value) == 'Missing input `customer_id`'
    assert (info.value.field, info.value.reason) == ('customer_id', 'missing')
    assert info.value.status == 400


def test_a_null_required_input_counts_as_missing() -> None:
    with pytest.raises(SIOInputError, match='Missing input `customer_id`'):
        sio(**CUSTOMER).parse_input({'customer_id': None, 'name': 'Bo'}, None)


def test_an_invalid_input_is_reported_with_the_reason() -> None:
    with pytest.raises(SIOInputError) as info:
        sio(**CUSTOMER).parse_input({'customer_id': 'abc', 'name': 'Bo'}, None)
    assert str(info.value) == 'Invalid input `customer_id`: expected an integer'
    assert (info.value.field, info.value.reason) == ('customer_id', 'expected an integer')
    assert info.value.to_dict()['field'] == 'customer_id'


def test_an_invalid_optional_input_is_reported_too() -> None:
    with pytest.raises(SIOInputError, match=r'Invalid input `since`: expected a date \(YYYY-MM-DD\)'):
        sio(**CUSTOMER).parse_input({'customer_id': 1, 'name': 'Bo', 'since': 'tomorrow'}, None)


def test_an_empty_string_is_present_for_text_and_asis_but_invalid_for_other_required_types() -> None:
    assert sio(input_required=(Text('a'), AsIs('b'))).parse_input({'a': '', 'b': ''}, None).to_dict() == \
        {'a': '', 'b': ''}
    for elem in (Int('x'), Float('x'), Bool('x'), Date('x'), DateTime('x')):
        with pytest.raises(SIOInputError, match='Invalid input `x`: expected'):
            sio(input_required=elem).parse_input({'x': ''}, None)


def test_a_missing_optional_input_takes_the_element_default_then_default_value_then_none() -> None:
    compiled = sio(input_optional=(Int('a', default=5), 'b', Text('c', default=None)), default_value='dv')
    assert compiled.parse_input({}, None).to_dict() == {'a': 5, 'b': 'dv', 'c': None}
    assert sio(input_optional='b').parse_input({}, None).to_dict() == {'b': None}


def test_a_null_or_blank_optional_input_takes_its_default_where_blank_means_nothing() -> None:
    compiled = sio(input_optional=(Int('page', default=1), Text('q', default='*')))
    assert compiled.parse_input({'page': '', 'q': ''}, None).to_dict() == {'page': 1, 'q': ''}
    assert compiled.parse_input({'page': None, 'q': None}, None).to_dict() == {'page': 1, 'q': '*'}


def test_mutable_defaults_are_copied_for_every_request() -> None:
    compiled = sio(input_optional=List('tags', default=['a']))
    first = compiled.parse_input({}, None)
    first.tags.append('b')
    assert compiled.parse_input({}, None).tags == ['a']


def test_undeclared_body_keys_are_dropped_but_every_channel_param_is_kept() -> None:
    got = sio(**CUSTOMER).parse_input({'customer_id': 1, 'name': 'Bo', 'admin': True}, {'format': 'short'})
    assert 'admin' not in got
    assert got.format == 'short'


def test_channel_params_win_over_the_body_by_default() -> None:
    got = sio(**CUSTOMER).parse_input({'customer_id': 1, 'name': 'body'}, {'name': 'param', 'customer_id': '2'})
    assert (got.customer_id, got.name) == (2, 'param')


def test_params_priority_msg_over_channel_params_lets_the_body_win() -> None:
    compiled = sio(**CUSTOMER, params_priority='msg-over-channel-params')
    got = compiled.parse_input({'customer_id': 1, 'name': 'body'}, {'name': 'param', 'customer_id': '2'})
    assert (got.customer_id, got.name) == (1, 'body')
    assert compiled.parse_input({'name': 'body'}, {'customer_id': '2'}).customer_id == 2


def test_use_channel_params_only_ignores_the_body() -> None:
    compiled = sio(input_required='customer_id', use_channel_params_only=True)
    assert compiled.parse_input({'customer_id': 1}, {'customer_id': '7'}).customer_id == 7
    with pytest.raises(SIOInputError, match='Missing input `customer_id`'):
        compiled.parse_input({'customer_id': 1}, {})
    assert compiled.parse_input(['not', 'an', 'object'], {'customer_id': '7'}).customer_id == 7


def test_query_string_values_are_converted_like_body_values() -> None:
    compiled = sio(input_optional=(Bool('is_active'), List('tag'), 'page_size', Float('min')))
    got = compiled.parse_input(None, {'is_active': 'yes', 'tag': 'red', 'page_size': '20', 'min': '1.5'})
    assert got.to_dict() == {'is_active': True, 'tag': ['red'], 'page_size': 20, 'min': 1.5}


@pytest.mark.parametrize('body', [[1, 2], 'text', 5, True, b'bytes'])
def test_a_body_that_is_not_a_json_object_is_rejected_when_inputs_are_required(body: Any) -> None:
    with pytest.raises(SIOInputError) as info:
        sio(**CUSTOMER).parse_input(body, None)
    assert (info.value.field, info.value.reason) == ('', 'Expected a JSON object')
    assert str(info.value) == 'Expected a JSON object'


def test_a_body_that_is_not_a_json_object_is_ignored_when_no_input_is_required() -> None:
    assert sio(input_optional='page_size').parse_input([1, 2], {'page_size': '3'}).page_size == 3


@pytest.mark.parametrize('body', [None, '', b'', {}])
def test_no_body_means_required_inputs_are_missing(body: Any) -> None:
    with pytest.raises(SIOInputError, match='Missing input `customer_id`'):
        sio(**CUSTOMER).parse_input(body, None)


def test_a_body_that_is_a_mapping_but_not_a_dict_is_read() -> None:
    body = MappingProxyType({'customer_id': '3', 'name': 'Bo'})
    assert sio(**CUSTOMER).parse_input(body, None).customer_id == 3
    assert sio(**CUSTOMER).parse_input(OrderedDict(body), None).customer_id == 3


def test_parsing_never_changes_the_body_or_the_params() -> None:
    body, params = {'customer_id': '3', 'name': 'Bo'}, {'extra': 'x'}
    got = sio(**CUSTOMER).parse_input(body, params)
    got.extra = 'changed'
    assert body == {'customer_id': '3', 'name': 'Bo'} and params == {'extra': 'x'}


def test_a_custom_type_that_raises_type_error_still_gives_a_client_error() -> None:
    class Sloppy(Text):
        __slots__ = ()

        def to_python(self, value: Any) -> str:
            return value + 1  # TypeError for a string

    with pytest.raises(SIOInputError, match='Invalid input `x`'):
        sio(input_required=Sloppy('x')).parse_input({'x': 'a'}, None)


@pytest.mark.parametrize('value', [2 ** 63, -2 ** 63 - 1, '9223372036854775808', '99999999999999999999999'])
def test_an_int_beyond_64_bits_is_refused_alike_from_a_body_a_path_or_a_query(value: Any) -> None:
    # A JSON body brings an int (orjson gives up to 2**64-1 as one), a path or a query string a
    # str: the compiled reader's fast path for native ints must not let the former through
    compiled = sio(input_required=('customer_id',), input_optional=('order_id',))
    for body, params in (({'customer_id': value}, None), (None, {'customer_id': value}),
                         ({'customer_id': 1, 'order_id': value}, None), (None, {'customer_id': 1, 'order_id': value})):
        field = 'customer_id' if 'order_id' not in (body or params or {}) else 'order_id'
        with pytest.raises(SIOInputError) as info:
            compiled.parse_input(body, params)
        assert str(info.value) == f'Invalid input `{field}`: {INT_RANGE}'


def test_an_int_output_beyond_64_bits_is_the_services_error_naming_the_field() -> None:
    compiled = sio(output_required=('customer_id',), output_optional=('order_id',))
    assert compiled.serialize({'customer_id': INT_MAX, 'order_id': INT_MIN}) == {'customer_id': INT_MAX,
                                                                               'order_id': INT_MIN}
    for payload in ({'customer_id': 2 ** 64}, {'customer_id': 1, 'order_id': -2 ** 63 - 1}):
        with pytest.raises(SIOOutputError, match=INT_RANGE):
            compiled.serialize(payload)


def test_a_subclass_that_overrides_a_conversion_is_never_skipped_by_the_fast_path() -> None:
    class Upper(AsIs):
        __slots__ = ()

        def to_python(self, value: Any) -> Any:
            return value.upper()

    class Lower(Text):
        __slots__ = ()

        def to_json(self, value: Any) -> str:
            return value.lower()

    compiled = sio(input_required=Upper('code'), output_required=Lower('code'))
    assert compiled.parse_input({'code': 'ab'}, None).code == 'AB'
    assert compiled.serialize({'code': 'AB'}) == {'code': 'ab'}


# ################################################################################################
# Hypothesis: parse_input on arbitrary input

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
field_names = st.sampled_from(['customer_id', 'name', 'is_active', 'since', 'created', 'score', 'tags', 'address',
                               'page_size', 'blob', 'other'])
bodies = json_values | st.dictionaries(field_names, json_values, max_size=11)
query_params = st.none() | st.dictionaries(field_names, st.text(max_size=20), max_size=5)

EVERYTHING = dict(
    input_required=('customer_id', Text('name')),
    input_optional=(Bool('is_active', default=True), Date('since'), DateTime('created'), Float('score'),
                    List('tags'), Dict('address', 'city'), 'page_size', Opaque('blob')),
)


# Compiled once: compiling per example would dominate the run time
EVERYTHING_COMPILED = {priority: sio(**EVERYTHING, params_priority=priority)
                       for priority in ('channel-params-over-msg', 'msg-over-channel-params')}


@pytest.mark.parametrize('priority', list(EVERYTHING_COMPILED))
@given(body=bodies, params=query_params)
def test_parse_input_raises_nothing_but_sio_input_error_on_arbitrary_json(priority: str, body: Any,
                                                                          params: dict[str, str] | None) -> None:
    compiled = EVERYTHING_COMPILED[priority]
    try:
        got = compiled.parse_input(body, params)
    except SIOInputError as e:
        assert str(e)
        return
    assert set(compiled.input_names) <= set(got)
    assert type(got.customer_id) is int and type(got.name) is str


ROUND_TRIP_FIELDS = ('customer_id', Text('name'), Bool('is_active'), Date('since'), DateTime('created'),
                     Float('score'), List('tags'))
ROUND_TRIP = sio(input_required=ROUND_TRIP_FIELDS, output_required=ROUND_TRIP_FIELDS)


@given(st.fixed_dictionaries({
    'customer_id': st.integers(min_value=-2 ** 63, max_value=2 ** 63 - 1),  # what Int takes
    'name': st.text(min_size=1),
    'is_active': st.booleans(),
    'since': st.dates(),
    'created': st.datetimes(timezones=timezones),
    'score': st.floats(allow_nan=False, allow_infinity=False),
    'tags': st.lists(st.text(max_size=5), max_size=3),
}))
def test_output_written_as_json_reads_back_as_the_same_input(values: dict[str, Any]) -> None:
    compiled = ROUND_TRIP
    wire = orjson.loads(orjson.dumps(compiled.serialize(values)))
    assert compiled.parse_input(wire, None).to_dict() == values


# ################################################################################################
# Input

def test_input_offers_attribute_and_item_access_in_get_and_iteration() -> None:
    got = Input({'a': 1, 'b': None})
    assert got.a == 1 and got['a'] == 1
    assert 'a' in got and 'z' not in got
    assert got.get('a') == 1 and got.get('z') is None and got.get('z', 5) == 5
    assert list(got) == ['a', 'b'] and len(got) == 2
    assert dict(got) == {'a': 1, 'b': None} == got.to_dict()
    assert got == {'a': 1, 'b': None}


def test_input_raises_an_attribute_error_naming_an_unknown_field() -> None:
    with pytest.raises(AttributeError, match='No input named `custmer_id`'):
        Input({'customer_id': 1}).custmer_id  # noqa: B018


def test_input_fields_can_be_set_and_to_dict_is_a_copy() -> None:
    got = Input({'a': 1})
    got.b = 2
    got['c'] = 3
    copy = got.to_dict()
    copy['a'] = 'changed'
    assert got.to_dict() == {'a': 1, 'b': 2, 'c': 3}


def test_input_fields_named_like_methods_are_reachable_as_items() -> None:
    got = Input({'get': 'field', 'keys': 'field'})
    assert got['get'] == 'field' and callable(got.get)


def test_require_any_passes_when_one_of_the_names_has_a_value() -> None:
    Input({'email': '', 'phone': '123'}).require_any('email', 'phone')
    Input({'count': 0}).require_any('count', 'other')
    Input({'flag': False}).require_any('flag')


def test_require_any_raises_a_client_error_when_none_has_a_value() -> None:
    with pytest.raises(SIOInputError) as info:
        Input({'email': '', 'phone': None}).require_any('email', 'phone')
    assert str(info.value) == 'Missing input: at least one of `email`, `phone` is required'
    assert info.value.field == 'email, phone'


def test_reading_an_input_as_an_attribute_runs_no_python_code() -> None:
    # A plain attribute read, not a failed lookup and a __getattr__ call: services read their
    # inputs this way on every request (bench/sio.py: ~30 ns instead of ~470 ns a read)
    got = sio(**CUSTOMER).parse_input({'customer_id': 1, 'name': 'Bo'}, {'format': 'short'})
    calls: list[str] = []
    sys.setprofile(lambda frame, event, arg: calls.append(frame.f_code.co_name) if event == 'call' else None)
    try:
        values = (got.customer_id, got.name, got.format)
    finally:
        sys.setprofile(None)
    assert values == (1, 'Bo', 'short')
    assert calls == []


def test_inputs_named_like_methods_or_pickle_hooks_hide_neither() -> None:
    # Query-string keys are the client's to choose, and every channel param is in the input
    data = {'get': 1, 'keys': 2, 'to_dict': 3, '__reduce_ex__': 4, '__getstate__': 5, '__setstate__': 6,
            '__class__': 7, 'items': 8}
    got = Input(dict(data))
    assert got.get('keys') == 2 and list(got.keys()) == list(data) and got.to_dict() == data
    assert dict(got) == data and got.items == 8 and type(got) is Input
    assert pickle.loads(pickle.dumps(got)) == got
    assert copy.deepcopy(got) == got and copy.copy(got) == got and got.deepcopy() == got
    got.get = 'changed'  # setting reaches the input, as it always did; the method stays reachable
    assert got['get'] == 'changed' and got.get('get') == 'changed'
    del got.keys
    assert 'keys' not in got and callable(got.keys)


def test_a_missing_input_is_an_attribute_error_for_getattr_and_hasattr() -> None:
    got = Input({'a': 1})
    assert getattr(got, 'b', None) is None and not hasattr(got, 'b') and hasattr(got, 'a')
    with pytest.raises(AttributeError, match='No input named `b`'):
        del got.b


def test_input_deepcopy_and_pickle_keep_the_values() -> None:
    got = Input({'a': [1]})
    copy = got.deepcopy()
    copy.a.append(2)
    assert got.a == [1]
    assert pickle.loads(pickle.dumps(got)) == got


# ################################################################################################
# The response payload

def test_payload_accepts_attributes_items_and_update_and_reads_them_back() -> None:
    payload = SIOPayload()
    assert not payload
    payload.a = 1
    payload['b'] = 2
    payload.update({'c': 3}, d=4)
    assert payload
    assert (payload.a, payload['b'], payload.c, payload.d) == (1, 2, 3, 4)
    assert 'a' in payload


def test_payload_raises_an_attribute_error_naming_a_field_not_set() -> None:
    with pytest.raises(AttributeError, match='Output `name` has not been set'):
        SIOPayload().name  # noqa: B018


def test_payload_switches_to_a_list_on_slice_assignment_or_append() -> None:
    payload = SIOPayload()
    payload[:] = ({'a': 1}, {'a': 2})
    payload.append({'a': 3})
    payload.extend([{'a': 4}])
    assert payload[0] == {'a': 1} and payload[-1] == {'a': 4} and len(payload[:]) == 4


def test_new_payload_starts_as_a_list_when_output_is_repeated() -> None:
    assert sio(output_optional='a', output_repeated=True).new_payload()
    assert not sio(output_optional='a').new_payload()


def test_payload_pickles() -> None:
    payload = SIOPayload()
    payload.a = 1
    assert pickle.loads(pickle.dumps(payload)).a == 1


# ################################################################################################
# Writing output

OUTPUT = dict(output_required=('cust_id', Text('name')), output_optional=(DateTime('created'), 'is_vip', 'notes'))


def test_output_keeps_the_declared_order_and_drops_undeclared_keys() -> None:
    compiled = sio(**OUTPUT)
    got = compiled.serialize({'notes': 'n', 'secret': 'x', 'name': 'Bo', 'cust_id': '7'})
    assert list(got.items()) == [('cust_id', 7), ('name', 'Bo'), ('created', None), ('is_vip', None), ('notes', 'n')]


def test_output_is_read_from_a_payload_a_dict_or_an_object_alike() -> None:
    compiled = sio(**OUTPUT, skip_empty_keys=True)
    payload = compiled.new_payload()
    payload.cust_id, payload.name = 1, 'Bo'

    class Row:
        __slots__ = ('cust_id', 'name', 'notes')

        def __init__(self) -> None:
            self.cust_id, self.name, self.notes = 1, 'Bo', None

    Named = namedtuple('Named', 'cust_id name')
    expected = {'cust_id': 1, 'name': 'Bo'}
    for source in (payload, {'cust_id': 1, 'name': 'Bo'}, SimpleNamespace(cust_id=1, name='Bo'), Row(),
                   Named(1, 'Bo'), MappingProxyType({'cust_id': 1, 'name': 'Bo'})):
        assert compiled.serialize(source) == expected


def test_a_list_of_dicts_objects_and_payloads_becomes_a_list() -> None:
    compiled = sio(**OUTPUT, skip_empty_keys=True)
    inner = SIOPayload()
    inner.update(cust_id=3, name='C')
    rows = [{'cust_id': 1, 'name': 'A'}, SimpleNamespace(cust_id=2, name='B'), inner]
    expected = [{'cust_id': 1, 'name': 'A'}, {'cust_id': 2, 'name': 'B'}, {'cust_id': 3, 'name': 'C'}]
    assert compiled.serialize(rows) == expected
    assert compiled.serialize(tuple(rows)) == expected
    payload = compiled.new_payload()
    payload[:] = rows
    assert compiled.serialize(payload) == expected
    payload = compiled.new_payload()
    payload.append(rows[0])
    assert compiled.serialize(payload) == expected[:1]


def test_output_repeated_serializes_a_list_and_an_untouched_payload_as_empty() -> None:
    compiled = sio(output_required='id', output_repeated=True)
    assert compiled.serialize(compiled.new_payload()) == []
    payload = compiled.new_payload()
    payload.append({'id': '1'})
    assert compiled.serialize(payload) == [{'id': 1}]


def test_output_repeated_refuses_attributes_and_single_objects() -> None:
    compiled = sio(output_required='id', output_repeated=True)
    payload = compiled.new_payload()
    payload.id = 1
    with pytest.raises(SIOOutputError, match='append items or assign a list'):
        compiled.serialize(payload)
    with pytest.raises(SIOOutputError, match='must be a list'):
        compiled.serialize({'id': 1})


def test_a_payload_with_both_attributes_and_list_items_is_refused() -> None:
    compiled = sio(output_required='id')
    payload = compiled.new_payload()
    payload.id = 1
    payload.append({'id': 2})
    with pytest.raises(SIOOutputError, match='both attributes and list items'):
        compiled.serialize(payload)


@pytest.mark.parametrize('value', [None, 'absent'])
def test_a_missing_required_output_is_the_services_error(value: Any) -> None:
    compiled = sio(**OUTPUT)
    data = {'name': 'Bo'} if value == 'absent' else {'cust_id': None, 'name': 'Bo'}
    with pytest.raises(SIOOutputError) as info:
        compiled.serialize(data)
    assert str(info.value) == 'Missing output `cust_id` of service `test.service`'
    assert (info.value.field, info.value.reason, info.value.status) == ('cust_id', 'missing', 500)
    assert not isinstance(info.value, SIOInputError)


def test_an_empty_string_for_a_required_output_needs_allow_empty_required() -> None:
    with pytest.raises(SIOOutputError, match=r'Empty output `name`.*allow_empty_required'):
        sio(**OUTPUT).serialize({'cust_id': 1, 'name': ''})
    compiled = sio(output_required=(Text('name'), 'cust_id'), allow_empty_required=True)
    assert compiled.serialize({'cust_id': '', 'name': ''}) == {'name': '', 'cust_id': ''}


def test_an_invalid_output_names_the_field_and_reason() -> None:
    with pytest.raises(SIOOutputError) as info:
        sio(**OUTPUT).serialize({'cust_id': True, 'name': 'Bo'})
    assert str(info.value) == 'Invalid output `cust_id` of service `test.service`: expected an integer'


def test_an_invalid_item_of_a_list_output_is_reported_with_its_index() -> None:
    with pytest.raises(SIOOutputError) as info:
        sio(**OUTPUT).serialize([{'cust_id': 1, 'name': 'A'}, {'cust_id': 2}])
    assert info.value.index == 1 and '(list item 1)' in str(info.value)


def test_missing_optional_outputs_are_null_unless_skip_empty_keys_drops_them() -> None:
    base = {'cust_id': 1, 'name': 'Bo', 'notes': ''}
    assert sio(**OUTPUT).serialize(base) == {'cust_id': 1, 'name': 'Bo', 'created': None, 'is_vip': None, 'notes': ''}
    assert sio(**OUTPUT, skip_empty_keys=True).serialize(base) == {'cust_id': 1, 'name': 'Bo'}


def test_force_empty_keys_keeps_those_keys_when_skipping_empty_ones() -> None:
    compiled = sio(**OUTPUT, skip_empty_keys=True, force_empty_keys=('notes', 'is_vip'))
    assert compiled.serialize({'cust_id': 1, 'name': 'Bo', 'notes': ''}) == \
        {'cust_id': 1, 'name': 'Bo', 'is_vip': None, 'notes': ''}
    assert sio(**OUTPUT, skip_empty_keys=True, force_empty_keys='notes').force_empty_keys == frozenset({'notes'})


def test_an_empty_string_output_stays_one_only_where_it_means_something() -> None:
    compiled = sio(output_optional=(Text('t'), AsIs('a'), Int('i'), Date('d'), List('l')))
    assert compiled.serialize({'t': '', 'a': '', 'i': '', 'd': '', 'l': ''}) == \
        {'t': '', 'a': '', 'i': None, 'd': None, 'l': None}


def test_every_output_value_goes_through_its_type() -> None:
    compiled = sio(output_required=('id', 'is_vip', Date('since'), DateTime('at'), Float('score'), Text('code')))
    got = compiled.serialize({'id': '5', 'is_vip': 'yes', 'since': date(2024, 1, 2),
                              'at': datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), 'score': 2, 'code': 7})
    assert got == {'id': 5, 'is_vip': True, 'since': '2024-01-02', 'at': '2024-01-02T03:04:05+00:00', 'score': 2.0,
                   'code': '7'}
    assert orjson.loads(orjson.dumps(got)) == got


def test_response_elem_wraps_the_output_and_none_is_the_default() -> None:
    assert sio(output_required='id').serialize({'id': 1}) == {'id': 1}
    assert sio(output_required='id', response_elem='customer').serialize({'id': 1}) == {'customer': {'id': 1}}
    assert sio(output_required='id', output_repeated=True, response_elem='items').serialize([{'id': 1}]) == \
        {'items': [{'id': 1}]}


def test_a_payload_of_none_is_an_empty_output() -> None:
    assert sio(output_optional='a').serialize(None) == {'a': None}
    with pytest.raises(SIOOutputError, match='Missing output `a`'):
        sio(output_required='a').serialize(None)


def test_a_failure_inside_generated_code_has_a_readable_traceback() -> None:
    import traceback

    class Broken(Text):
        __slots__ = ()

        def to_json(self, value: Any) -> str:
            raise RuntimeError('boom')

    with pytest.raises(RuntimeError) as info:
        sio(output_required=Broken('x')).serialize({'x': 1})
    text = ''.join(traceback.format_exception(info.value))
    assert '<sio-writer-mapping test.service>' in text and 'v = _c0(v)' in text


# ################################################################################################
# The documentation

def docs_examples() -> list[str]:
    blocks = re.findall(r'```python\n(.*?)```', DOCS_PAGE.read_text(), re.S)
    return [block for block in blocks if block.startswith('# docs-example:')]


def test_the_docs_page_has_a_runnable_example_whose_simpleio_compiles() -> None:
    examples = docs_examples()
    assert examples
    for source in examples:
        namespace: dict[str, Any] = {'__name__': 'docs_example'}
        exec(compile(source, 'docs_example', 'exec'), namespace)
        declared = [value for value in namespace.values()
                    if isinstance(value, type) and 'SimpleIO' in vars(value)]
        assert declared
        for service in declared:
            assert compile_sio(service.SimpleIO, service.__name__) is not None


def test_the_docs_page_lists_every_allowed_attribute_and_type() -> None:
    text = DOCS_PAGE.read_text()
    names = ['input_required', 'input_optional', 'output_required', 'output_optional', 'default_value',
             'skip_empty_keys', 'force_empty_keys', 'allow_empty_required', 'response_elem', 'output_repeated',
             'use_channel_params_only', 'params_priority', 'request_elem', 'namespace',
             'AsIs', 'Bool', 'Int', 'Float', 'Date', 'DateTime', 'List', 'Dict', 'Opaque', 'Text',
             'Boolean', 'Integer', 'Nested', 'Unicode']
    missing = [name for name in names if f'`{name}' not in text]
    assert not missing


# ################################################################################################
# Bytes on output (a command's stdout from the sh library, say): text, since JSON has no bytes

# The SimpleIO of Zato 3.1's blog example that runs commands over ssh (docs/subprocess.md)
COMMAND_OUTPUT = {'input_required': ('host', 'command'), 'output_required': ('is_ok', 'cid'),
                  'output_optional': ('stdout', 'stderr'), 'skip_empty_keys': True, 'response_elem': None}


@pytest.mark.parametrize('cls', [AsIs, Opaque, Text])
def test_bytes_on_output_become_utf8_text_with_undecodable_bytes_replaced(cls: type) -> None:
    assert cls('x').to_json(b'Linux host 6.1\n') == 'Linux host 6.1\n'
    assert cls('x').to_json(bytearray('zażółć'.encode())) == 'zażółć'
    assert cls('x').to_json(b'a\xffb') == 'a\ufffdb'


def test_a_commands_bytes_output_is_written_as_text_and_empty_bytes_are_skipped() -> None:
    compiled = sio(**COMMAND_OUTPUT)
    payload = compiled.new_payload()
    payload.cid = 'c1'
    payload.stdout = b'Linux host 6.1.0 x86_64 GNU/Linux\n'
    payload.stderr = b''
    payload.is_ok = True
    out = compiled.serialize(payload)
    assert out == {'is_ok': True, 'cid': 'c1', 'stdout': 'Linux host 6.1.0 x86_64 GNU/Linux\n'}
    assert orjson.loads(orjson.dumps(out)) == out


def test_bytes_outputs_of_every_writer_path_are_text() -> None:
    # Required and optional, skipping empty keys or not, from a mapping and from an object
    for attrs in (COMMAND_OUTPUT, {**COMMAND_OUTPUT, 'skip_empty_keys': False},
                  {'output_required': ('stdout', Text('stderr'), Opaque('raw'))}):
        compiled = sio(**attrs)
        values = {'is_ok': False, 'cid': 'c', 'stdout': b'out', 'stderr': bytearray(b'err'), 'raw': b'r'}
        for source in (values, SimpleNamespace(**values)):
            out = compiled.serialize(source)
            assert all(type(value) is not bytes and type(value) is not bytearray for value in out.values()), out
            assert orjson.loads(orjson.dumps(out)) == out
    assert sio(**{**COMMAND_OUTPUT, 'skip_empty_keys': False}).serialize(
        {'is_ok': True, 'cid': 'c', 'stdout': b'', 'stderr': b''}) == {'is_ok': True, 'cid': 'c', 'stdout': '',
                                                                      'stderr': ''}


def test_empty_bytes_in_a_required_output_are_an_empty_string() -> None:
    with pytest.raises(SIOOutputError, match='stdout'):
        sio(output_required=('stdout',)).serialize({'stdout': b''})
    assert sio(output_required=('stdout',), allow_empty_required=True).serialize({'stdout': b''}) == {'stdout': ''}


@given(st.binary())
def test_any_bytes_on_output_dump_as_json_text_decoded_as_utf8(data: bytes) -> None:
    out = sio(**COMMAND_OUTPUT).serialize({'is_ok': True, 'cid': 'c', 'stdout': data})
    assert orjson.loads(orjson.dumps(out)).get('stdout', '') == data.decode('utf-8', 'replace')


def test_allow_empty_required_compiles_with_an_untyped_output() -> None:
    # It generated an `if` with an empty block (an IndentationError at deploy time)
    compiled = sio(output_required=('note', 'cust_id'), allow_empty_required=True)
    assert compiled.serialize({'note': '', 'cust_id': ''}) == {'note': '', 'cust_id': ''}
    assert compiled.serialize({'note': [1], 'cust_id': '7'}) == {'note': [1], 'cust_id': 7}
