"""Outgoing MongoDB connections: ``self.out.mongodb['name'].conn.client`` is a `pymongo.MongoClient`.

The client is built in the background and pinged there (`hello`, or `ismaster` on a server too old
for it), so a connection that is built has answered, with its credentials, at least once. pymongo
keeps its own pool per worker (`pool_size_max`), monitors the servers and reconnects by itself: after
a server goes away, the next operation selects a server again. In a worker gevent has patched
threads and sockets, so all of that is cooperative.

Calls through `client` raise pymongo's own exceptions, as in Zato 3.1; `conn.mapped_errors()` turns
the connection-level ones into the ConnectorError hierarchy for a service that wants one ``except``
whatever the kind. `ping()`, and `client` while it is not built, raise ours directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

from zato.connectors.base import (
    Connector, ConnectorAuthError, ConnectorError, ConnectorTimeout, ConnectorUnavailable, Field, describe)
from zato.connectors.mongodb_config import MONGODB_FIELDS, check_config, client_options

if TYPE_CHECKING:
    from pymongo import MongoClient

__all__ = ['MongoDBConnector']

# MongoDB's codes for credentials refused (AuthenticationFailed) and for lacking them (Unauthorized)
AUTH_CODES = frozenset((18, 13))

# CommandNotFound: a server older than MongoDB 4.4.2 that knows only `ismaster`
COMMAND_NOT_FOUND = 59


def explain(e: BaseException) -> str:
    """pymongo's exception on one line, without the server's full reply or the topology dump."""
    from pymongo import errors

    if isinstance(e, errors.OperationFailure):
        details = e.details or {}
        message = details.get('errmsg') or str(e).split(', full error:', 1)[0]
        code_name = details.get('codeName')
        return f'{type(e).__name__}: {message} (code {e.code}{f", {code_name}" if code_name else ""})'
    if isinstance(e, errors.ServerSelectionTimeoutError):
        return describe(type(e)(str(e).split(', Topology Description:', 1)[0]))
    return describe(e)


def error_class(e: BaseException) -> type[ConnectorError] | None:
    """The ConnectorError class for a pymongo exception about the connection (reaching the server,
    credentials, time), or None for one about the operation itself (a duplicate key ...)."""
    from pymongo import errors

    if isinstance(e, errors.NetworkTimeout | errors.ExecutionTimeout | errors.WTimeoutError):
        return ConnectorTimeout
    if isinstance(e, errors.OperationFailure):
        return ConnectorAuthError if e.code in AUTH_CODES else None
    if isinstance(e, errors.ConnectionFailure | errors.ConfigurationError):
        return ConnectorUnavailable
    # A client closed under a call (its connection deleted, or edited longer ago than the grace)
    if isinstance(e, errors.InvalidOperation) and 'after close' in str(e):
        return ConnectorUnavailable
    return None


class MongoDBConnector(Connector):
    """An outgoing MongoDB connection; `conn` is the connector itself, with `client` (a
    `pymongo.MongoClient`), `ping()` and `mapped_errors()`."""

    kind: ClassVar[str] = 'mongodb'
    fields: ClassVar[tuple[Field, ...]] = MONGODB_FIELDS

    # ------------------------------------------------------------------ for services

    @contextmanager
    def mapped_errors(self) -> Iterator[None]:
        """Re-raises pymongo's connection errors as ConnectorUnavailable, ConnectorAuthError or
        ConnectorTimeout naming this connection; other exceptions (DuplicateKeyError ...) pass through::

            with conn.mapped_errors():
                conn.client.crm.customers.insert_one(doc)
        """
        from pymongo import errors

        try:
            yield
        except errors.PyMongoError as e:
            if error_class(e) is None:
                raise
            raise self.map_error(e) from e

    # ------------------------------------------------------------------ the Connector contract

    def connect(self) -> MongoClient[Any]:
        from pymongo import MongoClient

        client: MongoClient[Any] = MongoClient(**client_options(self.config, self.secret))
        try:
            self.ping_client(client)
        except Exception as e:
            client.close()
            mapped = self.map_error(e)
            # Not the mapped error itself: last_error is prefixed with the connection's name already
            raise type(mapped)(f'{self._servers()}: {explain(e)}', kind=self.kind, name=self.name) from e
        return client

    def ping_client(self, client: MongoClient[Any]) -> None:
        """`hello` on the admin database: a round trip, and authentication if the pool needs a new
        connection for it."""
        from pymongo.errors import OperationFailure

        try:
            client.admin.command('hello')
        except OperationFailure as e:
            if e.code != COMMAND_NOT_FOUND:
                raise
            client.admin.command('ismaster')

    def close_client(self, client: MongoClient[Any]) -> None:
        client.close()

    def map_error(self, e: BaseException) -> ConnectorError:
        if isinstance(e, ConnectorError):
            return e
        cls = error_class(e)
        if cls is None:
            from pymongo.errors import PyMongoError
            if not isinstance(e, PyMongoError):
                return super().map_error(e)
            cls = ConnectorUnavailable  # a ping answered with an error: the server is not usable
        return self.error(cls, f'{self._servers()}: {explain(e)}')

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> None:
        check_config(config)

    # ------------------------------------------------------------------

    def _servers(self) -> str:
        value = self.config.get('server_list', '')
        servers = value.split() if isinstance(value, str) else value
        return ', '.join(servers)
