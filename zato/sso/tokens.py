"""Single-use tokens sent by email: a sign-up confirmation, a password reset.

A token is 256 random bits, URL-safe, shown once (in the email, and for a sign-up in the answer when
[signup] always_return_confirm_token says so); the ODB keeps only its SHA-256. It is accepted once:
one conditional UPDATE sets its `used_time` only while it is unused and unexpired, so of any number
of calls with the same token on any workers and servers exactly one gets its user.
"""

from __future__ import annotations

import enum
import secrets
from typing import Any

from sqlalchemy import delete, select, update

from zato.odb.models import SSOToken
from zato.sso.context import SSOContext, ust_hash

TOKEN_BYTES = 32
SIGNUP, PASSWORD_RESET = 'signup', 'password_reset'  # noqa: S105 - kinds, not secrets
DECOY = 'decoy'  # written, expired already, where a sign-up must cost what a real one does (zato.sso.signup)


class Refused(enum.Enum):
    """Why a token was not accepted."""
    unknown = 'unknown'    # never issued, of another kind or cluster, or purged
    used = 'used'
    expired = 'expired'


class TokenRefused(Exception):
    def __init__(self, reason: Refused) -> None:
        super().__init__(reason.value)
        self.reason = reason


class Tokens:
    def __init__(self, ctx: SSOContext) -> None:
        self.ctx = ctx

    def issue(self, session: Any, user_pk: int, kind: str, valid_for: float, now: float) -> str:
        """A new token of `user_pk` valid for `valid_for` seconds, in the caller's transaction; shown once."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        session.add(SSOToken(cluster_id=self.ctx.cluster_id, token_hash=ust_hash(token), kind=kind, user_id=user_pk,
                             creation_time=now, expiration_time=now + valid_for, used_time=None))
        return token

    def use(self, session: Any, token: Any, kind: str, now: float) -> int:
        """Marks `token` used, in the caller's transaction, and returns its user's primary key; TokenRefused
        when it is not a live token of this kind. The caller commits."""
        if not isinstance(token, str) or not token or len(token) > 200:
            raise TokenRefused(Refused.unknown)
        digest = ust_hash(token)
        where = (SSOToken.token_hash == digest, SSOToken.kind == kind, SSOToken.cluster_id == self.ctx.cluster_id)
        taken = session.execute(update(SSOToken).where(*where, SSOToken.used_time.is_(None),
                                                       SSOToken.expiration_time > now)
                                .values(used_time=now).returning(SSOToken.user_id)).scalar_one_or_none()
        if taken is not None:
            return int(taken)
        row = session.execute(select(SSOToken.used_time).where(*where)).one_or_none()
        if row is None:
            raise TokenRefused(Refused.unknown)
        raise TokenRefused(Refused.used if row.used_time is not None else Refused.expired)

    def last_issued(self, session: Any, user_pk: int, kind: str) -> float | None:
        """When the newest token of this kind of a user still in the ODB was issued; None if there is none."""
        return session.execute(select(SSOToken.creation_time).where(
            SSOToken.user_id == user_pk, SSOToken.kind == kind).order_by(SSOToken.creation_time.desc()).limit(1)
        ).scalar_one_or_none()

    @staticmethod
    def end_all_of(session: Any, user_pk: int, kind: str) -> int:
        """Ends every other token of this kind of a user (a reset that succeeded makes older links useless)."""
        return session.execute(delete(SSOToken).where(SSOToken.user_id == user_pk, SSOToken.kind == kind,
                                                      SSOToken.used_time.is_(None))).rowcount or 0
