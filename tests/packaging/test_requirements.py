"""setup.py declares what the code imports, so that a plain `pip install .` gives a working Zato.

Every third-party module that zato/ or web-admin/ imports (at any depth, even inside a function)
comes from a distribution in install_requires; every module the tests import comes from
install_requires or the test extras; and a distribution in install_requires that no code of ours
imports says why it is there. Modules are mapped to distributions through this venv's metadata.
"""

from __future__ import annotations

import ast
import os
import re
import sys
from importlib.metadata import packages_distributions

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OURS = {'zato', 'zato_web_admin', 'tests'}

# Declared, though no module of ours imports them
NOT_IMPORTED = {
    'packaging': "gunicorn's gevent worker imports it and gunicorn does not declare it",
    'sh': "for services, as Zato 3.1 shipped it: `from sh import ssh` (docs/subprocess.md)",
    'wsaccel': 'on the design card; bench/wsmask.py compares our masking and UTF-8 checks with it (ours are faster)',
    'tzdata': "the scheduler's time zones where the system has no zoneinfo database (slim images): the standard "
              "library's zoneinfo reads it as data, nothing imports it by name",
}


def setup_constant(name: str) -> object:
    """The literal value assigned to `name` in setup.py (read without running setup())."""
    with open(os.path.join(ROOT, 'setup.py'), encoding='utf-8') as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f'setup.py assigns no {name}')


def canonical(name: str) -> str:
    """A distribution's name as PEP 503 compares them."""
    return re.sub(r'[-_.]+', '-', name).lower()


def distribution_names(requirements: list[str]) -> set[str]:
    names = set()
    for spec in requirements:
        m = re.match(r'[A-Za-z0-9][A-Za-z0-9._-]*', spec)
        assert m, spec
        names.add(canonical(m.group()))
    return names


def imported_modules(*dirs: str) -> dict[str, set[str]]:
    """Top-level module name → the files that import it, for absolute imports under `dirs`."""
    found: dict[str, set[str]] = {}
    for top in dirs:
        for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, top)):
            dirnames[:] = [d for d in dirnames if d != '__pycache__']
            for filename in filenames:
                if not filename.endswith('.py'):
                    continue
                path = os.path.join(dirpath, filename)
                with open(path, encoding='utf-8') as f:
                    tree = ast.parse(f.read(), path)
                for node in ast.walk(tree):
                    if isinstance(node, ast.Import):
                        names = [alias.name for alias in node.names]
                    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                        names = [node.module]
                    else:
                        continue
                    for name in names:
                        found.setdefault(name.split('.')[0], set()).add(os.path.relpath(path, ROOT))
    return found


def third_party(modules: dict[str, set[str]]) -> dict[str, set[str]]:
    return {name: files for name, files in modules.items()
            if name not in sys.stdlib_module_names and name not in OURS}


def undeclared(modules: dict[str, set[str]], declared: set[str]) -> list[str]:
    """What is imported but comes from no declared distribution, one line per module."""
    providers = packages_distributions()
    problems = []
    for module, files in sorted(modules.items()):
        dists = {canonical(d) for d in providers.get(module, [])}
        where = ', '.join(sorted(files)[:3])
        if not dists:
            problems.append(f'{module} (imported by {where}) is not installed here, so no distribution provides it')
        elif not dists & declared:
            problems.append(f'{module} (imported by {where}) comes from {", ".join(sorted(dists))}, not declared')
    return problems


def test_setup_py_declares_every_third_party_package_that_zato_and_the_web_admin_import():
    declared = distribution_names(setup_constant('INSTALL_REQUIRES'))  # type: ignore[arg-type]
    assert undeclared(third_party(imported_modules('zato', 'web-admin')), declared) == []


def test_setup_py_declares_every_third_party_package_that_the_tests_import():
    extras = setup_constant('EXTRAS_REQUIRE')
    assert isinstance(extras, dict)
    declared = distribution_names(setup_constant('INSTALL_REQUIRES')) | distribution_names(extras['test'])  # type: ignore[arg-type]
    assert undeclared(third_party(imported_modules('tests')), declared) == []


def test_every_package_in_install_requires_is_imported_by_zato_or_says_why_not():
    providers = packages_distributions()
    imported = set()
    for module in third_party(imported_modules('zato', 'web-admin')):
        imported |= {canonical(d) for d in providers.get(module, [])}
    declared = distribution_names(setup_constant('INSTALL_REQUIRES'))  # type: ignore[arg-type]
    assert sorted(declared - imported - set(NOT_IMPORTED)) == []
    # And each reason is still needed
    assert sorted(set(NOT_IMPORTED) & imported) == []
    assert set(NOT_IMPORTED) <= declared


def test_the_audit_sees_an_import_inside_a_function_and_a_missing_declaration():
    # The checks above would pass vacuously if the scan found nothing: it must find lazy imports too
    modules = third_party(imported_modules('zato'))
    assert 'zato/security/ratelimit/exact.py' in modules['redis']
    assert undeclared({'redis': {'x.py'}}, {'gevent'}) == ['redis (imported by x.py) comes from redis, not declared']
