"""The contract every kind of outgoing connection keeps.

A kind is a `Connector` subclass: its `kind` name, its `fields` declared once (the admin API
validates against them, the docs list them), and three methods over the library it wraps:
`connect()` builds the client, `ping_client(client)` proves the remote end answers,
`close_client(client)` lets it go. The base class does the rest the same way for every kind:

- `start()` returns at once; a greenlet builds the client, retrying with exponential backoff and
  full jitter, so a slow or down remote end never holds a worker back. Retrying is for connecting
  only: a call that may have reached the remote end is never repeated behind the caller's back.
- Until the client is built, `client` raises `ConnectorUnavailable` naming the connection and the
  last error; `ping()` does the same, or times a round trip.
- Whatever the library raises comes out as one of the `ConnectorError` classes below (see
  `map_error`), so a service catches one hierarchy whatever the kind.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import gevent
import gevent.event

from zato.errors import ConnectorAuthError, ConnectorError, ConnectorInactive, ConnectorTimeout, ConnectorUnavailable

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

logger = logging.getLogger('zato.connectors')

# 0 to 1, how much of the backoff cap a delay takes; a name of its own so that tests can fix it.
_jitter = random.random


# ################################################################################################ errors

# ConnectorError and its subclasses are defined with the rest of the error hierarchy (zato.errors), where
# every entry point maps them to answers (503, 504, 502); importable from here too, as the connectors and
# services have always imported them
__all__ = ['Connector', 'ConnectorAuthError', 'ConnectorError', 'ConnectorInactive', 'ConnectorTimeout',
           'ConnectorUnavailable', 'Field', 'FieldError', 'Hooks', 'NoHooks', 'backoff_delay', 'coerce',
           'describe', 'effective_config', 'secret_field', 'validate']


# ################################################################################################ fields

@dataclass(frozen=True)
class Field:
    """One configuration field of a kind.

    `default` None means the field is required. `check` gets a value of the right type and returns
    an error message, or None if the value is valid. A `secret` field is stored encrypted, apart from
    the rest of the config, and never returned; a kind has at most one.
    """

    name: str
    type: type
    default: Any
    check: Callable[[Any], str | None] | None = None
    doc: str = ''
    secret: bool = False


class FieldError(ValueError):
    """A value a field cannot take; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f'Invalid input `{field}`: {message}')
        self.field = field


_TYPE_NAMES = {bool: 'true or false', int: 'an integer', float: 'a number', str: 'a string',
               dict: 'an object of strings', list: 'a list of strings'}


def coerce(field: Field, value: Any) -> Any:
    """`value` as `field`'s type, or FieldError. Strict: no strings for numbers or booleans, and a
    float field takes an integer but a boolean is never a number."""
    kind = field.type
    ok: bool
    if kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is dict:
        ok = isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    elif kind is list:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise FieldError(field.name, f'expected {_TYPE_NAMES.get(kind, kind.__name__)}')
    return value


def secret_field(fields: Iterable[Field]) -> Field | None:
    return next((f for f in fields if f.secret), None)


def validate(fields: Iterable[Field], data: Mapping[str, Any], current: Mapping[str, Any] | None = None,
             ignore: Iterable[str] = ()) -> tuple[dict[str, Any], str | None]:
    """Checks `data` against the declared fields: a new config (`current` updated with `data`, or
    defaults where neither has a value) and the new secret (None if `data` has none).

    `current` None means creating, so required fields must be there. Names in `ignore` are someone
    else's (the row's name, is_active ...). A None value resets an optional field to its default.
    """
    by_name = {f.name: f for f in fields}
    secret_spec = secret_field(by_name.values())
    unknown = sorted(set(data) - set(by_name) - set(ignore))
    if unknown:
        known = ', '.join(sorted(by_name))
        raise FieldError(unknown[0], f'not a field of this kind of connection (fields: {known})')

    config: dict[str, Any] = {}
    secret: str | None = None
    for name, spec in by_name.items():
        if name in data and data[name] is not None:
            value = coerce(spec, data[name])
            error = spec.check(value) if spec.check is not None else None
            if error:
                raise FieldError(name, error)
        elif spec.default is None and (current is None or name in data):
            raise FieldError(name, 'required')
        elif name in data or current is None or name not in current:
            value = spec.default
        else:
            value = current[name]
        if spec is secret_spec:
            secret = value if name in data else None
        else:
            config[name] = value
    return config, secret


def effective_config(fields: Iterable[Field], stored: Mapping[str, Any]) -> dict[str, Any]:
    """A stored config with defaults for what it lacks (fields added since it was saved), secrets left out."""
    return {f.name: stored.get(f.name, f.default) for f in fields if not f.secret}


# ################################################################################################ connector

class Hooks(Protocol):
    """What a connector may use of the server: kinds that hand events to services (a WebSocket's
    on-message service ...) invoke them through this."""

    def invoke(self, service: str, payload: Any) -> Any:
        ...


class NoHooks:
    """For connectors used outside a server: invoking a service is an error."""

    def invoke(self, service: str, payload: Any) -> Any:
        raise RuntimeError(f'Cannot invoke `{service}`: this connector runs outside a server')


def backoff_delay(attempt: int, low: float, high: float, jitter: float) -> float:
    """The delay before retry `attempt` (0 first): `jitter` (0 to 1) of min(high, low * 2**attempt)."""
    return min(high, low * 2.0 ** min(attempt, 64)) * jitter


def describe(e: BaseException) -> str:
    """An exception on one line: its type and message."""
    text = ' '.join(str(e).split())
    return f'{type(e).__name__}: {text}' if text else type(e).__name__


class Connector:
    """An outgoing connection of one kind; subclass it to add a kind.

    Subclasses set `kind` and `fields` and implement `connect`, and usually `ping_client`,
    `close_client` and `map_error`. `conn` is what a service gets from ``self.out.<kind>[name].conn``:
    the connector itself unless a kind says otherwise.
    """

    kind: ClassVar[str] = ''
    fields: ClassVar[tuple[Field, ...]] = ()
    aliases: ClassVar[tuple[str, ...]] = ()

    # Backoff between connect attempts, in seconds: full jitter over low * 2**attempt, capped at high
    retry_min: ClassVar[float] = 0.5
    retry_max: ClassVar[float] = 30.0

    # A kind whose connect() does no I/O (building a session object) builds the client in start()
    # itself, so that it is usable at once; the background greenlet is only for a failure to retry.
    connect_in_background: ClassVar[bool] = True

    # A service asking for the client while the first attempt to build it is still under way waits
    # this many seconds for that attempt (a connection just created or edited is not an outage);
    # after a failed attempt, or once this wait ran out, it gets ConnectorUnavailable at once.
    first_attempt_wait: ClassVar[float] = 10.0

    # After an edit or a delete, the old connection's client stays open this many seconds for the
    # calls already using it (new calls get the new connection); 0 closes it at once.
    retire_grace: ClassVar[float] = 5.0

    def __init__(self, name: str, config: dict[str, Any], secret: str = '', hooks: Hooks | None = None) -> None:
        self.name = name
        self.config = config
        self._secret = secret
        self.hooks: Hooks = hooks if hooks is not None else NoHooks()
        self._client: Any = None
        self._last_error = ''
        # The class the last failed attempt to build the client was mapped to (ConnectorAuthError for
        # credentials the remote refused ...): what a call gets until the client is built, for every kind
        self._failure: type[ConnectorError] = ConnectorUnavailable
        self._stopping = False
        self._runner: gevent.Greenlet | None = None
        self._wake = gevent.event.Event()       # cuts a backoff sleep short when stopping
        self._attempted = gevent.event.Event()  # set after the first attempt, whatever its outcome
        self._next_attempt = 0.0                # monotonic time of the next connect attempt, 0 when none is due

    def __repr__(self) -> str:
        return f'<{type(self).__name__} {self.kind} `{self.name}`>'

    # ------------------------------------------------------------------ what a kind implements

    def connect(self) -> Any:
        """Builds and returns the client; may block on I/O and raise. Called until it succeeds."""
        raise NotImplementedError

    def ping_client(self, client: Any) -> None:
        """One round trip to the remote end; raises if there is none."""

    def close_client(self, client: Any) -> None:
        """Lets the client go; must not raise for a client that is already broken."""

    def map_error(self, e: BaseException) -> ConnectorError:
        """The library's exception as a ConnectorError; the default knows the standard library's."""
        if isinstance(e, ConnectorError):
            return e
        if isinstance(e, TimeoutError):
            return self.error(ConnectorTimeout, describe(e))
        if isinstance(e, PermissionError):
            return self.error(ConnectorAuthError, describe(e))
        return self.error(ConnectorUnavailable, describe(e))

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> None:
        """Checks that span fields (a user name required by an auth type ...); raises FieldError.
        Each field's own value was checked already."""

    # ------------------------------------------------------------------ the interface

    @property
    def conn(self) -> Any:
        """What ``self.out.<kind>[name].conn`` gives a service."""
        return self

    @property
    def client(self) -> Any:
        """The library's client; ConnectorUnavailable until it is built (after waiting for a first
        attempt still under way)."""
        client = self._client
        if client is None:
            runner = self._runner
            if runner is not None and not runner.dead and runner is not gevent.getcurrent() \
                    and not self._attempted.is_set():
                self._attempted.wait(self.first_attempt_wait)
                client = self._client
            if client is None:
                raise self.unavailable()
        return client

    @property
    def is_built(self) -> bool:
        return self._client is not None

    @property
    def last_error(self) -> str:
        """Why the last attempt to build the client failed; empty if it did not."""
        return self._last_error

    def start(self) -> None:
        """Starts building the client; returns at once, built or not."""
        if self._client is not None or (self._runner is not None and not self._runner.dead):
            raise RuntimeError(f'{self!r} is already started')
        self._stopping = False
        self._wake.clear()
        self._attempted.clear()
        if not self.connect_in_background and self._attempt():
            self._attempted.set()
            return
        self._runner = gevent.spawn(self._run)

    def wait_attempted(self, timeout: float) -> bool:
        """Waits until the first attempt to build the client ended, or `timeout` seconds; True if built."""
        self._attempted.wait(timeout)
        return self.is_built

    def ping(self) -> float:
        """Seconds a round trip to the remote end took; a ConnectorError if there was none."""
        client = self.client
        started = time.monotonic()
        try:
            self.ping_client(client)
        except Exception as e:  # noqa: BLE001 - mapped, whatever the library raised
            raise self.map_error(e) from e
        return time.monotonic() - started

    def stop(self) -> None:
        """Stops connecting and lets the client go. Calling it again does nothing."""
        self._stopping = True
        self._wake.set()
        self._attempted.set()  # a service waiting for the first attempt gets its answer: stopped
        runner, self._runner = self._runner, None
        if runner is not None and not runner.dead and runner is not gevent.getcurrent():
            runner.kill()
        client, self._client = self._client, None
        if client is not None:
            try:
                self.close_client(client)
            except Exception:
                logger.exception('Could not close the client of %r', self)

    def retire(self) -> None:
        """Stops connecting at once and closes the client `retire_grace` seconds later, so that calls
        in flight when an edit replaced this connection finish on it."""
        if self.retire_grace <= 0 or self._client is None:
            self.stop()
            return
        self._stopping = True
        self._wake.set()
        self._attempted.set()
        runner, self._runner = self._runner, None
        if runner is not None and not runner.dead and runner is not gevent.getcurrent():
            runner.kill()
        gevent.spawn_later(self.retire_grace, self.stop)

    # ------------------------------------------------------------------ for subclasses

    @property
    def secret(self) -> str:
        return self._secret

    def error(self, cls: type[ConnectorError], detail: str) -> ConnectorError:
        """An error of class `cls` naming this connection."""
        return cls(f'Outgoing {self.kind} connection `{self.name}`: {detail}', kind=self.kind, name=self.name)

    def unavailable(self) -> ConnectorError:
        if self._stopping:
            return self.error(ConnectorUnavailable, 'stopped')
        why = f'; last error: {self._last_error}' if self._last_error else ''
        error = self.error(self._failure, f'not connected yet{why}')
        # When the next attempt comes, which a caller answered 503 is told as Retry-After
        wait = self._next_attempt - time.monotonic() if self._next_attempt else 0.0
        error.retry_after = wait if wait > 0 else None
        return error

    def describe(self, e: BaseException) -> str:
        """An exception on one line; one that names this connection already is not prefixed twice."""
        if isinstance(e, ConnectorError) and e.name == self.name and e.kind == self.kind:
            text = str(e).removeprefix(f'Outgoing {self.kind} connection `{self.name}`: ')
            return f'{type(e).__name__}: {text}'
        return describe(e)

    # ------------------------------------------------------------------ the connecting greenlet

    def _attempt(self) -> bool:
        try:
            client = self.connect()
        except Exception as e:  # noqa: BLE001 - whatever failed is retried and reported
            self._last_error = self.describe(e)
            try:
                mapped = e if isinstance(e, ConnectorError) else self.map_error(e)
            except Exception:  # noqa: BLE001 - a mapping bug must not stop the retries
                mapped = None
            self._failure = type(mapped) if mapped is not None else ConnectorUnavailable
            return False
        if self._stopping:
            self.close_client(client)
            return False
        self._client = client
        self._last_error = ''
        self._failure = ConnectorUnavailable
        return True

    def _run(self) -> None:
        attempt = 0
        while not self._stopping:
            if self._attempt():
                if attempt:
                    logger.info('%r: connected after %d failed attempt(s)', self, attempt)
                self._attempted.set()
                return
            self._attempted.set()
            if self._stopping:
                return
            delay = backoff_delay(attempt, self.retry_min, self.retry_max, _jitter())
            # The first failure and then every tenth, so that a remote end down for hours fills no disk
            if attempt % 10 == 0:
                logger.warning('%r: could not connect (attempt %d): %s; retrying in %.2fs',
                               self, attempt + 1, self._last_error, delay)
            attempt += 1
            self._next_attempt = time.monotonic() + delay
            self._wake.wait(delay)
            self._next_attempt = 0.0
