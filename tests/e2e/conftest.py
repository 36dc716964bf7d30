from __future__ import annotations

import pytest

from tests.e2e.harness import Env


@pytest.fixture(scope='session')
def env(tmp_path_factory):
    """One SQLite quickstart environment (2 workers) shared by the e2e tests of a session."""
    e = Env(str(tmp_path_factory.mktemp('e2e') / 'env'), env={'ZATO_HTTP_HEADER_TIMEOUT': '2',
                                                             'ZATO_HTTP_TRUSTED_PROXIES': '127.0.0.1',
                                                             'ZATO_MAIN_GRACEFUL_TIMEOUT': '10'})
    e.start()
    yield e
    e.stop()
