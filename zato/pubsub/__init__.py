"""Publish/subscribe (docs/pubsub.md): topic names and endpoint patterns (matcher), identifiers (keys),
a publication's input (message), its errors (errors), and the GD messages and queues in the ODB (store).

Plain logic over the ODB: no gevent, no sockets, no server. zato.server.pubsub serves it as 3.1's REST
API (/zato/pubsub/...) and as `self.pubsub` in services."""

from zato.pubsub.store import PubSubStore, Published

__all__ = ['PubSubStore', 'Published']
