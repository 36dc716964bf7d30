"""Runs services: the hook pipeline, in-process ``invoke`` and cluster-wide ``invoke_async``."""

from __future__ import annotations

import logging
import os
from time import perf_counter
from typing import TYPE_CHECKING, Any

import gevent
import orjson

from fastjsonschema import JsonSchemaValueException

from zato.errors import BadRequest, ClientError, InvocationTimeout, MethodNotAllowed, ZatoError
from zato.security.json_schema import error_details
from zato.config.channel import CHANNEL, INVOKE_CHANNEL, ChannelInfo
from zato.service.async_job import Job
from zato.service.bunch import bunchify
from zato.service.reqresp import Request, Response
from zato.service.sio import SIOInputError

if TYPE_CHECKING:
    from zato.server.stats import ServiceStats
    from zato.server.store import ServiceStore
    from zato.service.base import Service
    from zato.service.host import InvokerHost

logger = logging.getLogger('zato.invoker')

ASYNC_SUBJECT = 'service.invoke-async'
ASYNC_CALLBACK_SUFFIX = '-async-callback'
DEFAULT_EXPIRATION = 15.0  # seconds, as 3.1


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


def strip_response_elem(cls: type[Service], output: Any) -> Any:
    """The output without SimpleIO's top-level element (``{"response_elem": {...}}`` → ``{...}``)."""
    sio = cls._sio
    elem = sio.response_elem if sio is not None else None
    if elem and isinstance(output, dict) and len(output) == 1 and elem in output:
        return output[elem]
    return output


def _no_stats(name: str, started: float, ended: float, status: Any) -> None:
    pass


class Invoker:
    """One per worker process; every invocation it runs is recorded in `stats` (zato.server.stats)."""

    def __init__(self, store: ServiceStore, host: InvokerHost, stats: ServiceStats | None = None) -> None:
        self.store = store
        self.host = host
        self._record = _no_stats if stats is None else stats.record

    def run(self, cls: type[Service], cid: str, channel: ChannelInfo, request: Request,
            http_method: str | None = None, environ: dict[str, Any] | None = None) -> Service:
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
               raise_timeout: bool = True, caller: str = '', channel: ChannelInfo = INVOKE_CHANNEL,
               environ: dict[str, Any] | None = None, as_bunch: bool = False, skip_response_elem: bool = False,
               serialize: bool = False) -> Any:
        """Invokes a service by name in this process and returns its output.

        As in 3.1: ``skip_response_elem`` strips SimpleIO's ``response_elem`` wrapper, ``as_bunch`` gives
        dicts with attribute access (zato.service.bunch.bunchify), ``serialize`` the output as a JSON string.
        """
        if caller and caller == name:
            raise SelfInvocationError(f'Service `{name}` cannot invoke itself')
        cls = self.store.get(name)
        request = Request(payload=payload, raw_request=payload if isinstance(payload, (bytes, str)) else b'')
        cid = cid or new_cid()
        if timeout is None:
            svc = self.run(cls, cid, channel, request, environ=environ)
        else:
            greenlet = gevent.spawn(self.run, cls, cid, channel, request, None, environ)
            try:
                svc = greenlet.get(timeout=timeout)
            except gevent.Timeout:
                greenlet.kill(block=False)
                if raise_timeout:
                    raise InvocationTimeout(
                        f'Service `{name}` did not finish within {timeout} s (cid `{cid}`)') from None
                return None
        output = self.output_of(svc)
        if skip_response_elem:
            output = strip_response_elem(cls, output)
        if serialize:
            return output if isinstance(output, (str, bytes)) else orjson.dumps(output).decode()
        return bunchify(output) if as_bunch else output

    def callback_of(self, name: str, callback: Any) -> str:
        """The service to call with the response of an async invocation of `name`, as in 3.1: None means
        `<name>-async-callback` if it is deployed, True requires it, False means none; else a service name
        or a service (class or instance)."""
        auto = f'{name}{ASYNC_CALLBACK_SUFFIX}'
        if callback is None:
            return auto if auto in self.store else ''
        if callback is False:
            return ''
        target = auto if callback is True else callback if isinstance(callback, str) else getattr(callback, 'name', '')
        if not target:
            raise ValueError(f'Invalid callback {callback!r}: expected a service name, a service, True or False')
        self.store.get(target)  # fail fast, in the caller: not found, inactive
        return target

    def invoke_async(self, name: str, payload: Any = None, *, cid: str | None = None,
                     channel: str = CHANNEL.INVOKE_ASYNC, data_format: str | None = None, transport: str | None = None,
                     expiration: float = DEFAULT_EXPIRATION, to_json_string: bool = False, callback: Any = None,
                     zato_ctx: dict[str, Any] | None = None, environ: dict[str, Any] | None = None) -> str:
        """Queues the invocation for any one worker of the cluster, at least once (zato.server.async_queue);
        returns the CID at once."""
        self.store.get(name)  # fail fast here, in the caller, for an unknown or inactive name
        if expiration < 0:
            raise ValueError(f'expiration must be 0 (none) or more seconds, not {expiration}')
        if to_json_string and not isinstance(payload, (str, bytes)):
            payload = orjson.dumps(payload).decode()
        job = Job(name, payload, cid or new_cid(), channel, data_format or '', transport or '',
                  self.callback_of(name, callback), dict(zato_ctx or {}), dict(environ or {}), expiration)
        return self.host.async_queue.enqueue(job)
