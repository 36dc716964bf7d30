"""The dashboard: the cluster's servers and workers, and the usage of its services in the last hour."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zato.odb import stats_query
from zato_web_admin.http import Request, Response

if TYPE_CHECKING:
    from zato_web_admin.app import WebAdmin


def routes(app: WebAdmin) -> list[tuple[str, str, Any, bool]]:

    def dashboard(request: Request) -> Response:
        with app.db() as db:
            workers = stats_query.workers(db, app.config.cluster_id)
            services = stats_query.services_summary(db, app.config.cluster_id, minutes=60)
        return app.render(request, 'home.html', workers=workers, services=services)

    return [('GET', '/', dashboard, False)]
