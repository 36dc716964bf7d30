"""An SSO core over a real ODB (SQLite here; PostgreSQL with --pg tests) with a clock the test moves."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests import pg
from zato.odb.engine import make_engine, make_session_factory
from zato.odb.migrate import upgrade
from zato.odb.models import Cluster
from zato.security.secrets_file import Crypto
from zato.sso.api import SSO
from zato.sso.config import SSOConfig, parse_text
from zato.sso.context import Cipher, SSOContext, derive_hash_key

START = 1_800_000_000.0  # 2027-01-15, a multiple of 30: TOTP steps begin on it


class Clock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_sso(engine, config: SSOConfig | None = None, clock: Clock | None = None) -> SSO:
    session_factory = make_session_factory(engine)
    with session_factory() as session:
        cluster = session.scalars(select(Cluster).where(Cluster.name == 'sso-test')).one_or_none()
        if cluster is None:
            cluster = Cluster(name='sso-test', config_version=0)
            session.add(cluster)
            session.commit()
        cluster_id = cluster.id
    key = Crypto.new_key()
    crypto = Crypto(key)
    ctx = SSOContext(session_factory, cluster_id, config or parse_text('', 'test'), Cipher(crypto.encrypt, crypto.decrypt),
                     derive_hash_key(key), clock or Clock())
    return SSO(ctx)


@pytest.fixture(params=['sqlite', pytest.param('postgresql', marks=pytest.mark.postgresql)])
def engine(request, tmp_path):
    if request.param == 'sqlite':
        eng = make_engine(f'sqlite:///{tmp_path / "odb.sqlite3"}')
        upgrade(eng)
        yield eng
        eng.dispose()
        return
    with pg.scratch_database('zato_sso_') as db:
        eng = make_engine(pg.dsn(db).replace('postgresql://', 'postgresql+psycopg2://'))
        upgrade(eng)
        yield eng
        eng.dispose()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def sso(engine, clock):
    return make_sso(engine, clock=clock)
