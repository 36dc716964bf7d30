"""ODB models: every definition the cluster shares. Schema changes go through Alembic
(zato/odb/migrations); tests/odb checks that the migrations and these models agree."""

from __future__ import annotations

from datetime import datetime, UTC
from typing import Any

from sqlalchemy import (JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint, text)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


# An id is never handed out twice, even after its row is deleted (SQLite's AUTOINCREMENT; PostgreSQL's
# sequences behave so already). Workers cache what they derive from a definition by its id, and a new
# object must never inherit what was cached of a deleted one under the same id.
NEVER_REUSED_IDS = {'sqlite_autoincrement': True}


class Cluster(Base):
    __tablename__ = 'cluster'
    __table_args__ = NEVER_REUSED_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    # Bumped on every config change; a worker that finds it ahead of what it has seen reloads
    # everything, which covers a bus message it may have missed.
    config_version: Mapped[int] = mapped_column(Integer, default=0)


class Server(Base):
    __tablename__ = 'server'
    __table_args__ = (UniqueConstraint('cluster_id', 'name'), NEVER_REUSED_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey('cluster.id', ondelete='CASCADE'))
    name: Mapped[str] = mapped_column(String(200))
    host: Mapped[str] = mapped_column(String(200))
    port: Mapped[int] = mapped_column(Integer)
    last_join: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    up_status: Mapped[str] = mapped_column(String(20), default='down')


class DeployedCode(Base):
    """One hot-deployed module: its file name, source and hash. A redeploy replaces it in place."""
    __tablename__ = 'deployed_code'
    __table_args__ = (UniqueConstraint('cluster_id', 'file_name'), NEVER_REUSED_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey('cluster.id', ondelete='CASCADE'))
    file_name: Mapped[str] = mapped_column(String(400))
    source: Mapped[str] = mapped_column(Text)
    source_hash: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)
    deployed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    deployed_by: Mapped[str] = mapped_column(String(200), default='')


class Service(Base):
    __tablename__ = 'service'
    __table_args__ = (UniqueConstraint('cluster_id', 'name'), NEVER_REUSED_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey('cluster.id', ondelete='CASCADE'))
    name: Mapped[str] = mapped_column(String(400))
    impl_name: Mapped[str] = mapped_column(String(400))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_internal: Mapped[bool] = mapped_column(Boolean, default=False)
    slow_threshold: Mapped[int] = mapped_column(Integer, default=99999)
    code_id: Mapped[int | None] = mapped_column(ForeignKey('deployed_code.id', ondelete='SET NULL'), nullable=True)
    rate_limit_id: Mapped[int | None] = mapped_column(ForeignKey('rate_limit_def.id', ondelete='RESTRICT'),
                                                     nullable=True)
    opaque: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class SecurityDef(Base):
    """A security definition. Secrets are stored hashed (argon2id) or, where the plain value
    must be recovered, encrypted with the environment's key; never in clear."""
    __tablename__ = 'sec_def'
    __table_args__ = (UniqueConstraint('cluster_id', 'name'), NEVER_REUSED_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey('cluster.id', ondelete='CASCADE'))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_internal: Mapped[bool] = mapped_column(Boolean, default=False)
    username: Mapped[str] = mapped_column(String(200), default='')
    password_hash: Mapped[str] = mapped_column(String(400), default='')
    realm: Mapped[str] = mapped_column(String(200), default='Zato')
    rate_limit_id: Mapped[int | None] = mapped_column(ForeignKey('rate_limit_def.id', ondelete='RESTRICT'),
                                                     nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    opaque: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ChannelREST(Base):
    """A REST channel: a URL path (with optional {param} patterns) and method bound to a service."""
    __tablename__ = 'channel_rest'
    __table_args__ = (UniqueConstraint('cluster_id', 'name'), NEVER_REUSED_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey('cluster.id', ondelete='CASCADE'))
    name: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_internal: Mapped[bool] = mapped_column(Boolean, default=False)
    url_path: Mapped[str] = mapped_column(String(2000))
    method: Mapped[str] = mapped_column(String(20), default='')
    data_format: Mapped[str] = mapped_column(String(20), default='json')
    service_name: Mapped[str] = mapped_column(String(400))
    security_id: Mapped[int | None] = mapped_column(ForeignKey('sec_def.id', ondelete='SET NULL'), nullable=True)
    rate_limit_id: Mapped[int | None] = mapped_column(ForeignKey('rate_limit_def.id', ondelete='RESTRICT'),
                                                     nullable=True)
    merge_url_params_req: Mapped[bool] = mapped_column(Boolean, default=True)
    url_params_pri: Mapped[str] = mapped_column(String(20), default='qs-over-path')
    params_pri: Mapped[str] = mapped_column(String(40), default='channel-params-over-msg')
    version: Mapped[int] = mapped_column(Integer, default=1)
    opaque: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class JWTSession(Base):
    """A JWT log-in: the token's id, whose idle expiry slides forward each time it is used."""
    __tablename__ = 'jwt_session'

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey('cluster.id', ondelete='CASCADE'))
    sec_def_id: Mapped[int] = mapped_column(ForeignKey('sec_def.id', ondelete='CASCADE'))
    username: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RateLimitDef(Base):
    """A rate-limit and IP allow-list definition: Zato 3.1's rule text, a mode, an optional parent.

    Attached to security definitions, channels and services (their rate_limit_id); the one marked
    is_default applies to every request on user channels, as the IP level of the hierarchy.
    """
    __tablename__ = 'rate_limit_def'
    __table_args__ = (UniqueConstraint('cluster_id', 'name'), NEVER_REUSED_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey('cluster.id', ondelete='CASCADE'))
    name: Mapped[str] = mapped_column(String(200))
    rules: Mapped[str] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(String(20), default='approximate')
    parent_id: Mapped[int | None] = mapped_column(ForeignKey('rate_limit_def.id', ondelete='RESTRICT'), nullable=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)


class ChannelWSX(Base):
    """A WebSocket channel: a URL path on the servers' HTTP port whose upgraded connections are
    served by one service, with its own security, limits, keep-alive and origin allow-list."""
    __tablename__ = 'channel_wsx'
    __table_args__ = (UniqueConstraint('cluster_id', 'name'), UniqueConstraint('cluster_id', 'url_path'),
                      NEVER_REUSED_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey('cluster.id', ondelete='CASCADE'))
    name: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    url_path: Mapped[str] = mapped_column(String(2000))
    service_name: Mapped[str] = mapped_column(String(400))
    data_format: Mapped[str] = mapped_column(String(20), default='json')
    security_id: Mapped[int | None] = mapped_column(ForeignKey('sec_def.id', ondelete='SET NULL'), nullable=True)
    max_message_size: Mapped[int] = mapped_column(Integer, default=1048576)
    ping_interval: Mapped[int] = mapped_column(Integer, default=30)
    pings_missed_threshold: Mapped[int] = mapped_column(Integer, default=5)
    new_token_wait_time: Mapped[int] = mapped_column(Integer, default=5)
    token_ttl: Mapped[int] = mapped_column(Integer, default=3600)
    send_queue_max: Mapped[int] = mapped_column(Integer, default=1000)
    origins: Mapped[list[str]] = mapped_column(JSON, default=list)
    services_allowed: Mapped[list[str]] = mapped_column(JSON, default=list)
    subprotocols: Mapped[list[str]] = mapped_column(JSON, default=list)
    version: Mapped[int] = mapped_column(Integer, default=1)
    opaque: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class OutConn(Base):
    """An outgoing connection of any kind (wsx, rest, mongodb ...): its typed config as JSON and
    its secret encrypted with the environment's key, never in clear."""
    __tablename__ = 'out_conn'
    __table_args__ = (UniqueConstraint('cluster_id', 'kind', 'name'), NEVER_REUSED_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey('cluster.id', ondelete='CASCADE'))
    kind: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    secret: Mapped[str] = mapped_column(Text, default='')
    version: Mapped[int] = mapped_column(Integer, default=1)


class ChannelKafka(Base):
    """An inbound Kafka channel: a consumer group reading topics through an outgoing Kafka
    connection, invoking one service per message and committing after it succeeded."""
    __tablename__ = 'channel_kafka'
    __table_args__ = (UniqueConstraint('cluster_id', 'name'), NEVER_REUSED_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey('cluster.id', ondelete='CASCADE'))
    name: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    out_conn_id: Mapped[int | None] = mapped_column(ForeignKey('out_conn.id', ondelete='SET NULL'), nullable=True)
    topics: Mapped[list[str]] = mapped_column(JSON, default=list)
    group_id: Mapped[str] = mapped_column(String(255))
    service_name: Mapped[str] = mapped_column(String(400))
    data_format: Mapped[str] = mapped_column(String(20), default='json')
    start_from: Mapped[str] = mapped_column(String(20), default='earliest')
    on_error: Mapped[str] = mapped_column(String(20), default='retry')
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    dead_letter_topic: Mapped[str] = mapped_column(String(249), default='')
    retry_min: Mapped[float] = mapped_column(Float, default=0.5)
    retry_max: Mapped[float] = mapped_column(Float, default=30.0)
    version: Mapped[int] = mapped_column(Integer, default=1)
    opaque: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ServiceStat(Base):
    """One worker's usage of one service in one wall-clock minute (UTC). Each worker writes only its
    own rows, replacing them as the minute goes on; zato.odb.stats_query merges every worker's."""
    __tablename__ = 'service_stats'

    cluster_id: Mapped[int] = mapped_column(ForeignKey('cluster.id', ondelete='CASCADE'), primary_key=True)
    minute: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    service_name: Mapped[str] = mapped_column(String(400), primary_key=True)
    server_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    worker_pid: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(Integer)
    errors: Mapped[int] = mapped_column(Integer)
    total_ms: Mapped[float] = mapped_column(Float)
    max_ms: Mapped[float] = mapped_column(Float)
    histogram: Mapped[dict[str, int]] = mapped_column(JSON)  # zato.odb.histogram's sparse form
    last_call: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WorkerHeartbeat(Base):
    """A worker's sign of life, renewed each time it writes its statistics: down when older than three
    flush intervals, stopped when the worker wrote stopped_at on its way out."""
    __tablename__ = 'worker_heartbeat'

    cluster_id: Mapped[int] = mapped_column(ForeignKey('cluster.id', ondelete='CASCADE'), primary_key=True)
    server_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    pid: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    flush_interval: Mapped[float] = mapped_column(Float)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Lease(Base):
    """A cluster-wide lease: who holds `name` until when, and the fencing token of the current holder.

    zato.odb.lease reads and writes it, one statement an operation, by the ODB's clock. A row is never
    deleted, so that its token only grows: a release only ends the holder's time."""
    __tablename__ = 'lease'

    cluster_id: Mapped[int] = mapped_column(ForeignKey('cluster.id', ondelete='CASCADE'), primary_key=True)
    name: Mapped[str] = mapped_column(String(400), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    token: Mapped[int] = mapped_column(BigInteger)
    acquired_at: Mapped[float] = mapped_column(Float)  # seconds since the epoch, by the ODB's clock
    expires_at: Mapped[float] = mapped_column(Float)


class WebAdminUser(Base):
    """A web-admin user: an argon2id password hash, and a TOTP key encrypted with the environment's
    key. `totp_last_step` is the 30-second step of the last code accepted, so that a code works once."""
    __tablename__ = 'web_admin_user'
    __table_args__ = NEVER_REUSED_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(200), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    totp_key: Mapped[str] = mapped_column(Text, default='')          # encrypted; '' = TOTP off
    totp_pending_key: Mapped[str] = mapped_column(Text, default='')  # encrypted; shown until confirmed by a code
    totp_label: Mapped[str] = mapped_column(String(200), default='Zato web-admin')
    totp_last_step: Mapped[int] = mapped_column(Integer, default=0)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class WebAdminSession(Base):
    """A signed-in browser: the SHA-256 of its cookie's random token, never the token itself."""
    __tablename__ = 'web_admin_session'

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey('web_admin_user.id', ondelete='CASCADE'))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WebAdminAudit(Base):
    """One change made in the web-admin (or to its users from the CLI): who, what, when."""
    __tablename__ = 'web_admin_audit'
    __table_args__ = NEVER_REUSED_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    username: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    object_kind: Mapped[str] = mapped_column(String(100), default='')
    object_name: Mapped[str] = mapped_column(String(400), default='')
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    remote_addr: Mapped[str] = mapped_column(String(100), default='')


class SSOUser(Base):
    """An SSO user (3.1's zato_sso_user). The password is an argon2id hash; the email and the TOTP
    key are encrypted with the environment's key (`email_key` is a keyed hash of the email, so that
    a search can match it exactly without decrypting every row). Times are seconds since the epoch.

    `username_key` is the case-folded username: `Alice` and `alice` are one user, for log-ins and for
    the brute-force counter alike. `totp_last_step` is the TOTP time step of the last code accepted,
    raised by one conditional UPDATE so that a code is accepted once however many workers see it.
    `failed_logins`, `last_failure_time`, `lockout_count` and `locked_until` are the brute-force state.
    """
    __tablename__ = 'zato_sso_user'
    __table_args__ = (UniqueConstraint('cluster_id', 'username_key'), NEVER_REUSED_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey('cluster.id', ondelete='CASCADE'))
    user_id: Mapped[str] = mapped_column(String(64), unique=True)
    username: Mapped[str] = mapped_column(String(200))
    username_key: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(Text)
    password_expiry: Mapped[float] = mapped_column(Float)
    password_last_set: Mapped[float] = mapped_column(Float)
    password_must_change: Mapped[bool] = mapped_column(Boolean, default=False)
    email: Mapped[str] = mapped_column(Text, default='')
    email_key: Mapped[str] = mapped_column(String(64), default='', index=True)
    display_name: Mapped[str] = mapped_column(String(200), default='')
    first_name: Mapped[str] = mapped_column(String(200), default='')
    middle_name: Mapped[str] = mapped_column(String(200), default='')
    last_name: Mapped[str] = mapped_column(String(200), default='')
    display_name_upper: Mapped[str] = mapped_column(String(200), default='')
    first_name_upper: Mapped[str] = mapped_column(String(200), default='')
    middle_name_upper: Mapped[str] = mapped_column(String(200), default='')
    last_name_upper: Mapped[str] = mapped_column(String(200), default='')
    is_super_user: Mapped[bool] = mapped_column(Boolean, default=False)
    is_locked: Mapped[bool] = mapped_column(Boolean, default=False)
    locked_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    locked_by: Mapped[str] = mapped_column(String(200), default='')
    approval_status: Mapped[str] = mapped_column(String(40))
    approval_status_time: Mapped[float] = mapped_column(Float)
    approval_status_mod_by: Mapped[str] = mapped_column(String(200), default='')
    sign_up_status: Mapped[str] = mapped_column(String(40))
    sign_up_time: Mapped[float] = mapped_column(Float)
    creation_time: Mapped[float] = mapped_column(Float)
    is_totp_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    totp_key: Mapped[str] = mapped_column(Text, default='')
    totp_label: Mapped[str] = mapped_column(String(200), default='')
    totp_last_step: Mapped[int] = mapped_column(BigInteger, default=0)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_time: Mapped[float] = mapped_column(Float, default=0.0)
    lockout_count: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[float] = mapped_column(Float, default=0.0)
    last_login_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    is_rate_limit_active: Mapped[bool] = mapped_column(Boolean, default=False)
    rate_limit_def: Mapped[str] = mapped_column(Text, default='')
    opaque: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class SSOSession(Base):
    """An SSO session (3.1's zato_sso_session): the SHA-256 of its UST, never the UST itself; the
    application it was opened for; idle (`expiration_time`, moved on by a renewal) and absolute
    (`max_expiration_time`) expiry, in seconds since the epoch."""
    __tablename__ = 'zato_sso_session'
    __table_args__ = NEVER_REUSED_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey('cluster.id', ondelete='CASCADE'))
    ust_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey('zato_sso_user.id', ondelete='CASCADE'), index=True)
    current_app: Mapped[str] = mapped_column(String(200))
    creation_time: Mapped[float] = mapped_column(Float)
    expiration_time: Mapped[float] = mapped_column(Float)
    max_expiration_time: Mapped[float] = mapped_column(Float)
    remote_addr: Mapped[str] = mapped_column(String(100), default='')
    user_agent: Mapped[str] = mapped_column(String(400), default='')
    auth_type: Mapped[str] = mapped_column(String(40), default='default')
    auth_principal: Mapped[str] = mapped_column(String(200), default='')
    ext_session_id: Mapped[str] = mapped_column(String(200), default='')
    opaque: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class SSOToken(Base):
    """A single-use token of an SSO user, sent by email: a sign-up confirmation (`kind` 'signup') or a
    password reset ('password_reset'). Only its SHA-256 is kept; `used_time` is set by the one
    conditional UPDATE that accepts it, so it is accepted once however many workers see it."""
    __tablename__ = 'zato_sso_token'
    __table_args__ = NEVER_REUSED_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey('cluster.id', ondelete='CASCADE'))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    user_id: Mapped[int] = mapped_column(ForeignKey('zato_sso_user.id', ondelete='CASCADE'), index=True)
    creation_time: Mapped[float] = mapped_column(Float)
    expiration_time: Mapped[float] = mapped_column(Float, index=True)
    used_time: Mapped[float | None] = mapped_column(Float, nullable=True)


class SSOLinkedAuth(Base):
    """A security definition (Basic Auth or JWT) linked to an SSO user (3.1's zato_sso_linked_auth): a
    request that authenticates with it acts as that user (zato.sso.linked). A definition is linked to
    one user at most; the link goes with its user or its definition."""
    __tablename__ = 'zato_sso_linked_auth'
    __table_args__ = NEVER_REUSED_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey('cluster.id', ondelete='CASCADE'))
    user_id: Mapped[int] = mapped_column(ForeignKey('zato_sso_user.id', ondelete='CASCADE'), index=True)
    sec_def_id: Mapped[int] = mapped_column(ForeignKey('sec_def.id', ondelete='CASCADE'), unique=True)
    auth_type: Mapped[str] = mapped_column(String(40))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    creation_time: Mapped[float] = mapped_column(Float)
    created_by: Mapped[str] = mapped_column(String(200), default='')


class AsyncInvocation(Base):
    """One ``self.invoke_async`` not yet finished (zato.server.async_queue): kept until a worker ran it,
    so that a worker that dies while running it leaves it for another (at least once). A worker owns
    it while ``claimed_until`` (seconds since the epoch) is ahead, renewing that while the service
    runs; it is dropped, with a warning, when no run started before ``expires_at`` (0: never).
    ``group_cid`` ties a target of ``self.patterns.fanout`` / ``.parallel`` to its InvocationGroup."""
    __tablename__ = 'async_invocation'
    __table_args__ = NEVER_REUSED_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey('cluster.id', ondelete='CASCADE'))
    cid: Mapped[str] = mapped_column(String(64))
    service: Mapped[str] = mapped_column(String(400))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)  # {'json': value} or {'bytes': base64}
    channel: Mapped[str] = mapped_column(String(40))
    data_format: Mapped[str] = mapped_column(String(20), default='')
    transport: Mapped[str] = mapped_column(String(20), default='')
    callback: Mapped[str] = mapped_column(String(400), default='')
    zato_ctx: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    environ: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    group_cid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    group_index: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, default=0.0)
    claimed_by: Mapped[str] = mapped_column(String(200), default='')
    claimed_until: Mapped[float] = mapped_column(Float, default=0.0, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class InvocationGroup(Base):
    """A ``self.patterns.fanout`` or ``.parallel`` call in flight: how many targets it has and how many
    answered. The one transaction that records the last answer also queues the final callbacks, so
    they are queued exactly once whichever workers or servers ran the targets."""
    __tablename__ = 'invocation_group'

    cluster_id: Mapped[int] = mapped_column(ForeignKey('cluster.id', ondelete='CASCADE'), primary_key=True)
    cid: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))     # fanout or parallel
    source: Mapped[str] = mapped_column(String(400))  # the service that called the pattern
    total: Mapped[int] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer, default=0)
    on_target: Mapped[list[str]] = mapped_column(JSON, default=list)
    on_final: Mapped[list[str]] = mapped_column(JSON, default=list)
    req_ts_utc: Mapped[str] = mapped_column(String(40))


class InvocationGroupResponse(Base):
    """What one target of an InvocationGroup answered, until the final callbacks are queued."""
    __tablename__ = 'invocation_group_response'

    cluster_id: Mapped[int] = mapped_column(ForeignKey('cluster.id', ondelete='CASCADE'), primary_key=True)
    group_cid: Mapped[str] = mapped_column(String(64), primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class CacheBuiltin(Base):
    """A built-in cache (3.1's cache_builtin): each worker keeps its entries in memory (zato.cache), and
    with `sync_method` `in-background` every change spreads to every worker of the cluster. One cache
    of a cluster `is_default`, `self.cache.default`; quickstart and migration 0014 create `default`."""
    __tablename__ = 'cache_builtin'
    __table_args__ = (UniqueConstraint('cluster_id', 'name'), NEVER_REUSED_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey('cluster.id', ondelete='CASCADE'))
    name: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    max_size: Mapped[int] = mapped_column(Integer, default=10000)
    max_item_size: Mapped[int] = mapped_column(Integer, default=10000)
    extend_expiry_on_get: Mapped[bool] = mapped_column(Boolean, default=True)
    extend_expiry_on_set: Mapped[bool] = mapped_column(Boolean, default=True)
    sync_method: Mapped[str] = mapped_column(String(40), default='in-background')
    version: Mapped[int] = mapped_column(Integer, default=1)
    opaque: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


def default_builtin_cache(cluster_id: int) -> CacheBuiltin:
    """The cache every cluster starts with, as 3.1's `zato create cluster` made it."""
    return CacheBuiltin(cluster_id=cluster_id, name='default', is_active=True, is_default=True, max_size=10000,
                        max_item_size=10000, extend_expiry_on_get=True, extend_expiry_on_set=True,
                        sync_method='in-background', version=1, opaque={})
class SSOAttr(Base):
    """An attribute of an SSO user, or of one of their sessions (3.1's zato_sso_attr): a named JSON
    value (`value`; with `is_encrypted`, that JSON encrypted with the environment's key), an optional
    expiry (`expiration_time`, seconds since the epoch; NULL: never). A session's attributes have its
    `session_id` and go with it; every attribute goes with its user (ON DELETE CASCADE both).

    A user's own attributes (`session_id` NULL) are unique by (`user_id`, `name`) through a partial
    index, since NULLs are distinct in a unique constraint; a session's by (`session_id`, `name`).
    Both are the conflict targets of the one-statement upserts of zato.sso.attr."""
    __tablename__ = 'zato_sso_attr'
    __table_args__ = (
        Index('uq_zato_sso_attr_user_name', 'user_id', 'name', unique=True,
              sqlite_where=text('session_id IS NULL'), postgresql_where=text('session_id IS NULL')),
        UniqueConstraint('session_id', 'name'),
        NEVER_REUSED_IDS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey('cluster.id', ondelete='CASCADE'))
    user_id: Mapped[int] = mapped_column(ForeignKey('zato_sso_user.id', ondelete='CASCADE'), index=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey('zato_sso_session.id', ondelete='CASCADE'),
                                                   nullable=True)
    name: Mapped[str] = mapped_column(String(200))
    value: Mapped[str] = mapped_column(Text)
    is_encrypted: Mapped[bool] = mapped_column(Boolean, default=False)
    creation_time: Mapped[float] = mapped_column(Float)
    last_modified: Mapped[float] = mapped_column(Float)
    expiration_time: Mapped[float | None] = mapped_column(Float, nullable=True, index=True)


class SchedulerJob(Base):
    """A scheduler job (3.1's job, job_interval_based and job_cron_style in one table): what runs when
    (zato.scheduler.schedule), its next due time and how its last run ended. Times are seconds since the
    epoch. `next_run` is moved on, with `runs`, only by the lease holder's fenced transaction that records
    the firing (zato.server.scheduler), or by an edit; None once the job is done."""
    __tablename__ = 'scheduler_job'
    __table_args__ = (UniqueConstraint('cluster_id', 'name'), NEVER_REUSED_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey('cluster.id', ondelete='CASCADE'))
    name: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    job_type: Mapped[str] = mapped_column(String(20))
    service_name: Mapped[str] = mapped_column(String(400))
    start_date: Mapped[float] = mapped_column(Float)
    weeks: Mapped[int] = mapped_column(Integer, default=0)
    days: Mapped[int] = mapped_column(Integer, default=0)
    hours: Mapped[int] = mapped_column(Integer, default=0)
    minutes: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[int] = mapped_column(Integer, default=0)
    repeats: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cron_definition: Mapped[str] = mapped_column(String(400), default='')
    timezone: Mapped[str] = mapped_column(String(100), default='UTC')
    extra: Mapped[str] = mapped_column(Text, default='')
    misfire: Mapped[str] = mapped_column(String(20), default='fire_once')
    allow_overlap: Mapped[bool] = mapped_column(Boolean, default=False)
    next_run: Mapped[float | None] = mapped_column(Float, nullable=True)
    runs: Mapped[int] = mapped_column(Integer, default=0)
    last_run_start: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_run_end: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_result: Mapped[str] = mapped_column(String(20), default='')
    last_error: Mapped[str] = mapped_column(Text, default='')
    version: Mapped[int] = mapped_column(Integer, default=1)
    opaque: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class SchedulerFiring(Base):
    """One due time of a job fired (or an "Execute now"): written by the lease holder under its fencing
    `token` in the transaction that moves the job's next_run on, so that a due time fires once in the
    cluster. The worker that runs it claims it by setting `started_at` (once), and writes how it ended."""
    __tablename__ = 'scheduler_firing'

    job_id: Mapped[int] = mapped_column(ForeignKey('scheduler_job.id', ondelete='CASCADE'), primary_key=True)
    due_at: Mapped[float] = mapped_column(Float, primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey('cluster.id', ondelete='CASCADE'), index=True)
    kind: Mapped[str] = mapped_column(String(20))      # 'schedule' or 'execute'
    token: Mapped[int] = mapped_column(BigInteger)     # the scheduler lease's fencing token; 0 for 'execute'
    cid: Mapped[str] = mapped_column(String(64))
    fired_at: Mapped[float] = mapped_column(Float, index=True)
    sends: Mapped[int] = mapped_column(Integer, default=1)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    worker: Mapped[str] = mapped_column(String(200), default='')  # `server:pid` of the worker that claimed it
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    result: Mapped[str] = mapped_column(String(20), default='')


# ######################################################################################### publish/subscribe

# Message and queue ids: 64-bit on PostgreSQL (a busy cluster outlives 2**31 messages), SQLite's rowid there
_BIG_ID = BigInteger().with_variant(Integer(), 'sqlite')


class PubSubTopic(Base):
    """A pub/sub topic (3.1's pubsub_topic). `gd_depth` is how many GD messages of the topic the ODB
    holds: raised by a publication only while below `max_depth_gd` (one conditional UPDATE, so the
    limit holds cluster-wide), lowered when a message's row is deleted (zato.pubsub.store)."""
    __tablename__ = 'pubsub_topic'
    __table_args__ = (UniqueConstraint('cluster_id', 'name'), NEVER_REUSED_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey('cluster.id', ondelete='CASCADE'))
    name: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_internal: Mapped[bool] = mapped_column(Boolean, default=False)
    has_gd: Mapped[bool] = mapped_column(Boolean, default=True)
    is_api_sub_allowed: Mapped[bool] = mapped_column(Boolean, default=True)
    max_depth_gd: Mapped[int] = mapped_column(Integer, default=10_000)
    max_depth_non_gd: Mapped[int] = mapped_column(Integer, default=1000)
    depth_check_freq: Mapped[int] = mapped_column(Integer, default=100)
    pub_buffer_size_gd: Mapped[int] = mapped_column(Integer, default=0)
    task_sync_interval: Mapped[int] = mapped_column(Integer, default=500)
    task_delivery_interval: Mapped[int] = mapped_column(Integer, default=2000)
    on_no_subs_pub: Mapped[str] = mapped_column(String(20), default='accept')
    hook_service: Mapped[str | None] = mapped_column(String(200), nullable=True)
    gd_depth: Mapped[int] = mapped_column(Integer, default=0)
    last_pub_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    opaque: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class PubSubEndpoint(Base):
    """Who publishes and subscribes (3.1's pubsub_endpoint): a REST client identified by its Basic Auth
    definition (one endpoint per definition), a WebSocket channel's clients, or a service."""
    __tablename__ = 'pubsub_endpoint'
    __table_args__ = (UniqueConstraint('cluster_id', 'name'), UniqueConstraint('cluster_id', 'security_id'),
                      NEVER_REUSED_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey('cluster.id', ondelete='CASCADE'))
    name: Mapped[str] = mapped_column(String(200))
    endpoint_type: Mapped[str] = mapped_column(String(20))
    role: Mapped[str] = mapped_column(String(20))
    topic_patterns: Mapped[str] = mapped_column(Text, default='')
    security_id: Mapped[int | None] = mapped_column(ForeignKey('sec_def.id', ondelete='SET NULL'), nullable=True)
    ws_channel_id: Mapped[int | None] = mapped_column(ForeignKey('channel_wsx.id', ondelete='SET NULL'),
                                                      nullable=True)
    service_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_internal: Mapped[bool] = mapped_column(Boolean, default=False)
    last_seen: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_pub_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_sub_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    opaque: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Written every [pubsub] meta_flush_interval seconds from each worker's memory, as last_pub_time is
    # (zato.server.pubsub_meta; migration 0019)
    last_delivery_time: Mapped[float | None] = mapped_column(Float, nullable=True)


class PubSubSubscription(Base):
    """One endpoint's subscription to one topic (3.1's pubsub_sub). `sub_key` is a bearer secret of at
    least 128 random bits (zato.pubsub.keys)."""
    __tablename__ = 'pubsub_sub'
    __table_args__ = (UniqueConstraint('endpoint_id', 'topic_id'), NEVER_REUSED_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey('cluster.id', ondelete='CASCADE'))
    sub_key: Mapped[str] = mapped_column(String(80), unique=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey('pubsub_endpoint.id', ondelete='CASCADE'), index=True)
    topic_id: Mapped[int] = mapped_column(ForeignKey('pubsub_topic.id', ondelete='CASCADE'), index=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    creation_time: Mapped[float] = mapped_column(Float)
    delivery_method: Mapped[str] = mapped_column(String(20), default='pull')
    delivery_data_format: Mapped[str] = mapped_column(String(20), default='json')
    delivery_batch_size: Mapped[int] = mapped_column(Integer, default=500)
    wrap_one_msg_in_list: Mapped[bool] = mapped_column(Boolean, default=True)
    delivery_max_retry: Mapped[int] = mapped_column(Integer, default=123_456_789)
    delivery_err_should_block: Mapped[bool] = mapped_column(Boolean, default=True)
    wait_sock_err: Mapped[int] = mapped_column(Integer, default=10)
    wait_non_sock_err: Mapped[int] = mapped_column(Integer, default=30)
    ext_client_id: Mapped[str] = mapped_column(String(200), default='')
    hook_service: Mapped[str | None] = mapped_column(String(200), nullable=True)
    out_rest_id: Mapped[int | None] = mapped_column(ForeignKey('out_conn.id', ondelete='SET NULL'), nullable=True)
    out_http_method: Mapped[str] = mapped_column(String(20), default='POST')
    last_delivery_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    opaque: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class PubSubMessage(Base):
    """A GD message (3.1's pubsub_message). Times are seconds since the epoch by the ODB's clock;
    `expiration` is in milliseconds, `expiration_time` the moment it expires. `data_format` is `text`
    for a string, `json` for any other JSON value (kept JSON-encoded in `data`)."""
    __tablename__ = 'pubsub_message'
    __table_args__ = NEVER_REUSED_IDS

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey('cluster.id', ondelete='CASCADE'))
    msg_id: Mapped[str] = mapped_column(String(80), unique=True)
    topic_id: Mapped[int] = mapped_column(ForeignKey('pubsub_topic.id', ondelete='CASCADE'), index=True)
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey('pubsub_endpoint.id', ondelete='SET NULL'),
                                                        nullable=True)
    pub_pattern_matched: Mapped[str] = mapped_column(String(200), default='')
    data: Mapped[str] = mapped_column(Text)
    data_format: Mapped[str] = mapped_column(String(20), default='text')
    mime_type: Mapped[str] = mapped_column(String(200), default='text/plain')
    size: Mapped[int] = mapped_column(Integer)
    priority: Mapped[int] = mapped_column(Integer, default=5)
    expiration: Mapped[int] = mapped_column(BigInteger)
    expiration_time: Mapped[float] = mapped_column(Float, index=True)
    pub_time: Mapped[float] = mapped_column(Float)
    ext_pub_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    correl_id: Mapped[str] = mapped_column(String(200), default='')
    in_reply_to: Mapped[str] = mapped_column(String(200), default='')
    ext_client_id: Mapped[str] = mapped_column(String(200), default='')
    group_id: Mapped[str] = mapped_column(String(200), default='')
    position_in_group: Mapped[int] = mapped_column(Integer, default=1)
    has_gd: Mapped[bool] = mapped_column(Boolean, default=True)


class PubSubQueue(Base):
    """A message in one subscription's queue (3.1's pubsub_endp_msg_queue): deleted by the subscriber's
    acknowledgement (or by 3.1's get-messages, which acknowledges what it returns). `visible_after` is
    when a pulled, not yet acknowledged entry may be handed out again; `delivery_count` how often it was.
    The message's priority, publication and expiration times are copied here so that one index serves
    a subscription's delivery order (priority, highest first, then publication time)."""
    __tablename__ = 'pubsub_queue'
    __table_args__ = (UniqueConstraint('sub_id', 'message_id'),
                      NEVER_REUSED_IDS)

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey('cluster.id', ondelete='CASCADE'))
    sub_id: Mapped[int] = mapped_column(ForeignKey('pubsub_sub.id', ondelete='CASCADE'))
    message_id: Mapped[int] = mapped_column(_BIG_ID, ForeignKey('pubsub_message.id', ondelete='CASCADE'),
                                            index=True)
    priority: Mapped[int] = mapped_column(Integer)
    pub_time: Mapped[float] = mapped_column(Float)
    expiration_time: Mapped[float] = mapped_column(Float)
    delivery_count: Mapped[int] = mapped_column(Integer, default=0)
    visible_after: Mapped[float] = mapped_column(Float, default=0.0)
    last_delivery_time: Mapped[float | None] = mapped_column(Float, nullable=True)


# A subscription's delivery order, as pulls read it (zato.pubsub.store): priority highest first, then
# publication time; descending on priority so that a pull walks the index instead of sorting the queue
Index('ix_pubsub_queue_delivery', PubSubQueue.sub_id, PubSubQueue.priority.desc(), PubSubQueue.pub_time,
      PubSubQueue.id)
