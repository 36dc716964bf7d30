"""`zato start`, `zato stop`, `zato info`, `zato check-config`: the servers of an environment."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Any

from sqlalchemy import select

from zato.errors import ConfigError, ZatoError
from zato.odb.engine import make_engine, make_url
from zato.odb.models import Cluster
from zato.security.secrets_file import Crypto, read_secrets
from zato.config import settings
from zato.server.runtime import odb_settings


def server_names(config: settings.ServerConfig) -> list[str]:
    return [f'server{i}' for i in range(1, config.get('main', 'servers') + 1)]


def pid_path(env_dir: str, name: str) -> str:
    return os.path.join(env_dir, 'run', f'{name}.pid')


def read_pid(env_dir: str, name: str) -> int | None:
    try:
        with open(pid_path(env_dir, name), encoding='ascii') as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return pid


def client_host(config: settings.ServerConfig) -> str:
    host = config.get('main', 'host')
    return '127.0.0.1' if host in ('0.0.0.0', '', '::') else host  # noqa: S104 - connect locally


def ping(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f'http://{host}:{port}/zato/ping', timeout=timeout) as resp:  # noqa: S310
            return resp.status == 200
    except OSError:
        return False


def check_config(env_dir: str) -> list[str]:
    """Raises ConfigError on the first problem; returns what was checked."""
    config = settings.load(env_dir)
    secrets = read_secrets(config.env_dir)
    for key in ('secret_key', 'admin_password'):
        if key not in secrets:
            raise ConfigError(f'secrets.conf has no `{key}`')
    crypto = Crypto(secrets['secret_key'])
    crypto.decrypt(secrets['admin_password'])
    checked_sso = []
    if config.get('component_enabled', 'sso'):
        from zato.sso.config import load as load_sso
        load_sso(config.env_dir)  # one line naming the key, before any server starts
        checked_sso = ['sso.conf']
    odb = odb_settings(config, secrets, crypto)
    engine = make_engine(make_url(odb, config.env_dir))
    try:
        with engine.connect() as conn:
            cluster = conn.execute(select(Cluster.id).where(Cluster.name == config.get('main', 'cluster_name'))).first()
    except Exception as e:  # noqa: BLE001 - any driver error is a config problem to report in one line
        raise ConfigError(f'cannot use the ODB ({odb["engine"]}): {str(e).splitlines()[0]}') from None
    finally:
        engine.dispose()
    if cluster is None:
        raise ConfigError(f'the ODB has no cluster named `{config.get("main", "cluster_name")}`')
    return ['server.conf', *checked_sso, 'secrets.conf', f'ODB ({odb["engine"]})', 'cluster']


def migrate(env_dir: str) -> None:
    """Brings the ODB to the newest schema before servers start: upgrades need no extra step."""
    from zato.odb.migrate import upgrade
    config = settings.load(env_dir)
    secrets = read_secrets(config.env_dir)
    engine = make_engine(make_url(odb_settings(config, secrets, Crypto(secrets['secret_key'])), config.env_dir))
    try:
        upgrade(engine)
    finally:
        engine.dispose()


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def start(env_dir: str, foreground: bool = False, wait: float = 60.0) -> list[dict[str, Any]]:
    config = settings.load(env_dir)
    env_dir = config.env_dir
    check_config(env_dir)
    migrate(env_dir)
    host = config.get('main', 'host')
    started = []
    procs = []
    for i, name in enumerate(server_names(config)):
        port = config.get('main', 'base_port') + i
        if read_pid(env_dir, name):
            raise ZatoError(f'{name} is already running (pid {read_pid(env_dir, name)}); `zato stop {env_dir}` first')
        if not _port_free(host, port):
            raise ZatoError(f'port {port} on {host} is in use by another program')
        log = open(os.path.join(env_dir, 'logs', f'{name}.stdout.log'), 'ab')  # noqa: SIM115 - child keeps it
        cmd = [sys.executable, '-m', 'zato.server.app', env_dir, name]
        proc = subprocess.Popen(cmd, stdout=None if foreground else log, stderr=subprocess.STDOUT if not foreground
                                else None, stdin=subprocess.DEVNULL, start_new_session=not foreground, cwd=env_dir)
        procs.append(proc)
        started.append({'server': name, 'url': f'http://{client_host(config)}:{port}', 'port': port, 'pid': proc.pid})

    deadline = time.monotonic() + wait
    for info, proc in zip(started, procs, strict=True):
        while not ping(client_host(config), info['port'], timeout=1.0):
            if proc.poll() is not None:
                raise ZatoError(f'{info["server"]} exited during start-up (code {proc.returncode}); '
                                f'see {os.path.join(env_dir, "logs", info["server"] + ".log")}')
            if time.monotonic() > deadline:
                raise ZatoError(f'{info["server"]} did not answer /zato/ping within {wait:.0f} s; '
                                f'see {os.path.join(env_dir, "logs", info["server"] + ".log")}')
            time.sleep(0.2)

    from zato.cli import web_admin
    try:
        admin = web_admin.start(env_dir, foreground)
    except ZatoError:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        raise
    if admin is not None:
        procs.append(admin.pop('proc'))
        started.append(admin)

    if foreground:
        def forward(signum: int, _frame: Any) -> None:
            # SIGTERM (a container stop) and Ctrl-C both become a graceful stop of every server
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)

        # Installed before saying we are up, so a stop right after that is graceful too
        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        for info in started:
            print(f'{info["server"]} listening on {info["url"]}', flush=True)
        for proc in procs:
            proc.wait()
    return started


def stop(env_dir: str, timeout: float | None = None) -> list[str]:
    config = settings.load(env_dir)
    env_dir = config.env_dir
    timeout = timeout if timeout is not None else config.get('main', 'graceful_timeout') + 5
    stopped = []
    pids = {name: read_pid(env_dir, name) for name in server_names(config)}
    for pid in pids.values():
        if pid:
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for name, pid in pids.items():
        if not pid:
            continue
        while read_pid(env_dir, name) == pid and time.monotonic() < deadline:
            time.sleep(0.1)
        if read_pid(env_dir, name) == pid:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        stopped.append(name)
    from zato.cli import web_admin
    if web_admin.stop(env_dir):
        stopped.append(web_admin.NAME)
    if not stopped:
        raise ZatoError(f'no server of {env_dir} is running')
    return stopped


def info(env_dir: str) -> dict[str, Any]:
    config = settings.load(env_dir)
    servers = []
    for i, name in enumerate(server_names(config)):
        port = config.get('main', 'base_port') + i
        pid = read_pid(config.env_dir, name)
        servers.append({'name': name, 'url': f'http://{client_host(config)}:{port}', 'pid': pid,
                        'running': bool(pid), 'answers_ping': bool(pid) and ping(client_host(config), port)})
    from zato.cli import web_admin
    if config.get('web_admin', 'enabled'):
        pid = web_admin.running_pid(config.env_dir)
        servers.append({'name': web_admin.NAME, 'url': web_admin.url(config), 'pid': pid, 'running': bool(pid),
                        'answers_ping': bool(pid) and web_admin.answers(web_admin.url(config))})
    return {'path': config.env_dir, 'cluster_name': config.get('main', 'cluster_name'),
            'odb': config.get('odb', 'engine'), 'bus': config.get('bus', 'backend'),
            'workers_per_server': config.get('main', 'workers'), 'servers': servers}
