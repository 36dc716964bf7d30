"""SimpleIO: a service's declared input and output, compiled once into a reader and a writer.

A service declares its fields in an inner ``SimpleIO`` class. When the service is deployed,
``compile_sio`` validates that declaration and generates two small Python functions specialised
for exactly those fields: a reader that turns a request into ``self.request.input`` and a writer
that turns ``self.response.payload`` into the object the server dumps as JSON. Generated code
means each request runs straight-line code with the field names and conversions baked in,
instead of looping over generic metadata (bench/sio.py measures the difference).

Errors come in three kinds, by whose mistake they are:

* ``SIODefinitionError`` - the declaration is wrong; raised at deploy time;
* ``SIOInputError`` - the client sent something missing or invalid; the server answers 400;
* ``SIOOutputError`` - the service produced an incomplete or invalid response; the server
  answers 500 and logs it.
"""

from __future__ import annotations

import difflib
import linecache
from collections.abc import Callable, Iterable, Mapping
from copy import deepcopy
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from zato.service.sio_payload import (_EMPTY, _MISSING, Input, SIOError, SIOInputError, SIOOutputError,
                                      SIOPayload, input_of)
from zato.service.sio_types import NOT_GIVEN, SIODefinitionError, Type, bytes_as_text, element_from_decl

__all__ = [
    'CHANNEL_PARAMS_OVER_MSG', 'MSG_OVER_CHANNEL_PARAMS', 'CompiledSIO', 'Input', 'SIODefinitionError',
    'SIOError', 'SIOInputError', 'SIOOutputError', 'SIOPayload', 'compile_sio',
]

# Values of ``params_priority``, spelt as in 3.1
CHANNEL_PARAMS_OVER_MSG = 'channel-params-over-msg'
MSG_OVER_CHANNEL_PARAMS = 'msg-over-channel-params'

_ALLOWED_ATTRIBUTES = (
    'input_required', 'input_optional', 'output_required', 'output_optional', 'default_value',
    'skip_empty_keys', 'force_empty_keys', 'allow_empty_required', 'response_elem', 'output_repeated',
    'use_channel_params_only', 'params_priority', 'request_elem', 'namespace',
)

# 3.1 attributes that are deliberately gone, with the reason, so the error says more than "unknown"
_REMOVED_ATTRIBUTES = {
    'encrypt_secrets': 'secret-named inputs are not encrypted by SimpleIO; '
                       'secrets are left to the security layer',
}

# Exceptions a type's conversion may raise for a bad value. Broader than ValueError so that a
# user-defined Type with a sloppy to_python still produces a 400 rather than a 500.
_CONVERSION_ERRORS = (ValueError, TypeError, ArithmeticError)

_EMPTY_DICT: dict[str, Any] = {}


# ################################################################################################

# ################################################################################################

_IMMUTABLE = (type(None), bool, int, float, complex, str, bytes, Decimal, date, datetime, frozenset, range)


def _is_immutable(value: Any) -> bool:
    if isinstance(value, tuple):
        return all(_is_immutable(item) for item in value)
    return type(value) in _IMMUTABLE


class _Source:
    """Collects the lines and the namespace of one generated function."""

    def __init__(self, name: str, params: str) -> None:
        self.name = name
        self.params = params
        self.lines: list[str] = []
        self.namespace: dict[str, Any] = {'_type': type, '_NG': NOT_GIVEN, '_deepcopy': deepcopy,
                                          '_getattr': getattr, '_CONVERSION_ERRORS': _CONVERSION_ERRORS}

    def add(self, indent: int, line: str) -> None:
        self.lines.append('    ' * indent + line)

    def bind(self, name: str, value: Any) -> str:
        self.namespace[name] = value
        return name

    def compile(self, filename: str) -> tuple[Callable[..., Any], str]:
        # Everything the body uses is a global of the function's own namespace. On CPython 3.11 a
        # global read is specialised (cached by dict version) and costs about a local read, while
        # keyword-only defaults (the older trick to make them locals) cost a dict lookup each per
        # call: with ~30 of them the reader of a 10-field service took 1.36 µs, with globals 1.09
        text = '\n'.join([f'def {self.name}({self.params}):', *self.lines]) + '\n'
        # Registered with linecache so that tracebacks through generated code show its lines
        linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
        exec(compile(text, filename, 'exec'), self.namespace)  # noqa: S102 - our generated source
        return self.namespace[self.name], text


def _declared_with(elem: Type, attr: str, method: str) -> bool:
    """True when class attribute ``attr`` was declared alongside (or below) the ``method`` in use.

    Shortcuts such as ``native_in`` describe one particular ``to_python``; a subclass that
    overrides the method without restating the shortcut must not have its method skipped.
    """
    mro = type(elem).__mro__
    attr_owner = next(index for index, klass in enumerate(mro) if attr in vars(klass))
    method_owner = next(index for index, klass in enumerate(mro) if method in vars(klass))
    return method_owner >= attr_owner


def _add_conversion(src: _Source, indent: int, index: int, elem: Type, method: str, native_attr: str,
                    on_error: str, type_expr: str = '_type(v)') -> None:
    """Emits ``v = elem.<method>(v)``, skipped when ``v`` already has the type's native class
    (``type_expr`` is how the generated code gets the class of ``v``)."""
    if elem.passthrough and _declared_with(elem, 'passthrough', method):
        return
    native = getattr(elem, native_attr) if _declared_with(elem, native_attr, method) else None
    if native is not None:
        condition = f'{type_expr} is not {src.bind(f"_n{index}", native)}'
        if elem.native_bounds is not None:
            # A native value out of the type's bounds (an int beyond 64 bits) is converted, to be refused
            low, high = elem.native_bounds
            condition += f' or not {src.bind(f"_lo{index}", low)} <= v <= {src.bind(f"_hi{index}", high)}'
        src.add(indent, f'if {condition}:')
        indent += 1
    src.add(indent, 'try:')
    src.add(indent + 1, f'v = {src.bind(f"_c{index}", getattr(elem, method))}(v)')
    src.add(indent, 'except _CONVERSION_ERRORS as e:')
    src.add(indent + 1, f'raise {on_error}({elem.name!r}, e) from None')


def _add_bytes_as_text(src: _Source, indent: int, elem: Type) -> None:
    """Emits the ``bytes_out_as_text`` step: bytes become text before the emptiness checks."""
    if not elem.bytes_out_as_text:
        return
    src.bind('_bytes_as_text', bytes_as_text)
    src.add(indent, 'if t is bytes or t is bytearray:')
    src.add(indent + 1, 'v = _bytes_as_text(v)')
    src.add(indent + 1, 't = str')


def _generate_reader(elements: list[tuple[Type, bool]], default_value: Any,
                     service: str) -> tuple[Callable[..., Any], str]:
    """``read(src, out)``: copies each declared input from ``src`` into ``out``, converted."""
    src = _Source('read', 'src, out')
    src.bind('_missing', SIOInputError.missing)
    src.bind('_invalid', SIOInputError.invalid)
    src.add(1, 'get = src.get')
    for index, (elem, required) in enumerate(elements):
        key = repr(elem.name)
        src.add(1, f'v = get({key}, _NG)')
        if required:
            # Null is as good as absent; an empty string is present and left to the conversion
            src.add(1, 'if v is _NG or v is None:')
            src.add(2, f'raise _missing({key})')
            _add_conversion(src, 1, index, elem, 'to_python', 'native_in', '_invalid')
            src.add(1, f'out[{key}] = v')
            continue

        default = elem.default if elem.default is not NOT_GIVEN else default_value
        if default is None:
            default_expr = 'None'
        elif _is_immutable(default):
            default_expr = src.bind(f'_d{index}', default)
        else:
            # Each request gets its own copy, or one request's changes would leak into the next
            default_expr = f'_deepcopy({src.bind(f"_d{index}", default)})'

        condition = 'v is _NG or v is None'
        if elem.blank_is_missing:
            condition += " or v == ''"
        src.add(1, f'if {condition}:')
        src.add(2, f'out[{key}] = {default_expr}')
        src.add(1, 'else:')
        _add_conversion(src, 2, index, elem, 'to_python', 'native_in', '_invalid')
        src.add(2, f'out[{key}] = v')
    src.add(1, 'return out')
    return src.compile(f'<sio-reader {service}>')


def _generate_writer(elements: list[tuple[Type, bool]], *, from_mapping: bool, skip_empty_keys: bool,
                     force_empty_keys: frozenset[str], allow_empty_required: bool,
                     service: str) -> tuple[Callable[..., Any], str]:
    """``write(obj)``: builds the output dict from a mapping (or, if not ``from_mapping``, an
    object read by attribute), in declaration order."""
    src = _Source('write', 'obj')
    src.bind('_missing', lambda field: SIOOutputError(field, _MISSING, service))
    src.bind('_empty', lambda field: SIOOutputError(field, _EMPTY, service))
    src.bind('_invalid', lambda field, e: SIOOutputError(field, str(e) or 'invalid value', service))
    if from_mapping:
        src.add(1, 'get = obj.get')
    src.add(1, 'out = {}')
    for index, (elem, required) in enumerate(elements):
        key = repr(elem.name)
        src.add(1, f'v = get({key})' if from_mapping else f'v = _getattr(obj, {key}, None)')
        # ``t`` holds type(v) so that the emptiness and native-class checks share one call
        if required:
            src.add(1, 'if v is None:')
            src.add(2, f'raise _missing({key})')
            src.add(1, 't = _type(v)')
            _add_bytes_as_text(src, 1, elem)
            if allow_empty_required:
                # An empty string is allowed as it is, without the type's conversion
                src.add(1, 'if t is not str or v:')
                _add_conversion(src, 2, index, elem, 'to_json', 'native_out', '_invalid', 't')
                if src.lines[-1].endswith(':'):
                    src.lines.pop()  # a passthrough type converts nothing: no empty block
            else:
                src.add(1, 'if t is str and not v:')
                src.add(2, f'raise _empty({key})')
                _add_conversion(src, 1, index, elem, 'to_json', 'native_out', '_invalid', 't')
            src.add(1, f'out[{key}] = v')
            continue

        src.add(1, 'if v is not None:')
        src.add(2, 't = _type(v)')
        _add_bytes_as_text(src, 2, elem)
        if skip_empty_keys and elem.name not in force_empty_keys:
            src.add(2, 'if t is not str or v:')
            _add_conversion(src, 3, index, elem, 'to_json', 'native_out', '_invalid', 't')
            src.add(3, f'out[{key}] = v')
        else:
            src.add(2, 'if t is str and not v:')
            # An empty string stays one only where it is a meaningful value of the type
            src.add(3, f'out[{key}] = None' if elem.blank_is_missing else f"out[{key}] = ''")
            src.add(2, 'else:')
            _add_conversion(src, 3, index, elem, 'to_json', 'native_out', '_invalid', 't')
            src.add(3, f'out[{key}] = v')
            src.add(1, 'else:')
            src.add(2, f'out[{key}] = None')
    src.add(1, 'return out')
    kind = 'mapping' if from_mapping else 'object'
    return src.compile(f'<sio-writer-{kind} {service}>')


# ################################################################################################

class CompiledSIO:
    """A service's SimpleIO declaration, validated and compiled; built by ``compile_sio``.

    The declared elements are kept as ``input_required``, ``input_optional``, ``output_required``
    and ``output_optional`` (tuples of ``Type``), e.g. for generating API specifications; the
    generated source is in ``reader_source`` and ``writer_source``. Treat every attribute as
    read-only: the reader and writer were generated from them and would not follow a change.
    """

    def __init__(self, service_name: str, input_required: tuple[Type, ...], input_optional: tuple[Type, ...],
                 output_required: tuple[Type, ...], output_optional: tuple[Type, ...], *,
                 default_value: Any = None, skip_empty_keys: bool = False,
                 force_empty_keys: frozenset[str] = frozenset(), allow_empty_required: bool = False,
                 response_elem: str | None = None, output_repeated: bool = False,
                 use_channel_params_only: bool = False, params_priority: str = CHANNEL_PARAMS_OVER_MSG) -> None:
        self.service_name = service_name
        self.input_required = input_required
        self.input_optional = input_optional
        self.output_required = output_required
        self.output_optional = output_optional
        self.input_names = tuple(elem.name for elem in input_required + input_optional)
        self.output_names = tuple(elem.name for elem in output_required + output_optional)
        self.has_input = bool(self.input_names)
        self.has_output = bool(self.output_names)
        self.default_value = default_value
        self.skip_empty_keys = skip_empty_keys
        self.force_empty_keys = force_empty_keys
        self.allow_empty_required = allow_empty_required
        self.response_elem = response_elem
        self.output_repeated = output_repeated
        self.use_channel_params_only = use_channel_params_only
        self.params_priority = params_priority
        self._msg_first = params_priority == MSG_OVER_CHANNEL_PARAMS
        self._single_plain = not output_repeated and not response_elem
        self._needs_object_body = bool(input_required) and not use_channel_params_only

        inputs = [(elem, True) for elem in input_required] + [(elem, False) for elem in input_optional]
        outputs = [(elem, True) for elem in output_required] + [(elem, False) for elem in output_optional]
        self._read, self.reader_source = _generate_reader(inputs, default_value, service_name)

        def writer(from_mapping: bool) -> tuple[Callable[[Any], dict[str, Any]], str]:
            return _generate_writer(outputs, from_mapping=from_mapping, skip_empty_keys=skip_empty_keys,
                                    force_empty_keys=force_empty_keys, allow_empty_required=allow_empty_required,
                                    service=service_name)

        # Two writers, so that the common case (a dict or an SIO payload) reads by key, not getattr
        self._write_mapping, self.writer_source = writer(True)
        self._write_object, _ = writer(False)

    def __repr__(self) -> str:
        return f'<CompiledSIO {self.service_name} in={self.input_names} out={self.output_names}>'

    # ############################################################################################

    def parse_input(self, payload: Any, params: Mapping[str, Any] | None = None, msg_first: bool = False) -> Input:
        """Builds ``self.request.input`` from the decoded request body and the channel params.

        ``params`` are the URL path parameters and query-string values, already merged by the
        caller. They take precedence over the body unless ``'msg-over-channel-params'`` is chosen,
        by the service (``params_priority``) or by the channel it came through (``msg_first``, its
        ``params_pri``), and all of them are available in the result, declared or not (as in 3.1).
        Of the body, only declared inputs are kept. Raises ``SIOInputError``.
        """
        if params is None:
            params = _EMPTY_DICT
        elif type(params) is not dict:
            params = dict(params)

        if self.use_channel_params_only:
            src = params
        else:
            if type(payload) is not dict:
                payload = self._body_as_dict(payload)
            if not params:
                src = payload
            elif not payload:
                src = params
            elif self._msg_first or msg_first:
                src = {**params, **payload}
            else:
                src = {**payload, **params}

        return input_of(self._read(src, dict(params) if params else {}))

    def _body_as_dict(self, payload: Any) -> dict[Any, Any]:
        if payload is None or payload == '' or payload == b'':
            return _EMPTY_DICT
        if isinstance(payload, Mapping):
            return dict(payload)
        if self._needs_object_body:
            raise SIOInputError.invalid('', 'Expected a JSON object')
        # A body the declaration cannot use, and nothing required from it
        return _EMPTY_DICT

    # ############################################################################################

    def new_payload(self) -> SIOPayload:
        """A fresh ``self.response.payload`` for one invocation."""
        return SIOPayload(self.output_repeated)

    def serialize(self, payload: Any) -> Any:
        """Turns what the service set as its response into the object to dump as JSON.

        ``payload`` is an ``SIOPayload``, a dict, an object read by attribute (e.g. an
        SQLAlchemy row), or a list of those. Raises ``SIOOutputError``.
        """
        output: Any
        if type(payload) is SIOPayload:
            items = payload._items
            if items is None:
                if self._single_plain:  # the common case: one object, no wrapper
                    return self._write_mapping(payload._data)
                output = self._write_single(payload._data)
            elif payload._data:
                reason = ('output_repeated is set: append items or assign a list, not attributes'
                          if self.output_repeated else 'both attributes and list items were set')
                raise SIOOutputError('', reason, self.service_name)
            else:
                output = self._write_list(items)
        elif type(payload) is dict:
            output = self._write_single(payload)
        elif isinstance(payload, list) or (isinstance(payload, tuple) and not hasattr(payload, '_fields')):
            output = self._write_list(payload)
        elif payload is None:
            output = self._write_single(_EMPTY_DICT)
        else:
            output = self._write_single(payload)

        if self.response_elem:
            return {self.response_elem: output}
        return output

    def _write_single(self, item: Any) -> dict[str, Any]:
        if self.output_repeated:
            raise SIOOutputError('', 'output_repeated is set, so the response must be a list', self.service_name)
        return self._write_item(item)

    def _write_item(self, item: Any) -> dict[str, Any]:
        if type(item) is dict:
            return self._write_mapping(item)
        if type(item) is SIOPayload:
            return self._write_mapping(item._data)
        if isinstance(item, Mapping):
            return self._write_mapping(item)
        return self._write_object(item)

    def _write_list(self, items: Iterable[Any]) -> list[dict[str, Any]]:
        write_mapping, write_item = self._write_mapping, self._write_item
        try:
            return [write_mapping(item) if type(item) is dict else write_item(item) for item in items]
        except SIOOutputError:
            pass
        # Rare path: run again, item by item, to say which item was wrong
        for index, item in enumerate(items):
            try:
                write_item(item)
            except SIOOutputError as e:
                raise SIOOutputError(e.field, e.reason, self.service_name, index) from None
        raise AssertionError('unreachable: an item failed once and then passed')  # pragma: no cover


# ################################################################################################

def _elements(service: str, attr: str, value: Any) -> tuple[Type, ...]:
    # 3.1 allows a bare string for a single element, and so does a single Type
    if value is None:
        return ()
    if isinstance(value, (str, Type)):
        value = (value,)
    elif not isinstance(value, (tuple, list)):
        raise SIODefinitionError(f'{service}: SimpleIO.{attr} must be a tuple of elements, not {value!r}')
    elements = []
    for decl in value:
        try:
            elements.append(element_from_decl(decl))
        except SIODefinitionError as e:
            raise SIODefinitionError(f'{service}: SimpleIO.{attr}: {e}') from None
    return tuple(elements)


def _check_unique(service: str, direction: str, required: tuple[Type, ...], optional: tuple[Type, ...]) -> None:
    seen: dict[str, str] = {}
    for attr, elements in ((f'{direction}_required', required), (f'{direction}_optional', optional)):
        for elem in elements:
            previous = seen.get(elem.name)
            if previous == attr:
                raise SIODefinitionError(f'{service}: SimpleIO {direction} `{elem.name}` is declared twice in {attr}')
            if previous is not None:
                raise SIODefinitionError(
                    f'{service}: SimpleIO {direction} `{elem.name}` is both required and optional')
            seen[elem.name] = attr


def _flag(service: str, attrs: dict[str, Any], name: str) -> bool:
    value = attrs.get(name, False)
    if not isinstance(value, bool):
        raise SIODefinitionError(f'{service}: SimpleIO.{name} must be True or False, not {value!r}')
    return value


def _declared_attributes(sio_class: type, service: str) -> dict[str, Any]:
    """The public attributes of a SimpleIO class, including those it inherits from base classes."""
    attrs: dict[str, Any] = {}
    for klass in reversed(sio_class.__mro__):
        if klass is object:
            continue
        for name, value in vars(klass).items():
            if not name.startswith('_'):
                attrs[name] = value
    for name in attrs:
        if name in _ALLOWED_ATTRIBUTES:
            continue
        if name in _REMOVED_ATTRIBUTES:
            raise SIODefinitionError(f'{service}: SimpleIO.{name} is not supported: {_REMOVED_ATTRIBUTES[name]}')
        close = difflib.get_close_matches(name, _ALLOWED_ATTRIBUTES, n=1)
        hint = f' (did you mean `{close[0]}`?)' if close else ''
        raise SIODefinitionError(f'{service}: unknown SimpleIO attribute `{name}`{hint}; '
                                 f'allowed: {", ".join(_ALLOWED_ATTRIBUTES)}')
    return attrs


def compile_sio(sio_class: type | None, service_name: str) -> CompiledSIO | None:
    """Validates a service's ``SimpleIO`` class and compiles it; ``None`` when there is none.

    Raises ``SIODefinitionError`` for mistakes in the declaration: unknown attributes (typos
    such as ``input_requried``), elements that are neither names nor types, an element declared
    twice or both required and optional, and attributes of the wrong kind.
    """
    if sio_class is None:
        return None
    service = service_name
    if not isinstance(sio_class, type):
        raise SIODefinitionError(f'{service}: SimpleIO must be a class, not {sio_class!r}')
    attrs = _declared_attributes(sio_class, service)

    input_required = _elements(service, 'input_required', attrs.get('input_required'))
    input_optional = _elements(service, 'input_optional', attrs.get('input_optional'))
    output_required = _elements(service, 'output_required', attrs.get('output_required'))
    output_optional = _elements(service, 'output_optional', attrs.get('output_optional'))
    _check_unique(service, 'input', input_required, input_optional)
    _check_unique(service, 'output', output_required, output_optional)

    force_empty_keys = attrs.get('force_empty_keys') or ()
    if isinstance(force_empty_keys, str):
        force_empty_keys = (force_empty_keys,)
    if not isinstance(force_empty_keys, (tuple, list, set, frozenset)) \
            or not all(isinstance(name, str) for name in force_empty_keys):
        raise SIODefinitionError(f'{service}: SimpleIO.force_empty_keys must be a tuple of output names')
    output_names = {elem.name for elem in output_required + output_optional}
    for name in force_empty_keys:
        if name not in output_names:
            raise SIODefinitionError(f'{service}: SimpleIO.force_empty_keys names `{name}`, which is not an output')

    response_elem = attrs.get('response_elem')
    if response_elem is not None and not isinstance(response_elem, str):
        raise SIODefinitionError(f'{service}: SimpleIO.response_elem must be a str or None, not {response_elem!r}')

    params_priority = attrs.get('params_priority', CHANNEL_PARAMS_OVER_MSG)
    if params_priority not in (CHANNEL_PARAMS_OVER_MSG, MSG_OVER_CHANNEL_PARAMS):
        raise SIODefinitionError(f'{service}: SimpleIO.params_priority must be {CHANNEL_PARAMS_OVER_MSG!r} '
                                 f'or {MSG_OVER_CHANNEL_PARAMS!r}, not {params_priority!r}')

    return CompiledSIO(
        service, input_required, input_optional, output_required, output_optional,
        default_value=attrs.get('default_value'),
        skip_empty_keys=_flag(service, attrs, 'skip_empty_keys'),
        force_empty_keys=frozenset(force_empty_keys),
        allow_empty_required=_flag(service, attrs, 'allow_empty_required'),
        response_elem=response_elem or None,
        output_repeated=_flag(service, attrs, 'output_repeated'),
        use_channel_params_only=_flag(service, attrs, 'use_channel_params_only'),
        params_priority=params_priority,
    )
