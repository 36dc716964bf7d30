"""Every compiled module has a pure-Python twin, and setup.py builds exactly the listed ones."""

from __future__ import annotations

import importlib
import os

import pytest

from zato import accel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_ext_source_is_listed_and_every_listed_module_has_a_source_and_a_twin():
    sources = {name[:-4] for name in os.listdir(os.path.join(ROOT, 'ext')) if name.endswith('.pyx')}
    listed = {compiled.rsplit('.', 1)[1] for compiled in accel.EXTENSIONS}
    assert sources == listed
    for twin in accel.EXTENSIONS.values():
        importlib.import_module(twin)


@pytest.mark.parametrize('compiled, twin', sorted(accel.EXTENSIONS.items()))
def test_a_compiled_module_exposes_the_same_public_names_as_its_twin(compiled, twin):
    if accel.pure_python_forced():
        pytest.skip('ZATO_PURE_PYTHON=1: only the twins run')
    try:
        fast = importlib.import_module(compiled)
    except ImportError:
        pytest.fail(f'{compiled} is not built; run scripts/setup.sh (it needs gcc and Cython)')
    slow = importlib.import_module(twin)
    def public(module):
        if hasattr(module, '__all__'):
            return set(module.__all__)
        return {n for n in dir(module) if not n.startswith('_') and n != 'annotations'
                and not isinstance(getattr(module, n), type(importlib))}
    assert public(slow) <= public(fast)
    for name in public(slow):
        assert hasattr(fast, name), name


def test_zato_pure_python_forces_the_twin(monkeypatch):
    monkeypatch.setenv('ZATO_PURE_PYTHON', '1')
    for twin in accel.EXTENSIONS.values():
        assert accel.load(twin).__name__ == twin
