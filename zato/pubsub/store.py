"""GD messages and subscription queues in the ODB: publish, pull, acknowledge, get-and-delete,
unsubscribe. Every operation is one transaction; the rules, each with a test in tests/pubsub/:

* **Publish**: the message row and one queue entry per active subscription of the topic are
  committed in one transaction before the msg_id is returned; an answered msg_id is in the ODB. A
  list of messages (3.1's `data_list`) is committed all or none.
  The topic's `gd_depth` is raised in the same transaction by one conditional UPDATE that matches
  only below `max_depth_gd`, so the limit holds cluster-wide however many servers publish (and the
  UPDATE's row lock orders publications of one topic). No subscription and `on_no_subs_pub` drop:
  nothing is written, the msg_id is still returned (3.1).
* **Batches** (`publish_batch`): publications that arrive together (a worker gathers those made while
  its previous batch was being committed, zato.server.pubsub_batch) are committed together, one
  transaction per topic, each publication still all or none and answered on its own. On PostgreSQL
  the whole batch of a topic is one statement in its own transaction (the depth UPDATE, the messages
  and their queue entries in data-modifying CTEs): one round trip and one commit however many
  messages it holds. When that statement writes nothing (no such topic, inactive, no subscriber with
  `drop`, the depth would be exceeded), the batch's publications are made again one by one as below,
  so each gets its own answer: the ones that fit are stored, the others refused.
* **Delivery order** per subscription: priority (9 first), then publication time, then the order of
  insertion. Publication, visibility and expiration times are the ODB's clock (as leases are), so
  servers whose clocks disagree still agree on them.
* **Acknowledged pull**: the first visible, unexpired entries in delivery order are handed out and
  made invisible for `visibility_timeout` seconds, their `delivery_count` raised; an entry not
  acknowledged in time is visible again and handed out again. Two pullers never get the same entry
  while it is invisible: PostgreSQL picks entries with `SELECT ... FOR UPDATE SKIP LOCKED` (a
  concurrent puller skips those being picked), SQLite pulls in a `BEGIN IMMEDIATE` transaction (one
  writer at a time).
* **Acknowledgement** deletes the subscription's entries of the given msg_ids. On PostgreSQL neither an
  acknowledgement's commit nor a pull's waits for the WAL to reach the disk (synchronous_commit off for
  those transactions only; a publication's always waits): one lost in a crash of PostgreSQL gives its
  messages again, which at-least-once delivery allows, and never loses one. A message no queue
  holds any longer is deleted with them and the topic's `gd_depth` lowered; its row is locked first
  (PostgreSQL, `FOR UPDATE`, in id order), so two subscriptions acknowledging one message at once
  cannot each leave it to the other.
* **Get-and-delete** (3.1's get-messages) is a pull acknowledged in the same transaction: what an
  answer lost on the way held is lost, which is why the acknowledged pull exists.
* Expired entries are never handed out; `delete_expired` removes them and their messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from zato.errors import NotFound
from zato.odb.engine import autocommit
from zato.odb.lease import _NOW
from zato.pubsub.errors import MaxDepthReached, TopicInactive
from zato.pubsub.keys import new_msg_id
from zato.pubsub.message import NewMessage

MAX_BATCH = 1000

_TOPIC = """
SELECT t.id, t.is_active, t.on_no_subs_pub, {now},
       (SELECT count(*) FROM pubsub_sub s WHERE s.topic_id = t.id AND s.is_active = :true)
  FROM pubsub_topic t WHERE t.cluster_id = :cluster_id AND t.name = :name
"""
_RAISE_DEPTH = """
UPDATE pubsub_topic SET gd_depth = gd_depth + :count, last_pub_time = :now
 WHERE id = :topic_id AND gd_depth + :count <= max_depth_gd
"""
_INSERT_MESSAGE = """
INSERT INTO pubsub_message (cluster_id, msg_id, topic_id, published_by_id, pub_pattern_matched, data, data_format,
    mime_type, size, priority, expiration, expiration_time, pub_time, ext_pub_time, correl_id, in_reply_to,
    ext_client_id, group_id, position_in_group, has_gd)
VALUES (:cluster_id, :msg_id, :topic_id, :published_by_id, :pattern, :data, :data_format, :mime_type, :size,
    :priority, :expiration, :expiration_time, :now, :ext_pub_time, :correl_id, :in_reply_to, :ext_client_id,
    :group_id, 1, :has_gd)
RETURNING id
"""
_ENQUEUE = """
INSERT INTO pubsub_queue (cluster_id, sub_id, message_id, priority, pub_time, expiration_time, delivery_count,
    visible_after)
SELECT :cluster_id, s.id, :message_id, :priority, :now, :expiration_time, 0, 0
  FROM pubsub_sub s WHERE s.topic_id = :topic_id AND s.is_active = :true
"""
_PICK = """
SELECT q.id FROM pubsub_queue q
 WHERE q.sub_id = :sub_id AND q.visible_after <= {now} AND q.expiration_time > {now}
 ORDER BY q.priority DESC, q.pub_time, q.id
 LIMIT :limit
"""
# An acknowledged pull in one statement (PostgreSQL): the entries picked as _PICK does, marked, and read. Its
# commit does not wait for the WAL to reach the disk: a mark lost in a crash of PostgreSQL only makes the
# messages visible again sooner, with a lower delivery_count (at least once still holds)
_PULL = """
WITH picked AS (
  SELECT q.id FROM pubsub_queue q
   WHERE q.sub_id = %(sub_id)s AND q.visible_after <= {now} AND q.expiration_time > {now}
   ORDER BY q.priority DESC, q.pub_time, q.id
   LIMIT %(limit)s
     FOR UPDATE SKIP LOCKED
), marked AS (
  UPDATE pubsub_queue q SET delivery_count = q.delivery_count + 1, visible_after = {now} + %(timeout)s,
         last_delivery_time = {now}
    FROM picked WHERE q.id = picked.id
  RETURNING q.id, q.delivery_count, q.message_id, q.priority, q.pub_time
), lazy AS (
  SELECT set_config('synchronous_commit', 'off', true)
)
SELECT k.id, k.delivery_count, m.id, m.msg_id, m.data, m.data_format, m.mime_type, m.size, m.priority, m.expiration,
       m.expiration_time, m.pub_time, m.ext_pub_time, m.correl_id, m.in_reply_to, m.ext_client_id, m.group_id,
       m.has_gd, t.name
  FROM marked k JOIN pubsub_message m ON m.id = k.message_id JOIN pubsub_topic t ON t.id = m.topic_id CROSS JOIN lazy
 ORDER BY k.priority DESC, k.pub_time, k.id
"""
# An acknowledgement on PostgreSQL is one call of the function zato_pubsub_ack (migration 0020): it locks the
# messages the subscription holds among the msg_ids (in id order, as _delete_entries does), then - in a
# statement whose snapshot sees every acknowledgement committed before the locks were had - deletes its
# entries, the messages no other queue holds, and lowers their topics' depth
_MARK_DELIVERED = """
UPDATE pubsub_queue SET delivery_count = delivery_count + 1, visible_after = {now} + :timeout,
       last_delivery_time = {now}
 WHERE id IN :ids
"""
_READ = """
SELECT q.id, q.delivery_count, m.id, m.msg_id, m.data, m.data_format, m.mime_type, m.size, m.priority, m.expiration,
       m.expiration_time, m.pub_time, m.ext_pub_time, m.correl_id, m.in_reply_to, m.ext_client_id, m.group_id,
       m.has_gd, t.name
  FROM pubsub_queue q JOIN pubsub_message m ON m.id = q.message_id JOIN pubsub_topic t ON t.id = m.topic_id
 WHERE q.id IN :ids
 ORDER BY q.priority DESC, q.pub_time, q.id
"""
# A whole batch of one topic in one statement (PostgreSQL): the depth is raised only if the topic is
# there, active, has room and would keep the messages (a subscriber, or `accept`); the messages and their
# queue entries are inserted in the order given (ids follow the ORDER BY), all sharing the topic's new
# last_pub_time as their publication time. Returns (topics updated, queue entries made).
_PUBLISH_BATCH = """
WITH t AS (
  UPDATE pubsub_topic SET gd_depth = gd_depth + %(count)s, last_pub_time = {now}
   WHERE cluster_id = %(cluster_id)s AND name = %(name)s AND is_active AND gd_depth + %(count)s <= max_depth_gd
     AND (on_no_subs_pub <> 'drop'
          OR EXISTS (SELECT 1 FROM pubsub_sub s WHERE s.topic_id = pubsub_topic.id AND s.is_active))
  RETURNING id, last_pub_time AS now
), m AS (
  INSERT INTO pubsub_message (cluster_id, msg_id, topic_id, published_by_id, pub_pattern_matched, data, data_format,
      mime_type, size, priority, expiration, expiration_time, pub_time, ext_pub_time, correl_id, in_reply_to,
      ext_client_id, group_id, position_in_group, has_gd)
  SELECT %(cluster_id)s, v.msg_id, t.id, v.published_by_id, v.pattern, v.data, v.data_format, v.mime_type, v.size,
         v.priority, v.expiration, t.now + v.expiration / 1000.0, t.now, v.ext_pub_time, v.correl_id, v.in_reply_to,
         v.ext_client_id, v.group_id, 1, true
    FROM t, unnest(%(msg_id)s::varchar[], %(published_by_id)s::int[], %(pattern)s::varchar[], %(data)s::text[],
                   %(data_format)s::varchar[], %(mime_type)s::varchar[], %(size)s::int[], %(priority)s::int[],
                   %(expiration)s::bigint[], %(ext_pub_time)s::float8[], %(correl_id)s::varchar[],
                   %(in_reply_to)s::varchar[], %(ext_client_id)s::varchar[], %(group_id)s::varchar[])
            WITH ORDINALITY AS v(msg_id, published_by_id, pattern, data, data_format, mime_type, size, priority,
                                 expiration, ext_pub_time, correl_id, in_reply_to, ext_client_id, group_id, ord)
   ORDER BY v.ord
  RETURNING id, topic_id, priority, pub_time, expiration_time
), q AS (
  INSERT INTO pubsub_queue (cluster_id, sub_id, message_id, priority, pub_time, expiration_time, delivery_count,
      visible_after)
  SELECT %(cluster_id)s, s.id, m.id, m.priority, m.pub_time, m.expiration_time, 0, 0
    FROM m JOIN pubsub_sub s ON s.topic_id = m.topic_id AND s.is_active
   ORDER BY m.id, s.id
  RETURNING 1
)
SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM q)
"""
_NO_SUCH_PREPARED = '26000'  # SQLSTATE invalid_sql_statement_name
_BATCH_TYPES = {'count': 'int', 'cluster_id': 'int', 'name': 'varchar', 'msg_id': 'varchar[]',
                'published_by_id': 'int[]', 'pattern': 'varchar[]', 'data': 'text[]', 'data_format': 'varchar[]',
                'mime_type': 'varchar[]', 'size': 'int[]', 'priority': 'int[]', 'expiration': 'bigint[]',
                'ext_pub_time': 'float8[]', 'correl_id': 'varchar[]', 'in_reply_to': 'varchar[]',
                'ext_client_id': 'varchar[]', 'group_id': 'varchar[]'}


class Prepared:
    """A statement of the hot path prepared once per connection of the ODB's pool (PostgreSQL then plans it
    once, not on every call), written with psycopg2's %(name)s parameters, each cast to `types[name]`."""

    def __init__(self, name: str, sql: str, types: dict[str, str]) -> None:
        self.name = name
        names: list[str] = []
        for param in re.findall(r'%\((\w+)\)s', sql):
            if param not in names:
                names.append(param)
        body = re.sub(r'%\((\w+)\)s', lambda m: f'${names.index(m.group(1)) + 1}', sql)
        self.prepare = f'PREPARE {name} AS {body}'
        self.execute = f'EXECUTE {name}(' + ', '.join(f'%({param})s::{types[param]}' for param in names) + ')'

    def run(self, conn: Connection, params: dict[str, Any]) -> Any:
        """The statement's result on `conn`, prepared first if `conn` has not seen it (conn.info lives as
        long as the pool's DBAPI connection, as does what was prepared on it)."""
        if not conn.info.get(self.name):
            conn.exec_driver_sql(self.prepare)
            conn.info[self.name] = True
        try:
            return conn.exec_driver_sql(self.execute, params)
        except DBAPIError as e:
            if getattr(e.orig, 'pgcode', None) != _NO_SUCH_PREPARED:
                raise
            conn.info.pop(self.name, None)
            if conn.get_execution_options().get('isolation_level') != 'AUTOCOMMIT':
                raise  # the transaction is aborted: its caller's next one prepares it again
        # Gone from the session (a DISCARD ALL by a pooler, say): nothing ran, so it is prepared again
        conn.exec_driver_sql(self.prepare)
        return conn.exec_driver_sql(self.execute, params)


_BATCH_COLUMNS = ('msg_id', 'published_by_id', 'pattern', 'data', 'data_format', 'mime_type', 'size', 'priority',
                  'expiration', 'ext_pub_time', 'correl_id', 'in_reply_to', 'ext_client_id', 'group_id')
_ENTRIES_OF = 'SELECT id, message_id FROM pubsub_queue WHERE sub_id = :sub_id AND message_id IN ' \
              '(SELECT id FROM pubsub_message WHERE msg_id IN :msg_ids)'
_LOCK_MESSAGES = 'SELECT id FROM pubsub_message WHERE id IN :ids ORDER BY id FOR UPDATE'
_DELETE_ENTRIES = 'DELETE FROM pubsub_queue WHERE id IN :ids'
_DELETE_ORPHANS = """
DELETE FROM pubsub_message WHERE id IN :ids
   AND NOT EXISTS (SELECT 1 FROM pubsub_queue q WHERE q.message_id = pubsub_message.id)
RETURNING topic_id
"""
_LOWER_DEPTH = 'UPDATE pubsub_topic SET gd_depth = gd_depth - :count WHERE id = :topic_id'
_DEPTH = 'SELECT count(*) FROM pubsub_queue WHERE sub_id = :sub_id AND expiration_time > {now}'
_EXPIRED = 'SELECT id FROM pubsub_message WHERE cluster_id = :cluster_id AND expiration_time <= {now} LIMIT :limit'
_ALL_ENTRIES = 'SELECT id, message_id FROM pubsub_queue WHERE sub_id = :sub_id'
_BROWSE_WHERE = """
  FROM pubsub_queue q JOIN pubsub_message m ON m.id = q.message_id JOIN pubsub_topic t ON t.id = m.topic_id
 WHERE q.sub_id = :sub_id AND q.expiration_time > {now} AND m.data LIKE :query ESCAPE '!'
"""
_BROWSE = """
SELECT q.id, q.delivery_count, m.id, m.msg_id, m.data, m.data_format, m.mime_type, m.size, m.priority, m.expiration,
       m.expiration_time, m.pub_time, m.ext_pub_time, m.correl_id, m.in_reply_to, m.ext_client_id, m.group_id,
       m.has_gd, t.name
""" + _BROWSE_WHERE + """
 ORDER BY q.priority DESC, q.pub_time, q.id
 LIMIT :limit OFFSET :offset
"""
_BROWSE_COUNT = "SELECT count(*)" + _BROWSE_WHERE
_MESSAGE = """
SELECT {entry}, m.id, m.msg_id, m.data, m.data_format, m.mime_type, m.size, m.priority, m.expiration,
       m.expiration_time, m.pub_time, m.ext_pub_time, m.correl_id, m.in_reply_to, m.ext_client_id, m.group_id,
       m.has_gd, t.name
  FROM pubsub_message m JOIN pubsub_topic t ON t.id = m.topic_id {join}
 WHERE m.cluster_id = :cluster_id AND m.msg_id = :msg_id
"""
_ENTRIES_OF_MESSAGES = 'SELECT id, message_id FROM pubsub_queue WHERE message_id IN :ids'


def _expanding(sql: str, *names: str) -> Any:
    return text(sql).bindparams(*(bindparam(name, expanding=True) for name in names))


def iso(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat()


@dataclass(slots=True)
class Publication:
    """One publication to be committed: its messages all or none, with their msg_ids given now."""

    topic_name: str
    msgs: Sequence[NewMessage]
    endpoint_id: int | None = None
    pattern: str = ''
    msg_ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.msgs:
            raise ValueError('No messages to publish')
        if not self.msg_ids:
            self.msg_ids = [new_msg_id() for _ in self.msgs]


@dataclass(frozen=True, slots=True)
class Published:
    """What a publication did: its msg_ids, in the order of its messages, and how many queue entries it
    made (0 and `dropped`: none were stored)."""

    msg_ids: list[str]
    queued: int
    dropped: bool = False

    @property
    def msg_id(self) -> str:
        return self.msg_ids[0]


class PubSubStore:
    """The GD part of pub/sub of one cluster, in its ODB (see the module's rules)."""

    def __init__(self, engine: Engine, cluster_id: int) -> None:
        self.engine = engine
        self.cluster_id = cluster_id
        dialect = engine.dialect.name
        if dialect not in _NOW:
            raise ValueError(f'Pub/sub needs PostgreSQL or SQLite, not {dialect}')
        self._sqlite = dialect == 'sqlite'
        now = _NOW[dialect]
        self._topic = text(_TOPIC.format(now=now))
        self._pick = text(_PICK.format(now=now) + ('' if self._sqlite else ' FOR UPDATE SKIP LOCKED'))
        self._mark = _expanding(_MARK_DELIVERED.format(now=now), 'ids')
        self._depth = text(_DEPTH.format(now=now))
        self._expired = text(_EXPIRED.format(now=now))
        self._raise_depth = text(_RAISE_DEPTH)
        self._insert_message = text(_INSERT_MESSAGE)
        self._enqueue = text(_ENQUEUE)
        self._publish_batch = Prepared('zato_pubsub_publish_batch', _PUBLISH_BATCH.format(now=now), _BATCH_TYPES)
        self._ack_one = Prepared('zato_pubsub_ack_call', 'SELECT zato_pubsub_ack(%(sub_id)s, %(msg_ids)s)',
                                 {'sub_id': 'int', 'msg_ids': 'varchar[]'})
        self._pull_one = Prepared('zato_pubsub_pull', _PULL.format(now=now), {'sub_id': 'int', 'limit': 'int',
                                                                               'timeout': 'float8'})

    @property
    def is_sqlite(self) -> bool:
        return self._sqlite

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction, committed when the block ends; SQLite's takes the write lock at once
        (BEGIN IMMEDIATE), so that no two writers interleave and none fails to upgrade a read lock."""
        with self.engine.connect() as conn:
            if self._sqlite:
                conn.exec_driver_sql('BEGIN IMMEDIATE')
            else:
                conn.begin()
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    # Publishing

    def publish(self, topic_name: str, msg: NewMessage, endpoint_id: int | None = None, pattern: str = '') -> Published:
        """Commits the message and its queue entries; the errors are a caller's to answer: NotFound
        (no such topic), TopicInactive, MaxDepthReached."""
        return self.publish_list(topic_name, [msg], endpoint_id, pattern)

    def publish_list(self, topic_name: str, msgs: Sequence[NewMessage], endpoint_id: int | None = None,
                     pattern: str = '') -> Published:
        """Commits the messages, all or none, in one transaction (3.1's `data_list`): they share their
        publication time and keep their order among themselves."""
        result = self.publish_batch([Publication(topic_name, msgs, endpoint_id, pattern)])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def publish_batch(self, pubs: Sequence[Publication], conn: Connection | None = None) -> list[Published | Exception]:
        """Commits publications made together (see the module's rules), one transaction per topic; for
        each, in the order given, what it got: Published, or the exception that refused it (NotFound,
        TopicInactive, MaxDepthReached, or the ODB's own error, which fails that topic's transaction).
        `conn`: on PostgreSQL, an AUTOCOMMIT connection its caller keeps for its batches (else one is
        taken from the pool for each)."""
        results: list[Published | Exception | None] = [None] * len(pubs)
        by_topic: dict[str, list[int]] = {}
        for index, pub in enumerate(pubs):
            by_topic.setdefault(pub.topic_name, []).append(index)
        for topic_name, indexes in by_topic.items():
            group = [pubs[index] for index in indexes]
            try:
                answers: list[Published | Exception] | None = None
                if not self._sqlite:
                    answers = self._publish_one_statement(topic_name, group, conn)
                if answers is None:
                    answers = self._publish_one_by_one(topic_name, group)
            except Exception as e:  # noqa: BLE001 - not kept: each publication's caller raises it
                answers = [e] * len(group)
            for index, answer in zip(indexes, answers, strict=True):
                results[index] = answer
        return [r for r in results if r is not None]

    def _publish_one_statement(self, topic_name: str, group: list[Publication],
                               conn: Connection | None) -> list[Published | Exception] | None:
        """PostgreSQL: the group in one statement, its own transaction; None when it wrote nothing."""
        rows = [_fields(pub, msg_id, msg) for pub in group for msg_id, msg in zip(pub.msg_ids, pub.msgs, strict=True)]
        params: dict[str, Any] = {'cluster_id': self.cluster_id, 'name': topic_name, 'count': len(rows)}
        for column in _BATCH_COLUMNS:
            params[column] = [row[column] for row in rows]
        if conn is None:
            with autocommit(self.engine) as own:
                updated, queued = self._publish_batch.run(own, params).one()
        else:
            updated, queued = self._publish_batch.run(conn, params).one()
        if not updated:
            return None
        per_msg = int(queued) // len(rows)
        return [Published(pub.msg_ids, per_msg * len(pub.msgs)) for pub in group]

    def _publish_one_by_one(self, topic_name: str, group: list[Publication]) -> list[Published | Exception]:
        """The group's publications in one transaction, each with its own depth check (each stored or
        refused on its own); the topic's absence, inactivity or `drop` answers all of them."""
        answers: list[Published | Exception] = []
        with self.transaction() as conn:
            row = conn.execute(self._topic, {'cluster_id': self.cluster_id, 'name': topic_name, 'true': True}).first()
            if row is None:
                return [NotFound(f'Topic `{topic_name}` not found') for _ in group]
            topic_id, is_active, on_no_subs, now, subs = int(row[0]), bool(row[1]), row[2], float(row[3]), int(row[4])
            if not is_active:
                return [TopicInactive() for _ in group]
            if not subs and on_no_subs == 'drop':
                return [Published(pub.msg_ids, 0, dropped=True) for pub in group]
            for pub in group:
                if conn.execute(self._raise_depth, {'now': now, 'topic_id': topic_id,
                                                    'count': len(pub.msgs)}).rowcount != 1:
                    answers.append(MaxDepthReached(
                        f'Publication rejected - would exceed GD max depth for `{topic_name}`'))
                    continue
                queued = 0
                for msg_id, msg in zip(pub.msg_ids, pub.msgs, strict=True):
                    expiration_time = now + msg.expiration / 1000.0
                    message_id = conn.execute(self._insert_message, {
                        **_fields(pub, msg_id, msg), 'cluster_id': self.cluster_id, 'topic_id': topic_id,
                        'expiration_time': expiration_time, 'now': now, 'has_gd': True}).scalar_one()
                    queued += conn.execute(self._enqueue, {
                        'cluster_id': self.cluster_id, 'message_id': message_id, 'priority': msg.priority,
                        'now': now, 'expiration_time': expiration_time, 'topic_id': topic_id, 'true': True}).rowcount
                answers.append(Published(pub.msg_ids, queued))
        return answers

    # Reading a queue

    def pull(self, sub_id: int, limit: int, visibility_timeout: float) -> list[dict[str, Any]]:
        """Up to `limit` messages of the subscription in delivery order, invisible to other pulls for
        `visibility_timeout` seconds or until acknowledged."""
        if not self._sqlite:
            params = {'sub_id': sub_id, 'limit': max(1, min(limit, MAX_BATCH)), 'timeout': float(visibility_timeout)}
            with autocommit(self.engine) as conn:
                return [_to_dict(row) for row in self._pull_one.run(conn, params)]
        with self.transaction() as conn:
            return self._pull(conn, sub_id, limit, visibility_timeout)

    def get_and_delete(self, sub_id: int, limit: int) -> list[dict[str, Any]]:
        """3.1's get-messages: up to `limit` messages, acknowledged as they are returned."""
        with self.transaction() as conn:
            messages = self._pull(conn, sub_id, limit, 0.0)
            self._delete_entries(conn, [(m['_entry'], m['_message']) for m in messages])
        return messages

    def _pull(self, conn: Connection, sub_id: int, limit: int, timeout: float) -> list[dict[str, Any]]:
        limit = max(1, min(limit, MAX_BATCH))
        ids = list(conn.execute(self._pick, {'sub_id': sub_id, 'limit': limit}).scalars())
        if not ids:
            return []
        conn.execute(self._mark, {'ids': ids, 'timeout': float(timeout)})
        return [_to_dict(row) for row in conn.execute(_expanding(_READ, 'ids'), {'ids': ids})]

    def ack(self, sub_id: int, msg_ids: Sequence[str]) -> int:
        """Deletes the subscription's entries of `msg_ids` (unknown ones are ignored); how many it had."""
        if not msg_ids:
            return 0
        if not self._sqlite:
            with autocommit(self.engine) as conn:
                return int(self._ack_one.run(conn, {'sub_id': sub_id, 'msg_ids': list(msg_ids)}).scalar_one())
        with self.transaction() as conn:
            entries = [(int(r[0]), int(r[1])) for r in conn.execute(
                _expanding(_ENTRIES_OF, 'msg_ids'), {'sub_id': sub_id, 'msg_ids': list(msg_ids)})]
            self._delete_entries(conn, entries)
        return len(entries)

    def depth(self, sub_id: int) -> int:
        """Unexpired messages in the subscription's queue, visible or not."""
        with self.engine.connect() as conn:
            return int(conn.execute(self._depth, {'sub_id': sub_id}).scalar_one())

    def browse(self, sub_id: int, offset: int, limit: int | None, query: str = '') -> tuple[list[dict[str, Any]], int]:
        """The subscription's unexpired messages in delivery order, visible or not, without dequeuing or
        marking any: `limit` of them (None: all) from `offset`, only those whose data contains `query`;
        and how many there are in all."""
        like = '%' + query.replace('!', '!!').replace('%', '!%').replace('_', '!_') + '%'
        params = {'sub_id': sub_id, 'query': like, 'offset': max(0, offset), 'limit': -1 if limit is None else limit}
        now = _NOW[self.engine.dialect.name]
        sql = _BROWSE.format(now=now)
        if limit is None and not self._sqlite:
            sql = sql.replace('LIMIT :limit ', '')
        with self.engine.connect() as conn:
            total = int(conn.execute(text(_BROWSE_COUNT.format(now=now)), params).scalar_one())
            rows = conn.execute(text(sql), params).all()
        return [_to_dict(row) for row in rows], total

    def message(self, msg_id: str, sub_id: int | None = None) -> dict[str, Any] | None:
        """The message `msg_id`, or None: with `sub_id`, only while that subscription's queue holds it
        (with its delivery_count there); without, `delivery_count` is None."""
        if sub_id is None:
            sql, params = _MESSAGE.format(entry='NULL, NULL', join=''), {}
        else:
            sql = _MESSAGE.format(entry='q.id, q.delivery_count',
                                  join='JOIN pubsub_queue q ON q.message_id = m.id AND q.sub_id = :sub_id')
            params = {'sub_id': sub_id}
        with self.engine.connect() as conn:
            row = conn.execute(text(sql), {'cluster_id': self.cluster_id, 'msg_id': msg_id, **params}).first()
        return None if row is None else _to_dict(row)

    def clear(self, sub_id: int) -> int:
        """Empties the subscription's queue (the messages no other queue holds go too); how many entries."""
        with self.transaction() as conn:
            entries = [(int(r[0]), int(r[1])) for r in conn.execute(text(_ALL_ENTRIES), {'sub_id': sub_id})]
            self._delete_entries(conn, entries)
        return len(entries)

    # Removing entries

    def delete_queue(self, conn: Connection, sub_id: int) -> None:
        """Deletes every entry of a subscription about to be deleted in `conn`'s transaction, and the
        messages no other queue holds (an unsubscription, a subscription's deletion)."""
        entries = [(int(r[0]), int(r[1])) for r in conn.execute(text(_ALL_ENTRIES), {'sub_id': sub_id})]
        self._delete_entries(conn, entries)

    def delete_expired(self, limit: int = MAX_BATCH) -> int:
        """Deletes up to `limit` expired messages with their queue entries; how many."""
        with self.transaction() as conn:
            ids = list(conn.execute(self._expired, {'cluster_id': self.cluster_id, 'limit': limit}).scalars())
            if not ids:
                return 0
            entries = [(int(r[0]), int(r[1])) for r in conn.execute(_expanding(_ENTRIES_OF_MESSAGES, 'ids'),
                                                                     {'ids': ids})]
            self._delete_entries(conn, entries, extra_messages=ids)
        return len(ids)

    def _delete_entries(self, conn: Connection, entries: list[tuple[int, int]],
                        extra_messages: Sequence[int] = ()) -> None:
        """Deletes queue entries (entry id, message id), then the messages left in no queue, lowering
        their topics' depth."""
        message_ids = sorted({message_id for _, message_id in entries} | set(extra_messages))
        if not message_ids:
            return
        if not self._sqlite:
            conn.execute(_expanding(_LOCK_MESSAGES, 'ids'), {'ids': message_ids})
        if entries:
            conn.execute(_expanding(_DELETE_ENTRIES, 'ids'), {'ids': [entry for entry, _ in entries]})
        gone: dict[int, int] = {}
        for topic_id in conn.execute(_expanding(_DELETE_ORPHANS, 'ids'), {'ids': message_ids}).scalars():
            gone[topic_id] = gone.get(topic_id, 0) + 1
        for topic_id, count in sorted(gone.items()):
            conn.execute(text(_LOWER_DEPTH), {'count': count, 'topic_id': topic_id})


def _fields(pub: Publication, msg_id: str, msg: NewMessage) -> dict[str, Any]:
    """What a message's row takes from its publication and from itself (_BATCH_COLUMNS)."""
    return {'msg_id': msg_id, 'published_by_id': pub.endpoint_id, 'pattern': pub.pattern, 'data': msg.data,
            'data_format': msg.data_format, 'mime_type': msg.mime_type, 'size': msg.size, 'priority': msg.priority,
            'expiration': msg.expiration, 'ext_pub_time': msg.ext_pub_time, 'correl_id': msg.correl_id,
            'in_reply_to': msg.in_reply_to, 'ext_client_id': msg.ext_client_id, 'group_id': msg.group_id}


def _to_dict(row: Any) -> dict[str, Any]:
    (entry, delivery_count, message, msg_id, data, data_format, mime_type, size, priority, expiration, expiration_time,
     pub_time, ext_pub_time, correl_id, in_reply_to, ext_client_id, group_id, has_gd, topic_name) = row
    return {'msg_id': msg_id, 'topic_name': topic_name,
            'data': orjson.loads(data) if data_format == 'json' else data,
            'mime_type': mime_type, 'size': size, 'priority': priority, 'delivery_count': delivery_count,
            'expiration': expiration, 'expiration_time_iso': iso(expiration_time), 'pub_time_iso': iso(pub_time),
            'ext_pub_time_iso': iso(ext_pub_time), 'correl_id': correl_id, 'in_reply_to': in_reply_to,
            'ext_client_id': ext_client_id, 'group_id': group_id, 'has_gd': bool(has_gd),
            '_entry': entry, '_message': message}


def public(message: dict[str, Any]) -> dict[str, Any]:
    """A message as a subscriber sees it: without the ODB's row ids."""
    return {key: value for key, value in message.items() if not key.startswith('_')}
