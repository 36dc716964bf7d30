"""The dashboard and the audit log called alone, over a real ODB."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from zato.odb.histogram import bucket_of
from zato.odb.models import Server, ServiceStat, WorkerHeartbeat
from zato_web_admin import users
from zato_web_admin.views import audit, home

from tests.web_admin.views.standalone import request, signed_in, text


def test_the_dashboard_adds_up_every_workers_calls_and_ranks_the_busiest_services(app):
    now = datetime.now(UTC)
    minute = now.replace(second=0, microsecond=0)
    cluster_id = app.config.cluster_id
    with app.db() as db:
        db.add(Server(cluster_id=cluster_id, name='server1', host='127.0.0.1', port=17010))
        db.add(WorkerHeartbeat(cluster_id=cluster_id, server_name='server1', pid=101, started_at=now,
                               last_seen=now, flush_interval=10.0))
        for name, pid, count, errors in (('orders.get', 101, 7, 1), ('orders.get', 102, 3, 0),
                                         ('billing.charge', 101, 2, 2)):
            db.add(ServiceStat(cluster_id=cluster_id, minute=minute - timedelta(minutes=1), service_name=name,
                               server_name='server1', worker_pid=pid, count=count, errors=errors,
                               total_ms=count * 2.0, max_ms=3.0, histogram={str(bucket_of(0.002)): count},
                               last_call=now))
        db.commit()
    response = home.dashboard(app, request(current=signed_in(app)))
    page = text(response)
    assert response.status == 200
    assert re.search(r'id="total-calls">12<', page) and re.search(r'id="total-errors">3<', page)
    assert re.search(r'id="workers-up">1</strong> of 1', page)
    assert page.index('data-name="orders.get"') < page.index('data-name="billing.charge"')


def test_the_audit_log_finds_changes_by_who_what_or_which_newest_first(app):
    current = signed_in(app)
    with app.db() as db:
        users.audit(db, 'jane', 'channels/rest.create', 'channels/rest', 'orders-api', {'url_path': '/orders'})
        users.audit(db, 'john', 'security/apikey.delete', 'security-apikey', 'partner-key')
        users.audit(db, 'jane', 'channels/rest.edit', 'channels/rest', 'orders-api')
        db.commit()
    page = text(audit.audit_log(app, request(query='q=orders', current=current)))
    assert 'channels/rest.edit' in page and 'channels/rest.create' in page and 'partner-key' not in page
    assert page.index('channels/rest.edit') < page.index('channels/rest.create')
    assert 'partner-key' in text(audit.audit_log(app, request(query='q=JOHN', current=current)))
