"""What self.lock() decides without I/O (zato.service.lock): its arguments, the waits, the renewals."""

from __future__ import annotations

import pytest

from zato.errors import LockLost, LockTimeout, failure_of
from zato.service.lock import MAX_WAIT, LockArgs, lock_args, next_wait, renew_every


def test_the_name_defaults_to_the_services_and_ttl_and_block_to_3_1s_20_and_10_seconds():
    assert lock_args('billing.close-day') == LockArgs('billing.close-day', 20.0, 10.0)
    assert lock_args('svc', 'my-lock', 5, 0) == LockArgs('my-lock', 5.0, 0.0)


def test_2_0s_expires_and_timeout_stand_for_ttl_and_block():
    assert lock_args('svc', expires=3, timeout=1.5) == LockArgs('svc', 3.0, 1.5)


@pytest.mark.parametrize('kwargs', [{'ttl': 1, 'expires': 1}, {'block': 1, 'timeout': 1}, {'name': ''},
                                    {'name': 7}, {'name': 'x' * 401}, {'ttl': 0}, {'ttl': -1}, {'ttl': '20'}, {'ttl': True},
                                    {'ttl': float('nan')}, {'ttl': 86401}, {'block': -0.1}, {'block': None, 'timeout': 'x'}])
def test_a_wrong_argument_is_named_in_a_value_error(kwargs):
    with pytest.raises(ValueError, match=r'self\.lock\(\)'):
        lock_args('svc', **kwargs)


def test_a_waiter_waits_longer_each_time_up_to_a_cap_and_never_past_its_block():
    waits = [next_wait(attempt, 100, 0) for attempt in range(10)]
    assert waits[0] == 0.005 and waits == sorted(waits) and waits[-1] == MAX_WAIT
    assert next_wait(50, 100, 0) == MAX_WAIT
    assert next_wait(5, 0.01, 0) == 0.01
    assert next_wait(5, -1, 0) == 0.0


def test_jitter_shortens_a_wait_by_at_most_half():
    assert next_wait(3, 100, 0.999) > next_wait(3, 100, 0) / 2
    assert next_wait(3, 100, 0.5) < next_wait(3, 100, 0)


def test_a_holder_renews_every_third_of_its_ttl():
    assert renew_every(20) == pytest.approx(20 / 3)


def test_a_lock_not_acquired_or_lost_is_a_503_with_a_stable_code_naming_the_lock():
    timeout = failure_of(LockTimeout('billing', 10), 'cid1')
    assert (timeout.status, timeout.code) == (503, 'lock_timeout')
    assert timeout.details == 'Lock `billing` not acquired within 10 s: another holder has it'
    lost = failure_of(LockLost('billing'), 'cid1')
    assert (lost.status, lost.code) == (503, 'lock_lost')
