"""Pub/sub hooks (3.1's PubSubHook): a service a topic's or a subscription's `hook_service` names, whose
methods run on the publish, delivery and subscription paths.

* `before_publish(self)`: once for each message published to the topic, before it is checked and
  stored; `self.request.input` holds the message's fields (data, priority, expiration ...), which the
  hook may change, and returning 'skip' drops the message (the publisher still gets its msg_id, 3.1).
  A hook that raises fails the whole publication with a 503 `pubsub_hook_failed` (nothing is stored;
  3.1 logged the error and went on, which published what the hook meant to stop).
* `before_delivery(self)`: once for each message about to be delivered to a subscriber; 'deliver'
  (also None), 'skip' (not delivered now, kept queued) or 'delete' (taken off this subscription's
  queue). The subscription's own hook wins over its topic's. A hook that raises is logged and the
  message delivered, as in 3.1.
* `on_subscribed(self)`, `on_unsubscribed(self)`: after a subscription of the topic is created or
  deleted; `self.request.input` holds topic_name, sub_key and endpoint_name. Errors are logged.

A hook's `self.topic_name` is the topic's name and `self.sub_key` the subscription's ('' when
publishing).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from zato.config.channel import INVOKE_CHANNEL
from zato.odb.models import PubSubTopic
from zato.service.base import Service
from zato.service.bunch import Bunch
from zato.service.invoker import new_cid
from zato.service.reqresp import Request, Response

logger = logging.getLogger('zato.pubsub.hook')

DELIVER, SKIP, DELETE = 'deliver', 'skip', 'delete'
ACTIONS = frozenset((DELIVER, SKIP, DELETE))

BEFORE_PUBLISH = 'before_publish'
BEFORE_DELIVERY = 'before_delivery'
ON_SUBSCRIBED = 'on_subscribed'
ON_UNSUBSCRIBED = 'on_unsubscribed'


class PubSubHook(Service):
    """Subclass and name the subclass in a topic's (or a subscription's) `hook_service`."""

    topic_name: str = ''
    sub_key: str = ''

    def handle(self) -> None:
        """A hook does its work in its hook methods; invoked as a service, it does nothing."""

    def before_publish(self) -> str | None:
        return None

    def before_delivery(self) -> str | None:
        return DELIVER

    def on_subscribed(self) -> None:
        return None

    def on_unsubscribed(self) -> None:
        return None


def hook_instance(runtime: Any, service_name: str, topic_name: str, sub_key: str, fields: dict[str, Any]) -> PubSubHook:
    """A new instance of the hook service, as the invoker prepares one for a hook (zato.service.invoker).
    KeyError: no such service; TypeError: the service is not a PubSubHook."""
    cls = runtime.store.get(service_name)
    if not issubclass(cls, PubSubHook):
        raise TypeError(f'Service `{service_name}` is not a PubSubHook')
    svc = cls()
    svc.cid = new_cid()
    svc.channel = INVOKE_CHANNEL
    svc.request = Request(fields)
    svc.request.input = Bunch(fields)
    svc.server = runtime
    svc.environ = {}
    svc.response = Response(None)
    svc.topic_name = topic_name
    svc.sub_key = sub_key
    return svc


def before_publish(runtime: Any, service_name: str, topic_name: str, fields: dict[str, Any]) -> dict[str, Any] | None:
    """The message's fields as the hook left them, or None if it is to be dropped. Raises whatever the
    hook raised (the caller answers it)."""
    svc = hook_instance(runtime, service_name, topic_name, '', dict(fields))
    if svc.before_publish() == SKIP:
        return None
    return dict(svc.request.input)


def before_delivery(runtime: Any, topic_name: str, sub: Any, msg: dict[str, Any]) -> str:
    """What to do with `msg` (a message as pulled) for subscription `sub` (anything with `id`, `sub_key`
    and `hook_service`, or a dict of them; the topic's hook when the subscription has none, looked up
    here): 'deliver', 'skip' or 'delete'. No hook, or one that raises or answers nonsense: 'deliver'."""
    get = sub.get if isinstance(sub, dict) else lambda name: getattr(sub, name, None)
    service_name = get('hook_service') or _cached_topic_hook(runtime, topic_name)
    if not service_name:
        return DELIVER
    sub_key = str(get('sub_key') or '')
    try:
        action = hook_instance(runtime, service_name, topic_name, sub_key, dict(msg)).before_delivery()
    except Exception:
        logger.exception('Exception in %s.before_delivery (topic `%s`, sub_key `%s`); the message is delivered',
                         service_name, topic_name, sub_key)
        return DELIVER
    if action is None:
        return DELIVER
    if action not in ACTIONS:
        logger.warning('%s.before_delivery returned %r, expected one of %s; the message is delivered',
                       service_name, action, sorted(ACTIONS))
        return DELIVER
    return str(action)


def on_subscription(runtime: Any, hook: str, service_name: str | None, topic_name: str, sub_key: str,
                    endpoint_name: str) -> None:
    """Runs on_subscribed or on_unsubscribed (`hook`) of the hook service, if any; errors are logged."""
    if not service_name:
        return
    fields = {'topic_name': topic_name, 'sub_key': sub_key, 'endpoint_name': endpoint_name}
    try:
        getattr(hook_instance(runtime, service_name, topic_name, sub_key, fields), hook)()
    except Exception:
        logger.exception('Exception in %s.%s (topic `%s`, sub_key `%s`)', service_name, hook, topic_name, sub_key)


def _cached_topic_hook(runtime: Any, topic_name: str) -> str | None:
    """The topic's hook_service as the worker's pub/sub keeps it (forgotten when the topic changes), or
    read from the ODB when the runtime has no pub/sub."""
    pubsub = getattr(runtime, 'pubsub', None)
    if pubsub is not None:
        return pubsub.topic_hook(topic_name)
    return topic_hook(runtime, topic_name)


def topic_hook(runtime: Any, topic_name: str) -> str | None:
    """The topic's hook_service (None: no hook, or no such topic)."""
    with runtime.Session() as session:
        name = session.scalars(select(PubSubTopic.hook_service).where(
            PubSubTopic.cluster_id == runtime.cluster_id, PubSubTopic.name == topic_name)).first()
    return name or None
