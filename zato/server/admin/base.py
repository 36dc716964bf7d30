"""AdminService, the base of every internal service behind the admin API (/zato/admin/...): input read
as a JSON object, typed fields, and the row lookups, conflicts and deletes the admin modules share.

Two rules live here and nowhere else, so that every kind of object follows them:

* an object's id (the `{id}` of a path, or an `id` input) is ASCII digits naming a signed 64-bit
  integer; anything else, `1 `, `+1`, `1_0`, `١` or a number beyond 64 bits included, names no
  object and is a 404 (`parse_id`, used by `get_object`);
* an input of the wrong JSON type is a 400 naming it: typed fields through `field`, and fields
  naming another object (`security`, `rate_limit`, `parent` ...) through `ref_name`, before any
  of them reaches a query.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from zato.errors import BadRequest, Conflict, NotFound
from zato.odb.models import SecurityDef, Service as ServiceRow
from zato.service.base import Service
from zato.service.sio_types import INT_MAX, Int

if TYPE_CHECKING:
    from zato.server.runtime import Runtime

# Ids are SQLite's and PostgreSQL's signed 64-bit integers
MAX_ID = INT_MAX
_MAX_ID_DIGITS = len(str(MAX_ID))

# How much of an id that names nothing a 404 repeats
_SHOWN_ID = 40

# Integer inputs convert as a SimpleIO Int does: a JSON integer, or digits from a query string, within 64 bits
_INT = Int('value')

# Beyond this no int converts to a finite float
_FLOAT_MAX = 2 ** 1023

_KIND_NAMES: dict[Any, str] = {str: 'str', list: 'list', dict: 'dict'}


def parse_id(value: Any) -> int | None:
    """The id that `value`, an `{id}` path segment or an `id` input, names; None when it names none.

    A string must be ASCII digits only: int() would also take a sign, spaces, `_` and the digits
    of other scripts, so that `DELETE .../rest/1%20` deleted object 1. A JSON integer is taken as
    it is. Beyond MAX_ID there is no row (and the database driver could not even bind it).
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= MAX_ID else None
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        return None
    if len(value.lstrip('0')) > _MAX_ID_DIGITS:
        return None
    obj_id = int(value)
    return obj_id if obj_id <= MAX_ID else None


def nul_in(value: Any, where: str = '') -> str | None:
    """The path of the first key or string holding a NUL character in decoded JSON input, or None."""
    if isinstance(value, str):
        return (where or 'input') if '\x00' in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            name = f'{where}.{key}' if where else str(key)
            if isinstance(key, str) and '\x00' in key:
                return name.replace('\x00', '\\0')
            found = nul_in(item, name)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = nul_in(item, f'{where}[{index}]')
            if found is not None:
                return found
    return None


class AdminService(Service):
    """Base of admin services: a JSON object in, a helper to read typed fields. Unlike a user's
    service, an admin service is part of the server, and `self.server` is the whole worker runtime."""

    zato_dont_import = True
    server: Runtime

    def input_dict(self) -> dict[str, Any]:
        data = self.merged_input()
        if data is None:
            raise BadRequest('Expected a JSON object')
        where = nul_in(data)
        if where is not None:
            # PostgreSQL's text cannot hold it (its driver raises), and no name or path should
            raise BadRequest(f'A NUL character is not allowed in input (in `{where}`)')
        return data

    def merged_input(self) -> dict[str, Any] | None:
        """The body's JSON object (none: empty) with the channel's parameters over it; None when the
        body is something else than an object."""
        payload = self.request.payload
        if payload is None or payload == b'':
            payload = {}
        if not isinstance(payload, dict):
            return None
        return {**payload, **self.request.channel_params}

    def get_object(self, session: Any, model: type, label: str) -> Any:
        """The row of `model` named by the `id` path parameter (or input), of this cluster and not
        internal; 404 for an id that names no such row (see `parse_id`), 400 for an `id` input that
        is missing or not a number or a string."""
        params = self.request.channel_params
        raw_id = params['id'] if 'id' in params else self.input_dict().get('id')
        if raw_id is None:
            raise BadRequest('Missing input `id`')
        if not isinstance(raw_id, int | str) or isinstance(raw_id, bool):
            raise BadRequest('Invalid input `id`: expected an integer')
        obj_id = parse_id(raw_id)
        row = None if obj_id is None else session.get(model, obj_id)
        if row is None or row.cluster_id != self.server.cluster_id or getattr(row, 'is_internal', False):
            shown = obj_id if obj_id is not None else f'`{str(raw_id)[:_SHOWN_ID]}`'
            raise NotFound(f'{label} {shown} not found')
        return row

    @staticmethod
    def flush_or_conflict(session: Any, what: str) -> None:
        """Flushes the session; a unique constraint it breaks is a 409 saying `what` already exists."""
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
            raise Conflict(f'{what} already exists') from None

    def delete_object(self, session: Any, row: Any, kind: str) -> None:
        """Deletes the row, tells every worker, and answers with what was deleted."""
        obj_id = row.id
        session.delete(row)
        self.server.commit_change(session, kind, obj_id, action='delete')
        self.response.payload = {'id': obj_id, 'deleted': True}

    def _sec_name(self, session: Any, sec_id: int | None) -> str | None:
        if sec_id is None:
            return None
        sec = session.get(SecurityDef, sec_id)
        return sec.name if sec else None

    def _service_exists(self, session: Any, name: str) -> bool:
        """Deployed on this worker, or known to the ODB (a deploy another worker has not applied yet)."""
        if name in self.server.store:
            return True
        return session.scalars(select(ServiceRow.id).where(ServiceRow.cluster_id == self.server.cluster_id,
                                                           ServiceRow.name == name)).first() is not None

    def resolve_security(self, session: Any, data: dict[str, Any], current: int | None,
                         kinds: tuple[str, ...] | None = None) -> int | None:
        """The id of the security definition named by input `security` (None or '' for none), or
        `current` when the input does not name one; 400 for an unknown name or a kind not in `kinds`."""
        if 'security' not in data:
            return current
        sec_name = self.ref_name(data, 'security', 'a security definition')
        if sec_name is None:
            return None
        sec = session.scalars(select(SecurityDef).where(SecurityDef.cluster_id == self.server.cluster_id,
                                                        SecurityDef.name == sec_name)).one_or_none()
        if sec is None or sec.is_internal:
            raise BadRequest(f'Invalid input `security`: no security definition named `{sec_name}`')
        if kinds is not None and sec.kind not in kinds:
            raise BadRequest(f'Invalid input `security`: `{sec_name}` is a {sec.kind} definition; '
                             f'expected one of {", ".join(kinds)}')
        return sec.id

    @staticmethod
    def ref_name(data: dict[str, Any], name: str, what: str) -> str | None:
        """Input `name`, the name of another object (`what`, as in "a security definition"): None
        when absent, null or empty (no object), else the name; 400 naming the field for anything
        but a string, which must never reach a query."""
        value = data.get(name)
        if value is None or value == '':
            return None
        if not isinstance(value, str):
            raise BadRequest(f'Invalid input `{name}`: expected the name of {what}')
        return value

    def name_input(self, data: dict[str, Any]) -> str | None:
        """The `{name}` path parameter, else input `name` (a string); None when neither is given."""
        name = self.request.channel_params.get('name')
        if name:
            return str(name)
        return self.field(data, 'name', str, required=False)

    @staticmethod
    def field(data: dict[str, Any], name: str, kind: type | tuple[type, ...], required: bool = True,
              default: Any = None) -> Any:
        """Input `name` of type `kind` (bool, int, float, str, list, dict), `default` when absent or
        null; 400 naming the field when it is missing (and `required`) or of another type.

        Strict: a bool is only true or false and never a number; an int is a JSON integer or a
        string of digits (from a query string), within 64 bits; a float takes an integer too."""
        if name not in data or data[name] is None:
            if required:
                raise BadRequest(f'Missing input `{name}`')
            return default
        value = data[name]
        if kind is bool:
            if not isinstance(value, bool):
                raise BadRequest(f'Invalid input `{name}`: expected true or false')
            return value
        if kind is int:
            try:
                return _INT.to_python(value)
            except ValueError as e:
                raise BadRequest(f'Invalid input `{name}`: {e}') from None
        if kind is float:
            number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
                and abs(value) < _FLOAT_MAX else math.nan
            if not math.isfinite(number):
                raise BadRequest(f'Invalid input `{name}`: expected a number')
            return number
        if not isinstance(value, kind):
            expected = _KIND_NAMES.get(kind) or getattr(kind, '__name__', str(kind))
            raise BadRequest(f'Invalid input `{name}`: expected {expected}')
        return value
