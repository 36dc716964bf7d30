"""A worker's outgoing connections (zato.server.outconns) over a real SQLite ODB: a definition the
worker has not heard of yet is built when a service first asks for it, and the bus message that
follows finds it done; a newer version is rebuilt and the old one retired."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from zato.connectors.base import validate
from zato.connectors.rest import REST_FIELDS
from zato.odb.engine import make_engine, make_session_factory
from zato.odb.migrate import upgrade
from zato.odb.models import Cluster, OutConn
from zato.security.secrets_file import Crypto
from zato.server.outconns import OutConns
from zato.service.facades import OutFacade


class Runtime:
    """What OutConns uses of a worker's runtime."""

    def __init__(self, path: str) -> None:
        self.engine = make_engine(f'sqlite:///{path}')
        upgrade(self.engine)
        self.Session = make_session_factory(self.engine)
        self.crypto = Crypto(Crypto.new_key())
        self.outconns: dict[str, dict[str, Any]] = {}
        with self.Session() as session:
            cluster = Cluster(name='outconns-test')
            session.add(cluster)
            session.commit()
            self.cluster_id = cluster.id

    def define(self, name: str, host: str, version: int = 1, obj_id: int | None = None) -> OutConn:
        config, _ = validate(REST_FIELDS, {'address_host': host})
        with self.Session() as session:
            row = session.get(OutConn, obj_id) if obj_id else None
            if row is None:
                row = OutConn(cluster_id=self.cluster_id, kind='rest', name=name, is_active=True, secret='')
                session.add(row)
            row.config, row.version = config, version
            session.commit()
            session.refresh(row)
            session.expunge(row)
            return row


@pytest.fixture
def runtime(tmp_path) -> Iterator[Runtime]:
    rt = Runtime(str(tmp_path / 'odb.sqlite3'))
    yield rt
    rt.engine.dispose()


@pytest.fixture
def manager(runtime) -> Iterator[OutConns]:
    mgr = OutConns(runtime)  # type: ignore[arg-type] - the parts of a Runtime it uses
    yield mgr
    mgr.stop_all()


def test_a_definition_the_worker_has_not_heard_of_yet_is_built_when_a_service_asks_for_it(runtime, manager):
    row = runtime.define('CRM', 'http://127.0.0.1:1')
    out = OutFacade(runtime.outconns, manager.catch_up)
    handle = out.rest['CRM']  # no bus message came: the worker loads it from the ODB
    assert handle.name == 'CRM' and handle.conn.config['address_host'] == 'http://127.0.0.1:1'
    assert out.plain_http['CRM'] is handle  # through the alias too
    built = handle.connector

    # The bus message for the same version then finds it done: nothing is rebuilt
    manager.apply(row.id, row)
    assert runtime.outconns['rest']['CRM'].connector is built

    # A newer version is rebuilt
    newer = runtime.define('CRM', 'http://127.0.0.2:1', version=2, obj_id=row.id)
    manager.apply(newer.id, newer)
    assert runtime.outconns['rest']['CRM'].connector is not built
    assert runtime.outconns['rest']['CRM'].conn.config['address_host'] == 'http://127.0.0.2:1'


def test_a_name_the_odb_does_not_have_either_is_a_key_error_with_close_names(runtime, manager):
    runtime.define('CRM', 'http://127.0.0.1:1')
    out = OutFacade(runtime.outconns, manager.catch_up)
    _ = out.rest['CRM']
    with pytest.raises(KeyError, match='No such outgoing rest connection `CMR`; did you mean `CRM`?'):
        _ = out.rest['CMR']
    with pytest.raises(KeyError, match='No such outgoing ldap connection `CRM`'):
        _ = out.ldap['CRM']  # the same name, another kind
