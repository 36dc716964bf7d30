"""Pub/sub as the web-admin reads it, straight from the shared ODB (read-only; every change goes
through the admin API): a topic with its subscriptions and their queue depths, a page of one
subscription's queue in delivery order, searched by a part of the data, and one queued message with
all of its fields.

Rules, as zato.pubsub.store keeps them:
* Delivery order: priority (9 first), then publication time, then the order of insertion.
* An expired entry is never handed out, so it is neither counted nor listed here either; "now" is
  the ODB's clock, as the servers' is.
* A search matches a part of the data, letters in any case (on SQLite ASCII letters only, as its
  lower() goes); % and _ are plain characters; a JSON message is searched as its JSON text
  (`{"a": 1}` holds `"a"`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, literal, literal_column, select

from zato.odb.lease import _NOW
from zato.odb.models import PubSubEndpoint, PubSubMessage, PubSubQueue, PubSubSubscription, PubSubTopic
from zato_web_admin.listing import Page

# How much of a message's data a row of the queue shows
SHOWN_DATA = 200


def iso(seconds: float | None) -> str:
    """A time of the ODB (seconds since the epoch) as the pages show it, '' for none."""
    if not seconds:
        return ''
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec='milliseconds').replace('+00:00', 'Z')


def db_now(db: Any) -> float:
    """The ODB's clock, the one publication, visibility and expiration times are of."""
    return float(db.scalar(select(literal_column(_NOW[db.get_bind().dialect.name]))))


@dataclass(frozen=True)
class Subscription:
    id: int
    endpoint: str
    topic: str
    topic_id: int
    is_active: bool
    delivery_method: str


def topic(db: Any, cluster_id: int, topic_id: int) -> PubSubTopic | None:
    return db.scalars(select(PubSubTopic).where(PubSubTopic.id == topic_id,
                                                PubSubTopic.cluster_id == cluster_id)).one_or_none()


def subscription(db: Any, cluster_id: int, sub_id: int) -> Subscription | None:
    row = db.execute(
        select(PubSubSubscription.id, PubSubEndpoint.name, PubSubTopic.name, PubSubTopic.id,
               PubSubSubscription.is_active, PubSubSubscription.delivery_method)
        .join(PubSubEndpoint, PubSubEndpoint.id == PubSubSubscription.endpoint_id)
        .join(PubSubTopic, PubSubTopic.id == PubSubSubscription.topic_id)
        .where(PubSubSubscription.id == sub_id, PubSubSubscription.cluster_id == cluster_id)).one_or_none()
    return None if row is None else Subscription(*row)


def subscriptions_of_topic(db: Any, cluster_id: int, topic_id: int) -> list[dict[str, Any]]:
    """The topic's subscriptions, each with its endpoint's name and how many unexpired messages its queue holds."""
    now = db_now(db)
    depth = (select(func.count()).select_from(PubSubQueue)
             .where(PubSubQueue.sub_id == PubSubSubscription.id, PubSubQueue.expiration_time > now)
             .correlate(PubSubSubscription).scalar_subquery())
    rows = db.execute(
        select(PubSubSubscription.id, PubSubEndpoint.name, PubSubSubscription.is_active,
               PubSubSubscription.delivery_method, PubSubSubscription.last_delivery_time, depth)
        .join(PubSubEndpoint, PubSubEndpoint.id == PubSubSubscription.endpoint_id)
        .where(PubSubSubscription.topic_id == topic_id, PubSubSubscription.cluster_id == cluster_id)
        .order_by(PubSubEndpoint.name)).all()
    return [{'id': sub_id, 'endpoint': endpoint, 'is_active': active, 'delivery_method': method,
             'last_delivery_time': iso(last), 'queue_depth': int(count or 0)}
            for sub_id, endpoint, active, method, last, count in rows]


def endpoint_times(db: Any, cluster_id: int) -> dict[int, tuple[float | None, float | None]]:
    """{endpoint id: (when it last published, when it last subscribed)}: the newest of its messages the ODB
    still holds and its newest subscription. The servers write the last publication to the endpoint's row
    every [pubsub] meta_flush_interval seconds (zato.server.pubsub_meta), and the page shows the newer of
    the two, so a publication of the last few seconds shows before its time is written."""
    times: dict[int, tuple[float | None, float | None]] = {}
    for endpoint_id, last in db.execute(
            select(PubSubMessage.published_by_id, func.max(PubSubMessage.pub_time))
            .where(PubSubMessage.cluster_id == cluster_id, PubSubMessage.published_by_id.is_not(None))
            .group_by(PubSubMessage.published_by_id)):
        times[endpoint_id] = (last, None)
    for endpoint_id, last in db.execute(
            select(PubSubSubscription.endpoint_id, func.max(PubSubSubscription.creation_time))
            .where(PubSubSubscription.cluster_id == cluster_id).group_by(PubSubSubscription.endpoint_id)):
        times[endpoint_id] = (times.get(endpoint_id, (None, None))[0], last)
    return times


def _queued(sub_id: int, now: float, query: str) -> Any:
    """The conditions of the entries of `sub_id` a page shows: unexpired, the data holding `query`."""
    where = [PubSubQueue.sub_id == sub_id, PubSubQueue.expiration_time > now]
    if query:
        # Both sides lowered by the ODB, which SQLite does to ASCII letters only, PostgreSQL to any
        escaped = query.replace('\\', '\\\\').replace('%', '\\%').replace('_', '\\_')
        where.append(func.lower(PubSubMessage.data).like(func.lower(literal(f'%{escaped}%')), escape='\\'))
    return where


def queue_page(db: Any, sub_id: int, page: Page) -> tuple[list[dict[str, Any]], Page]:
    """One page of the subscription's queue in delivery order, and the page with its total."""
    now = db_now(db)
    where = _queued(sub_id, now, page.query)
    total = db.scalar(select(func.count()).select_from(PubSubQueue)
                      .join(PubSubMessage, PubSubMessage.id == PubSubQueue.message_id).where(*where))
    page = page.with_total(int(total or 0))
    rows = db.execute(
        select(PubSubMessage.msg_id, PubSubMessage.data, PubSubMessage.data_format, PubSubMessage.mime_type,
               PubSubMessage.size, PubSubQueue.priority, PubSubQueue.pub_time, PubSubQueue.expiration_time,
               PubSubQueue.delivery_count, PubSubQueue.visible_after)
        .join(PubSubMessage, PubSubMessage.id == PubSubQueue.message_id).where(*where)
        .order_by(PubSubQueue.priority.desc(), PubSubQueue.pub_time, PubSubQueue.id)
        .offset(page.offset).limit(page.size)).all()
    out = []
    for msg_id, data, data_format, mime_type, size, priority, pub_time, expiration_time, count, visible_after in rows:
        out.append({'msg_id': msg_id, 'data': data if len(data) <= SHOWN_DATA else data[:SHOWN_DATA] + '…',
                    'data_format': data_format, 'mime_type': mime_type, 'size': size, 'priority': priority,
                    'pub_time': iso(pub_time), 'expiration_time': iso(expiration_time), 'delivery_count': count,
                    'in_flight_until': iso(visible_after) if visible_after > now else ''})
    return out, page


def queued_message(db: Any, sub_id: int, msg_id: str) -> dict[str, Any] | None:
    """Every field of the message `msg_id` as the queue of `sub_id` holds it; None if it holds no such message."""
    row = db.execute(
        select(PubSubMessage, PubSubQueue.delivery_count, PubSubQueue.visible_after, PubSubQueue.last_delivery_time,
               PubSubTopic.name, PubSubEndpoint.name)
        .join(PubSubQueue, PubSubQueue.message_id == PubSubMessage.id)
        .join(PubSubTopic, PubSubTopic.id == PubSubMessage.topic_id)
        .outerjoin(PubSubEndpoint, PubSubEndpoint.id == PubSubMessage.published_by_id)
        .where(PubSubQueue.sub_id == sub_id, PubSubMessage.msg_id == msg_id)).one_or_none()
    if row is None:
        return None
    m, delivery_count, visible_after, last_delivery_time, topic_name, published_by = row
    now = db_now(db)
    return {
        'msg_id': m.msg_id, 'topic_name': topic_name, 'published_by': published_by or '',
        'pub_pattern_matched': m.pub_pattern_matched, 'data': m.data, 'data_format': m.data_format,
        'mime_type': m.mime_type, 'size': m.size, 'priority': m.priority, 'expiration': m.expiration,
        'expiration_time': iso(m.expiration_time), 'is_expired': m.expiration_time <= now,
        'pub_time': iso(m.pub_time), 'ext_pub_time': iso(m.ext_pub_time), 'correl_id': m.correl_id,
        'in_reply_to': m.in_reply_to, 'ext_client_id': m.ext_client_id, 'group_id': m.group_id,
        'position_in_group': m.position_in_group, 'has_gd': m.has_gd, 'delivery_count': delivery_count,
        'visible_after': iso(visible_after), 'is_in_flight': visible_after > now,
        'last_delivery_time': iso(last_delivery_time)}
