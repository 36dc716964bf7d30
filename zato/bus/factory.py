"""Build the cluster bus a server's config asks for.

Backends are imported on first use, so a server on the `local` bus needs no PostgreSQL driver.
"""

from __future__ import annotations

import importlib
from typing import Any
from collections.abc import Mapping

from zato.bus.base import Bus

# backend name -> (module, class, the config key passed as its one argument)
BACKENDS: dict[str, tuple[str, str, str]] = {
    'local': ('zato.bus.local', 'LocalBus', 'run_dir'),
    'postgresql': ('zato.bus.postgresql', 'PostgreSQLBus', 'dsn'),
}


def make_bus(config: Mapping[str, Any]) -> Bus:
    """Return an unstarted bus, e.g. for `{'backend': 'local', 'run_dir': '/path/to/run/bus'}`
    or `{'backend': 'postgresql', 'dsn': 'postgresql://zato@db/zato'}`.

    Raises ValueError for an unknown backend or a missing setting.
    """
    backend = config.get('backend')
    if backend not in BACKENDS:
        allowed = ', '.join(sorted(BACKENDS))
        raise ValueError(f'Unknown cluster bus backend {backend!r}; allowed: {allowed}')

    module_name, class_name, key = BACKENDS[backend]
    value = config.get(key)
    if not value:
        raise ValueError(f'Cluster bus backend {backend!r} needs `{key}` in its config')

    bus_class = getattr(importlib.import_module(module_name), class_name)
    return bus_class(value)
