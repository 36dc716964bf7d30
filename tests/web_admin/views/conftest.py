from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.web_admin.views.standalone import web_admin
from zato_web_admin.app import WebAdmin


@pytest.fixture
def app(tmp_path) -> Iterator[WebAdmin]:
    """The real web-admin app over a temporary SQLite ODB, with no server to call."""
    out, engine = web_admin(str(tmp_path / 'odb.sqlite3'))
    yield out
    engine.dispose()
