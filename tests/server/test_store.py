from __future__ import annotations

import pytest

from zato.errors import DeploymentError, ServiceNotFound
from zato.server.store import ServiceStore
from zato.service.naming import derive_name

MODULE = '''
from zato.server.service import Service

class GetCustomer(Service):
    def handle(self):
        pass

class Named(Service):
    name = 'my.explicit'
    def handle_GET(self):
        pass
    def before_handle(self):
        pass

class Skipped(Service):
    zato_dont_import = True
'''


@pytest.mark.parametrize('module, cls, name', [
    ('my_api', 'GetCustomer', 'my-api.get-customer'),
    ('crm.sync_api', 'HTTPClient', 'crm.sync-api.http-client'),
    ('x', 'Get2FAStatus', 'x.get2-fa-status'),
])
def test_names_are_derived_from_module_and_class_as_in_3_1(module, cls, name):
    assert derive_name(module, cls) == name


def test_deploying_a_module_registers_its_services_with_their_hooks_and_verbs():
    store = ServiceStore()
    names = store.deploy('store_mod.py', MODULE)
    assert sorted(names) == ['my.explicit', 'store-mod.get-customer']
    named = store.get('my.explicit')
    assert named._verbs == frozenset({'GET'})
    assert named._hooks == frozenset({'before_handle'})
    assert store.get('store-mod.get-customer')._hooks == frozenset()
    with pytest.raises(ServiceNotFound):
        store.get('store-mod.skipped')


def test_a_redeploy_removes_services_the_new_version_no_longer_has():
    store = ServiceStore()
    store.deploy('store_mod2.py', MODULE)
    store.deploy('store_mod2.py', MODULE.split('class Named')[0])
    assert 'my.explicit' not in store
    assert 'store-mod2.get-customer' in store


@pytest.mark.parametrize('source, message', [
    ('def x(:\n', 'store_bad.py, line 1: SyntaxError'),
    ('\n\nraise RuntimeError("boom")\n', 'store_bad.py, line 3: RuntimeError: boom'),
    ('import no_such_module_x\n', "ModuleNotFoundError: No module named 'no_such_module_x'"),
])
def test_a_module_that_fails_to_import_raises_one_clear_line(source, message):
    with pytest.raises(DeploymentError) as e:
        ServiceStore().deploy('store_bad.py', source)
    assert message in str(e.value)


def test_a_module_name_that_would_shadow_an_installed_module_is_refused():
    with pytest.raises(DeploymentError, match='shadow'):
        ServiceStore().deploy('json.py', MODULE)


def test_a_service_name_already_deployed_from_another_file_is_refused():
    store = ServiceStore()
    store.deploy('store_a.py', 'from zato.server.service import Service\nclass A(Service):\n    name = "dup.x"\n')
    with pytest.raises(DeploymentError, match='already deployed from store_a.py'):
        store.deploy('store_b.py', 'from zato.server.service import Service\nclass B(Service):\n    name = "dup.x"\n')


def test_names_starting_with_zato_are_reserved_for_internal_services():
    with pytest.raises(DeploymentError, match='reserved'):
        ServiceStore().deploy('store_z.py', 'from zato.server.service import Service\n'
                                            'class A(Service):\n    name = "zato.mine"\n')


def test_a_broken_simpleio_declaration_is_refused_at_deploy_time_naming_file_service_and_typo():
    source = ('from zato.server.service import Service\nclass A(Service):\n'
              '    class SimpleIO:\n        input_requried = "a",\n')
    with pytest.raises(DeploymentError) as e:
        ServiceStore().deploy('store_sio.py', source)
    assert str(e.value).startswith('store_sio.py: store-sio.a: unknown SimpleIO attribute `input_requried`')
    assert 'did you mean `input_required`' in str(e.value)
