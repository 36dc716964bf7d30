# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twin of zato.security.ratelimit.counters: the same public API and the same algorithms.

zato/security/ratelimit/counters.py is the specification (GCRA for per-second limits, calendar
windows for minutes, hours and days, idle-state sweeping); read it first. What differs here is only
how: a state is a cdef object of C doubles and integers, the dict is read with PyDict_GetItem (a
borrowed reference, no exception on a miss), and the rule's parameters are copied into the state
once, so the hot path compares the rule by identity and touches no Python attribute.
"""

from cpython.dict cimport PyDict_GetItem
from cpython.ref cimport PyObject
from libc.math cimport fmod

import time

__all__ = ['Counters', 'EPSILON', 'DEFAULT_MAX_KEYS']

EPSILON = 1e-6
DEFAULT_MAX_KEYS = 100_000

cdef double _EPS = 1e-6
cdef Py_ssize_t _FIRST_SWEEP = 1024

# Rule kinds, as in rules.py
cdef enum:
    K_UNLIMITED = 0
    K_GCRA = 1
    K_WINDOW = 2

# Returned for every passing request, so the fast path allocates no float
cdef object _ZERO = 0.0


cdef class _State:
    """What is kept per key: the rule's parameters, copied once, and the counting state."""

    cdef object rule
    cdef int kind
    cdef double interval, tolerance, period, tat, window, expires
    cdef long long limit, count

    def __cinit__(self, rule, double t):
        self.rule = rule
        self.kind = rule.kind
        self.interval = rule.interval
        self.tolerance = rule.tolerance
        self.limit = rule.limit
        self.period = rule.period
        self.tat = 0.0
        self.window = 0.0
        self.count = 0
        # Idle at once, but a sweep removes only states idle before now (see the twin)
        self.expires = t

    cdef bint same_parameters(self, rule) except -1:
        return (rule.kind == self.kind and rule.interval == self.interval and rule.tolerance == self.tolerance
                and rule.limit == self.limit and rule.period == self.period)


cdef inline double _gcra_tat(_State s, double t) noexcept:
    # max(tat, t), clamped to the most any real state can ask for, in case the clock stepped back
    cdef double tat = s.tat if s.tat > t else t
    cdef double cap = t + s.tolerance + s.interval
    return tat if tat < cap else cap


cdef inline double _window(double t, double period) noexcept:
    # t - t % period as Python computes it (sign of the divisor), exact for t >= 0
    cdef double m = fmod(t, period)
    if m < 0:
        m += period
    return t - m


cdef inline double _wait(_State s, double t) noexcept:
    cdef double over, end, tat
    if s.kind == K_GCRA:
        tat = _gcra_tat(s, t)
        if tat < s.tat:
            # The clock stepped back: keep the clamped value (see the twin)
            s.tat = tat
            s.expires = tat
        over = tat - t - s.tolerance
        return over if over > _EPS else 0.0
    # t past the stored window's end means a new window (and so room); no division needed
    end = s.window + s.period
    if t >= end or s.count < s.limit:
        return 0.0
    return end - t


cdef inline void _charge(_State s, double t) noexcept:
    if s.kind == K_GCRA:
        s.tat = _gcra_tat(s, t) + s.interval
        s.expires = s.tat
    else:
        if t >= s.window + s.period:
            s.window = _window(t, s.period)
            s.count = 0
        s.count += 1
        s.expires = s.window + s.period


cdef class Counters:
    """Per-key rate-limit state of one worker process.

    Keys are any hashable values, e.g. ``(definition_id, rule_index, client_key)``. ``now`` is
    seconds as a float, as returned by ``clock`` (default ``time.time``); pass it explicitly to share
    one reading among several checks, or leave it None to read the clock.
    """

    cdef object _clock
    cdef dict _table
    cdef Py_ssize_t _max_keys, _sweep_at

    def __init__(self, clock=None, max_keys=DEFAULT_MAX_KEYS):
        self._clock = time.time if clock is None else clock
        self._table = {}
        self._max_keys = max(int(max_keys), 1)
        self._sweep_at = min(_FIRST_SWEEP, self._max_keys)

    @property
    def clock(self):
        """The clock used when ``now`` is None."""
        return self._clock

    def __len__(self):
        return len(self._table)

    def probe(self, key, rule, now=None):
        """0.0 if a request would pass now, else the seconds until it would; charges nothing."""
        cdef double t = self._clock() if now is None else now
        cdef PyObject* found = PyDict_GetItem(self._table, key)
        cdef _State state
        if found is NULL:
            # No state behaves as a fresh one, and a fresh one always has room (N >= 1)
            return _ZERO
        state = <_State>found
        if state.rule is not rule and not self._adopt(state, rule):
            return _ZERO
        cdef double wait = _wait(state, t)
        return _ZERO if wait == 0.0 else wait

    def charge(self, key, rule, now=None):
        """Counts a request against ``key``, whether or not it would pass (callers probe first)."""
        cdef double t = self._clock() if now is None else now
        cdef _State state = self._state(key, rule, t)
        if state is not None:
            _charge(state, t)

    def hit(self, key, rule, now=None):
        """``probe`` and, if the request passes, ``charge``, in one step: the fast path for one level."""
        cdef double t = self._clock() if now is None else now
        cdef PyObject* found = PyDict_GetItem(self._table, key)
        cdef _State state
        if found is not NULL and (<_State>found).rule is rule:
            state = <_State>found
        else:
            state = self._state(key, rule, t)
            if state is None:
                return _ZERO
        cdef double wait = _wait(state, t)
        if wait == 0.0:
            _charge(state, t)
            return _ZERO
        return wait

    def hit_all(self, items, now=None):
        """``hit`` for several levels at once: all are charged if all pass, else none is and the
        longest wait is returned. Nothing yields in between, so it is atomic among greenlets."""
        cdef double t = self._clock() if now is None else now
        cdef double wait, worst = 0.0
        cdef _State state
        cdef list states = []
        for key, rule in items:
            state = self._state(key, rule, t)
            if state is not None:
                wait = _wait(state, t)
                if wait > worst:
                    worst = wait
                states.append(state)
        if worst > 0.0:
            return worst
        for state in states:
            _charge(state, t)
        return _ZERO

    def refund(self, key, rule, now=None):
        """Takes back one charge made at ``now``: used when a later level refused the request."""
        cdef double t = self._clock() if now is None else now
        cdef PyObject* found = PyDict_GetItem(self._table, key)
        cdef _State state
        if found is NULL or (<_State>found).rule is not rule:
            return
        state = <_State>found
        if state.kind == K_GCRA:
            # Exactly undoes a charge even if others charged since; a tat left below t is idle
            state.tat -= state.interval
            state.expires = state.tat
        elif state.window <= t < state.window + state.period and state.count > 0:
            # A charge in a window that has since ended needs no refund: that count is gone anyway
            state.count -= 1

    def clear(self):
        """Forgets every state, e.g. after definitions changed (3.1 resets counters then too)."""
        self._table.clear()
        self._sweep_at = min(_FIRST_SWEEP, self._max_keys)

    cdef bint _adopt(self, _State state, rule) except -1:
        """Follows a re-parsed rule: same parameters keep the state, different ones start afresh."""
        if state.same_parameters(rule):
            state.rule = rule
            return True
        return False

    cdef _State _state(self, key, rule, double t):
        cdef PyObject* found = PyDict_GetItem(self._table, key)
        cdef _State state
        if found is not NULL:
            state = <_State>found
            if state.rule is rule or self._adopt(state, rule):
                return state
        if rule.kind == K_UNLIMITED:
            return None
        if len(self._table) >= self._sweep_at:
            self._sweep(t)
        state = _State(rule, t)
        self._table[key] = state
        return state

    cdef void _sweep(self, double t) except *:
        cdef dict table = self._table
        cdef _State state
        cdef Py_ssize_t excess
        idle = [key for key, state in table.items() if state.expires < t]
        for key in idle:
            del table[key]
        if len(table) >= self._max_keys:
            # All active, and one is about to be added: forget the oldest inserted, down to 3/4 so
            # that this does not run on every insert
            excess = len(table) - self._max_keys * 3 // 4
            for key in list(table)[:excess]:
                del table[key]
        self._sweep_at = min(self._max_keys, max(_FIRST_SWEEP, 2 * len(table)))
