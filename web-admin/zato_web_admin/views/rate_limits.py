"""Rate-limit and IP allow-list definitions: list, create, edit, delete, with the rule text checked as
it is typed (by the server's own parser, through the admin API) and again when saved.

The definitions made here are what the "Rate limit" select of REST channels, JSON-RPC channels and
security definitions offers (views.resources.RATE_LIMIT reads them from the ODB)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from zato.admin_client import AdminCallError
from zato.errors import ZatoError
from zato_web_admin.http import Request, Response, Route, json_response
from zato_web_admin.resources import Field, Resource, crud_routes
from zato_web_admin.views.resources import ACTIVE, NAME, rate_limit_choices

if TYPE_CHECKING:
    from zato_web_admin.app import WebAdmin

CHECK_URL = '/security/rate-limits/check'

RULES_HELP = ('One rule a line, "source = limit", # starts a comment. Source: *, an IP address or a CIDR network. '
              'Limit: N/s (burst=M optional), N/m, N/h, N/d or * for none. The first rule that matches a client '
              'applies; a client no rule matches is refused (403), so an empty text refuses everyone.')

RATE_LIMITS = Resource(
    'security/rate-limits', 'Rate limits and IP allow-lists', 'rate-limit definition', '/zato/admin/rate-limits',
    section='Security',
    fields=(
        NAME, ACTIVE,
        Field('rules', 'Rules', 'textarea', RULES_HELP, check=CHECK_URL),
        Field('mode', 'Mode', 'select', default='approximate',
              choices=(('approximate', 'approximate: each worker process counts on its own'),
                       ('exact', 'exact: one count for the whole cluster (PostgreSQL ODB)'))),
        Field('parent', 'Parent', 'select', 'Checked as well: a request passes only if this definition and every '
              'parent allow it', choices=rate_limit_choices),
        Field('is_default', 'Default (IP level)', 'checkbox', 'Checked for every request on every user channel; '
              'one definition at most', default=False),
    ),
    columns=(('name', 'Name'), ('rules', 'Rules'), ('mode', 'Mode'), ('parent', 'Parent'),
             ('is_default', 'Default')),
    search_keys=('name', 'rules', 'parent'), audit_kind='rate-limit')


def check(app: WebAdmin, request: Request) -> Response:
    """The rule text as typed, checked by the server: {"ok", "error", "note"} for static/app.js."""
    try:
        out = app.config.admin.call('POST', '/zato/admin/rate-limits/check', {'rules': request.form.get('text', '')})
    except AdminCallError as e:
        return json_response({'ok': False, 'error': str(e.details)})
    except ZatoError:
        return json_response({'ok': False, 'error': 'No server answers now; the rules are checked when saved'})
    if not isinstance(out, dict) or not out.get('ok'):
        return json_response({'ok': False, 'error': str(out.get('error', '')) if isinstance(out, dict) else ''})
    count = len(out.get('rules') or ())
    return json_response({'ok': True, 'error': '', 'note': f'OK: {count} rule{"" if count == 1 else "s"}'})


ROUTES: list[Route] = [*crud_routes(RATE_LIMITS), ('POST', CHECK_URL, check, False)]
