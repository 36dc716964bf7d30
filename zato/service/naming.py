"""Service names derived from module and class, as in Zato 3.1: ``my_api.GetCustomer`` becomes
``my-api.get-customer`` unless the class sets ``name``."""

from __future__ import annotations

import re

_CAMEL = re.compile(r'(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])')


def uncamelify(name: str) -> str:
    return _CAMEL.sub('-', name).lower()


def derive_name(module_name: str, class_name: str) -> str:
    module = '.'.join(part.replace('_', '-') for part in module_name.split('.'))
    return f'{module}.{uncamelify(class_name)}'
