"""The `store` fixture (tests/pubsub/fixtures.py) for every test of this folder."""

from tests.pubsub.fixtures import store  # noqa: F401 - a fixture, found by name
