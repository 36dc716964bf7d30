"""``self.user_config``: INI files a user keeps next to the server, as in Zato 3.1.

Each file becomes one entry named after its stem: ``orders.ini`` with ``[db]`` and ``host = x`` is
``self.user_config.orders.db.host`` (or ``self.user_config['orders']['db']['host']``). Values are
strings, as written. Two places hold them:

* ``config/repo/user-conf/*.ini`` and ``*.conf`` of each server, read by each of its workers at start;
* files dropped into ``pickup/incoming/user-conf`` (any server), which are stored in the ODB and
  reach every worker of the cluster at once, and again at each start. Such a file replaces a local
  one of the same stem.
"""

from __future__ import annotations

import configparser
import logging
import os
from typing import Any

logger = logging.getLogger('zato.user_config')

EXTENSIONS = ('.ini', '.conf')
ODB_PREFIX = 'user-conf/'  # deployed_code.file_name of a file deployed through the pickup directory


class ConfigSection(dict):
    """A read-only mapping with attribute access that names what is missing."""

    __slots__ = ('_path',)

    def __init__(self, path: str, items: Any = ()) -> None:
        super().__init__(items)
        self._path = path

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f'No `{name}` in user config `{self._path}`') from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name == '_path':
            super().__setattr__(name, value)
            return
        raise TypeError('self.user_config is read-only: change the INI file instead')


def parse(name: str, text: str) -> ConfigSection:
    """One INI file as ``{section: {key: value}}``; ValueError naming the file if it is not valid INI."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign] # keys keep their case
    try:
        parser.read_string(text, source=name)
    except configparser.Error as e:
        raise ValueError(f'{name}: not a valid INI file: {str(e).splitlines()[0]}') from None
    stem = stem_of(name)
    return ConfigSection(stem, ((section, ConfigSection(f'{stem}.{section}', parser.items(section)))
                                for section in parser.sections()))


def stem_of(name: str) -> str:
    return os.path.splitext(os.path.basename(name))[0]


def is_user_conf(name: str) -> bool:
    return name.endswith(EXTENSIONS) and not name.startswith('.') and '/' not in name


class UserConfig:
    """One per worker: the local files, those deployed through pickup, and the merged view services read."""

    def __init__(self) -> None:
        self.local: dict[str, ConfigSection] = {}
        self.deployed: dict[str, ConfigSection] = {}
        self.view = ConfigSection('')

    def load_dir(self, path: str) -> None:
        """Reads every INI file of `path` (a broken one is logged and left out)."""
        if not os.path.isdir(path):
            return
        for entry in sorted(os.scandir(path), key=lambda e: e.name):
            if not is_user_conf(entry.name) or not entry.is_file():
                continue
            try:
                with open(entry.path, encoding='utf-8') as f:
                    self.local[stem_of(entry.name)] = parse(entry.name, f.read())
            except (OSError, UnicodeDecodeError, ValueError) as e:
                logger.error('User config %s not loaded: %s', entry.path, e)
        self._merge()

    def set_deployed(self, name: str, text: str) -> None:
        self.deployed[stem_of(name)] = parse(name, text)
        self._merge()

    def remove_deployed(self, name: str) -> None:
        self.deployed.pop(stem_of(name), None)
        self._merge()

    def _merge(self) -> None:
        # A new object each time: a service that holds the previous view reads it whole, never half-changed
        self.view = ConfigSection('', {**self.local, **self.deployed})
