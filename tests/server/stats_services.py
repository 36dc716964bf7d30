"""A service module for the statistics tests (unit and end-to-end): one service per outcome."""

from __future__ import annotations

SOURCE = '''
import gevent
from zato.errors import BadRequest
from zato.server.service import Service

class Ok(Service):
    def handle(self):
        gevent.sleep(0.002)
        self.response.payload = {'ok': True}

class Fail(Service):
    def handle(self):
        raise ValueError('a deliberate bug')

class Refuse(Service):
    def handle(self):
        raise BadRequest('not like this')

class Unavailable(Service):
    def handle(self):
        self.response.status_code = 503

class Outer(Service):
    def handle(self):
        # <module>.ok, whichever file name the module was deployed as
        self.response.payload = self.invoke(self.name.rsplit('.', 1)[0] + '.ok')

class Slow(Service):
    def handle(self):
        gevent.sleep(5)
'''
