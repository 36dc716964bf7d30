"""Internal services behind ``self.patterns`` (zato.service.patterns)."""

from __future__ import annotations

import gevent

from zato.service.base import Service
from zato.service.patterns import attempt_retries


class InvokeRetry(Service):
    """The background attempts of ``self.patterns.invoke_retry``: its response, which the async queue hands
    to the caller's callback, says whether an attempt succeeded and what the target answered."""
    name = 'zato.pattern.invoke-retry'

    def handle(self) -> None:
        req = self.request.payload
        done = req['done']
        if done:
            gevent.sleep(req['seconds'])  # the caller's attempt failed a moment ago
        ok, response, error, attempts = attempt_retries(self, req['target'], req['payload'], req['repeats'],
                                                        req['seconds'], first_attempt=done + 1)
        if not ok:
            self.logger.warning('Could not invoke `%s` in %s attempts, %s s apart, cid `%s`; last error: %s',
                                req['target'], attempts, req['seconds'], req['orig_cid'], error)
        self.response.payload = {'ok': ok, 'source': req['source'], 'target': req['target'], 'response': response,
                                 'exception': error or None, 'attempts': attempts, 'repeats': req['repeats'],
                                 'seconds': req['seconds'], 'context': req['context'], 'orig_cid': req['orig_cid'],
                                 'cid': self.cid}
