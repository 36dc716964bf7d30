"""Which kinds of outgoing connection exist: the built-in ones and those third parties add.

A package adds a kind by naming its `Connector` subclass in the ``zato.connectors`` entry-point
group, the kind's name as the entry point's name::

    [project.entry-points."zato.connectors"]
    lmtp = "my_package.lmtp:LMTPConnector"

A plugin that cannot be imported, is not a Connector, or clashes with a kind already known is
logged and skipped: one broken package never keeps a server from starting. Aliases (``plain_http``
for ``rest``, as in Zato 3.1) resolve to the one name a kind is stored and reached under.
"""

from __future__ import annotations

import difflib
import importlib
import logging
from importlib import metadata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zato.connectors.base import Connector

logger = logging.getLogger('zato.connectors.registry')

GROUP = 'zato.connectors'

# kind -> module:class; imported on first use, so that importing the registry stays cheap
BUILTIN = {
    'imap': 'zato.connectors.imap:IMAPConnector',
    'jsonrpc': 'zato.connectors.jsonrpc:JSONRPCConnector',
    'kafka': 'zato.connectors.kafka:KafkaConnector',
    'ldap': 'zato.connectors.ldap:LDAPConnector',
    'mongodb': 'zato.connectors.mongodb:MongoDBConnector',
    'rest': 'zato.connectors.rest:RESTConnector',
    'sftp': 'zato.connectors.sftp:SFTPConnector',
    'slack': 'zato.connectors.slack:SlackConnector',
    'smtp': 'zato.connectors.smtp:SMTPConnector',
    'ssh': 'zato.connectors.ssh:SSHConnector',
    'telegram': 'zato.connectors.telegram:TelegramConnector',
    'wsx': 'zato.connectors.wsx:WSXConnector',
}

_kinds: dict[str, type[Connector]] | None = None
_aliases: dict[str, str] = {}


def kinds() -> list[str]:
    """The names of every kind, sorted; aliases not included."""
    return sorted(_load())


def aliases() -> dict[str, str]:
    """alias -> kind."""
    _load()
    return dict(_aliases)


def resolve(kind: str) -> str:
    """The kind an alias stands for, or `kind` itself."""
    _load()
    return _aliases.get(kind, kind)


def get(kind: str) -> type[Connector]:
    """The Connector class of a kind or alias; KeyError naming the known kinds if there is none."""
    found = _load().get(resolve(kind))
    if found is None:
        known = kinds() + sorted(_aliases)
        close = difflib.get_close_matches(kind, known, n=3)
        hint = f'; did you mean {", ".join(f"`{c}`" for c in close)}?' if close else ''
        raise KeyError(f'No kind of outgoing connection `{kind}`{hint} (known: {", ".join(sorted(known))})')
    return found


def reload() -> None:
    """Forgets what was loaded; the next look-up loads built-ins and entry points again."""
    global _kinds
    _kinds = None
    _aliases.clear()


# ################################################################################################

def _load() -> dict[str, type[Connector]]:
    global _kinds
    if _kinds is not None:
        return _kinds
    found: dict[str, type[Connector]] = {}
    _aliases.clear()
    for kind, target in BUILTIN.items():
        module, _, attr = target.partition(':')
        try:
            cls = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            # A connector module imports its client library lazily, so this is a broken install;
            # the other kinds still work
            logger.exception('Skipped built-in connector `%s` (%s): it could not be loaded', kind, target)
            continue
        _add(found, kind, cls, target)
    for kind, target, cls in _plugins():
        _add(found, kind, cls, target)
    _kinds = found
    return found


def _plugins() -> list[tuple[str, str, type]]:
    try:
        entry_points = list(metadata.entry_points(group=GROUP))
    except Exception:
        logger.exception('Could not list the `%s` entry points; no third-party connectors loaded', GROUP)
        return []
    plugins = []
    for ep in entry_points:
        try:
            cls = ep.load()
        except Exception:
            logger.exception('Skipped connector `%s` (%s): it could not be loaded', ep.name, ep.value)
            continue
        plugins.append((ep.name, ep.value, cls))
    return plugins


def _add(found: dict[str, type[Connector]], kind: str, cls: object, target: str) -> None:
    from zato.connectors.base import Connector

    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        logger.error('Skipped connector `%s` (%s): not a subclass of zato.connectors.base.Connector', kind, target)
        return
    if cls.kind != kind:
        logger.error('Skipped connector `%s` (%s): its class says its kind is `%s`', kind, target, cls.kind)
        return
    taken = [name for name in (kind, *cls.aliases) if name in found or name in _aliases]
    if taken:
        logger.error('Skipped connector `%s` (%s): `%s` is already a kind or alias', kind, target, taken[0])
        return
    found[kind] = cls
    for alias in cls.aliases:
        _aliases[alias] = kind
