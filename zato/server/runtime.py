"""The runtime of one worker process: config, ODB, bus, services, channels; kept current by the
cluster bus so the request path only ever reads memory."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from typing import Any

import gevent
from gevent.lock import RLock
from sqlalchemy import select, update

from zato.bus.factory import make_bus
from zato.odb.engine import make_engine, make_session_factory, make_url
from zato.odb.models import (ChannelREST, ChannelWSX, Cluster, DeployedCode, OutConn, RateLimitDef, SecurityDef,
                             Service as ServiceRow)
from zato.security.authenticate import Authenticator
from zato.security.json_schema import SchemaRepository
from zato.security.jwt_auth import JWTManager, signing_key
from zato.security.secrets_file import Crypto, read_secrets
from zato.server import settings
from zato.server.channels import ChannelConfig, SecurityConfig
from zato.server.internal_routes import internal_channels
from zato.server.kafka_channel import KafkaChannels
from zato.server.odb_settings import odb_settings
from zato.server.limits import DefRow, RateLimits
from zato.server.outconns import OutConns
from zato.server.router import Router
from zato.server.stats import ServiceStats
from zato.server.stats_flush import StatsFlusher
from zato.server.store import ServiceStore
from zato.server.wsx.config import WSXChannelConfig
from zato.server.wsx.registry import WSXRegistry
from zato.service.invoker import ASYNC_SUBJECT, Invoker

logger = logging.getLogger('zato.runtime')

CONFIG_SUBJECT = 'config.changed'
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
        self.engine = make_engine(make_url(self.odb_config, self.env_dir), self.config.get('odb', 'pool_size'))
        self.Session = make_session_factory(self.engine)
        self.cluster_name = self.config.get('main', 'cluster_name')

        self.store = ServiceStore(SchemaRepository(os.path.join(self.env_dir, 'config', 'repo', 'schema', 'json')),
                                  schema_details=self.config.get('misc', 'return_json_schema_errors'))
        self.stats = ServiceStats()
        self.stats_flusher: StatsFlusher | None = None
        self.invoker = Invoker(self.store, self, self.stats)
        self.authenticator = Authenticator(jwt=self.jwt)
        self.security: dict[int, SecurityConfig] = {}
        self.channels: dict[int, ChannelConfig] = {}
        self.router: Router[ChannelConfig] = Router([])
        self.code_versions: dict[str, int] = {}
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
        self.wsx = WSXRegistry(self)
        self.outconns: dict[str, dict[str, Any]] = {}
        self.outconn_mgr = OutConns(self)
        self.kafka_channels = KafkaChannels(self)

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
        with self.Session() as session:
            cluster = session.scalars(select(Cluster).where(Cluster.name == self.cluster_name)).one_or_none()
            if cluster is None:
                raise RuntimeError(f'Cluster `{self.cluster_name}` not found in the ODB')
            self.cluster_id = cluster.id
        self.store.add_internal(admin_services)
        self.store.add_internal(admin_security)
        self.store.add_internal(admin_rate_limits)
        self.store.add_internal(admin_wsx)
        self.store.add_internal(admin_outconns)
        self.store.add_internal(admin_jsonrpc)
        self.store.add_internal(admin_stats)
        self.store.add_internal(admin_kafka_channel)
        self.kafka_channels.start()
        self.wsx.start()
        self.bus.subscribe(CONFIG_SUBJECT, self.on_config_changed)
        self.bus.subscribe(ASYNC_SUBJECT, self.invoker.on_async_message)
        self.bus.subscribe('bus.reconnected', self._on_reconnected)
        # Subscribe before loading, so no change made meanwhile is missed
        self.jwt.start()  # subscribes before the bus starts; loads sessions after
        self.bus.start()
        self.jwt.load()
        self.reload_all()
        self._greenlets.append(gevent.spawn(self._check_config_version))
        self.stats_flusher = StatsFlusher(self.stats, self.engine, self.cluster_id, self.server_name,
                                          self.config.get('stats', 'flush_interval'),
                                          self.config.get('stats', 'retention'))
        self.stats_flusher.start()
        if watch_pickup:
            from zato.server.hot_deploy import PickupWatcher
            self._greenlets.append(gevent.spawn(PickupWatcher(self).run))

    def _on_reconnected(self, _msg: dict[str, Any]) -> None:
        # Whatever was published while the bus was away is read back from the ODB
        self.reload_all()
        self.jwt.load()

    def stop(self) -> None:
        self.kafka_channels.stop_all()  # first: a message in hand may still need its connection
        self.outconn_mgr.stop_all()
        for g in self._greenlets:
            g.kill(block=False)
        self.bus.stop()
        if self.stats_flusher is not None:
            self.stats_flusher.stop()  # the last statistics, and the word that this worker stopped
        self.engine.dispose()

    # Loading config

    def reload_all(self) -> None:
        with self._lock, self.Session() as session:
            self.seen_version = session.scalar(select(Cluster.config_version).where(Cluster.id == self.cluster_id)) or 0
            self.service_limits = {}
            for row in session.scalars(select(ServiceRow).where(ServiceRow.cluster_id == self.cluster_id)):
                self.store.options[row.name] = dict(row.opaque or {})
                if row.rate_limit_id is not None:
                    self.service_limits[row.name] = row.rate_limit_id
            self.limit_defs = {row.id: DefRow(row) for row in session.scalars(
                select(RateLimitDef).where(RateLimitDef.cluster_id == self.cluster_id))}
            codes = session.scalars(select(DeployedCode).where(DeployedCode.cluster_id == self.cluster_id)).all()
            # Schemas first, so that services compile against the deployed versions
            for code in sorted(codes, key=lambda c: not c.file_name.endswith('.json')):
                self._apply_code(code)
            for gone in set(self.code_versions) - {code.file_name for code in codes}:
                self.store.remove_file(gone)
                self.code_versions.pop(gone, None)

            sec_defs = session.scalars(select(SecurityDef).where(SecurityDef.cluster_id == self.cluster_id)).all()
            previous, self.security = self.security, {row.id: SecurityConfig.from_model(row) for row in sec_defs}
            for sec_id, sec in previous.items():
                current = self.security.get(sec_id)
                if current is None or current.version != sec.version:
                    self._forget_security(sec_id, deleted=current is None)
            self.admin_sec_id = next((row.id for row in sec_defs if row.name == ADMIN_SEC_NAME), None)

            rows = session.scalars(select(ChannelREST).where(ChannelREST.cluster_id == self.cluster_id)).all()
            self.channels = {row.id: ChannelConfig.from_model(row) for row in rows}
            self._rebuild_router()
            self._rebuild_limits()

            wsx_rows = session.scalars(select(ChannelWSX).where(ChannelWSX.cluster_id == self.cluster_id)).all()
            self.wsx.set_channels({row.id: WSXChannelConfig.from_model(row) for row in wsx_rows})
            self.outconn_mgr.reload_all(session)
            self.kafka_channels.reload_all(session)

    def _apply_code(self, code: DeployedCode) -> None:
        if self.code_versions.get(code.file_name) == code.version:
            return
        if code.file_name.endswith('.json'):
            assert self.store.schemas is not None
            self.store.schemas.deployed[code.file_name] = code.source
            self.store.recompile_schemas(code.file_name)
            self.code_versions[code.file_name] = code.version
            return
        try:
            self.store.deploy(code.file_name, code.source)
        except Exception as e:  # noqa: BLE001 - whatever a user's module raises, the old version stays
            # The previous version, if any, keeps serving; not recorded as applied, so that the next
            # reload tries again (a schema it needs may simply not have arrived yet)
            logger.error('Could not deploy %s (version %s): %s', code.file_name, code.version, e)
            return
        self.code_versions[code.file_name] = code.version

    def _forget_security(self, sec_id: int, deleted: bool) -> None:
        """What this worker derived from a security definition that changed or is gone: verified
        credentials, the callers each channel remembers, and, once it is deleted, its JWT sessions."""
        self.authenticator.forget(sec_id)
        for chan in self.channels.values():
            if chan.security_id == sec_id:
                chan.info_by_caller.clear()
        if deleted:
            self.jwt.forget_definition(sec_id)

    def _rebuild_limits(self) -> None:
        try:
            self.limits.rebuild(self.limit_defs, self.channels, self.security, self.service_limits)
        except ValueError:
            logger.exception('Could not rebuild rate limits; keeping the previous ones')

    def _rebuild_router(self) -> None:
        routes = [(c.url_path, c.method, c) for c in internal_channels(self.admin_sec_id)]
        routes.extend((c.url_path, c.method, c) for c in self.channels.values())
        try:
            self.router = Router(routes)
        except ValueError:
            logger.exception('Could not rebuild the router; keeping the previous one')

    # Changes through the bus

    def on_config_changed(self, msg: dict[str, Any]) -> None:
        with self._lock:
            version = msg.get('config_version', 0)
            if version > self.seen_version + 1:
                # A gap: some message never arrived, so reload everything rather than guess
                self.reload_all()
                return
            self.seen_version = max(self.seen_version, version)
            kind, obj_id = msg['kind'], msg['id']
            with self.Session() as session:
                if kind == 'code':
                    code = session.get(DeployedCode, obj_id)
                    if code is None:
                        if msg['file_name'].endswith('.json') and self.store.schemas is not None:
                            self.store.schemas.deployed.pop(msg['file_name'], None)
                        else:
                            self.store.remove_file(msg['file_name'])
                        self.code_versions.pop(msg['file_name'], None)
                    else:
                        self._apply_code(code)
                elif kind == 'channel':
                    row = session.get(ChannelREST, obj_id)
                    if row is None:
                        self.channels.pop(obj_id, None)
                    else:
                        self.channels[obj_id] = ChannelConfig.from_model(row)
                    self._rebuild_router()
                elif kind == 'channel_wsx':
                    wrow = session.get(ChannelWSX, obj_id)
                    self.wsx.update_channel(obj_id, None if wrow is None else WSXChannelConfig.from_model(wrow))
                    return
                elif kind == 'outconn':
                    self.outconn_mgr.apply(obj_id, session.get(OutConn, obj_id))
                    self.kafka_channels.out_conn_changed(obj_id)
                    return
                elif kind == 'channel_kafka':
                    self.kafka_channels.apply(session, obj_id)
                    return
                elif kind == 'service':
                    srow = session.get(ServiceRow, obj_id)
                    if srow is not None:
                        self.store.set_options(srow.name, dict(srow.opaque or {}))
                        if srow.rate_limit_id is None:
                            self.service_limits.pop(srow.name, None)
                        else:
                            self.service_limits[srow.name] = srow.rate_limit_id
                elif kind == 'rate_limit':
                    lrow = session.get(RateLimitDef, obj_id)
                    if lrow is None:
                        self.limit_defs.pop(obj_id, None)
                    else:
                        self.limit_defs[obj_id] = DefRow(lrow)
                elif kind == 'security':
                    row = session.get(SecurityDef, obj_id)
                    if row is None:
                        self.security.pop(obj_id, None)
                    else:
                        self.security[obj_id] = SecurityConfig.from_model(row)
                    self._forget_security(obj_id, deleted=row is None)
                else:
                    logger.warning('Unknown config kind in bus message: %s', msg)
                    return
                if kind != 'code':
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
