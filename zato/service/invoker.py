"""Runs services: the hook pipeline, in-process ``invoke`` and cluster-wide ``invoke_async``."""

from __future__ import annotations

import logging
import os
from time import perf_counter
from typing import TYPE_CHECKING, Any

import gevent

from fastjsonschema import JsonSchemaValueException

from zato.errors import BadRequest, ClientError, InvocationTimeout, MethodNotAllowed, ZatoError
from zato.security.json_schema import error_details
from zato.config.channel import INVOKE_ASYNC_CHANNEL, INVOKE_CHANNEL, ChannelInfo
from zato.service.reqresp import Request, Response
from zato.service.sio import SIOInputError

if TYPE_CHECKING:
    from zato.server.stats import ServiceStats
    from zato.server.store import ServiceStore
    from zato.service.base import Service
    from zato.service.host import InvokerHost

logger = logging.getLogger('zato.invoker')

ASYNC_SUBJECT = 'service.invoke-async'


_CID_BATCH = 512
_cids: list[str] = []


def _refill_cids() -> None:
    block = os.urandom(12 * _CID_BATCH).hex()
    _cids[:] = [block[i:i + 24] for i in range(0, len(block), 24)]


def new_cid() -> str:
    """96 random bits as 24 hex characters, as in Zato 3.1.

    Drawn from the OS CSPRNG in batches: one getrandom call per 512 CIDs instead of one each.
    """
    try:
        return _cids.pop()
    except IndexError:
        _refill_cids()
        return _cids.pop()


# A forked worker must never hand out CIDs its parent (or a sibling) already has
os.register_at_fork(after_in_child=_cids.clear)


class SelfInvocationError(ZatoError):
    pass


def _run_logged(svc: Service, hook: str) -> None:
    try:
        getattr(svc, hook)()
    except Exception:
        svc.logger.exception('Exception in %s.%s, cid `%s`', svc.name, hook, svc.cid)


def _run_job_hooks(svc: Service, hooks: frozenset[str], when: str, job_type: str) -> None:
    for hook in (f'{when}_job', f'{when}_{job_type}_job'):
        if hook in hooks:
            _run_logged(svc, hook)


def _no_stats(name: str, started: float, ended: float, status: Any) -> None:
    pass


class Invoker:
    """One per worker process; every invocation it runs is recorded in `stats` (zato.server.stats)."""

    def __init__(self, store: ServiceStore, host: InvokerHost, stats: ServiceStats | None = None) -> None:
        self.store = store
        self.host = host
        self._record = _no_stats if stats is None else stats.record

    def run(self, cls: type[Service], cid: str, channel: ChannelInfo, request: Request,
            http_method: str | None = None, environ: dict[str, Any] | None = None,
            job_type: str | None = None) -> Service:
        """Runs one invocation through every hook; returns the service instance (for its response).

        Client mistakes surface as zato.errors.ClientError subclasses; anything else propagates
        for the caller to log and turn into a 500.
        """
        started = perf_counter()
        svc = cls()
        svc.cid = cid
        svc.channel = channel
        svc.request = request
        svc.server = self.host
        svc.environ = {} if environ is None else environ
        if job_type is not None:
            svc.job_type = job_type
        sio = cls._sio
        svc.response = Response(sio.new_payload() if sio is not None and sio.has_output else None)
        hooks = cls._hooks

        status: Any = None  # stays None if the service raises
        try:
            if 'accept' in hooks and not svc.accept():
                raise BadRequest('Request not accepted')

            schema = cls._schema
            if schema is not None and cls._schema_enabled:
                try:
                    schema.validate(request.payload)
                except JsonSchemaValueException as e:
                    raise BadRequest(error_details(cid, e, cls._schema_details)) from None

            if sio is not None and sio.has_input:
                try:
                    request.input = sio.parse_input(request.payload, request.channel_params, request.msg_over_params)
                except SIOInputError as e:
                    raise BadRequest(str(e)) from None

            if job_type is not None:
                _run_job_hooks(svc, hooks, 'before', job_type)
            if 'before_handle' in hooks:
                _run_logged(svc, 'before_handle')
            if 'validate_input' in hooks:
                svc.validate_input()

            verbs = cls._verbs
            if verbs and http_method is not None:
                if http_method not in verbs:
                    raise MethodNotAllowed(f'Method {http_method} not allowed',
                                           headers={'Allow': ', '.join(sorted(verbs))})
                getattr(svc, f'handle_{http_method}')()
            else:
                svc.handle()

            if 'validate_output' in hooks:
                svc.validate_output()
            if 'after_handle' in hooks:
                _run_logged(svc, 'after_handle')
            if job_type is not None:
                _run_job_hooks(svc, hooks, 'after', job_type)
            status = svc.response.status_code
        except ClientError as e:
            status = e.status  # the caller's mistake, not the service's error (unless 5xx)
            raise
        finally:
            if 'finalize_handle' in hooks:
                _run_logged(svc, 'finalize_handle')
            self._record(cls.name, started, perf_counter(), status)
        return svc

    def run_hook(self, cls: type[Service], hook: str, cid: str, channel: ChannelInfo,
                 environ: dict[str, Any]) -> None:
        """Runs a channel hook of a service (on_connected, on_disconnected ...); errors are logged."""
        svc = cls()
        svc.cid = cid
        svc.channel = channel
        svc.request = Request(None, b'')
        svc.server = self.host
        svc.environ = environ
        svc.response = Response(None)
        _run_logged(svc, hook)

    @staticmethod
    def output_of(svc: Service) -> Any:
        """The response payload as Python data: SimpleIO output serialized, anything else as is."""
        response = svc.response
        if response.has_sio_payload:
            return type(svc)._sio.serialize(response.payload)  # type: ignore[union-attr]
        return response.payload

    def invoke(self, name: str, payload: Any = None, *, cid: str | None = None, timeout: float | None = None,
               raise_timeout: bool = True, caller: str = '', channel: ChannelInfo = INVOKE_CHANNEL) -> Any:
        """Invokes a service by name in this process and returns its output."""
        if caller and caller == name:
            raise SelfInvocationError(f'Service `{name}` cannot invoke itself')
        cls = self.store.get(name)
        request = Request(payload=payload, raw_request=payload if isinstance(payload, (bytes, str)) else b'')
        cid = cid or new_cid()
        if timeout is None:
            return self.output_of(self.run(cls, cid, channel, request))

        greenlet = gevent.spawn(self.run, cls, cid, channel, request)
        try:
            svc = greenlet.get(timeout=timeout)
        except gevent.Timeout:
            greenlet.kill(block=False)
            if raise_timeout:
                raise InvocationTimeout(f'Service `{name}` did not finish within {timeout} s (cid `{cid}`)') from None
            return None
        return self.output_of(svc)

    def invoke_async(self, name: str, payload: Any = None, *, cid: str | None = None) -> str:
        """Sends the invocation to any one worker of the cluster; returns the CID at once."""
        self.store.get(name)  # fail fast here, in the caller, for an unknown name
        cid = cid or new_cid()
        self.host.bus.send_any(ASYNC_SUBJECT, {'name': name, 'payload': payload, 'cid': cid})
        return cid

    def on_async_message(self, msg: dict[str, Any]) -> None:
        name, cid = msg['name'], msg['cid']
        try:
            self.invoke(name, msg.get('payload'), cid=cid, channel=INVOKE_ASYNC_CHANNEL)
        except Exception:
            logger.exception('Async invocation of `%s` failed, cid `%s`', name, cid)
