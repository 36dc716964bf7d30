"""Purging what SSO no longer needs: expired sessions, tokens and attributes (a session's attributes
go with it, by the ODB's ON DELETE CASCADE; these are the ones whose own expiry has passed).

A used token is kept until it expires, so that it is answered as used (E005007 for a confirmation)
for as long as it would have been valid; after that it goes whether it was used or not.

Each call deletes at most `limit` rows of each table, by primary key from a bounded sub-select, so a
backlog is worked off over several calls without one long lock on the tables. A server runs it every
[session] purge_interval seconds on one worker of the cluster (zato.server.sso.Purger).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, or_, select

from zato.odb.models import SSOAttr, SSOSession, SSOToken
from zato.sso.context import SSOContext

LIMIT = 1000


@dataclass(frozen=True)
class Purged:
    sessions: int
    tokens: int
    attrs: int = 0

    @property
    def total(self) -> int:
        return self.sessions + self.tokens + self.attrs

    @property
    def is_full(self) -> bool:
        """Whether a table had more than one batch to purge."""
        return max(self.sessions, self.tokens, self.attrs) >= LIMIT


def purge(ctx: SSOContext, limit: int = LIMIT) -> Purged:
    now = ctx.clock()
    with ctx.Session() as session:
        expired = select(SSOSession.id).where(
            SSOSession.cluster_id == ctx.cluster_id,
            or_(SSOSession.expiration_time <= now, SSOSession.max_expiration_time <= now)).limit(limit)
        sessions = session.execute(delete(SSOSession).where(SSOSession.id.in_(expired.scalar_subquery()))).rowcount
        spent = select(SSOToken.id).where(
            SSOToken.cluster_id == ctx.cluster_id,
            SSOToken.expiration_time <= now).limit(limit)
        tokens = session.execute(delete(SSOToken).where(SSOToken.id.in_(spent.scalar_subquery()))).rowcount
        stale = select(SSOAttr.id).where(
            SSOAttr.cluster_id == ctx.cluster_id,
            SSOAttr.expiration_time <= now).limit(limit)
        attrs = session.execute(delete(SSOAttr).where(SSOAttr.id.in_(stale.scalar_subquery()))).rowcount
        session.commit()
    return Purged(sessions or 0, tokens or 0, attrs or 0)
