"""The runtime of one worker process: config, ODB, bus, services, channels; kept current by the
cluster bus so the request path only ever reads memory."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gevent
from gevent.lock import RLock
from sqlalchemy import select, update

from zato.bounded_cache import BoundedCache
from zato.bus.factory import make_bus
from zato.errors import ServiceNotFound
from zato.odb.engine import make_session_factory, make_url
from zato.odb.lease import LeaseStore
from zato.odb.models import (ChannelREST, ChannelWSX, Cluster, DeployedCode, OutConn, RateLimitDef, SecurityDef,
                             Service as ServiceRow)
from zato.security.authenticate import Authenticator
from zato.security.json_schema import SchemaRepository
from zato.security.jwt_auth import JWTManager, signing_key
from zato.security.secrets_file import Crypto, read_secrets
from zato.config import settings
from zato.server import guards
from zato.server.caches import Caches
from zato.config.security import SecurityConfig
from zato.server.channels import ChannelConfig
from zato.server.internal_routes import internal_channels
from zato.server.kafka_channel import KafkaChannels
from zato.server.odb_settings import odb_settings
from zato.server.limits import DefRow, RateLimits
from zato.server.locks import Locks
from zato.server.outconns import OutConns
from zato.server.preload import odb_engine
from zato.server.pubsub_delivery import WAKE_SUBJECT
from zato.server.pubsub import SERVICES as PUBSUB_SERVICES, PubSub
from zato.server.router import Router
from zato.server.scheduler import RUN_SUBJECT as SCHEDULER_RUN_SUBJECT, Scheduler
from zato.server.stats import ServiceStats
from zato.server.stats_flush import StatsFlusher
from zato.server.store import ServiceStore
from zato.server.wsx.config import WSXChannelConfig
from zato.server.wsx.registry import WSXRegistry
from zato.server.async_queue import AsyncQueue
from zato.service.invoker import ASYNC_SUBJECT, Invoker
from zato.service.user_config import ODB_PREFIX as USER_CONF_PREFIX, UserConfig

if TYPE_CHECKING:
    from zato.server.sso_linked import LinkedCredentials
    from zato.sso.api import SSO

logger = logging.getLogger('zato.runtime')

CONFIG_SUBJECT = 'config.changed'

# What a change of one kind of object runs on each worker: (ODB session, the object's id, the bus message)
ChangeHandler = Callable[[Any, int, dict[str, Any]], None]
Reload = Callable[[Any], None]
ADMIN_SEC_NAME = 'admin.invoke'


def bus_settings(config: settings.ServerConfig, odb: dict[str, Any]) -> dict[str, Any]:
    backend = config.get('bus', 'backend')
    if backend == 'local':
        run_dir = os.path.join(config.env_dir, 'run', 'bus')
        if len(os.fsencode(run_dir)) > 60:
            # UNIX socket paths hold at most 107 bytes; a deep environment gets a short private dir
            digest = hashlib.sha256(os.fsencode(config.env_dir)).hexdigest()[:16]
            run_dir = os.path.join(tempfile.gettempdir(), f'zato-bus-{os.getuid()}-{digest}')
        return {'backend': 'local', 'run_dir': run_dir}
    url = make_url(odb, config.env_dir)
    dsn = url.set(drivername='postgresql').render_as_string(hide_password=False)
    return {'backend': 'postgresql', 'dsn': dsn}


class Runtime:
    """Everything one worker serves from."""

    def __init__(self, env_dir: str, server_name: str = 'server1') -> None:
        self.env_dir = os.path.abspath(env_dir)
        self.server_name = server_name
        self.config = settings.load(self.env_dir)
        secrets = read_secrets(self.env_dir)
        self.crypto = Crypto(secrets['secret_key'])
        self.jwt = JWTManager(self, signing_key(secrets['secret_key']))
        self.odb_config = odb_settings(self.config, secrets, self.crypto)
        if self.odb_config['engine'] == 'postgresql':
            from zato.odb.gevent_psycopg import install
            install()
        # The engine the master made and warmed before forking, if it did (zato/server/preload.py)
        self.engine = odb_engine(make_url(self.odb_config, self.env_dir), self.config.get('odb', 'pool_size'),
                                 self.config.get('odb', 'pool_timeout'))
        self.Session = make_session_factory(self.engine)
        self.cluster_name = self.config.get('main', 'cluster_name')
        # SSO, when [component_enabled] sso is on: sso.conf is read now, so that a bad one stops the start
        self.sso: SSO | None = None
        self._sso_start: Callable[[], SSO] | None = None
        self.linked: LinkedCredentials | None = None  # SSO's linked credentials (zato.server.sso_linked)
        if self.config.get('component_enabled', 'sso'):
            from zato.server.sso import build as build_sso
            self._sso_start = build_sso(self, secrets['secret_key'])

        self.store = ServiceStore(SchemaRepository(os.path.join(self.env_dir, 'config', 'repo', 'schema', 'json')),
                                  schema_details=self.config.get('misc', 'return_json_schema_errors'))
        self.stats = ServiceStats()
        self.stats_flusher: StatsFlusher | None = None
        self.invoker: Invoker = Invoker(self.store, self, self.stats)
        self.async_queue = AsyncQueue(self)
        self.user_config = UserConfig()
        self.user_config.load_dir(os.path.join(self.env_dir, 'config', 'repo', 'user-conf'))
        self.authenticator = Authenticator(jwt=self.jwt)
        self.security: dict[int, SecurityConfig] = {}
        self.channels: dict[int, ChannelConfig] = {}
        self.router: Router[ChannelConfig] = Router([])
        self._internal: list[ChannelConfig] = []
        self.code_versions: dict[str, int] = {}
        self._service_names: BoundedCache[int, str] = BoundedCache(10_000)  # service id -> name, for invoke_by_id
        self.admin_sec_id: int | None = None
        self.bus = make_bus(bus_settings(self.config, self.odb_config))
        self.trusted_proxies = self.config.get('http', 'trusted_proxies')
        self.limit_defs: dict[int, DefRow] = {}
        self.service_limits: dict[str, int] = {}
        self.limits = RateLimits(self._exact_backend())
        self.seen_version = 0
        self._lock = RLock()
        self._greenlets: list[gevent.Greenlet] = []
        self.cluster_id = 0
        self.leases = LeaseStore(self.engine, 0)  # its cluster_id is set once start() knows it
        self.locks = Locks(self.leases, self.server_name)
        self.wsx = WSXRegistry(self)
        self.outconns: dict[str, dict[str, Any]] = {}
        self.outconn_mgr = OutConns(self)
        self.kafka_channels = KafkaChannels(self)
        self.service_guards: dict[str, guards.Guard] = {}  # a service's own level, for JSON-RPC's calls
        self._handlers: dict[str, ChangeHandler] = {}
        self._reloads: list[Reload] = []
        self.on_change('code', self._code_changed)
        self.on_change('channel', self._channel_changed)
        self.on_change('channel_wsx', self._wsx_channel_changed)
        self.on_change('service', self._service_changed)
        self.on_change('rate_limit', self._rate_limit_changed)
        self.on_change('security', self._security_changed)
        self.on_change('outconn', self._outconn_changed, self.outconn_mgr.reload_all)
        self.on_change('channel_kafka', self.kafka_channels.changed, self.kafka_channels.reload_all)
        self.caches = Caches(self.bus, lambda: self.cluster_id)
        self.on_change('cache_builtin', self.caches.changed, self.caches.reload_all)
        self.scheduler = Scheduler(self)  # registers its own kind of change
        self.pubsub = PubSub(self)
        self.on_change('pubsub_endpoint', self.pubsub.endpoint_changed, self.pubsub.reload)
        self.on_change('pubsub_topic', self.pubsub.topic_changed)
        self.on_change('pubsub_sub', self.pubsub.sub_changed)

    def _exact_backend(self) -> Any:
        """Exact (cluster-wide) rate limits count in the PostgreSQL ODB; with SQLite there is none."""
        if self.odb_config['engine'] != 'postgresql':
            return None
        from zato.security.ratelimit.exact import PostgresExact
        url = make_url(self.odb_config, self.env_dir)
        return PostgresExact(url.set(drivername='postgresql').render_as_string(hide_password=False))

    # Start-up

    def start(self, watch_pickup: bool = True) -> None:
        from zato.server.admin import jsonrpc as admin_jsonrpc
        from zato.server.admin import rate_limits as admin_rate_limits
        from zato.server.admin import security as admin_security
        from zato.server.admin import services as admin_services
        from zato.server.admin import stats as admin_stats
        from zato.server.admin import outconns as admin_outconns
        from zato.server.admin import wsx as admin_wsx
        from zato.server.admin import kafka_channel as admin_kafka_channel
        from zato.server import pattern_services
        from zato.server.admin import cache as admin_cache
        from zato.server.admin import scheduler as admin_scheduler
        from zato.server.admin import pubsub as admin_pubsub
        from zato.server import pubsub as server_pubsub
        from zato.server import pubsub_cleanup
        with self.Session() as session:
            cluster = session.scalars(select(Cluster).where(Cluster.name == self.cluster_name)).one_or_none()
            if cluster is None:
                raise RuntimeError(f'Cluster `{self.cluster_name}` not found in the ODB')
            self.cluster_id = cluster.id
        self.leases.cluster_id = self.cluster_id
        self.store.add_internal(admin_services)
        self.store.add_internal(admin_security)
        self.store.add_internal(admin_rate_limits)
        self.store.add_internal(admin_wsx)
        self.store.add_internal(admin_outconns)
        self.store.add_internal(admin_jsonrpc)
        self.store.add_internal(admin_stats)
        self.store.add_internal(admin_kafka_channel)
        self.store.add_internal(pattern_services)
        self.store.add_internal(admin_cache)
        self.store.add_internal(admin_scheduler)
        self.store.add_internal(admin_pubsub)
        self.store.add_internal(server_pubsub)
        self.store.add_internal(pubsub_cleanup)
        self.pubsub.start(self.cluster_id)
        if self._sso_start is not None:
            from zato.server import sso as server_sso
            from zato.server import sso_attr as server_sso_attr
            from zato.server.sso_linked import LinkedCredentials
            from zato.sso.linked import LINKED_KIND
            self.sso = self._sso_start()
            self.linked = LinkedCredentials(self.sso, self.limits.limiter)
            self.on_change(LINKED_KIND, self._linked_changed)
            self.store.add_internal(server_sso)
            self.store.add_internal(server_sso_attr)
            self._greenlets.append(gevent.spawn(server_sso.Purger(self, self.sso).run))
        self.kafka_channels.start()
        self.wsx.start()
        self.pubsub.wsx.start()
        self.bus.subscribe(CONFIG_SUBJECT, self.on_config_changed)
        self.bus.subscribe(ASYNC_SUBJECT, self.async_queue.on_wake)
        self.bus.subscribe(SCHEDULER_RUN_SUBJECT, self.scheduler.on_run)
        if self.pubsub.delivery is not None:
            self.bus.subscribe(WAKE_SUBJECT, self.pubsub.delivery.wake)
        self.bus.subscribe('bus.reconnected', self._on_reconnected)
        self.caches.start()
        # Subscribe before loading, so no change made meanwhile is missed
        self.jwt.start()  # subscribes before the bus starts; loads sessions after
        self.bus.start()
        self.jwt.load()
        self.reload_all()
        self._greenlets.append(gevent.spawn(self._check_config_version))
        pubsub_cleanup.ensure_job(self)
        self._greenlets.append(self.scheduler.start())
        if self.pubsub.delivery is not None:
            self.pubsub.delivery.start()
        self.stats_flusher = StatsFlusher(self.stats, self.engine, self.cluster_id, self.server_name,
                                          self.config.get('stats', 'flush_interval'),
                                          self.config.get('stats', 'retention'))
        self.stats_flusher.start()
        self._greenlets.append(gevent.spawn(self.async_queue.run_sweeper))
        if watch_pickup:
            from zato.server.hot_deploy import PickupWatcher
            from zato.server.startup import run_startup_services
            self._greenlets.append(gevent.spawn(PickupWatcher(self).run))
            self._greenlets.append(gevent.spawn(run_startup_services, self))

    def _on_reconnected(self, _msg: dict[str, Any]) -> None:
        # Whatever was published while the bus was away is read back from the ODB
        self.reload_all()
        self.jwt.load()

    def stop(self) -> None:
        self.kafka_channels.stop_all()  # first: a message in hand may still need its connection
        self.outconn_mgr.stop_all()
        self.caches.stop()
        for g in self._greenlets:
            g.kill(block=False)
        self.scheduler.stop()  # the lease given back: another worker fires jobs at once
        if self.pubsub.delivery is not None:
            self.pubsub.delivery.stop()  # its leases given back: other workers deliver at once
        if self.pubsub.batcher is not None:
            self.pubsub.batcher.close()
        self.pubsub.meta.stop()  # the last publication and delivery times of endpoints written
        self.bus.stop()
        if self.stats_flusher is not None:
            self.stats_flusher.stop()  # the last statistics, and the word that this worker stopped
        self.engine.dispose()

    def service_name_of_id(self, service_id: int) -> str:
        """The name of the service whose ODB id is `service_id` (self.invoke_by_id); ServiceNotFound if none.
        Remembered: an id is never given to another service, and a deleted one's name is refused by the
        store anyway."""
        name = self._service_names.get(service_id)
        if name is None:
            with self.Session() as session:
                name = session.scalar(select(ServiceRow.name).where(ServiceRow.id == service_id,
                                                                    ServiceRow.cluster_id == self.cluster_id))
            if name is None:
                raise ServiceNotFound(f'id {service_id}')
            self._service_names.remember(service_id, name)
        return name

    # Loading config

    def reload_all(self) -> None:
        with self._lock, self.Session() as session:
            self.seen_version = session.scalar(select(Cluster.config_version).where(Cluster.id == self.cluster_id)) or 0
            self.service_limits = {}
            self.store.inactive = set()
            for row in session.scalars(select(ServiceRow).where(ServiceRow.cluster_id == self.cluster_id)):
                self.store.options[row.name] = dict(row.opaque or {})
                if not row.is_active:
                    self.store.inactive.add(row.name)
                if row.rate_limit_id is not None:
                    self.service_limits[row.name] = row.rate_limit_id
            self.limit_defs = {row.id: DefRow(row) for row in session.scalars(
                select(RateLimitDef).where(RateLimitDef.cluster_id == self.cluster_id))}
            codes = session.scalars(select(DeployedCode).where(DeployedCode.cluster_id == self.cluster_id)).all()
            # Schemas first, so that services compile against the deployed versions
            for code in sorted(codes, key=lambda c: not c.file_name.endswith('.json')):
                self._apply_code(session, code)
            for gone in set(self.code_versions) - {code.file_name for code in codes}:
                self._forget_code(gone)

            sec_defs = session.scalars(select(SecurityDef).where(SecurityDef.cluster_id == self.cluster_id)).all()
            previous, self.security = self.security, {row.id: SecurityConfig.from_model(row) for row in sec_defs}
            for sec_id, sec in previous.items():
                current = self.security.get(sec_id)
                if current is None or current.version != sec.version:
                    self._forget_security(sec_id, deleted=current is None)
            self.admin_sec_id = next((row.id for row in sec_defs if row.name == ADMIN_SEC_NAME), None)

            rows = session.scalars(select(ChannelREST).where(ChannelREST.cluster_id == self.cluster_id)).all()
            self.channels = {row.id: ChannelConfig.from_model(row) for row in rows}
            wsx_rows = session.scalars(select(ChannelWSX).where(ChannelWSX.cluster_id == self.cluster_id)).all()
            self.wsx.set_channels({row.id: WSXChannelConfig.from_model(row) for row in wsx_rows})
            if self.linked is not None:
                self.linked.reload(session)
            self._rebuild_limits()
            self._rebuild_router()
            for reload in self._reloads:
                reload(session)

    def _apply_code(self, session: Any, code: DeployedCode) -> None:
        if self.code_versions.get(code.file_name) == code.version:
            return
        if code.file_name.startswith(USER_CONF_PREFIX):
            try:
                self.user_config.set_deployed(code.file_name, code.source)
            except ValueError as e:
                logger.error('Could not load user config %s (version %s): %s', code.file_name, code.version, e)
            self.code_versions[code.file_name] = code.version
            return
        if code.file_name.endswith('.json'):
            assert self.store.schemas is not None
            self.store.schemas.deployed[code.file_name] = code.source
            self.store.recompile_schemas(code.file_name)
            self.code_versions[code.file_name] = code.version
            return
        # Services undeployed one by one (zato.service.delete) while the rest of their module stays
        skip = [row.name for row in session.scalars(select(ServiceRow).where(ServiceRow.code_id == code.id))
                if (row.opaque or {}).get('undeployed')]
        try:
            self.store.deploy(code.file_name, code.source, skip)
        except Exception as e:  # noqa: BLE001 - whatever a user's module raises, the old version stays
            # The previous version, if any, keeps serving; not recorded as applied, so that the next
            # reload tries again (a schema it needs may simply not have arrived yet)
            logger.error('Could not deploy %s (version %s): %s', code.file_name, code.version, e)
            return
        self.code_versions[code.file_name] = code.version

    def _forget_security(self, sec_id: int, deleted: bool) -> None:
        """What this worker derived from a security definition that changed or is gone: verified
        credentials, and, once it is deleted, its JWT sessions. The callers each channel remembers go
        with the channel's guards, built again after any change of security."""
        self.authenticator.forget(sec_id)
        if deleted:
            self.jwt.forget_definition(sec_id)

    # Guards, limits and routes: rebuilt whole after any change that may touch them

    def _rebuild_limits(self) -> None:
        """The rate limits, then every channel's guards, which are made of them and of the security."""
        try:
            self.limits.rebuild(self.limit_defs, self.channels, self.security, self.service_limits)
        except ValueError:
            logger.exception('Could not rebuild rate limits; keeping the previous ones')
        for chan in self.channels.values():
            self._build_guards(chan)
        for chan in self._internal:
            # The SSO channels are behind the IP level like any user channel (the admin API is not)
            self._build_guards(chan)
        self.service_guards = {name: guards.rate_limits(self.limits.limiter, [limit])
                               for name, limit in self.limits.by_service.items()}
        for wchan in self.wsx.channels.values():
            wchan.guards = guards.build(info=wchan.info, limits=self.limits, authenticator=self.authenticator,
                                        security=self.security, channel_id=None, security_id=wchan.security_id,
                                        service='', credentials_optional=True)

    def _build_guards(self, chan: ChannelConfig) -> None:
        # A JSON-RPC channel learns its service per call, and checks the service level then
        service = chan.service_name if chan.jsonrpc is None else ''
        sec = self.security.get(chan.security_id) if chan.security_id is not None else None
        acting = self.linked.step(sec) if self.linked is not None and sec is not None else None
        chan.guards = guards.build(info=chan.info, limits=self.limits, authenticator=self.authenticator,
                                   security=self.security, channel_id=chan.id, security_id=chan.security_id,
                                   service=service, is_internal=chan.is_internal, acting=acting,
                                   authenticate_with=self.pubsub.authenticate if service in PUBSUB_SERVICES else None)

    def _rebuild_router(self) -> None:
        internal = self._internal = internal_channels(self.admin_sec_id, sso=self.sso is not None)
        for chan in internal:
            self._build_guards(chan)
        routes = [(c.url_path, c.method, c) for c in internal]
        routes.extend((c.url_path, c.method, c) for c in self.channels.values())
        try:
            self.router = Router(routes)
        except ValueError:
            logger.exception('Could not rebuild the router; keeping the previous one')

    # Changes through the bus: each kind of object has its handler, and a kind added later registers its own

    def on_change(self, kind: str, handler: ChangeHandler, reload: Reload | None = None) -> None:
        """Makes `handler(session, obj_id, msg)` what a change of `kind` runs on this worker (after the
        ODB committed it), and `reload(session)` part of reloading everything."""
        self._handlers[kind] = handler
        if reload is not None:
            self._reloads.append(reload)

    def on_config_changed(self, msg: dict[str, Any]) -> None:
        with self._lock:
            version = msg.get('config_version', 0)
            if version > self.seen_version + 1:
                # A gap: some message never arrived, so reload everything rather than guess
                self.reload_all()
                return
            self.seen_version = max(self.seen_version, version)
            handler = self._handlers.get(msg['kind'])
            if handler is None:
                logger.warning('Unknown config kind in bus message: %s', msg)
                return
            with self.Session() as session:
                handler(session, msg['id'], msg)

    def _code_changed(self, session: Any, obj_id: int, msg: dict[str, Any]) -> None:
        code = session.get(DeployedCode, obj_id)
        if code is not None:
            self._apply_code(session, code)
            return
        self._forget_code(msg['file_name'])

    def _forget_code(self, file_name: str) -> None:
        """What a deployed file gone from the ODB had made live on this worker."""
        if file_name.startswith(USER_CONF_PREFIX):
            self.user_config.remove_deployed(file_name)
        elif file_name.endswith('.json') and self.store.schemas is not None:
            self.store.schemas.deployed.pop(file_name, None)
        else:
            self.store.remove_file(file_name)
        self.code_versions.pop(file_name, None)

    def _channel_changed(self, session: Any, obj_id: int, msg: dict[str, Any]) -> None:
        row = session.get(ChannelREST, obj_id)
        if row is None:
            self.channels.pop(obj_id, None)
        else:
            self.channels[obj_id] = ChannelConfig.from_model(row)
        self._rebuild_limits()  # guards first: the router serves the new channel object at once
        self._rebuild_router()

    def _wsx_channel_changed(self, session: Any, obj_id: int, msg: dict[str, Any]) -> None:
        row = session.get(ChannelWSX, obj_id)
        self.wsx.update_channel(obj_id, None if row is None else WSXChannelConfig.from_model(row))
        self._rebuild_limits()

    def _service_changed(self, session: Any, obj_id: int, msg: dict[str, Any]) -> None:
        row = session.get(ServiceRow, obj_id)
        if row is not None:
            self.store.set_options(row.name, dict(row.opaque or {}))
            self.store.set_active(row.name, row.is_active)
            if row.rate_limit_id is None:
                self.service_limits.pop(row.name, None)
            else:
                self.service_limits[row.name] = row.rate_limit_id
        self._rebuild_limits()

    def _rate_limit_changed(self, session: Any, obj_id: int, msg: dict[str, Any]) -> None:
        row = session.get(RateLimitDef, obj_id)
        if row is None:
            self.limit_defs.pop(obj_id, None)
        else:
            self.limit_defs[obj_id] = DefRow(row)
        self._rebuild_limits()

    def _outconn_changed(self, session: Any, obj_id: int, msg: dict[str, Any]) -> None:
        self.outconn_mgr.apply(obj_id, session.get(OutConn, obj_id))
        self.kafka_channels.out_conn_changed(obj_id)  # a Kafka channel reads through its connection

    def _security_changed(self, session: Any, obj_id: int, msg: dict[str, Any]) -> None:
        row = session.get(SecurityDef, obj_id)
        if row is None:
            self.security.pop(obj_id, None)
        else:
            self.security[obj_id] = SecurityConfig.from_model(row)
        self._forget_security(obj_id, deleted=row is None)
        if row is None and self.linked is not None:
            self.linked.forget_security(obj_id)
        self._rebuild_limits()

    def _linked_changed(self, session: Any, obj_id: int, msg: dict[str, Any]) -> None:
        """An SSO link made or removed, or a user with links deleted: the links anew, then the guards."""
        assert self.linked is not None
        self.linked.reload(session)
        self._rebuild_limits()

    def commit_change(self, session: Any, kind: str, obj_id: int, **extra: Any) -> None:
        """Commits an ODB change and tells every worker of the cluster to reload that object."""
        session.execute(update(Cluster).where(Cluster.id == self.cluster_id)
                        .values(config_version=Cluster.config_version + 1))
        version = session.scalar(select(Cluster.config_version).where(Cluster.id == self.cluster_id))
        session.commit()
        self.bus.publish(CONFIG_SUBJECT, {'kind': kind, 'id': obj_id, 'config_version': version, **extra})

    def _check_config_version(self) -> None:
        interval = self.config.get('misc', 'config_check_interval')
        while True:
            gevent.sleep(interval)
            try:
                with self.Session() as session:
                    current = session.scalar(select(Cluster.config_version).where(Cluster.id == self.cluster_id)) or 0
                if current > self.seen_version:
                    gevent.sleep(interval / 2)  # let an in-flight bus message land first
                    if current > self.seen_version:
                        logger.info('Config version %s is ahead of %s; reloading', current, self.seen_version)
                        self.reload_all()
            except Exception:
                logger.exception('Config version check failed')
