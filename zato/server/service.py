"""What service modules import: ``from zato.server.service import Service`` (Zato 3.1's path), and
``SMTPMessage``, the e-mail ``self.email.smtp[name].conn.send()`` takes (3.1's ``zato.common.SMTPMessage``)."""

from zato.connectors.smtp_message import SMTPMessage
from zato.errors import (BadRequest, Forbidden, Inactive, MethodNotAllowed, NotFound, RetryFailed, TooManyRequests,
                         Unauthorized)
from zato.pubsub.hook import PubSubHook
from zato.service.base import Service
from zato.service.sio_types import (AsIs, Bool, Boolean, Date, DateTime, Dict, Float, Int, Integer, List, Nested,
                                    Opaque, Text, Unicode)

__all__ = ['Service', 'AsIs', 'Bool', 'Boolean', 'Date', 'DateTime', 'Dict', 'Float', 'Int', 'Integer', 'List',
           'Nested', 'Opaque', 'Text', 'Unicode', 'BadRequest', 'Forbidden', 'MethodNotAllowed', 'NotFound',
           'TooManyRequests', 'Unauthorized', 'SMTPMessage', 'Inactive', 'RetryFailed',
           'PubSubHook']
