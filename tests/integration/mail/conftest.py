"""Connections the mail tests start, stopped when each test ends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from zato.connectors.base import Connector, validate

C = TypeVar('C', bound=Connector)


@pytest.fixture
def started() -> Iterator[Callable[..., Any]]:
    """started(cls, name, data, secret): a connection of kind `cls` from the fields in `data`, started and
    past its first attempt to connect (quick retries after it)."""
    made: list[Connector] = []

    def start(cls: type[C], name: str, data: dict[str, Any], secret: str) -> C:
        config, _ = validate(cls.fields, data)
        conn = cls(name, config, secret)
        conn.retry_min, conn.retry_max = 0.05, 0.2  # type: ignore[misc]
        made.append(conn)
        conn.start()
        conn.wait_attempted(10)
        return conn
    yield start
    for conn in made:
        conn.stop()
