"""Logging of a server: logs/<server>.log in the environment."""

from __future__ import annotations

import logging
import os

FORMAT = '%(asctime)s - %(levelname)s - %(process)d:%(threadName)s - %(name)s - %(message)s'


def setup_logging(env_dir: str, server_name: str, level: int = logging.INFO) -> None:
    path = os.path.join(env_dir, 'logs', f'{server_name}.log')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, '_zato', False):
            root.removeHandler(h)
    handler = logging.FileHandler(path, encoding='utf-8')
    handler.setFormatter(logging.Formatter(FORMAT))
    handler._zato = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
