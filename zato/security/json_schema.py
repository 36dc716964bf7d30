"""JSON Schema validation of service input (``schema = 'myschema.json'``), compiled once with
fastjsonschema (draft-07) when a service or a schema is deployed, never per request.

Schemas come from the environment's ``config/repo/schema/json/`` directory, or from schemas
hot-deployed through the pickup directory or `zato deploy` (those win, and reach every server
through the ODB). A ``$ref`` to another file is resolved by its file name against the same
places; nothing is ever fetched over the network.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import fastjsonschema
import orjson

SCHEME = 'zato-schema'


class SchemaError(ValueError):
    """A schema that cannot be used: missing, not JSON, not a valid schema, or a broken $ref."""


class CompiledSchema:
    """A compiled validator and the schema files it was built from (for recompiling on change)."""

    __slots__ = ('name', 'validate', 'deps')

    def __init__(self, name: str, validate: Callable[[Any], Any], deps: frozenset[str]) -> None:
        self.name = name
        self.validate = validate
        self.deps = deps


class SchemaRepository:
    """Where schemas are found: hot-deployed ones first, then the schema directory."""

    def __init__(self, schema_dir: str) -> None:
        self.schema_dir = os.path.abspath(schema_dir)
        self.deployed: dict[str, str] = {}

    def with_overlay(self, name: str, text: str) -> SchemaRepository:
        """A copy that sees one more (or one changed) deployed schema; for checking before applying."""
        other = SchemaRepository(self.schema_dir)
        other.deployed = {**self.deployed, name: text}
        return other

    def _text(self, name: str) -> str:
        if name in self.deployed:
            return self.deployed[name]
        if os.path.isabs(name):
            path = name
        else:
            path = os.path.abspath(os.path.join(self.schema_dir, name))
            if not path.startswith(self.schema_dir + os.sep):
                raise SchemaError(f'{name}: outside the schema directory')
        try:
            with open(path, encoding='utf-8') as f:
                return f.read()
        except FileNotFoundError:
            raise SchemaError(f'{name}: no such schema (looked in {self.schema_dir} and in deployed schemas)') \
                from None
        except (OSError, UnicodeDecodeError) as e:
            raise SchemaError(f'{name}: cannot read it: {e}') from None

    def load(self, name: str) -> Any:
        text = self._text(name)
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as e:
            raise SchemaError(f'{name}: not valid JSON: {e}') from None

    def compile(self, name: str) -> CompiledSchema:
        """Compiles a schema and everything it refers to; raises SchemaError naming the file and why."""
        deps = {name}
        definition = self.load(name)
        if not isinstance(definition, dict):
            raise SchemaError(f'{name}: a schema must be a JSON object')
        if '$id' not in definition:
            # Relative $refs resolve against this, and so by file name through the handler below
            definition = {**definition, '$id': f'{SCHEME}:///{os.path.basename(name)}'}

        def handler(uri: str) -> Any:
            ref_name = os.path.basename(urlsplit(uri).path)
            if not ref_name:
                raise SchemaError(f'{name}: cannot resolve $ref `{uri}`')
            deps.add(ref_name)
            return self.load(ref_name)

        # Every scheme maps to a local file name: a schema's $id may well be an https URL
        handlers = {scheme: handler for scheme in (SCHEME, 'file', 'http', 'https', 'urn', '')}
        try:
            validate = fastjsonschema.compile(definition, handlers=handlers, use_default=False)
        except SchemaError as e:
            raise SchemaError(f'{name}: {e}') from None
        except fastjsonschema.JsonSchemaDefinitionException as e:
            raise SchemaError(f'{name}: not a valid JSON Schema: {e}') from None
        except Exception as e:  # noqa: BLE001 - fastjsonschema raises many kinds on odd input
            raise SchemaError(f'{name}: cannot compile it: {type(e).__name__}: {e}') from None
        return CompiledSchema(name, with_shortcut(definition, validate), frozenset(deps))


# The shortcut: most request schemas are a flat object of typed fields (`type: object`, `required`,
# `properties` of plain types, `additionalProperties: false`). For those one generated expression
# decides "certainly valid" from exact Python types (what orjson produces), without fastjsonschema's
# sets and branches; anything it is not sure of - a missing field, another type, a subclass, data
# that is not JSON's - goes to fastjsonschema, which gives the verdict and the error. So the shortcut
# can only ever accept a subset of what fastjsonschema accepts: it never decides a refusal.
_EXACT_TYPES: dict[str, tuple[type, ...]] = {
    'string': (str,), 'integer': (int,), 'number': (int, float), 'boolean': (bool,),
    'null': (type(None),), 'object': (dict,), 'array': (list,),
}
_ANNOTATIONS = frozenset(('$schema', '$id', '$comment', 'title', 'description', 'examples'))
_OBJECT_KEYS = _ANNOTATIONS | {'type', 'required', 'properties', 'additionalProperties'}
_FIELD_KEYS = _ANNOTATIONS | {'type'}


def _exact_types(spec: Any) -> tuple[type, ...] | None:
    """The exact Python types a field's `type` admits, or None when it is not a plain type (or list)."""
    names = [spec] if isinstance(spec, str) else spec
    if not isinstance(names, list) or not names:
        return None
    out: list[type] = []
    for type_name in names:
        if not isinstance(type_name, str) or type_name not in _EXACT_TYPES:
            return None
        out.extend(t for t in _EXACT_TYPES[type_name] if t not in out)
    return tuple(out)


def shortcut_source(definition: Any) -> str | None:
    """The expression (of `data`, with the field types as `T0`, `T1` ...) that is true only for data
    the schema certainly accepts, or None when the schema is not a flat object of plain types."""
    shortcut = _shortcut(definition)
    return shortcut[0] if shortcut is not None else None


def _shortcut(definition: Any) -> tuple[str, dict[str, Any]] | None:
    """`shortcut_source`, and the names its expression uses (the field types, ALLOWED)."""
    if not isinstance(definition, dict) or definition.get('type') != 'object' or not set(definition) <= _OBJECT_KEYS:
        return None
    required = definition.get('required', [])
    properties = definition.get('properties', {})
    closed = definition.get('additionalProperties', True)
    if not isinstance(required, list) or not all(isinstance(name, str) for name in required) or \
            not isinstance(properties, dict) or not isinstance(closed, bool):
        return None
    parts = ['type(data) is dict']
    names: dict[str, Any] = {'ALLOWED': frozenset(properties)}
    for name in dict.fromkeys(required):
        if name not in properties:
            parts.append(f'{name!r} in data')
    for index, (name, field) in enumerate(properties.items()):
        types = _exact_types(field['type']) if isinstance(field, dict) and 'type' in field and \
            set(field) <= _FIELD_KEYS else None
        if types is None:
            return None
        names[f'T{index}'] = types
        if name in required:
            parts.append(f'{name!r} in data and type(data[{name!r}]) in T{index}')
        else:
            parts.append(f'({name!r} not in data or type(data[{name!r}]) in T{index})')
    if not closed:
        parts.append('data.keys() <= ALLOWED')
    return ' and '.join(parts), names


def with_shortcut(definition: Any, validate: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`validate`, preceded by the shortcut when the schema has one."""
    shortcut = _shortcut(definition)
    if shortcut is None:
        return validate
    source, namespace = shortcut
    namespace['full'] = validate
    # Only repr() of the schema's field names goes into the code: string literals, nothing else
    code = f'def validate(data):\n    if {source}:\n        return data\n    return full(data)\n'
    exec(compile(code, '<zato-schema-shortcut>', 'exec'), namespace)  # noqa: S102 - source built above
    return namespace['validate']


def error_details(cid: str, e: fastjsonschema.JsonSchemaValueException, with_details: bool) -> dict[str, Any]:
    """The `details` of a 400 for invalid input: 3.1's shape, with or without what failed where."""
    if not with_details:
        return {'is_ok': False, 'cid': cid, 'message': 'Invalid request'}
    where = e.name or 'data'
    return {'is_ok': False, 'cid': cid, 'message': f'{e.message} (rule `{e.rule}` at `{where}`)'}
