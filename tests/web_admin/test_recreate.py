"""A web-admin user deleted and created again under the same name: the old user's browser sessions are
gone, and the new user has an id of its own (the ODB never hands an id out twice)."""

from __future__ import annotations

import pytest
from sqlalchemy import delete

from tests import pg
from zato.odb.engine import make_engine, make_session_factory
from zato.odb.migrate import upgrade
from zato.odb.models import WebAdminUser
from zato_web_admin import sessions, users


def recreate_and_load_old_session(engine) -> tuple[int, int, object]:
    with make_session_factory(engine)() as session:
        first = users.create(session, 'jane', 'a long enough password 1')
        session.commit()
        token = sessions.start(session, first)
        assert sessions.load(session, token, 1800, 43200) is not None
        first_id = first.id
        session.execute(delete(WebAdminUser).where(WebAdminUser.id == first_id))
        session.commit()
        second = users.create(session, 'jane', 'a long enough password 2')
        session.commit()
        return first_id, second.id, sessions.load(session, token, 1800, 43200)


def test_a_recreated_web_admin_user_does_not_inherit_the_deleted_ones_sessions_on_sqlite(tmp_path):
    engine = make_engine(f'sqlite:///{tmp_path / "odb.sqlite3"}')
    upgrade(engine)
    first_id, second_id, loaded = recreate_and_load_old_session(engine)
    engine.dispose()
    assert second_id != first_id and loaded is None


@pytest.mark.postgresql
def test_a_recreated_web_admin_user_does_not_inherit_the_deleted_ones_sessions_on_postgresql():
    with pg.scratch_database('zato_wa_recreate_') as db:
        engine = make_engine(pg.dsn(db).replace('postgresql://', 'postgresql+psycopg2://'))
        upgrade(engine)
        first_id, second_id, loaded = recreate_and_load_old_session(engine)
        engine.dispose()
    assert second_id != first_id and loaded is None
