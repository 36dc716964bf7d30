"""The ``Service`` base class: what a user subclasses and implements ``handle()`` on."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

from zato.config.channel import CHANNEL, ChannelInfo, SSOUserInfo
from zato.service.crypto import ServiceCrypto
from zato.service.facades import ODBFacade, OutFacade, WSXFacade
from zato.service.invoker import DEFAULT_EXPIRATION
from zato.service.lock import lock_args
from zato.service.patterns import Patterns
from zato.service.reqresp import Request, Response
from zato.service.timeutil import TimeUtil

if TYPE_CHECKING:
    from zato.security.json_schema import CompiledSchema
    from zato.service.cache import CacheFacade
    from zato.service.host import ServiceHost
    from zato.service.sio import CompiledSIO

# The scheduler's hooks, as in 3.1: before_job, then the one of the job's type; after_job, then the same
JOB_HOOKS = tuple(f'{when}_{kind}' for when in ('before', 'after')
                  for kind in ('job', 'one_time_job', 'interval_based_job', 'cron_style_job'))
HOOKS = ('accept', 'before_handle', 'after_handle', 'finalize_handle', 'validate_input', 'validate_output', *JOB_HOOKS)
HTTP_VERBS = ('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS')

_TIME = TimeUtil()  # stateless: one for every service


class Service:
    """Subclass it and implement ``handle()``, or per-verb ``handle_GET``, ``handle_POST`` ...

    A new instance serves each invocation. During ``handle`` the instance has ``self.request``,
    ``self.response``, ``self.cid``, ``self.logger``, ``self.channel`` and ``self.name``, and can
    call other services with ``self.invoke`` and ``self.invoke_async``.

    Optional hooks, called in this order: ``accept`` (return False to refuse with 400),
    ``before_handle``, ``validate_input``, the handler, ``validate_output``, ``after_handle``,
    ``finalize_handle``. Exceptions in before/after/finalize hooks are logged, not raised.
    Invoked by the scheduler (``self.job_type`` is then the job's type), a service also has
    ``before_job`` and ``before_<job_type>_job`` before ``before_handle``, and ``after_job`` and
    ``after_<job_type>_job`` after ``after_handle`` (docs/scheduler.md).
    """

    # Set by the class, or derived from module and class name at deploy time
    name: ClassVar[str] = ''
    impl_name: ClassVar[str] = ''
    schema: ClassVar[str | None] = None

    # Filled in at deploy time by the service store
    _sio: ClassVar[CompiledSIO | None] = None
    _schema: ClassVar[CompiledSchema | None] = None
    _schema_enabled: ClassVar[bool] = True
    _schema_details: ClassVar[bool] = False
    _hooks: ClassVar[frozenset[str]] = frozenset()
    _verbs: ClassVar[frozenset[str]] = frozenset()
    _logger: ClassVar[logging.Logger] = logging.getLogger('zato.service')

    # Set per invocation
    job_type: str | None = None  # one_time, interval_based or cron_style when the scheduler invoked it
    cid: str
    request: Request
    response: Response
    channel: ChannelInfo
    server: ServiceHost
    environ: dict[str, Any]

    @property
    def logger(self) -> logging.Logger:
        return self._logger

    @property
    def chan(self) -> ChannelInfo:
        return self.channel

    @property
    def sso_user(self) -> SSOUserInfo | None:
        """The SSO user this request acts as, when it authenticated with a credential linked to one
        (docs/sso.md, "Linked credentials"); None otherwise."""
        return self.channel.sso_user

    # Hooks: the base versions are never called; the store records which ones a class overrides
    def accept(self) -> bool:
        return True

    def before_handle(self) -> None:
        pass

    def validate_input(self) -> None:
        pass

    def handle(self) -> None:
        pass

    def validate_output(self) -> None:
        pass

    def after_handle(self) -> None:
        pass

    def finalize_handle(self) -> None:
        pass

    def before_job(self) -> None:
        pass

    def before_one_time_job(self) -> None:
        pass

    def before_interval_based_job(self) -> None:
        pass

    def before_cron_style_job(self) -> None:
        pass

    def after_job(self) -> None:
        pass

    def after_one_time_job(self) -> None:
        pass

    def after_interval_based_job(self) -> None:
        pass

    def after_cron_style_job(self) -> None:
        pass

    @property
    def wsx(self) -> WSXFacade:
        """WebSocket channels: ``self.wsx.channel['My Channel'].broadcast(data)``."""
        return WSXFacade(self.server.wsx)

    @property
    def sso(self) -> Any:
        """Single Sign-On, as in 3.1: ``self.sso.user.login(self.cid, ...)``, ``self.sso.user.session.verify(...)``
        (zato.sso.api); a RuntimeError when server.conf does not have ``[component_enabled] sso = true``."""
        sso = getattr(self.server, 'sso', None)
        if sso is None:
            raise RuntimeError('SSO is not enabled: set [component_enabled] sso = true in server.conf')
        return sso

    @property
    def pubsub(self) -> Any:
        """Publish/subscribe (docs/pubsub.md): ``self.pubsub.publish('/customer/new', data=...)`` -> msg_id,
        ``subscribe``, ``unsubscribe``, ``get_messages``, ``pull``, ``ack``, and browsing: ``read_messages``,
        ``read_message``, ``delete_message`` (zato.server.pubsub.PubSubAPI)."""
        return self.server.pubsub.api()  # type: ignore[attr-defined]

    @property
    def _catch_up(self) -> Any:
        return self.server.outconn_mgr.catch_up

    @property
    def out(self) -> OutFacade:
        """Outgoing connections: ``self.out.wsx['My Connection'].conn.send(data)``."""
        return OutFacade(self.server.outconns, self._catch_up)

    @property
    def im(self) -> OutFacade:
        """Instant messaging connections: ``self.im.slack['My Slack'].conn.client``, ``self.im.telegram[...]``."""
        return OutFacade(self.server.outconns, self._catch_up)

    @property
    def email(self) -> OutFacade:
        """E-mail connections, as in Zato 3.1: ``self.email.smtp['My SMTP'].conn.send(msg)``, ``self.email.imap``."""
        return OutFacade(self.server.outconns, self._catch_up)

    @property
    def odb(self) -> ODBFacade:
        """The ODB: ``with self.odb.session() as session: ...`` (a SQLAlchemy session)."""
        return ODBFacade(self.server.Session)

    @property
    def crypto(self) -> ServiceCrypto:
        """Encryption with the environment's key, argon2id hashes, random secrets (docs/crypto.md)."""
        return ServiceCrypto(self.server.crypto.fernet)

    @property
    def cache(self) -> CacheFacade:
        """Built-in caches, as in 3.1: ``self.cache.default.get(key)``, ``self.cache.builtin['name'].set(key,
        value, expiry)`` (docs/cache.md)."""
        return self.server.caches.api

    @property
    def time(self) -> TimeUtil:
        """The current date and time in any timezone, formatted as 3.1 did, and reformatting (docs/crypto.md)."""
        return _TIME

    @property
    def definition(self) -> OutFacade:
        """Zato 3.1's name for Kafka connections: ``self.definition.kafka['name']`` is ``self.out.kafka['name']``."""
        return OutFacade(self.server.outconns, self._catch_up)

    # Cluster-wide locks
    def lock(self, name: str | None = None, ttl: float | None = None, block: float | None = None, *,
             expires: float | None = None, timeout: float | None = None) -> Any:
        """A cluster-wide lock, as a context manager: ``with self.lock(): ...`` runs the block on one
        worker of the whole cluster at a time.

        ``name`` defaults to this service's name; ``ttl`` (20 s) is how long the lock outlives a holder
        that died, renewed in the background while the block runs; ``block`` (10 s) is how long to wait
        for it before raising zato.errors.LockTimeout (0: try once). Zato 2.0's ``expires`` and
        ``timeout`` are the same as ``ttl`` and ``block``. ``with self.lock() as lock:`` gives
        ``lock.token`` (the fencing token), ``lock.check()`` and ``lock.fenced()`` (docs/locks.md).
        """
        args = lock_args(self.name, name, ttl, block, expires, timeout)
        return self.server.locks.lock(args, getattr(self, 'cid', ''))

    @property
    def user_config(self) -> Any:
        """INI files of config/repo/user-conf and pickup/incoming/user-conf, as in 3.1:
        ``self.user_config.<file name without extension>.<section>.<key>`` (docs/user-config.md)."""
        return self.server.user_config.view

    @property
    def patterns(self) -> Patterns:
        """``self.patterns.invoke_retry``, ``.fanout`` and ``.parallel`` (docs/invoking.md)."""
        return Patterns(self)

    # Invoking other services
    def invoke(self, name: str, payload: Any = None, *, timeout: float | None = None, raise_timeout: bool = True,
               as_bunch: bool = False, skip_response_elem: bool = False, serialize: bool = False,
               **kwargs: Any) -> Any:
        """Invokes another service in this process and returns its response payload.

        With ``timeout`` (seconds) the call raises zato.errors.InvocationTimeout when it runs
        longer, or returns None if ``raise_timeout`` is False. ``skip_response_elem`` strips the
        target's SimpleIO ``response_elem`` wrapper, ``as_bunch`` gives dicts with attribute access,
        ``serialize`` a JSON string. An inactive service raises zato.errors.Inactive.
        """
        return self.server.invoker.invoke(name, payload, cid=kwargs.get('cid') or self.cid, timeout=timeout,
                                          raise_timeout=raise_timeout, caller=self.name, as_bunch=as_bunch,
                                          skip_response_elem=skip_response_elem, serialize=serialize)

    def invoke_by_id(self, service_id: int, payload: Any = None, **kwargs: Any) -> Any:
        """``invoke`` of the service whose ODB id is `service_id` (3.1's name), with the same options;
        zato.errors.ServiceNotFound for an id no service of this cluster has."""
        return self.invoke(self.server.service_name_of_id(service_id), payload, **kwargs)

    def invoke_by_impl_name(self, impl_name: str, payload: Any = None, **kwargs: Any) -> Any:
        """``invoke`` of the service whose class is `impl_name` (``module.ClassName``, 3.1's name)."""
        return self.invoke(self.server.invoker.store.name_of_impl(impl_name), payload, **kwargs)

    def invoke_async(self, name: str, payload: Any = None, channel: str = CHANNEL.INVOKE_ASYNC,
                     data_format: str | None = None, transport: str | None = None,
                     expiration: float = DEFAULT_EXPIRATION, to_json_string: bool = False, cid: str | None = None,
                     callback: Any = None, zato_ctx: dict[str, Any] | None = None,
                     environ: dict[str, Any] | None = None) -> str:
        """Runs a service on any one worker of the cluster, in the background, at least once; returns its CID.

        ``callback`` (a service name or a service; by default `<name>-async-callback` if one is
        deployed) is invoked with the response. A run that has not started within ``expiration``
        seconds (0: no limit) is dropped with a warning in the log (docs/invoking.md).
        """
        return self.server.invoker.invoke_async(name, payload, cid=cid, channel=channel, data_format=data_format,
                                                transport=transport, expiration=expiration,
                                                to_json_string=to_json_string, callback=callback, zato_ctx=zato_ctx,
                                                environ=environ)

    # Deploy-time class hooks
    @classmethod
    def before_add_to_store(cls, logger: logging.Logger) -> bool:
        return True

    @classmethod
    def after_add_to_store(cls, logger: logging.Logger) -> None:
        pass


def overridden_hooks(cls: type[Service]) -> frozenset[str]:
    return frozenset(hook for hook in HOOKS if getattr(cls, hook) is not getattr(Service, hook))


def verb_handlers(cls: type[Service]) -> frozenset[str]:
    return frozenset(verb for verb in HTTP_VERBS if callable(getattr(cls, f'handle_{verb}', None)))
