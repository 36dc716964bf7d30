"""The pages of declared resources called alone, over a real ODB with no server to call: the create
form and what it refuses before any admin call, a form built from the fields a server declares for a
kind of outgoing connection, and the rate-limit rules check while no server answers."""

from __future__ import annotations

import json

import pytest

from zato.odb.models import Service
from zato_web_admin import resources
from zato_web_admin.http import HTTPError
from zato_web_admin.views import rate_limits
from zato_web_admin.views.channels import JSONRPC_CHANNELS, kafka_status
from zato_web_admin.views.resources import REST_CHANNELS, OutgoingKinds

from tests.web_admin.views.standalone import request, signed_in, text

# A kind as GET /zato/admin/outconns lists it
SLACK = {'kind': 'slack', 'aliases': [], 'fields': [
    {'name': 'webhook_url', 'type': 'str', 'required': True, 'default': None, 'doc': 'Incoming webhook URL',
     'secret': False},
    {'name': 'timeout', 'type': 'float', 'required': False, 'default': 10.0, 'doc': 'Seconds', 'secret': False},
    {'name': 'token', 'type': 'str', 'required': False, 'default': None, 'doc': 'Bot token', 'secret': True},
]}


def test_the_create_form_offers_the_odbs_user_services(app):
    with app.db() as db:
        db.add(Service(cluster_id=app.config.cluster_id, name='orders.get', impl_name='orders.GetOrder'))
        db.add(Service(cluster_id=app.config.cluster_id, name='zato.ping', impl_name='zato.Ping', is_internal=True))
        db.commit()
    page = text(resources.new(app, request(current=signed_in(app)), REST_CHANNELS))
    assert '<h1>New REST channel</h1>' in page
    assert '<option value="orders.get"' in page and 'zato.ping' not in page


def test_a_form_missing_what_is_required_is_shown_again_with_the_reasons_and_nothing_is_sent(app):
    form = {'name': '', 'url_path': '/orders', 'service': '', 'merge_url_params_req': 'on'}
    response = resources.create(app, request('POST', '/channels/rest/new', form, current=signed_in(app)),
                                REST_CHANNELS)
    page = text(response)
    assert response.status == 400
    assert 'id="error-name">required<' in page and 'id="error-service">required<' in page
    assert 'value="/orders"' in page  # what the user typed is kept


def test_an_id_that_is_not_a_number_names_no_object(app):
    current = signed_in(app)
    with pytest.raises(HTTPError) as info:
        resources.edit(app, request(current=current), JSONRPC_CHANNELS, obj_id='1 OR 1=1')
    assert info.value.status == 404
    with pytest.raises(HTTPError) as info:
        kafka_status(app, request(current=current), obj_id='../1')
    assert info.value.status == 404


def test_a_kinds_form_is_made_of_the_fields_the_server_declares_its_secret_a_password(app):
    res = OutgoingKinds._resource(SLACK)
    page = text(resources.new(app, request(current=signed_in(app)), res))
    assert '<h1>New outgoing Slack connection</h1>' in page
    assert 'name="webhook_url" value=""' in page and 'name="timeout" value="10.0"' in page
    assert '<input type="password" id="f-token" name="token"' in page


def test_a_family_route_finds_its_resource_by_the_kind_in_the_path(app):
    def find(_app, kind: str) -> resources.Resource:
        if kind != 'slack':
            raise HTTPError(404, 'No such kind of outgoing connection')
        return OutgoingKinds._resource(SLACK)

    routes = {(method, pattern): view for method, pattern, view, _ in resources.family_routes('/outgoing/{kind}', find)}
    new = routes['GET', '/outgoing/{kind}/new']
    current = signed_in(app)
    assert '<h1>New outgoing Slack connection</h1>' in text(new(app, request(current=current), kind='slack'))
    with pytest.raises(HTTPError) as info:
        new(app, request(current=current), kind='nosuch')
    assert info.value.status == 404


def test_rules_typed_while_no_server_answers_are_left_to_be_checked_when_saved(app):
    response = rate_limits.check(app, request('POST', rate_limits.CHECK_URL, {'text': '* = 10/s'},
                                              current=signed_in(app)))
    assert response.status == 200
    assert json.loads(response.body) == {'ok': False,
                                         'error': 'No server answers now; the rules are checked when saved'}
