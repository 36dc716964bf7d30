"""Brute-force protection, as Keycloak's: failed logins are counted per user (the case-folded
username's row); every `lockout_failures` failures in a row lock the user out for a while, each
lockout longer than the one before by `lockout_wait_increment` seconds, up to `lockout_max_wait`;
after `lockout_permanent_after` such lockouts (0: never) the user stays locked until a super-user
unlocks them. A count left alone for `lockout_failure_reset` seconds starts again.

While locked out, even the right password is refused, with the same generic E005001 as a wrong one,
and the attempt is not counted (an attacker cannot stretch the lockout, nor learn the password).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# `locked_by` of a user the brute-force protection locked for good (a super-user's lock names them)
LOCKED_BY = 'zato.sso.brute-force'


@dataclass(frozen=True)
class Policy:
    failures: int
    wait_increment: int
    max_wait: int
    failure_reset: int
    permanent_after: int

    @classmethod
    def from_config(cls, login: dict[str, Any]) -> Policy:
        return cls(login['lockout_failures'], login['lockout_wait_increment'], login['lockout_max_wait'],
                   login['lockout_failure_reset'], login['lockout_permanent_after'])


@dataclass(frozen=True)
class AfterFailure:
    """A user's brute-force state after one more failed login."""
    failed_logins: int
    lockout_count: int
    locked_until: float
    locked_for_good: bool


def after_failure(policy: Policy, failed_logins: int, lockout_count: int, last_failure_time: float,
                  locked_until: float, now: float) -> AfterFailure:
    """What one more failure at `now` makes of the state (the values as they were before it)."""
    if last_failure_time and now - last_failure_time >= policy.failure_reset:
        failed_logins, lockout_count = 0, 0
    failed_logins += 1
    if failed_logins % policy.failures:
        return AfterFailure(failed_logins, lockout_count, locked_until, False)
    lockout_count += 1
    if policy.permanent_after and lockout_count >= policy.permanent_after:
        return AfterFailure(failed_logins, lockout_count, locked_until, True)
    wait = min(policy.wait_increment * lockout_count, policy.max_wait)
    return AfterFailure(failed_logins, lockout_count, now + wait, False)
