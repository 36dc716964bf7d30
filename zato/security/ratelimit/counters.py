"""Approximate rate-limit counters: in-process, no I/O, no locks.

This module is the specification; ``ext/ratelimit.pyx`` (``zato.cy.ratelimit``) is its compiled twin
with the same public API, and ``zato.accel.load('zato.security.ratelimit.counters')`` picks one.

"Approximate" because each worker process counts on its own: with P processes a limit of N admits up
to P x N. Within a process the counts are exact. gevent is cooperative and nothing here yields, so
a probe followed by a charge (or a ``hit``) is atomic with respect to other greenlets without a lock.

Algorithms, for a rule of the kinds rules.py defines:

* per-second limits - GCRA with nginx ``limit_req rate=N burst=B nodelay`` semantics. T = 1/N, the
  tolerance is B*T. Each key keeps a theoretical arrival time ``tat``. A request at ``t`` passes iff
  ``max(tat, t) - t <= B*T`` - so 1+B requests at once, then one every T - and moves ``tat`` to
  ``max(tat, t) + T``. A refused request leaves ``tat`` alone, so hammering does not extend the wait.
  The wait returned for a refusal is ``max(tat, t) - t - B*T``: at ``t + wait`` the request passes.
* per-minute/hour/day limits - calendar windows in UTC, as 3.1: the window of ``t`` starts at
  ``t - t % period``, exact in floating point for t >= 0. POSIX time has no leap seconds, so this
  is the UTC minute, hour or day that 3.1 spelt ``m.YYYY-MM-DDTHH:MM``. A request passes iff the
  window's count is below N. The wait is the time to the end of the window.

Decisions are made with a slack of ``EPSILON`` (1 us): float timestamps near 1.7e9 carry about
0.24 us of rounding, and without the slack a client retrying at exactly ``t + wait`` could be
refused by one rounding step. It can only ever let a request through 1 us early.

Clocks: the default is ``time.time`` because calendar windows need wall-clock UTC. If the wall clock
steps back, a GCRA state is clamped (and kept clamped, the one change a probe may make) so that it
never asks for more than the (1+B)*T any real state can ask for, and a window state keeps counting
in its newer window until time catches up.

Memory: a key's state is dropped once it is idle, i.e. indistinguishable from no state (GCRA:
``tat <= t``; windows: the window has ended). Idle states are swept when the table grows past a
threshold that then doubles, so sweeping costs O(1) amortised per new key and a check is O(1)
on average. If ``max_keys`` states are all active, the oldest inserted are forgotten (those clients
get a fresh allowance) so memory never exceeds ``max_keys`` states.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zato.security.ratelimit.rules import Rule

__all__ = ['Counters', 'EPSILON', 'DEFAULT_MAX_KEYS']

EPSILON = 1e-6
DEFAULT_MAX_KEYS = 100_000
_FIRST_SWEEP = 1024

# Rule kinds, as in rules.py
_UNLIMITED, _GCRA, _WINDOW = 0, 1, 2


class _State:
    """What is kept per key: the rule's parameters, copied once, and the counting state."""

    __slots__ = ('count', 'expires', 'interval', 'kind', 'limit', 'period', 'rule', 'tat', 'tolerance', 'window')

    def __init__(self, rule: Rule, t: float) -> None:
        self.rule = rule
        self.kind = rule.kind
        self.interval = rule.interval
        self.tolerance = rule.tolerance
        self.limit = rule.limit
        self.period = rule.period
        self.tat = 0.0      # GCRA
        self.window = 0.0   # windows: start of the current window, epoch seconds (a whole number)
        self.count = 0      # windows: requests charged in it
        # When this state becomes idle. A new one is idle at once, but a sweep removes only states
        # idle *before* now, so a state created for this very check survives until it is charged.
        self.expires = t

    def same_parameters(self, rule: Rule) -> bool:
        return (rule.kind == self.kind and rule.interval == self.interval and rule.tolerance == self.tolerance
                and rule.limit == self.limit and rule.period == self.period)

    def gcra_tat(self, t: float) -> float:
        """max(tat, t), clamped to the most any real state can ask for, in case the clock stepped back."""
        # Conditionals rather than min() and max(): builtin calls cost several times more here
        tat = self.tat if self.tat > t else t
        cap = t + self.tolerance + self.interval
        return tat if tat < cap else cap

    def wait(self, t: float) -> float:
        """0.0 if a request at ``t`` passes, else how long until one would."""
        if self.kind == _GCRA:
            tat = self.gcra_tat(t)
            if tat < self.tat:
                # The clock stepped back: keep the clamped value, or every later request would be
                # clamped again and refused until the clock caught up with the old tat
                self.tat = self.expires = tat
            over = tat - t - self.tolerance
            return over if over > EPSILON else 0.0
        # t past the stored window's end means a new window (and so room); no division needed
        end = self.window + self.period
        if t >= end or self.count < self.limit:
            return 0.0
        return end - t

    def charge(self, t: float) -> None:
        if self.kind == _GCRA:
            self.tat = self.expires = self.gcra_tat(t) + self.interval
        else:
            if t >= self.window + self.period:
                self.window = t - t % self.period
                self.count = 0
            self.count += 1
            self.expires = self.window + self.period

    def refund(self, t: float) -> None:
        if self.kind == _GCRA:
            # Exactly undoes a charge even if others charged since; a tat left below t is idle
            self.tat -= self.interval
            self.expires = self.tat
        elif self.window <= t < self.window + self.period and self.count > 0:
            # A charge in a window that has since ended needs no refund: that count is gone anyway
            self.count -= 1


class Counters:
    """Per-key rate-limit state of one worker process.

    Keys are any hashable values, e.g. ``(definition_id, rule_index, client_key)``. ``now`` is
    seconds as a float, as returned by ``clock`` (default ``time.time``); pass it explicitly to share
    one reading among several checks, or leave it None to read the clock.
    """

    __slots__ = ('_clock', '_max_keys', '_sweep_at', '_table')

    def __init__(self, clock: Callable[[], float] | None = None, max_keys: int = DEFAULT_MAX_KEYS) -> None:
        self._clock = time.time if clock is None else clock
        self._table: dict[Hashable, _State] = {}
        self._max_keys = max(int(max_keys), 1)
        self._sweep_at = min(_FIRST_SWEEP, self._max_keys)

    @property
    def clock(self) -> Callable[[], float]:
        """The clock used when ``now`` is None."""
        return self._clock

    def __len__(self) -> int:
        return len(self._table)

    def probe(self, key: Hashable, rule: Rule, now: float | None = None) -> float:
        """0.0 if a request would pass now, else the seconds until it would; charges nothing."""
        t = self._clock() if now is None else now
        state = self._table.get(key)
        if state is None or (state.rule is not rule and not self._adopt(state, rule)):
            # No state behaves as a fresh one, and a fresh one always has room (N >= 1)
            return 0.0
        return state.wait(t)

    def charge(self, key: Hashable, rule: Rule, now: float | None = None) -> None:
        """Counts a request against ``key``, whether or not it would pass (callers probe first)."""
        t = self._clock() if now is None else now
        state = self._state(key, rule, t)
        if state is not None:
            state.charge(t)

    def hit(self, key: Hashable, rule: Rule, now: float | None = None) -> float:
        """``probe`` and, if the request passes, ``charge``, in one step: the fast path for one level."""
        t = self._clock() if now is None else now
        state = self._state(key, rule, t)
        if state is None:
            return 0.0
        wait = state.wait(t)
        if wait == 0.0:
            state.charge(t)
        return wait

    def hit_all(self, items: Sequence[tuple[Hashable, Rule]], now: float | None = None) -> float:
        """``hit`` for several levels at once: all are charged if all pass, else none is and the
        longest wait is returned. Nothing yields in between, so it is atomic among greenlets."""
        t = self._clock() if now is None else now
        states = []
        worst = 0.0
        for key, rule in items:
            state = self._state(key, rule, t)
            if state is not None:
                wait = state.wait(t)
                if wait > worst:
                    worst = wait
                states.append(state)
        if worst > 0.0:
            return worst
        for state in states:
            state.charge(t)
        return 0.0

    def refund(self, key: Hashable, rule: Rule, now: float | None = None) -> None:
        """Takes back one charge made at ``now``: used when a later level refused the request."""
        t = self._clock() if now is None else now
        state = self._table.get(key)
        if state is not None and state.rule is rule:
            state.refund(t)

    def clear(self) -> None:
        """Forgets every state, e.g. after definitions changed (3.1 resets counters then too)."""
        self._table.clear()
        self._sweep_at = min(_FIRST_SWEEP, self._max_keys)

    def _adopt(self, state: _State, rule: Rule) -> bool:
        """Follows a re-parsed rule: same parameters keep the state, different ones start afresh."""
        if state.same_parameters(rule):
            state.rule = rule
            return True
        return False

    def _state(self, key: Hashable, rule: Rule, t: float) -> _State | None:
        state = self._table.get(key)
        if state is not None and (state.rule is rule or self._adopt(state, rule)):
            return state
        if rule.kind == _UNLIMITED:
            return None
        if len(self._table) >= self._sweep_at:
            self._sweep(t)
        state = self._table[key] = _State(rule, t)
        return state

    def _sweep(self, t: float) -> None:
        table = self._table
        for key in [key for key, state in table.items() if state.expires < t]:
            del table[key]
        if len(table) >= self._max_keys:
            # All active, and one is about to be added: forget the oldest inserted, down to 3/4 so
            # that this does not run on every insert
            excess = len(table) - self._max_keys * 3 // 4
            for key in list(table)[:excess]:
                del table[key]
        self._sweep_at = min(self._max_keys, max(_FIRST_SWEEP, 2 * len(table)))
