"""The objects SimpleIO hands to a service, and its errors: ``Input`` (``self.request.input``),
``SIOPayload`` (``self.response.payload``), ``SIOInputError`` and ``SIOOutputError``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from copy import deepcopy
from typing import Any

# Reasons an element fails, shared with the generated readers and writers in sio.py
_MISSING = 'missing'
_EMPTY = 'empty'

class SIOError(ValueError):
    """Base class of SimpleIO's per-request errors; ``field`` is '' when no single field is at fault."""

    status: int = 500
    code: str = 'sio.error'

    def __init__(self, field: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.reason = reason

    def to_dict(self) -> dict[str, Any]:
        """The error as a JSON-able dict, for an error response body."""
        return {'code': self.code, 'field': self.field, 'reason': self.reason, 'message': str(self)}


class SIOInputError(SIOError):
    """A client sent a request with missing or invalid input; the server answers 400.

    ``str(e)`` is a sentence fit for the client, e.g. "Missing input `customer_id`" or
    "Invalid input `customer_id`: expected an integer"; ``reason`` is the part after the colon
    (``'missing'`` for a missing field).
    """

    status = 400
    code = 'sio.invalid_input'

    @classmethod
    def missing(cls, field: str) -> SIOInputError:
        return cls(field, _MISSING, f'Missing input `{field}`')

    @classmethod
    def invalid(cls, field: str, reason: object) -> SIOInputError:
        reason = str(reason) or 'invalid value'
        if not field:
            return cls('', reason, reason)
        return cls(field, reason, f'Invalid input `{field}`: {reason}')


class SIOOutputError(SIOError):
    """A service's response does not match its declared output; a server-side bug, hence 500.

    ``index`` is the position of the offending item when the output is a list.
    """

    status = 500
    code = 'sio.invalid_output'

    def __init__(self, field: str, reason: str, service: str = '', index: int | None = None) -> None:
        self.service = service
        self.index = index
        where = f' of service `{service}`' if service else ''
        if index is not None:
            where += f' (list item {index})'
        if reason == _MISSING:
            message = f'Missing output `{field}`{where}'
        elif reason == _EMPTY:
            message = f'Empty output `{field}`{where}; set allow_empty_required to allow empty strings'
        elif field:
            message = f'Invalid output `{field}`{where}: {reason}'
        else:
            message = f'Invalid output{where}: {reason}'
        super().__init__(field, reason, message)


# ################################################################################################

def _class_first(func: Any) -> Any:
    """``func`` as a data descriptor: it wins over an input of the same name in the instance's dict,
    as every attribute of the class did when inputs were reached through ``__getattr__``. Setting
    or deleting the name reaches the input, as before."""

    def set_input(self: Input, value: Any) -> None:
        self.__dict__[func.__name__] = value

    def del_input(self: Input) -> None:
        Input.__delattr__(self, func.__name__)

    # property and the function's own __get__ are both C: reading the method costs one bound-method creation
    return property(func.__get__, set_input, del_input, func.__doc__)


class Input:
    """``self.request.input``: the converted input, readable as ``input.name`` or ``input['name']``.

    Also supports ``in``, ``get()``, iteration over names, ``len()``, ``dict(input)`` and
    ``to_dict()``. A field whose name equals one of the methods (``get``, ``keys``, ``to_dict``,
    ``require_any``, ``deepcopy``) is still reachable as ``input['get']``.

    The inputs are the instance's own ``__dict__``, so ``input.name`` is a plain attribute read
    (tens of nanoseconds; through ``__getattr__`` it cost a failed lookup and an exception each,
    about a microsecond). ``__getattr__`` is only reached for a name that is not there. The
    methods, and the attributes pickling and copying look up on an instance, are data descriptors
    (``_class_first``), so an input of the same name - a query-string key is the client's to
    choose - never hides them.
    """

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        _set_dict(self, {} if data is None else data if type(data) is dict else dict(data))

    def __getattr__(self, name: str) -> Any:
        # Only reached when there is no such input: an input is an instance attribute
        raise AttributeError(f'No input named `{name}`')

    def __delattr__(self, name: str) -> None:
        try:
            del self.__dict__[name]
        except KeyError:
            raise AttributeError(f'No input named `{name}`') from None

    def __getitem__(self, name: str) -> Any:
        return self.__dict__[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self.__dict__[name] = value

    def __delitem__(self, name: str) -> None:
        del self.__dict__[name]

    def __contains__(self, name: object) -> bool:
        return name in self.__dict__

    def __iter__(self) -> Iterator[str]:
        return iter(self.__dict__)

    def __len__(self) -> int:
        return len(self.__dict__)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Input):
            return self.__dict__ == other.__dict__
        if isinstance(other, Mapping):
            return self.__dict__ == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, like a dict

    def __repr__(self) -> str:
        return f'Input({self.__dict__!r})'

    @_class_first
    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__

    @_class_first
    def __setstate__(self, state: dict[str, Any]) -> None:
        _set_dict(self, state)

    # What pickle and copy look up on the instance, not on its class
    __reduce_ex__ = _class_first(object.__reduce_ex__)
    __reduce__ = _class_first(object.__reduce__)

    @_class_first
    def get(self, name: str, default: Any = None) -> Any:
        """The value of ``name``, or ``default`` when there is no such input."""
        return self.__dict__.get(name, default)

    @_class_first
    def keys(self) -> Any:
        """The input names; also what makes ``dict(input)`` work."""
        return self.__dict__.keys()

    @_class_first
    def to_dict(self) -> dict[str, Any]:
        """A shallow copy of the input as a plain dict."""
        return dict(self.__dict__)

    @_class_first
    def deepcopy(self) -> Input:
        """A deep copy, for services that change their input and still need the original (3.1)."""
        return Input(deepcopy(self.__dict__))

    @_class_first
    def require_any(self, *names: str) -> None:
        """Raises ``SIOInputError`` unless at least one of ``names`` has a value (3.1).

        ``None`` and ``''`` count as no value; ``0`` and ``False`` are values.
        """
        if not names:
            raise TypeError('require_any needs at least one name')
        data = self.__dict__
        for name in names:
            value = data.get(name)
            if value is not None and value != '':
                return
        listed = ', '.join(f'`{name}`' for name in names)
        raise SIOInputError(', '.join(names), _MISSING, f'Missing input: at least one of {listed} is required')


# The instance dict's own setter, which the reader uses once per request to hand over its dict
_set_dict = Input.__dict__['__dict__'].__set__
_new_object = object.__new__


def input_of(data: dict[str, Any]) -> Input:
    """An ``Input`` whose inputs are ``data`` itself (not a copy): what the generated reader built."""
    out = _new_object(Input)
    _set_dict(out, data)
    return out


# ################################################################################################

class SIOPayload:
    """``self.response.payload`` of a service that declares output.

    Set fields as attributes (``payload.name = 'x'``) or items (``payload['name'] = 'x'``), or
    several at once with ``payload.update(mapping)``. To return a list instead, assign a slice
    (``payload[:] = rows``) or call ``append(item)`` / ``extend(items)``: the payload switches to
    list mode, where each item is a dict, an object read by attribute (e.g. an SQLAlchemy row)
    or another ``SIOPayload``. A payload is false until something was set on it.
    """

    __slots__ = ('_data', '_items')
    _data: dict[Any, Any]
    _items: list[Any] | None

    def __init__(self, repeated: bool = False) -> None:
        _set_payload_data(self, {})
        # None until list mode is entered; an output_repeated service starts in list mode
        _set_payload_items(self, [] if repeated else None)

    def __setattr__(self, name: str, value: Any) -> None:
        self._data[name] = value

    def __getattr__(self, name: str) -> Any:
        if name in ('_data', '_items'):  # only while unpickling, before __init__ ran
            raise AttributeError(name)
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(f'Output `{name}` has not been set') from None

    def __delattr__(self, name: str) -> None:
        try:
            del self._data[name]
        except KeyError:
            raise AttributeError(f'Output `{name}` has not been set') from None

    def _list(self) -> list[Any]:
        items = self._items
        if items is None:
            items = []
            _set_payload_items(self, items)
        return items

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(key, (slice, int)):
            self._list()[key] = value
        else:
            self._data[key] = value

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, (slice, int)):
            return self._list()[key]
        return self._data[key]

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __bool__(self) -> bool:
        return bool(self._data) or self._items is not None

    def __repr__(self) -> str:
        if self._items is not None:
            return f'SIOPayload({self._items!r})'
        return f'SIOPayload({self._data!r})'

    def __getstate__(self) -> tuple[dict[str, Any], list[Any] | None]:
        return self._data, self._items

    def __setstate__(self, state: tuple[dict[str, Any], list[Any] | None]) -> None:
        _set_payload_data(self, state[0])
        _set_payload_items(self, state[1])

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Sets several fields at once, like ``dict.update``."""
        self._data.update(*args, **kwargs)

    def append(self, item: Any) -> None:
        """Adds one item to a list response."""
        self._list().append(item)

    def extend(self, items: Iterable[Any]) -> None:
        """Adds several items to a list response."""
        self._list().extend(items)


# The slots' own setters: __setattr__ is taken by the output fields, and a payload is made per request
_set_payload_data = SIOPayload.__dict__['_data'].__set__
_set_payload_items = SIOPayload.__dict__['_items'].__set__
