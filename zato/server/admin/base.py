"""AdminService, the base of every internal service behind the admin API (/zato/admin/...): input read
as a JSON object, typed fields, and the row lookups, conflicts and deletes the admin modules share."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from zato.errors import BadRequest, Conflict, NotFound
from zato.odb.models import SecurityDef, Service as ServiceRow
from zato.service.base import Service


class AdminService(Service):
    """Base of admin services: a JSON object in, a helper to read typed fields."""

    zato_dont_import = True

    def input_dict(self) -> dict[str, Any]:
        payload = self.request.payload
        if payload is None or payload == b'':
            payload = {}
        if not isinstance(payload, dict):
            raise BadRequest('Expected a JSON object')
        return {**payload, **self.request.channel_params}

    def get_object(self, session: Any, model: type, label: str) -> Any:
        """The row of `model` named by the `id` path parameter (or input), of this cluster and not
        internal; 400 for an id that is not a number, 404 for any other miss."""
        raw_id = self.request.channel_params.get('id', self.input_dict().get('id'))
        try:
            obj_id = int(str(raw_id))
        except ValueError:
            raise BadRequest('Invalid input `id`: expected an integer') from None
        row = session.get(model, obj_id)
        if row is None or row.cluster_id != self.server.cluster_id or getattr(row, 'is_internal', False):
            raise NotFound(f'{label} {obj_id} not found')
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
        sec_name = data['security']
        if sec_name in (None, ''):
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
    def field(data: dict[str, Any], name: str, kind: type | tuple[type, ...], required: bool = True,
              default: Any = None) -> Any:
        if name not in data or data[name] is None:
            if required:
                raise BadRequest(f'Missing input `{name}`')
            return default
        value = data[name]
        if kind is bool and not isinstance(value, bool):
            raise BadRequest(f'Invalid input `{name}`: expected true or false')
        if kind is int and isinstance(value, str) and value.isdigit():
            value = int(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise BadRequest(f'Invalid input `{name}`: expected {getattr(kind, "__name__", kind)}')
        return value
