"""Admin services for service statistics and worker liveness, read from the ODB (what every worker
wrote at its last flush) through zato.odb.stats_query, the same functions the web-admin uses.

GET /zato/admin/stats/services?minutes=60               per service: count, errors, mean, p50, p99 ...
GET /zato/admin/stats/series?minutes=60                 per minute, every service together
GET /zato/admin/stats/services/{name}/series?minutes=60 per minute, one service
GET /zato/admin/stats/workers                           servers and their workers, up or down
"""

from __future__ import annotations

from zato.errors import BadRequest, NotFound
from zato.odb import stats_query
from zato.server.admin.services import AdminService

DEFAULT_MINUTES = 60


class _StatsService(AdminService):
    zato_dont_import = True

    def minutes(self) -> int:
        """The `minutes` input: a whole number from 1 to the retention; 60 if not given."""
        data = self.input_dict()
        unknown = sorted(set(data) - {'minutes', 'name'})
        if unknown:
            raise BadRequest(f'Unknown input `{unknown[0]}`; expected: minutes')
        most = self.server.config.get('stats', 'retention') * 60
        try:
            value = self.field(data, 'minutes', int, False, DEFAULT_MINUTES)
        except BadRequest:
            value = None
        if value is None or not 1 <= value <= most:
            raise BadRequest(f'Invalid input `minutes`: expected a whole number from 1 to {most}')
        return value


class GetServiceStatsList(_StatsService):
    """Every service with statistics kept: usage in the last `minutes`, and its last call."""
    name = 'zato.stats.service.get-list'

    def handle(self) -> None:
        minutes = self.minutes()
        with self.server.Session() as session:
            self.response.payload = stats_query.services_summary(session, self.server.cluster_id, minutes)


class GetServiceStatsSeries(_StatsService):
    """One service, minute by minute: requests, errors, error rate, mean, p50, p99, max."""
    name = 'zato.stats.service.get-series'

    def handle(self) -> None:
        minutes = self.minutes()
        name = self.request.channel_params.get('name', '')
        with self.server.Session() as session:
            cluster_id = self.server.cluster_id
            if name not in self.server.store and not stats_query.has_stats(session, cluster_id, name):
                raise NotFound(f'Service `{name}` not found')
            self.response.payload = stats_query.series(session, cluster_id, name, minutes)


class GetStatsSeries(_StatsService):
    """Every service together, minute by minute."""
    name = 'zato.stats.get-series'

    def handle(self) -> None:
        minutes = self.minutes()
        with self.server.Session() as session:
            self.response.payload = stats_query.series(session, self.server.cluster_id, None, minutes)


class GetWorkerList(_StatsService):
    """Servers of the cluster and their workers (up, down or stopped), by heartbeat."""
    name = 'zato.stats.worker.get-list'

    def handle(self) -> None:
        minutes = self.minutes()
        with self.server.Session() as session:
            self.response.payload = stats_query.workers(session, self.server.cluster_id, minutes)
