"""Built-in HTTP channels every server has: the health check and the admin API."""

from __future__ import annotations

from zato.server.channels import ChannelConfig

ADMIN_PREFIX = '/zato/admin'

# url path, method, service
_ADMIN = (
    ('/zato/admin/invoke', 'POST', 'zato.service.invoke'),
    ('/zato/admin/services', 'GET', 'zato.service.get-list'),
    ('/zato/admin/services/{name}', 'GET', 'zato.service.get'),
    ('/zato/admin/services/{name}', 'PUT', 'zato.service.edit'),
    ('/zato/admin/services/{name}', 'DELETE', 'zato.service.delete'),
    ('/zato/admin/deploy', 'POST', 'zato.hot-deploy.create'),
    ('/zato/admin/channels/rest', 'GET', 'zato.channel.rest.get-list'),
    ('/zato/admin/channels/rest', 'POST', 'zato.channel.rest.create'),
    ('/zato/admin/channels/rest/{id}', 'GET', 'zato.channel.rest.get'),
    ('/zato/admin/channels/rest/{id}', 'PUT', 'zato.channel.rest.edit'),
    ('/zato/admin/channels/rest/{id}', 'DELETE', 'zato.channel.rest.delete'),
    ('/zato/admin/channels/jsonrpc', 'GET', 'zato.channel.json-rpc.get-list'),
    ('/zato/admin/channels/jsonrpc', 'POST', 'zato.channel.json-rpc.create'),
    ('/zato/admin/channels/jsonrpc/{id}', 'GET', 'zato.channel.json-rpc.get'),
    ('/zato/admin/channels/jsonrpc/{id}', 'PUT', 'zato.channel.json-rpc.edit'),
    ('/zato/admin/channels/jsonrpc/{id}', 'DELETE', 'zato.channel.json-rpc.delete'),
    ('/zato/admin/channels/wsx', 'GET', 'zato.channel.web-socket.get-list'),
    ('/zato/admin/channels/wsx', 'POST', 'zato.channel.web-socket.create'),
    ('/zato/admin/channels/wsx/{id}', 'GET', 'zato.channel.web-socket.get'),
    ('/zato/admin/channels/wsx/{id}', 'PUT', 'zato.channel.web-socket.edit'),
    ('/zato/admin/channels/wsx/{id}', 'DELETE', 'zato.channel.web-socket.delete'),
    ('/zato/admin/channels/wsx/{id}/broadcast', 'POST', 'zato.channel.web-socket.broadcast'),
    ('/zato/admin/channels/wsx/{id}/clients', 'GET', 'zato.channel.web-socket.get-connection-list'),
    ('/zato/admin/channels/kafka', 'GET', 'zato.channel.kafka.get-list'),
    ('/zato/admin/channels/kafka', 'POST', 'zato.channel.kafka.create'),
    ('/zato/admin/channels/kafka/{id}', 'GET', 'zato.channel.kafka.get'),
    ('/zato/admin/channels/kafka/{id}', 'PUT', 'zato.channel.kafka.edit'),
    ('/zato/admin/channels/kafka/{id}', 'DELETE', 'zato.channel.kafka.delete'),
    ('/zato/admin/channels/kafka/{id}/status', 'GET', 'zato.channel.kafka.get-status'),
    ('/zato/admin/wsx/clients/{client_id}/send', 'POST', 'zato.channel.web-socket.invoke-wsx'),
    ('/zato/admin/wsx/clients/{client_id}', 'DELETE', 'zato.channel.web-socket.disconnect-connection'),
    ('/zato/admin/outconns', 'GET', 'zato.outconn.get-kind-list'),
    ('/zato/admin/outconns/{kind}', 'GET', 'zato.outconn.get-list'),
    ('/zato/admin/outconns/{kind}', 'POST', 'zato.outconn.create'),
    ('/zato/admin/outconns/{kind}/{id}', 'GET', 'zato.outconn.get'),
    ('/zato/admin/outconns/{kind}/{id}', 'PUT', 'zato.outconn.edit'),
    ('/zato/admin/outconns/{kind}/{id}', 'DELETE', 'zato.outconn.delete'),
    ('/zato/admin/outconns/{kind}/{id}/ping', 'POST', 'zato.outconn.ping'),
    ('/zato/admin/outconns/{kind}/{id}/change-password', 'POST', 'zato.outconn.change-password'),
    ('/zato/admin/security', 'GET', 'zato.security.get-list'),
    ('/zato/admin/security', 'POST', 'zato.security.create'),
    ('/zato/admin/security/{id}', 'GET', 'zato.security.get'),
    ('/zato/admin/security/{id}', 'PUT', 'zato.security.edit'),
    ('/zato/admin/security/{id}', 'DELETE', 'zato.security.delete'),
    ('/zato/admin/security/{id}/change-password', 'POST', 'zato.security.change-password'),
    ('/zato/admin/rate-limits', 'GET', 'zato.rate-limit.get-list'),
    ('/zato/admin/rate-limits', 'POST', 'zato.rate-limit.create'),
    ('/zato/admin/rate-limits/check', 'POST', 'zato.rate-limit.check'),
    ('/zato/admin/rate-limits/{id}', 'GET', 'zato.rate-limit.get'),
    ('/zato/admin/rate-limits/{id}', 'PUT', 'zato.rate-limit.edit'),
    ('/zato/admin/rate-limits/{id}', 'DELETE', 'zato.rate-limit.delete'),
    ('/zato/admin/scheduler/jobs', 'GET', 'zato.scheduler.job.get-list'),
    ('/zato/admin/scheduler/jobs', 'POST', 'zato.scheduler.job.create'),
    ('/zato/admin/scheduler/jobs/{id}', 'GET', 'zato.scheduler.job.get'),
    ('/zato/admin/scheduler/jobs/{id}', 'PUT', 'zato.scheduler.job.edit'),
    ('/zato/admin/scheduler/jobs/{id}', 'DELETE', 'zato.scheduler.job.delete'),
    ('/zato/admin/scheduler/jobs/{id}/execute', 'POST', 'zato.scheduler.job.execute'),
    ('/zato/admin/stats/services', 'GET', 'zato.stats.service.get-list'),
    ('/zato/admin/stats/services/{name}/series', 'GET', 'zato.stats.service.get-series'),
    ('/zato/admin/stats/series', 'GET', 'zato.stats.get-series'),
    ('/zato/admin/stats/workers', 'GET', 'zato.stats.worker.get-list'),
    ('/zato/admin/caches/builtin', 'GET', 'zato.cache.builtin.get-list'),
    ('/zato/admin/caches/builtin', 'POST', 'zato.cache.builtin.create'),
    ('/zato/admin/caches/builtin/{id}', 'GET', 'zato.cache.builtin.get'),
    ('/zato/admin/caches/builtin/{id}', 'PUT', 'zato.cache.builtin.edit'),
    ('/zato/admin/caches/builtin/{id}', 'DELETE', 'zato.cache.builtin.delete'),
    ('/zato/admin/caches/builtin/{id}/entries', 'GET', 'zato.cache.builtin.entry.get-list'),
    ('/zato/admin/caches/builtin/{id}/entry', 'GET', 'zato.cache.builtin.entry.get'),
    ('/zato/admin/caches/builtin/{id}/entry/delete', 'POST', 'zato.cache.builtin.entry.delete'),
    ('/zato/admin/caches/builtin/{id}/clear', 'POST', 'zato.cache.builtin.clear'),
    ('/zato/admin/pubsub/topics', 'GET', 'zato.pubsub.topic.get-list'),
    ('/zato/admin/pubsub/topics', 'POST', 'zato.pubsub.topic.create'),
    ('/zato/admin/pubsub/topics/{id}', 'GET', 'zato.pubsub.topic.get'),
    ('/zato/admin/pubsub/topics/{id}', 'PUT', 'zato.pubsub.topic.edit'),
    ('/zato/admin/pubsub/topics/{id}', 'DELETE', 'zato.pubsub.topic.delete'),
    ('/zato/admin/pubsub/endpoints', 'GET', 'zato.pubsub.endpoint.get-list'),
    ('/zato/admin/pubsub/endpoints', 'POST', 'zato.pubsub.endpoint.create'),
    ('/zato/admin/pubsub/endpoints/{id}', 'GET', 'zato.pubsub.endpoint.get'),
    ('/zato/admin/pubsub/endpoints/{id}', 'PUT', 'zato.pubsub.endpoint.edit'),
    ('/zato/admin/pubsub/endpoints/{id}', 'DELETE', 'zato.pubsub.endpoint.delete'),
    ('/zato/admin/pubsub/subscriptions', 'GET', 'zato.pubsub.subscription.get-list'),
    ('/zato/admin/pubsub/subscriptions', 'POST', 'zato.pubsub.subscription.create'),
    ('/zato/admin/pubsub/subscriptions/{id}', 'GET', 'zato.pubsub.subscription.get'),
    ('/zato/admin/pubsub/subscriptions/{id}', 'PUT', 'zato.pubsub.subscription.edit'),
    ('/zato/admin/pubsub/subscriptions/{id}', 'DELETE', 'zato.pubsub.subscription.delete'),
    ('/zato/admin/pubsub/subscriptions/{id}/messages', 'GET', 'zato.pubsub.subscription.get-messages'),
    ('/zato/admin/pubsub/subscriptions/{id}/messages/{msg_id}', 'DELETE', 'zato.pubsub.subscription.delete-message'),
    ('/zato/admin/pubsub/subscriptions/{id}/clear', 'POST', 'zato.pubsub.subscription.clear'),
    ('/zato/admin/pubsub/messages/{msg_id}', 'GET', 'zato.pubsub.message.get'),
    ('/zato/admin/pubsub/topics/{id}/publish', 'POST', 'zato.pubsub.topic.publish'),
    ('/zato/admin/pubsub/delivery-tasks', 'GET', 'zato.pubsub.delivery-task.get-list'),
)


def sso_channels() -> list[ChannelConfig]:
    """3.1's /zato/sso/... channels. Not `is_internal`: like any user channel, they are behind the IP
    level of the rate-limit hierarchy (the default definition's allow-list and limits)."""
    from zato.server.sso import ROUTES
    return [ChannelConfig(id=None, name=f'{service}.{method.lower()}', url_path=url_path, method=method,
                          service_name=service) for url_path, method, service in ROUTES]


def pubsub_channels() -> list[ChannelConfig]:
    """3.1's /zato/pubsub/... channels and the acknowledged pull. Not `is_internal`, as SSO's: behind the
    IP level; each caller authenticates as a pub/sub endpoint (zato.server.pubsub.PubSub.authenticate)."""
    from zato.server.pubsub import ROUTES
    return [ChannelConfig(id=None, name=f'{service}.{method.lower()}.{url_path.count("/")}', url_path=url_path,
                          method=method, service_name=service) for url_path, method, service in ROUTES]


def internal_channels(admin_sec_id: int | None, sso: bool = False) -> list[ChannelConfig]:
    channels = [ChannelConfig(id=None, name='zato.ping', url_path='/zato/ping', service_name='zato.ping',
                              is_internal=True),
                ChannelConfig(id=None, name='zato.jwt.log-in', url_path='/zato/jwt/log-in', method='POST',
                              service_name='zato.security.jwt.log-in', is_internal=True),
                ChannelConfig(id=None, name='zato.jwt.log-out', url_path='/zato/jwt/log-out', method='POST',
                              service_name='zato.security.jwt.log-out', is_internal=True)]
    if sso:
        channels.extend(sso_channels())
    channels.extend(pubsub_channels())
    if admin_sec_id is None:
        # Without its credential the admin API is not served at all, rather than served open
        return channels
    for url_path, method, service in _ADMIN:
        channels.append(ChannelConfig(id=None, name=f'{service}.{method.lower()}', url_path=url_path, method=method,
                                      service_name=service, is_internal=True, security_id=admin_sec_id))
    return channels


# The admin API's routes as (url path, method, service): the CLI makes a command of each (zato.cli.admin_commands)
ADMIN_ROUTES = _ADMIN
