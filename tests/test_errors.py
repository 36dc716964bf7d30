"""zato.errors.failure_of: what every entry point answers for what a service let out."""

from __future__ import annotations

import logging

import pytest

from zato.errors import (
    CLIENT, OURS, REMOTE, BadRequest, ConnectorAuthError, ConnectorInactive, ConnectorTimeout, ConnectorUnavailable,
    ServiceNotFound, TooManyRequests, failure_of, log_failure)


def test_a_client_error_keeps_its_status_code_details_and_headers():
    f = failure_of(TooManyRequests(headers={'Retry-After': '3'}), 'c1')
    assert (f.status, f.code, f.details, f.headers, f.cause) == (429, 'too_many_requests', 'Too Many Requests',
                                                                 {'Retry-After': '3'}, CLIENT)
    assert failure_of(BadRequest('Invalid input `x`'), 'c1').details == 'Invalid input `x`'


@pytest.mark.parametrize('error, status, code', [
    (ConnectorUnavailable('Outgoing rest connection `crm`: refused', kind='rest', name='crm'), 503,
     'remote_unavailable'),
    (ConnectorInactive('rest', 'crm'), 503, 'connection_inactive'),
    (ConnectorTimeout('Outgoing rest connection `crm`: timed out', kind='rest', name='crm'), 504, 'remote_timeout'),
    (ConnectorAuthError('Outgoing ldap connection `dir`: bind refused', kind='ldap', name='dir'), 502,
     'remote_refused_credentials'),
])
def test_a_remote_ends_failure_is_its_own_status_and_tells_the_caller_no_internals(error, status, code):
    f = failure_of(error, 'c2')
    assert (f.status, f.code, f.cause) == (status, code, REMOTE)
    assert 'c2' in f.details and error.name not in f.details and str(error) not in f.details
    assert f.headers == {}


def test_a_connection_that_knows_when_it_tries_again_says_so_in_retry_after():
    f = failure_of(ConnectorUnavailable('x', kind='ldap', name='dir', retry_after=2.2), 'c3')
    assert f.headers == {'Retry-After': '3'}


def test_a_missing_service_is_a_404_and_anything_else_our_bug_without_details():
    assert failure_of(ServiceNotFound('a.b'), 'c4').status == 404
    f = failure_of(KeyError('secret detail'), 'c4')
    assert (f.status, f.code, f.cause) == (500, 'internal_error', OURS)
    assert 'secret detail' not in f.details and 'c4' in f.details


def test_each_failure_is_logged_as_what_it_was(caplog):
    log = logging.getLogger('test.errors')
    caplog.set_level(logging.DEBUG, 'test.errors')
    for e in (BadRequest('x'), ConnectorTimeout('Outgoing rest connection `crm`: slow', kind='rest', name='crm'),
              ValueError('bug')):
        log_failure(log, failure_of(e, 'c5'), e, 'GET /x', 'c5')
    records = [(r.levelname, r.getMessage(), r.exc_info is not None) for r in caplog.records]
    assert records == [
        ('WARNING', 'GET /x failed, cid `c5`: Outgoing rest connection `crm`: slow (ConnectorTimeout)', False),
        ('ERROR', 'GET /x failed, cid `c5`', True),
    ]


class _DriverError(Exception):
    def __init__(self, message: str, down: bool) -> None:
        super().__init__(message)
        self.down = down


def test_a_registered_dependency_that_is_down_is_a_503_with_retry_after_logged_without_a_traceback(caplog):
    from zato.errors import register_unavailable, unregister_unavailable
    register_unavailable(_DriverError, 'cache', label='the cache', applies=lambda e: e.down,
                         reason=lambda e: f'cache down: {e}', retry_after=3)
    try:
        e = _DriverError('refused at 10.0.0.1', down=True)
        f = failure_of(e, 'c6')
        assert (f.status, f.code, f.headers, f.cause) == (503, 'cache_unavailable', {'Retry-After': '3'}, REMOTE)
        assert f.details == 'Service Unavailable: the cache could not be reached; the server log has the details ' \
                            'under cid c6'
        assert '10.0.0.1' not in f.details
        caplog.set_level(logging.DEBUG, 'test.errors')
        log_failure(logging.getLogger('test.errors'), f, e, 'GET /x', 'c6')
        assert [(r.levelname, r.getMessage(), r.exc_info) for r in caplog.records] == [
            ('WARNING', 'GET /x failed, cid `c6`: cache down: refused at 10.0.0.1 (_DriverError)', None)]
        # The same type when `applies` says no stays our bug
        assert failure_of(_DriverError('syntax', down=False), 'c6').status == 500
    finally:
        unregister_unavailable(_DriverError, 'cache')
    assert failure_of(_DriverError('refused', down=True), 'c6').status == 500
