"""Purging what SSO no longer needs: expired sessions and expired tokens.

A used token is kept until it expires, so that it is answered as used (E005007 for a confirmation)
for as long as it would have been valid; after that it goes whether it was used or not.

Each call deletes at most `limit` rows of each table, by primary key from a bounded sub-select, so a
backlog is worked off over several calls without one long lock on the tables. A server runs it every
[session] purge_interval seconds on one worker of the cluster (zato.server.sso.Purger).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, or_, select

from zato.odb.models import SSOSession, SSOToken
from zato.sso.context import SSOContext

LIMIT = 1000


@dataclass(frozen=True)
class Purged:
    sessions: int
    tokens: int


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
        session.commit()
    return Purged(sessions or 0, tokens or 0)
