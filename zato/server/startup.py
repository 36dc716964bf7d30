"""Startup services: invoked when a server starts, after its services are deployed, as in Zato 3.1.

server.conf lists them, in the order they run, one ``service.name = payload`` a line:

    [startup_services_first_worker]
    my-api.warm-up-cache = {"regions": ["eu", "us"]}
    my-api.log-started =

    [startup_services_any_worker]
    my-api.open-files =

``[startup_services_first_worker]`` runs once per server start, on one of its workers (the first to
take run/startup-<server>.lock); each of the server's other workers runs ``[startup_services_any_worker]``.
A worker that gunicorn starts again later (after one died) runs neither list again for the first
worker's part: the lock file remembers which master process (one per server start) it ran under.
A payload that parses as JSON is given as that data, else as the string (empty: None). A service
that fails, or is not deployed, is logged and the next one runs: a startup service never stops a
server.
"""

from __future__ import annotations

import configparser
import fcntl
import logging
import os
from typing import TYPE_CHECKING, Any

import orjson

from zato.config.channel import STARTUP_CHANNEL
from zato.config.settings import conf_path

if TYPE_CHECKING:
    from zato.server.runtime import Runtime

logger = logging.getLogger('zato.startup')

FIRST_WORKER = 'startup_services_first_worker'
ANY_WORKER = 'startup_services_any_worker'


def startup_services(path: str, section: str) -> list[tuple[str, Any]]:
    """The (service, payload) pairs of one section of server.conf, in file order; names keep their case."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    with open(path, encoding='utf-8') as f:
        parser.read_file(f)
    if not parser.has_section(section):
        return []
    return [(name, payload_of(value)) for name, value in parser.items(section)]


def payload_of(text: str) -> Any:
    text = text.strip()
    if not text:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def is_first_worker(run_dir: str, server_name: str, master_pid: int) -> bool:
    """True for exactly one worker of each server start: the first to record the master's pid (one file per
    server: the servers of a quickstart environment share its run directory)."""
    os.makedirs(run_dir, exist_ok=True)
    fd = os.open(os.path.join(run_dir, f'startup-{server_name}.lock'), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        recorded = os.read(fd, 32).decode('ascii', 'replace').strip()
        if recorded == str(master_pid):
            return False
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, str(master_pid).encode('ascii'))
        return True
    finally:
        os.close(fd)  # closing releases the lock


def run_startup_services(runtime: Runtime) -> list[tuple[str, bool]]:
    """Runs this worker's list; returns (service, succeeded) for each, in order."""
    first = is_first_worker(os.path.join(runtime.env_dir, 'run'), runtime.server_name, os.getppid())
    section = FIRST_WORKER if first else ANY_WORKER
    try:
        services = startup_services(conf_path(runtime.env_dir), section)
    except (OSError, configparser.Error) as e:
        logger.error('Startup services not run: server.conf could not be read: %s', e)
        return []
    done = []
    for name, payload in services:
        try:
            runtime.invoker.invoke(name, payload, channel=STARTUP_CHANNEL)
        except Exception as e:  # noqa: BLE001 - a failing startup service never stops the server
            logger.error('Startup service `%s` [%s] failed, the server goes on: %s: %s', name, section,
                         type(e).__name__, e, exc_info=not isinstance(e, KeyError))
            done.append((name, False))
            continue
        logger.info('Startup service `%s` [%s] invoked', name, section)
        done.append((name, True))
    return done
