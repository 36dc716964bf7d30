"""self.invoke's 3.1 options: skip_response_elem, as_bunch and serialize, which used to be ignored."""

from __future__ import annotations

import pytest

from zato.server.store import ServiceStore
from zato.service.bunch import Bunch
from zato.service.invoker import Invoker

SERVICES = '''
from zato.server.service import Service


class Wrapped(Service):
    name = 'opt.wrapped'

    class SimpleIO:
        output_required = 'customer',
        response_elem = 'response'

    def handle(self):
        self.response.payload.customer = {'name': 'Ann', 'orders': [{'id': 1}]}


class Plain(Service):
    name = 'opt.plain'

    def handle(self):
        self.response.payload = {'response': {'x': 1}}


class Caller(Service):
    name = 'opt.caller'

    def handle(self):
        req = self.request.payload
        got = self.invoke(req['name'], **req['kwargs'])
        self.response.payload = {'type': type(got).__name__, 'got': got,
                                 'name': got.customer['name'] if req['kwargs'].get('as_bunch') else None}
'''


class Host:
    """What these services reach of a server: the invoker, for self.invoke."""
    invoker: Invoker


@pytest.fixture
def invoker() -> Invoker:
    store = ServiceStore()
    store.deploy('opt_services.py', SERVICES)
    host = Host()
    host.invoker = Invoker(store, host)  # type: ignore[arg-type]
    return host.invoker


def test_the_response_elem_is_kept_by_default_and_stripped_with_skip_response_elem(invoker):
    assert invoker.invoke('opt.wrapped') == {'response': {'customer': {'name': 'Ann', 'orders': [{'id': 1}]}}}
    assert invoker.invoke('opt.wrapped', skip_response_elem=True) == {'customer': {'name': 'Ann',
                                                                                   'orders': [{'id': 1}]}}


def test_skip_response_elem_strips_only_a_declared_response_elem(invoker):
    # A service without SimpleIO answering {"response": ...} keeps it: it is its data, not a wrapper
    assert invoker.invoke('opt.plain', skip_response_elem=True) == {'response': {'x': 1}}


def test_as_bunch_gives_attribute_access_all_the_way_down(invoker):
    got = invoker.invoke('opt.wrapped', as_bunch=True, skip_response_elem=True)
    assert isinstance(got, Bunch) and got.customer.name == 'Ann' and got.customer.orders[0].id == 1


def test_serialize_gives_the_output_as_a_json_string(invoker):
    assert invoker.invoke('opt.plain', serialize=True) == '{"response":{"x":1}}'


def test_a_service_passes_the_options_through_self_invoke(invoker):
    out = invoker.invoke('opt.caller', {'name': 'opt.wrapped', 'kwargs': {'as_bunch': True,
                                                                          'skip_response_elem': True}})
    assert out['type'] == 'Bunch' and out['name'] == 'Ann'
