"""``self.patterns``: Zato 3.1's invocation patterns — ``invoke_retry``, ``fanout`` and ``parallel``.

* ``invoke_retry.invoke(target, payload, repeats=3, seconds=..., async_fallback=False, callback=...)``
  tries `target`; if that fails it tries again, `repeats` attempts in all, sleeping `seconds` (or
  `minutes`) between them, and raises zato.errors.RetryFailed when none succeeded. With
  ``async_fallback=True`` the first failure hands the remaining attempts to the background at once
  and returns their CID; `callback` gets the result. ``invoke_async`` does all attempts in the
  background. The background attempts are one invoke_async of ``zato.pattern.invoke-retry``: at
  least once, on any worker (zato.server.async_queue).
* ``fanout.invoke(targets, callbacks, target_callbacks=None)`` runs every target on any workers of the
  cluster and, once every one answered, invokes each of `callbacks` once with all the answers.
* ``parallel.invoke(targets, on_target=..., on_final=...)`` is the same with per-target callbacks and
  an optional final one.

`targets` is ``{service_name: payload}`` or a list of ``(service_name, payload)`` pairs (to invoke
one service more than once). The fan-in's state is in the ODB, so targets on different servers
still produce exactly one final callback (each final callback is queued once and, as any
invoke_async, runs at least once).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gevent

from zato.errors import RetryFailed
from zato.service.async_job import Job

if TYPE_CHECKING:
    from zato.service.base import Service

RETRY_SERVICE = 'zato.pattern.invoke-retry'


def retry_config(repeats: int, seconds: float, minutes: float) -> tuple[int, float]:
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        raise ValueError(f'repeats must be an int of 1 or more, not {repeats!r}')
    if seconds and minutes:
        raise ValueError('Give seconds or minutes, not both')
    sleep = float(minutes) * 60 if minutes else float(seconds)
    if sleep < 0:
        raise ValueError(f'The time between attempts must not be negative, not {sleep}')
    return repeats, sleep


def attempt_retries(svc: Service, target: str, payload: Any, repeats: int, sleep: float,
                    first_attempt: int = 1) -> tuple[bool, Any, str, int]:
    """Tries `target` until it succeeds or `repeats` attempts in all were made: (ok, response, last error, attempts)."""
    error = ''
    attempt = first_attempt
    while attempt <= repeats:
        try:
            return True, svc.invoke(target, payload), '', attempt
        except Exception as e:  # noqa: BLE001 - any failure of the target is what is retried
            error = f'{type(e).__name__}: {e}'
            svc.logger.info('(%s/%s) Invoking `%s` failed, cid `%s`: %s', attempt, repeats, target, svc.cid, error)
        if attempt < repeats:
            gevent.sleep(sleep)
        attempt += 1
    return False, None, error, repeats


class InvokeRetry:
    """``self.patterns.invoke_retry``."""

    __slots__ = ('svc',)

    def __init__(self, svc: Service) -> None:
        self.svc = svc

    def _background(self, target: str, payload: Any, repeats: int, sleep: float, callback: Any, context: Any,
                    done: int) -> str:
        server = self.svc.server
        if callback is None:
            raise ValueError('A callback is needed: it is what gets the result of the background attempts')
        callback_name = server.invoker.callback_of(target, callback or False)
        request = {'target': target, 'payload': payload, 'repeats': repeats, 'seconds': sleep, 'context': context,
                   'source': self.svc.name, 'orig_cid': self.svc.cid, 'done': done}
        return server.async_queue.enqueue(Job(RETRY_SERVICE, request, callback=callback_name))

    def invoke(self, target: str, payload: Any = None, *, repeats: int = 3, seconds: float = 0, minutes: float = 0,
               async_fallback: bool = False, callback: Any = None, context: Any = None) -> Any:
        """Invokes `target` here and now, with up to `repeats` attempts; its response, or RetryFailed.

        With ``async_fallback`` the first failure returns the CID of the background attempts instead."""
        repeats, sleep = retry_config(repeats, seconds, minutes)
        self.svc.server.invoker.store.get(target)  # an unknown or inactive target is not worth retrying
        if async_fallback:
            ok, response, error, _ = attempt_retries(self.svc, target, payload, 1, 0)
            if ok:
                return response
            return self._background(target, payload, repeats, sleep, callback, context, done=1)
        ok, response, error, attempts = attempt_retries(self.svc, target, payload, repeats, sleep)
        if ok:
            return response
        raise RetryFailed(f'Could not invoke `{target}` in {attempts} attempts, {sleep:g} s apart; last error: {error}')

    def invoke_async(self, target: str, payload: Any = None, *, repeats: int = 3, seconds: float = 0,
                     minutes: float = 0, callback: Any = None, context: Any = None) -> str:
        """Makes every attempt in the background; returns their CID at once. `callback` gets the result."""
        repeats, sleep = retry_config(repeats, seconds, minutes)
        self.svc.server.invoker.store.get(target)
        return self._background(target, payload, repeats, sleep, callback, context, done=0)


def _targets(targets: Any) -> list[tuple[str, Any]]:
    pairs = list(targets.items()) if isinstance(targets, dict) else [tuple(pair) for pair in targets]
    if not pairs:
        raise ValueError('No targets given')
    return pairs


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


class _GroupPattern:
    __slots__ = ('svc',)
    kind = ''

    def __init__(self, svc: Service) -> None:
        self.svc = svc

    def _start(self, targets: Any, on_target: Any, on_final: Any, cid: str | None) -> str:
        pairs = _targets(targets)
        on_target_names, on_final_names = _names(on_target), _names(on_final)
        store = self.svc.server.invoker.store
        for name in [name for name, _ in pairs] + on_target_names + on_final_names:
            store.get(name)  # fail fast, in the caller: not found, inactive
        return self.svc.server.async_queue.start_group(self.kind, self.svc.name, pairs, on_target_names,
                                                        on_final_names, cid)


class FanOut(_GroupPattern):
    """``self.patterns.fanout``."""

    __slots__ = ()
    kind = 'fanout'

    def invoke(self, targets: Any, callbacks: Any, target_callbacks: Any = None, cid: str | None = None) -> str:
        """Runs every target on any worker of the cluster; once each answered, every service in `callbacks`
        gets ``{"cid", "source", "req_ts_utc", "on_target", "on_final", "data": [one answer per target]}``.
        Returns the fan-out's CID at once."""
        if not _names(callbacks):
            raise ValueError('A fan-out needs at least one callback')
        return self._start(targets, target_callbacks, callbacks, cid)


class ParallelExec(_GroupPattern):
    """``self.patterns.parallel``."""

    __slots__ = ()
    kind = 'parallel'

    def invoke(self, targets: Any, on_target: Any = None, on_final: Any = None, cid: str | None = None) -> str:
        """Runs every target on any worker of the cluster; each service in `on_target` gets each answer as it
        comes, each in `on_final` all of them once every target answered. Returns the CID at once."""
        return self._start(targets, on_target, on_final, cid)


class Patterns:
    """``self.patterns``."""

    __slots__ = ('invoke_retry', 'fanout', 'parallel')

    def __init__(self, svc: Service) -> None:
        self.invoke_retry = InvokeRetry(svc)
        self.fanout = FanOut(svc)
        self.parallel = ParallelExec(svc)
