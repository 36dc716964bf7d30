"""The errors a publisher or subscriber may see, each with its status and a stable code (zato.errors)."""

from __future__ import annotations

from zato.errors import ClientError, Forbidden, NotFound, ServiceUnavailable

# 3.1's words for a topic the caller may not use: the same whether it exists or not
NOT_ALLOWED = 'You are not allowed to access this resource'
# The one answer to every sub_key that names no subscription the caller may use
SUB_KEY_NOT_FOUND = 'Subscription not found'


class NotAllowed(Forbidden):
    code = 'pubsub_not_allowed'

    def default_details(self) -> str:
        return NOT_ALLOWED


class SubKeyNotFound(NotFound):
    """A sub_key that does not exist, is malformed, or is another endpoint's or another topic's: one 404
    with one body for all, so that a caller cannot tell a sub_key that exists from one that does not."""
    code = 'pubsub_sub_key_not_found'

    def default_details(self) -> str:
        return SUB_KEY_NOT_FOUND


class TopicInactive(ServiceUnavailable):
    code = 'pubsub_topic_inactive'

    def default_details(self) -> str:
        return 'Topic is inactive'


class MaxDepthReached(ServiceUnavailable):
    """The topic holds `max_depth_gd` GD messages already (counted cluster-wide)."""
    code = 'pubsub_max_depth_gd'


class DataTooLarge(ClientError):
    status, code = 413, 'pubsub_data_too_large'


class HookFailed(ServiceUnavailable):
    """A topic's hook service raised in `before_publish`: nothing of the publication is stored, and the
    publisher may try again (the error is logged with the hook's cid)."""
    code = 'pubsub_hook_failed'


class PublishInterrupted(ServiceUnavailable):
    """The worker's batch holding the publication was interrupted before its answer (zato.server.pubsub_batch):
    it may or may not have been stored."""
    code = 'pubsub_publish_interrupted'

    def default_details(self) -> str:
        return 'The publication was interrupted; it may or may not have been stored'
