"""What a worker remembers of the sessions it verified, so that a UST verify usually answers without the ODB.

Keyed by a UST's SHA-256 (what the ODB keeps too), never the UST. An entry holds all that verify decides
on: the session's application, the end of its life (the earlier of the idle and the absolute expiry), its
user and whether that user is a super-user (who may verify others' sessions). Only a live session of an
unlocked user is remembered; a locked user's session and every refusal go to the ODB each time.

A hit answers only while the entry is younger than `[session] verify_cache_seconds` and the session has
not expired by the clock now; anything else is a miss, answered from the ODB as before.

What ends or changes a session or a user's standing registers, in its transaction, which entries go (by
session or by user); once the ODB committed, this worker drops them and the cluster bus tells every other
worker to (`SSOContext.announce`). A worker whose bus reconnected forgets everything (messages may have
been lost meanwhile). So a session that ended is answered valid by another worker only while the bus
message is on its way, or, if it was lost, for at most `verify_cache_seconds`.

A verify that read the ODB while an eviction arrived (a change committed meanwhile) does not remember
what it read: `generation` counts evictions, and an entry is stored only if none happened since its read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event

from zato.bounded_cache import BoundedCache

# The bus subject of evictions, and the keys of its messages: lists of UST hashes and of users' row ids
SUBJECT = 'sso.sessions.changed'
USTS, USERS = 'ust_hashes', 'user_pks'

logger = logging.getLogger('zato.sso')

MAX_ENTRIES = 20_000  # ~6.5 MB per worker when full (a hex digest and an entry each)

_PENDING = 'zato.sso.verify_cache.pending'


@dataclass(slots=True, frozen=True)
class Entry:
    session_id: int
    user_pk: int
    current_app: str
    ends: float            # the earlier of the session's idle and absolute expiry
    is_super_user: bool
    cached_at: float


class VerifyCache:
    """One worker's entries; `max_age` 0 turns it off (every verify reads the ODB)."""

    def __init__(self, max_age: float, max_entries: int = MAX_ENTRIES) -> None:
        self.max_age = max_age
        self.entries: BoundedCache[str, Entry] = BoundedCache(max_entries)
        self.generation = 0

    def get(self, digest: str, current_app: str, now: float) -> Entry | None:
        """The entry of a live session of `current_app`, fresh enough to answer with; None otherwise."""
        entry = self.entries.get(digest)
        if entry is None or entry.current_app != current_app or now >= entry.ends or \
                not 0 <= now - entry.cached_at < self.max_age:
            return None
        return entry

    def put(self, digest: str, entry: Entry, generation: int) -> None:
        """Remembers what a read begun at `generation` found, unless an eviction arrived since."""
        if self.max_age > 0 and generation == self.generation:
            self.entries.remember(digest, entry)

    def forget(self, msg: dict[str, Any]) -> None:
        """Drops the entries of the sessions and users a change names (a bus message's body)."""
        self.generation += 1
        entries = self.entries
        for digest in msg.get(USTS) or ():
            entries.pop(digest, None)
        users = set(msg.get(USERS) or ())
        if users:
            for digest in [digest for digest, entry in entries.items() if entry.user_pk in users]:
                del entries[digest]

    def clear(self, _msg: Any = None) -> None:
        """Forgets everything: the bus reconnected, and what it carried meanwhile may be lost."""
        self.generation += 1
        self.entries.clear()


def forget_after_commit(ctx: Any, session: Any, ust_hash: str | None = None, user_pk: int | None = None) -> None:
    """Makes the commit of `session` drop the entries of this session or of every session of this user on
    every worker (a rollback drops nothing). Call in the transaction that makes the change."""
    pending: dict[str, list[Any]] | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = _on_commit(ctx, session)
    if ust_hash is not None:
        pending[USTS].append(ust_hash)
    if user_pk is not None:
        pending[USERS].append(user_pk)


def _on_commit(ctx: Any, session: Any) -> dict[str, list[Any]]:
    """What `session` will have to forget, sent when it commits and dropped when it rolls back."""
    pending: dict[str, list[Any]] = {USTS: [], USERS: []}

    def committed(_session: Any) -> None:
        msg = {key: list(values) for key, values in pending.items() if values}
        rolled_back(_session)
        if msg:
            ctx.verify_cache.forget(msg)  # at once here; the others when the bus brings it
            try:
                ctx.announce(msg)
            except Exception:
                # Committed already: the others' entries age out within verify_cache_seconds
                logger.exception('Could not tell the cluster which verified SSO sessions to forget')

    def rolled_back(_session: Any) -> None:
        pending[USTS].clear()
        pending[USERS].clear()

    event.listen(session, 'after_commit', committed)
    event.listen(session, 'after_rollback', rolled_back)
    return pending
