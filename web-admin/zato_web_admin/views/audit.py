"""The audit log: every change made in the web-admin, and to its users from the CLI."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import func, or_, select

from zato.odb.models import WebAdminAudit
from zato_web_admin.http import Request, Response, Route
from zato_web_admin.listing import Page

if TYPE_CHECKING:
    from zato_web_admin.app import WebAdmin


def audit_log(app: WebAdmin, request: Request) -> Response:
    page = Page.from_request(request)
    query = select(WebAdminAudit)
    if page.query:
        like = f'%{page.query}%'
        query = query.where(or_(WebAdminAudit.username.ilike(like), WebAdminAudit.action.ilike(like),
                                WebAdminAudit.object_name.ilike(like)))
    with app.db() as db:
        total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = db.scalars(query.order_by(WebAdminAudit.id.desc()).offset(page.offset).limit(page.size)).all()
        items = [{'at': row.at.strftime('%Y-%m-%d %H:%M:%S'), 'username': row.username, 'action': row.action,
                  'object': f'{row.object_kind} {row.object_name}'.strip(), 'remote_addr': row.remote_addr,
                  'details': row.details} for row in rows]
    return app.render(request, 'audit.html', items=items, page=page.with_total(total))


ROUTES: list[Route] = [('GET', '/audit', audit_log, False)]
