"""Admin services for rate-limit and IP allow-list definitions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from zato.errors import BadRequest, Conflict
from zato.odb.models import ChannelREST, RateLimitDef, SecurityDef, Service as ServiceRow
from zato.security.ratelimit import APPROXIMATE, EXACT, RuleSet, parse_rules
from zato.server.admin.base import AdminService
from zato.server.admin.crud import CRUD, Create, Delete, Edit, Get, GetList

MODES = (APPROXIMATE, EXACT)
MAX_RULES_TEXT = 64 * 1024


def limit_to_dict(row: RateLimitDef, parent_name: str | None) -> dict[str, Any]:
    return {'id': row.id, 'name': row.name, 'rules': row.rules, 'mode': row.mode, 'parent': parent_name,
            'is_active': row.is_active, 'is_default': row.is_default}


def parsed_rules(rules: str) -> RuleSet:
    """A definition's text parsed by the limiter's own parser; ValueError saying why it cannot be used
    (``line 2: ...`` for a bad line)."""
    if len(rules) > MAX_RULES_TEXT:
        raise ValueError('longer than 64 KiB')
    return parse_rules(rules)


def resolve_limit(service: AdminService, session: Any, data: dict[str, Any], current: int | None) -> int | None:
    """The `rate_limit` input of a channel, security definition or service: a definition's name,
    or null/empty to detach; absent keeps `current`."""
    if 'rate_limit' not in data:
        return current
    name = service.ref_name(data, 'rate_limit', 'a rate-limit definition')
    if name is None:
        return None
    row = session.scalars(select(RateLimitDef).where(RateLimitDef.cluster_id == service.server.cluster_id,
                                                     RateLimitDef.name == name)).one_or_none()
    if row is None:
        raise BadRequest(f'Invalid input `rate_limit`: no rate-limit definition named `{name}`')
    return row.id


class _LimitBase(CRUD):
    zato_dont_import = True

    model = RateLimitDef
    label = 'rate-limit definition'
    bus_kind = 'rate_limit'

    def _new_row(self) -> RateLimitDef:
        return RateLimitDef(cluster_id=self.server.cluster_id, version=1, rules='', mode=APPROXIMATE,
                            is_active=True, is_default=False)

    def _parent_name(self, session: Any, row: RateLimitDef) -> str | None:
        parent = session.get(RateLimitDef, row.parent_id) if row.parent_id else None
        return parent.name if parent else None

    def _apply(self, session: Any, row: RateLimitDef, data: dict[str, Any], creating: bool) -> None:
        f = self.field
        self._apply_name(row, data, creating)
        rules = f(data, 'rules', str, creating, row.rules)
        try:
            parsed_rules(rules)
        except ValueError as e:
            # Refused when saved, naming the line and why
            raise BadRequest(f'Invalid input `rules`: {e}') from None
        row.rules = rules
        mode = f(data, 'mode', str, False, row.mode or APPROXIMATE)
        if mode not in MODES:
            raise BadRequest(f'Invalid input `mode`: expected one of {", ".join(MODES)}')
        if mode == EXACT and self.server.limits.limiter.exact_backend is None:
            raise BadRequest('Invalid input `mode`: exact mode needs a PostgreSQL ODB (this cluster uses SQLite)')
        row.mode = mode
        row.is_active = f(data, 'is_active', bool, False, True if creating else row.is_active)
        row.is_default = f(data, 'is_default', bool, False, False if creating else row.is_default)
        if 'parent' in data:
            parent_name = self.ref_name(data, 'parent', 'a rate-limit definition')
            if parent_name is None:
                row.parent_id = None
            else:
                parent = session.scalars(select(RateLimitDef).where(
                    RateLimitDef.cluster_id == self.server.cluster_id, RateLimitDef.name == parent_name)).one_or_none()
                if parent is None:
                    raise BadRequest(f'Invalid input `parent`: no rate-limit definition named `{parent_name}`')
                self._check_no_cycle(session, row, parent)
                row.parent_id = parent.id

    def _check_no_cycle(self, session: Any, row: RateLimitDef, parent: RateLimitDef) -> None:
        seen = set()
        node: RateLimitDef | None = parent
        while node is not None:
            if (row.id is not None and node.id == row.id) or node.id in seen:
                raise BadRequest(f'Invalid input `parent`: `{parent.name}` would make the parents a cycle')
            seen.add(node.id)
            node = session.get(RateLimitDef, node.parent_id) if node.parent_id else None

    def _check_flushed(self, session: Any, row: RateLimitDef) -> None:
        if row.is_default:
            other = session.scalars(select(RateLimitDef).where(
                RateLimitDef.cluster_id == self.server.cluster_id, RateLimitDef.is_default.is_(True),
                RateLimitDef.id != row.id)).first()
            if other is not None:
                session.rollback()
                raise Conflict(f'`{other.name}` is already the default (IP-level) definition')

    def _check_unused(self, session: Any, row: RateLimitDef) -> None:
        users = [*session.scalars(select(ChannelREST.name).where(ChannelREST.rate_limit_id == row.id)),
                 *session.scalars(select(SecurityDef.name).where(SecurityDef.rate_limit_id == row.id)),
                 *session.scalars(select(ServiceRow.name).where(ServiceRow.rate_limit_id == row.id)),
                 *session.scalars(select(RateLimitDef.name).where(RateLimitDef.parent_id == row.id))]
        if users:
            raise Conflict(f'Rate-limit definition `{row.name}` is used by: {", ".join(sorted(users))}')

    def _to_dict(self, session: Any, row: RateLimitDef) -> dict[str, Any]:
        return limit_to_dict(row, self._parent_name(session, row))


class CreateRateLimit(_LimitBase, Create):
    name = 'zato.rate-limit.create'


class EditRateLimit(_LimitBase, Edit):
    """Changing a definition starts its counters afresh (as in 3.1)."""
    name = 'zato.rate-limit.edit'


class DeleteRateLimit(_LimitBase, Delete):
    name = 'zato.rate-limit.delete'


class GetRateLimit(_LimitBase, Get):
    name = 'zato.rate-limit.get'


class GetRateLimitList(_LimitBase, GetList):
    name = 'zato.rate-limit.get-list'


class CheckRateLimit(AdminService):
    """{"rules": text} -> {"ok": true, "rules": [each rule as normalised]} or {"ok": false, "error":
    "line 2: ..."}: the text checked as a save would check it, nothing saved (the web-admin asks this
    as the text is typed). A missing or non-string `rules` is a 400."""
    name = 'zato.rate-limit.check'

    def handle(self) -> None:
        rules = self.field(self.input_dict(), 'rules', str)
        try:
            parsed = parsed_rules(rules)
        except ValueError as e:
            self.response.payload = {'ok': False, 'error': str(e)}
            return
        self.response.payload = {'ok': True, 'rules': [str(rule) for rule in parsed.rules]}
