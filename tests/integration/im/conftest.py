"""The Slack and Telegram fakes (fakes.py), one of each per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.im.fakes import FakeSlack, FakeTelegram


@pytest.fixture(scope='module')
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    yield fake
    fake.stop()


@pytest.fixture(scope='module')
def telegram() -> Iterator[FakeTelegram]:
    fake = FakeTelegram().start()
    yield fake
    fake.stop()


@pytest.fixture(autouse=True)
def no_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    """Whatever a test broke in a module's fake is mended for the next test."""
    yield
    for name in ('slack', 'telegram'):
        if name in request.fixturenames:
            request.getfixturevalue(name).fault = None
