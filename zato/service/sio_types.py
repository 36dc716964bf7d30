"""SimpleIO element types: one class per kind of value a service reads or writes.

An element is a name plus a conversion in each direction:

* ``to_python(value)`` turns what a client sent (decoded JSON, or a string from a query string or
  a URL path) into the Python value the service sees, or raises ``ValueError`` with a short
  reason that ends up in the client's 400 response ("expected an integer");
* ``to_json(value)`` turns what the service set on its response into something orjson can dump.

Conversions are strict on purpose: ``True`` is not an integer, ``1.5`` is not an integer, and
``" 7"`` is not an integer either. Being lenient here is how 3.1 ended up with services that
behave differently depending on which channel invoked them.

Plain string names in a SimpleIO declaration become elements through ``element_from_decl``,
which applies 3.1's name-based conversions (``*_id`` is an Int, ``is_*`` a Bool, and so on).

The compiler in ``zato.service.sio`` inlines a fast path for each type: when a value already has
the type's ``native`` class and the type says that needs no conversion, ``to_python`` is never
called. That is why each class declares ``native_in``/``native_out`` next to its conversions.
"""

from __future__ import annotations

import math
import re
import sys
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

__all__ = [
    'NOT_GIVEN', 'SIODefinitionError', 'Type', 'AsIs', 'Bool', 'Int', 'Float', 'Date', 'DateTime',
    'List', 'Dict', 'Opaque', 'Text', 'Boolean', 'Integer', 'Nested', 'Unicode', 'element_from_decl',
]


class _NotGiven:
    """The type of ``NOT_GIVEN``; a class of its own so that it reprs readably in error messages."""

    __slots__ = ()

    def __repr__(self) -> str:
        return 'NOT_GIVEN'

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        # Pickling and copying must keep the identity, since code compares with ``is NOT_GIVEN``
        return 'NOT_GIVEN'


NOT_GIVEN: Any = _NotGiven()
"""Marks "no default": ``None`` cannot, because ``None`` is a perfectly good default."""


class SIODefinitionError(ValueError):
    """A SimpleIO declaration is wrong; raised when a service is deployed, never per request."""


class Type:
    """Base class of every element type; on its own it passes values through (like ``AsIs``).

    Subclasses override ``to_python`` and ``to_json``. Instances are immutable and may be shared
    between SimpleIO declarations.
    """

    __slots__ = ('name', 'default')
    name: str
    default: Any

    # Values whose class is exactly ``native_in`` skip to_python (``native_out``: skip to_json).
    # ``None`` means "always convert"; the compiler reads these to generate the fast path.
    native_in: type | None = None
    native_out: type | None = None

    # (low, high): a value of the native class skips the conversion only within these bounds
    native_bounds: tuple[Any, Any] | None = None

    # True for types that do no conversion at all, so the compiler emits no conversion code
    passthrough: bool = False

    # True for types whose output turns bytes and bytearrays into text (``bytes_as_text``) before
    # anything else, so that an empty one counts as an empty string (``skip_empty_keys``); the
    # compiler emits this step even for passthrough types, since orjson cannot dump bytes
    bytes_out_as_text: bool = False

    # For optional elements, an empty string counts as "not given" (``?page_size=`` or a blank
    # form field) for types where an empty string is not a meaningful value; on output, such
    # an empty string is written as null.
    blank_is_missing: bool = False

    # Used in messages and documentation: what the type expects, e.g. "an integer"
    expected: str = 'any value'

    def __init__(self, name: str, *, default: Any = NOT_GIVEN) -> None:
        if not isinstance(name, str):
            raise SIODefinitionError(
                f'{type(self).__name__} needs a str name as its first argument, not {name!r}')
        if not name:
            raise SIODefinitionError(f'{type(self).__name__} needs a non-empty name')
        object.__setattr__(self, 'name', name)
        object.__setattr__(self, 'default', default)

    def __setattr__(self, name: str, value: Any) -> None:
        # Elements are shared by compiled readers, so a change after compilation would be silent
        raise AttributeError(f'{type(self).__name__} elements are immutable')

    def __setstate__(self, state: Any) -> None:
        # pickle and copy restore __slots__ through setattr, which is closed above
        _, slots = state
        for key, value in slots.items():
            object.__setattr__(self, key, value)

    def to_python(self, value: Any) -> Any:
        """Converts an input value; raises ``ValueError`` with a short reason when it cannot."""
        return value

    def to_json(self, value: Any) -> Any:
        """Converts an output value to something orjson can dump; ``ValueError`` when it cannot."""
        return value

    def _extra_repr(self) -> str:
        return ''

    def __repr__(self) -> str:
        default = '' if self.default is NOT_GIVEN else f', default={self.default!r}'
        return f'{type(self).__name__}({self.name!r}{self._extra_repr()}{default})'

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Type)
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash((type(self), self._key()))

    def _key(self) -> tuple[Any, ...]:
        return (self.name, repr(self.default))


def bytes_as_text(value: bytes | bytearray) -> str:
    """Bytes on output (a command's stdout, say) as JSON text: UTF-8, undecodable bytes as U+FFFD."""
    return value.decode('utf-8', 'replace')


class _Untouched(Type):
    """What AsIs and Opaque share: no conversion, but bytes on output become text (JSON has no bytes)."""

    __slots__ = ()
    passthrough = True
    bytes_out_as_text = True

    def to_json(self, value: Any) -> Any:
        if isinstance(value, (bytes, bytearray)):
            return bytes_as_text(value)
        return value


class AsIs(_Untouched):
    """Any value, passed through untouched; also opts a name out of the name-based conversions.
    On output, bytes become text (``bytes_as_text``)."""

    __slots__ = ()


class Opaque(_Untouched):
    """Any value, typically a nested structure, passed through untouched (3.1's ``Nested``); on
    output, bytes become text (``bytes_as_text``)."""

    __slots__ = ()


# Integers: an optional sign and ASCII digits only. ``fullmatch`` rather than ``$``, because ``$``
# also matches before a trailing newline.
_int_re = re.compile(r'[+-]?[0-9]+')

# A signed 64-bit integer, what a database column holds. A JSON body cannot carry more either: a
# larger number arrives as a float (and is refused as one), so a string from a URL path or a query
# string must stop at the same bound, or the same value would be a 400 in a body and reach the
# service (to fail there, as a 500) from a path.
INT_MIN = -2 ** 63
INT_MAX = 2 ** 63 - 1
_OUT_OF_RANGE = f'expected an integer from {INT_MIN} to {INT_MAX}'

# Digits beyond this many (leading zeros aside) are out of range without being parsed, so that a
# client cannot make us parse a huge number; fewer are always in range
_MAX_INT_DIGITS = len(str(INT_MAX))


def _in_range(value: int) -> int:
    if INT_MIN <= value <= INT_MAX:
        return value
    raise ValueError(_OUT_OF_RANGE)


def _int_of_text(value: str) -> int:
    if not _int_re.fullmatch(value):
        raise ValueError('expected an integer')
    if len(value.lstrip('+-0')) > _MAX_INT_DIGITS:
        raise ValueError(_OUT_OF_RANGE)
    return _in_range(int(value))


class Int(Type):
    """An integer from -2**63 to 2**63-1: a JSON integer, or a string of decimal digits with an
    optional sign.

    Rejected: booleans, floats (even ``2.0``: a client sending a float where an integer is
    expected is a client bug worth reporting), strings with spaces or underscores, and numbers
    beyond 64 bits, whichever way they came.
    """

    __slots__ = ()
    native_in = int
    native_out = int
    native_bounds = (INT_MIN, INT_MAX)
    blank_is_missing = True
    expected = 'an integer'

    def to_python(self, value: Any) -> int:
        if type(value) is str:
            # The common case first. isascii() before isdigit(), which alone also takes digits such
            # as '²' that int() refuses; fewer digits than INT_MAX has are always in range.
            if value.isascii() and value.isdigit() and len(value) < _MAX_INT_DIGITS:
                return int(value)
            return _int_of_text(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return _in_range(int(value))
        if isinstance(value, str):  # a str subclass
            return _int_of_text(str(value))
        raise ValueError('expected an integer')

    to_json = to_python


# Decimal notation as JSON and most humans write it; excludes 'nan', 'inf', '1_000' and spaces,
# all of which float() itself would accept.
_MAX_FLOAT_CHARS = 64
_float_re = re.compile(r'[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?')


def _finite_float(value: Any) -> float:
    if type(value) is float and value - value == 0.0:
        # The common case, a finite float: inf - inf and nan - nan are both nan
        return value
    if isinstance(value, bool):
        raise ValueError('expected a number')
    if isinstance(value, (int, float, Decimal)):
        try:
            result = float(value)
        except (OverflowError, ValueError):
            raise ValueError('expected a finite number') from None
    elif isinstance(value, str) and len(value) <= _MAX_FLOAT_CHARS and _float_re.fullmatch(value):
        result = float(value)
    else:
        raise ValueError('expected a number')
    if not math.isfinite(result):
        raise ValueError('expected a finite number')
    return result


class Float(Type):
    """A finite floating-point number: a JSON number, or a decimal string such as ``"1.5e3"``.

    Rejected: booleans, NaN and infinities (JSON cannot carry them back out), and strings that
    float() would take but a person would not write (``"nan"``, ``"1_0"``, ``" 1"``).
    """

    __slots__ = ()
    # A float within these bounds is finite (NaN compares false to both, infinities fall outside),
    # which is exactly what the conversion checks: such a value skips it
    native_in = float
    native_out = float
    native_bounds = (-sys.float_info.max, sys.float_info.max)
    blank_is_missing = True
    expected = 'a number'

    def to_python(self, value: Any) -> float:
        return _finite_float(value)

    to_json = to_python


_bool_strings = {
    'true': True, 'false': False, '1': True, '0': False,
    'yes': True, 'no': False, 'on': True, 'off': False,
}


class Bool(Type):
    """A boolean: JSON true/false, the integers 0 and 1, or one of the strings
    true/false, 1/0, yes/no, on/off in any letter case. Anything else is rejected."""

    __slots__ = ()
    native_in = bool
    native_out = bool
    blank_is_missing = True
    expected = 'a boolean'

    def to_python(self, value: Any) -> bool:
        if value is True or value is False:
            return value
        if isinstance(value, str):
            # Short strings only, so that lower() never runs over a large client string
            if len(value) <= 5:
                result = _bool_strings.get(value.lower())
                if result is not None:
                    return result
        elif isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ValueError('expected a boolean')

    to_json = to_python


class Text(Type):
    """A string. Integers and floats are converted with ``str()`` (``7`` becomes ``"7"``), since
    identifiers sent as numbers are common; booleans, objects and lists are rejected. On output,
    bytes become text (``bytes_as_text``)."""

    __slots__ = ()
    native_in = str
    native_out = str
    bytes_out_as_text = True
    expected = 'a string'

    def to_python(self, value: Any) -> str:
        if isinstance(value, str):
            return str(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ValueError('expected a string')

    def to_json(self, value: Any) -> str:
        # Output also takes the other scalar types databases hand back for text-like columns
        if isinstance(value, (Decimal, UUID)):
            return str(value)
        if isinstance(value, (bytes, bytearray)):
            return bytes_as_text(value)
        return self.to_python(value)


_MAX_DATE_CHARS = 64


class Date(Type):
    """A calendar date: a string in ``format`` (ISO ``YYYY-MM-DD`` by default) becomes a
    ``datetime.date``; a date passes through; a datetime gives its date. Output is ISO."""

    __slots__ = ('format',)
    format: str
    native_in = date  # only when invoked from Python; JSON brings strings
    expected = 'a date'
    blank_is_missing = True

    def __init__(self, name: str, format: str = '%Y-%m-%d', *, default: Any = NOT_GIVEN) -> None:
        super().__init__(name, default=default)
        if not isinstance(format, str) or not format:
            raise SIODefinitionError(f'Date {name!r}: format must be a non-empty str')
        object.__setattr__(self, 'format', format)

    def to_python(self, value: Any) -> date:
        if type(value) is str:
            if self.format == '%Y-%m-%d':
                # strptime costs ~10 µs and fromisoformat ~0.1 µs, but fromisoformat also takes
                # forms such as '20240102', which the length and dash positions rule out
                if len(value) == 10 and value[4] == '-' and value[7] == '-':
                    try:
                        return date.fromisoformat(value)
                    except ValueError:
                        pass
            elif len(value) <= _MAX_DATE_CHARS:
                try:
                    return datetime.strptime(value, self.format).date()
                except ValueError:
                    pass
        elif isinstance(value, datetime):
            return value.date()
        elif isinstance(value, date):
            return value
        raise ValueError(f'expected a date ({self._format_hint()})')

    def to_json(self, value: Any) -> str:
        return self.to_python(value).isoformat()

    def _format_hint(self) -> str:
        return 'YYYY-MM-DD' if self.format == '%Y-%m-%d' else f'format {self.format}'

    def _extra_repr(self) -> str:
        return '' if self.format == '%Y-%m-%d' else f', format={self.format!r}'

    def _key(self) -> tuple[Any, ...]:
        return (*super()._key(), self.format)


class DateTime(Type):
    """A date and time: an ISO 8601 string (``format='iso'``, parsed with
    ``datetime.fromisoformat``) or a string in a ``strptime`` format becomes a
    ``datetime.datetime``; a datetime passes through. Output is ISO 8601."""

    __slots__ = ('format',)
    format: str
    native_in = datetime
    expected = 'a date-time'
    blank_is_missing = True

    def __init__(self, name: str, format: str = 'iso', *, default: Any = NOT_GIVEN) -> None:
        super().__init__(name, default=default)
        if not isinstance(format, str) or not format:
            raise SIODefinitionError(f'DateTime {name!r}: format must be a non-empty str')
        object.__setattr__(self, 'format', format)

    def to_python(self, value: Any) -> datetime:
        if isinstance(value, datetime):
            return value
        if isinstance(value, str) and len(value) <= _MAX_DATE_CHARS:
            try:
                if self.format == 'iso':
                    return datetime.fromisoformat(value)
                return datetime.strptime(value, self.format)
            except ValueError:
                pass
        hint = 'ISO 8601' if self.format == 'iso' else f'format {self.format}'
        raise ValueError(f'expected a date-time ({hint})')

    def to_json(self, value: Any) -> str:
        return self.to_python(value).isoformat()

    def _extra_repr(self) -> str:
        return '' if self.format == 'iso' else f', format={self.format!r}'

    def _key(self) -> tuple[Any, ...]:
        return (*super()._key(), self.format)


class List(Type):
    """A list. A single string becomes a one-element list, because a query string such as
    ``?tag=a`` cannot tell one value from a list of one; tuples become lists."""

    __slots__ = ()
    native_in = list
    native_out = list
    blank_is_missing = True
    expected = 'a list'

    def to_python(self, value: Any) -> list[Any]:
        if isinstance(value, list):
            return value
        if isinstance(value, tuple):
            return list(value)
        if isinstance(value, str):
            return [value]
        raise ValueError('expected a list')

    def to_json(self, value: Any) -> list[Any]:
        if isinstance(value, list):
            return value
        if isinstance(value, (tuple, set, frozenset)):
            return list(value)
        raise ValueError('expected a list')


class Dict(Type):
    """A JSON object, optionally with keys that must be present: ``Dict('address', 'city')``."""

    __slots__ = ('required_keys',)
    required_keys: tuple[str, ...]
    blank_is_missing = True
    expected = 'an object'

    def __init__(self, name: str, *required_keys: str, default: Any = NOT_GIVEN) -> None:
        super().__init__(name, default=default)
        for key in required_keys:
            if not isinstance(key, str) or not key:
                raise SIODefinitionError(f'Dict {name!r}: required keys must be non-empty str, not {key!r}')
        object.__setattr__(self, 'required_keys', tuple(required_keys))

    # Without required keys any dict is valid as it is, so the compiler may skip the call
    @property
    def native_in(self) -> type | None:  # type: ignore[override]
        return None if self.required_keys else dict

    @property
    def native_out(self) -> type | None:  # type: ignore[override]
        return None if self.required_keys else dict

    def to_python(self, value: Any) -> dict[Any, Any]:
        if not isinstance(value, dict):
            raise ValueError('expected an object')
        for key in self.required_keys:
            if key not in value:
                raise ValueError(f'missing key `{key}`')
        return value

    to_json = to_python

    def _extra_repr(self) -> str:
        return ''.join(f', {key!r}' for key in self.required_keys)

    def _key(self) -> tuple[Any, ...]:
        return (*super()._key(), self.required_keys)


# 3.1 spellings, kept so that 3.1 services import unchanged
Boolean = Bool
Integer = Int
Nested = Opaque
Unicode = Text


# 3.1's name-based conversions (its simple-io.conf), fixed rather than configurable: a service
# should mean the same on every server.
_INT_EXACT = frozenset({'id'})
_INT_SUFFIXES = ('_count', '_id', '_size', '_size_min', '_size_max', '_timeout')
_BOOL_PREFIXES = ('by_', 'has_', 'is_', 'may_', 'needs_', 'should_')


def element_from_decl(decl: str | Type) -> Type:
    """Returns the element for one entry of a SimpleIO declaration.

    A ``Type`` is returned as it is. A plain name gets 3.1's name-based conversion: ``id`` and
    names ending in ``_count, _id, _size, _size_min, _size_max, _timeout`` are ``Int``; names
    starting with ``by_, has_, is_, may_, needs_, should_`` are ``Bool`` (the prefix wins when a
    name has both, e.g. ``is_id``); anything else is ``AsIs``. Declare ``AsIs('user_id')`` to
    keep a value as the client sent it.
    """
    if isinstance(decl, Type):
        return decl
    if isinstance(decl, type) and issubclass(decl, Type):
        raise SIODefinitionError(
            f'{decl.__name__} needs a name: write {decl.__name__}(\'my_name\'), not {decl.__name__}')
    if not isinstance(decl, str):
        raise SIODefinitionError(
            f'A SimpleIO element must be a name (str) or a type such as Int(\'name\'), not {decl!r}')
    if not decl:
        raise SIODefinitionError('A SimpleIO element name must not be empty')
    if decl.startswith(_BOOL_PREFIXES):
        return Bool(decl)
    if decl in _INT_EXACT or decl.endswith(_INT_SUFFIXES):
        return Int(decl)
    return AsIs(decl)
