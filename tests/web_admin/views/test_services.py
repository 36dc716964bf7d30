"""The services' views called alone: the list and a service's page from a real ODB, and what they do
while no server answers (the admin API client aimed at a port nothing listens on)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from zato.odb.models import DeployedCode, Service, WebAdminAudit
from zato_web_admin.http import HTTPError
from zato_web_admin.views import services

from tests.web_admin.views.standalone import request, signed_in, text

SOURCE = 'class GetOrder(Service):\n    """Returns an order."""\n'


@pytest.fixture
def deployed(app) -> None:
    """orders.get from orders.py, billing.charge from billing.py, and an internal service."""
    cluster_id = app.config.cluster_id
    with app.db() as db:
        for file_name, name in (('orders.py', 'orders.get'), ('billing.py', 'billing.charge')):
            code = DeployedCode(cluster_id=cluster_id, file_name=file_name, source=SOURCE, source_hash='0' * 64)
            db.add(code)
            db.flush()
            db.add(Service(cluster_id=cluster_id, name=name, impl_name=f'{file_name[:-3]}.Impl', code_id=code.id))
        db.add(Service(cluster_id=cluster_id, name='zato.ping', impl_name='zato.server.Ping', is_internal=True))
        db.commit()


def names_listed(page: str) -> list[str]:
    return [name for name in ('orders.get', 'billing.charge', 'zato.ping') if f'data-name="{name}"' in page]


@pytest.mark.usefixtures('deployed')
def test_the_list_shows_user_services_only_and_searches_their_names_and_modules(app):
    current = signed_in(app)
    assert names_listed(text(services.services_list(app, request(current=current)))) == ['orders.get',
                                                                                         'billing.charge']
    assert names_listed(text(services.services_list(app, request(query='q=billing.py', current=current)))) == \
        ['billing.charge']


@pytest.mark.usefixtures('deployed')
def test_a_services_page_says_no_server_answered_and_shows_what_the_odb_has(app):
    response = services.service_page(app, request(current=signed_in(app)), name='orders.get')
    page = text(response)
    assert response.status == 200
    assert 'No server answered (cannot reach the server at' in page
    assert 'orders.py' in page and 'Returns an order.' in page


@pytest.mark.usefixtures('deployed')
def test_an_internal_or_unknown_service_has_no_page(app):
    current = signed_in(app)
    for name in ('zato.ping', 'no.such.service'):
        with pytest.raises(HTTPError) as info:
            services.service_page(app, request(current=current), name=name)
        assert info.value.status == 404


@pytest.mark.usefixtures('deployed')
def test_an_invocation_whose_request_is_not_json_is_shown_again_and_not_sent(app):
    response = services.service_invoke(app, request('POST', form={'payload': '{"id": 1'}, current=signed_in(app)),
                                       name='orders.get')
    page = text(response)
    assert response.status == 400
    assert 'Not valid JSON' in page and '{&#34;id&#34;: 1</textarea>' in page
    with app.db() as db:
        assert db.scalar(select(WebAdminAudit).where(WebAdminAudit.action == 'service.invoke')) is None


@pytest.mark.usefixtures('deployed')
def test_an_invocation_no_server_answers_fails_and_the_audit_log_keeps_its_size_not_its_payload(app):
    payload = '{"card": "4111 1111 1111 1111"}'
    response = services.service_invoke(app, request('POST', form={'payload': payload}, current=signed_in(app)),
                                       name='orders.get')
    page = text(response)
    assert response.status == 200
    assert 'id="invoke-status">Failed' in page and 'cannot reach the server' in page
    with app.db() as db:
        row = db.scalar(select(WebAdminAudit).where(WebAdminAudit.action == 'service.invoke'))
    assert row is not None and (row.username, row.object_name) == ('jane', 'orders.get')
    assert row.details == {'ok': False, 'status': None, 'payload_bytes': len(payload)}


@pytest.mark.parametrize(('upload', 'error'), [
    (('', b''), 'Choose a .py module or a .json schema to deploy.'),  # as a browser sends no file chosen
    (('notes.txt', b'x'), '`notes.txt` is neither a .py module nor a .json schema.'),
    (('latin1.py', 'x = "\xe9"'.encode('latin-1')), '`latin1.py` is not UTF-8 text.'),
])
def test_an_upload_that_cannot_be_deployed_is_refused_before_reaching_a_server(app, upload, error):
    response = services.deploy(app, request('POST', '/deploy', files={'module': upload}, current=signed_in(app)))
    assert response.status == 400
    assert f'id="deploy-error">{error}</p>' in text(response)
