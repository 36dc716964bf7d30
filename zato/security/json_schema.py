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
        return CompiledSchema(name, validate, frozenset(deps))


def error_details(cid: str, e: fastjsonschema.JsonSchemaValueException, with_details: bool) -> dict[str, Any]:
    """The `details` of a 400 for invalid input: 3.1's shape, with or without what failed where."""
    if not with_details:
        return {'is_ok': False, 'cid': cid, 'message': 'Invalid request'}
    where = e.name or 'data'
    return {'is_ok': False, 'cid': cid, 'message': f'{e.message} (rule `{e.rule}` at `{where}`)'}
