"""The dashboard: the last hour of every service together as charts (requests, error rate, latency
p50/p99), the busiest services, and the cluster's servers and workers, up or down."""

from __future__ import annotations

from typing import TYPE_CHECKING

from zato.odb import stats_query
from zato_web_admin.charts import usage_charts
from zato_web_admin.http import Request, Response, Route

if TYPE_CHECKING:
    from zato_web_admin.app import WebAdmin

MINUTES = 60
BUSIEST = 10


def dashboard(app: WebAdmin, request: Request) -> Response:
    cluster_id = app.config.cluster_id
    with app.db() as db:
        servers = stats_query.workers(db, cluster_id, MINUTES)
        points = stats_query.series(db, cluster_id, None, MINUTES)
        summary = stats_query.services_summary(db, cluster_id, MINUTES)
    busiest = sorted((s for s in summary if s['count']), key=lambda s: (-s['count'], s['name']))[:BUSIEST]
    total = {'count': sum(p['count'] for p in points), 'errors': sum(p['errors'] for p in points)}
    workers = [w for server in servers for w in server['workers']]
    return app.render(request, 'home.html', servers=servers, charts=usage_charts(points, 'All services', 'all-'),
                      busiest=busiest, total=total, minutes=MINUTES,
                      workers_up=sum(1 for w in workers if w['is_up']), workers_total=len(workers))


ROUTES: list[Route] = [('GET', '/', dashboard, False)]
