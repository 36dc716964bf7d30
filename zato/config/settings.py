"""Every server setting, declared once: section, key, environment variable, default, validator,
and a one-line doc. server.conf is read through these; docs/settings.md is generated from them
(``python -m zato.config.settings``)."""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable, Mapping

from zato.errors import ConfigError


def parse_bool(value: str) -> bool:
    low = value.strip().lower()
    if low in ('1', 'true', 'yes', 'on'):
        return True
    if low in ('0', 'false', 'no', 'off'):
        return False
    raise ValueError('expected true or false')


def _pos_int(value: str) -> int:
    number = int(value.strip())
    if number < 1:
        raise ValueError('expected a whole number of at least 1')
    return number


def _non_neg_int(value: str) -> int:
    number = int(value.strip())
    if number < 0:
        raise ValueError('expected a whole number, 0 or more')
    return number


def _port(value: str) -> int:
    number = int(value.strip())
    if not 1 <= number <= 65535:
        raise ValueError('expected a port number from 1 to 65535')
    return number


def _pos_float(value: str) -> float:
    number = float(value.strip())
    if not number > 0:
        raise ValueError('expected a positive number')
    return number


def _choice(*allowed: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        value = value.strip()
        if value not in allowed:
            raise ValueError(f'expected one of: {", ".join(allowed)}')
        return value
    return check


def _networks(value: str) -> tuple:
    from zato.config.networks import parse_networks
    return parse_networks(value)


def parse_str(value: str) -> str:
    return value.strip()


@dataclass(frozen=True)
class Setting:
    section: str
    key: str
    default: str
    parse: Callable[[str], Any]
    doc: str

    @property
    def env(self) -> str:
        return f'ZATO_{self.section.upper()}_{self.key.upper()}'


SETTINGS: tuple[Setting, ...] = (
    Setting('main', 'cluster_name', 'quickstart', parse_str, 'Name of the cluster this environment belongs to.'),
    Setting('main', 'host', '127.0.0.1', parse_str, 'Address the servers listen on; 0.0.0.0 behind a load balancer.'),
    Setting('main', 'base_port', '17010', _port, 'Port of the first server; server N listens on base_port + N - 1.'),
    Setting('main', 'servers', '1', _pos_int, 'How many servers `zato start` runs from this environment.'),
    Setting('main', 'workers', '2', _pos_int, 'gevent worker processes per server.'),
    Setting('main', 'worker_connections', '1000', _pos_int, 'HTTP connections one worker keeps open at once; a new one above it closes the connection idle the longest (503 when none is idle).'),
    Setting('main', 'graceful_timeout', '30', _pos_int, 'Seconds in-flight requests get to finish after SIGTERM.'),
    Setting('odb', 'engine', 'sqlite', _choice('sqlite', 'postgresql'), 'ODB type.'),
    Setting('odb', 'db_path', 'data/odb.sqlite3', parse_str, 'SQLite file, relative to the environment.'),
    Setting('odb', 'host', '127.0.0.1', parse_str, 'PostgreSQL host.'),
    Setting('odb', 'port', '5432', _port, 'PostgreSQL port.'),
    Setting('odb', 'db_name', 'zato', parse_str, 'PostgreSQL database.'),
    Setting('odb', 'username', '', parse_str, 'PostgreSQL user.'),
    Setting('odb', 'pool_size', '5', _pos_int, 'ODB connections per worker.'),
    Setting('odb', 'pool_timeout', '10', _pos_float, 'Seconds a request waits for a free ODB connection when all are in '
            'use (then 503 odb_unavailable).'),
    Setting('bus', 'backend', 'local', _choice('local', 'postgresql'), 'Cluster bus: local (one host) or postgresql (LISTEN/NOTIFY).'),
    Setting('http', 'max_body', '10485760', _pos_int, 'Largest request body in bytes (413 above).'),
    Setting('http', 'max_request_line', '8192', _pos_int, 'Longest request line in bytes (414 above).'),
    Setting('http', 'max_header_bytes', '16384', _pos_int, 'Largest header block in bytes (431 above).'),
    Setting('http', 'max_header_count', '100', _pos_int, 'Most header fields in a request (431 above).'),
    Setting('http', 'header_timeout', '10', _pos_float, 'Seconds a client has to send a complete request head, counted from accept for the first request (then closed; 408 if part of a head came).'),
    Setting('http', 'keepalive_timeout', '75', _pos_float, 'Seconds an idle keep-alive connection is kept open.'),
    Setting('http', 'trusted_proxies', '', _networks, 'Load balancers whose X-Forwarded-For is believed (IPs or networks, comma-separated).'),
    Setting('http', 'max_connections_per_address', '0', _non_neg_int, 'HTTP connections one client address may keep open at one worker (503 above); 0 = no limit. Leave 0 behind a load balancer, whose address every connection has.'),
    Setting('http', 'max_requests_per_connection', '10000', _pos_int, 'Requests served on one connection before it is closed.'),
    Setting('wsx', 'max_connections', '10000', _pos_int, 'WebSocket clients one worker serves at once (503 at the handshake above); they do not count against worker_connections.'),
    Setting('web_admin', 'enabled', 'true', parse_bool, 'Whether `zato start` runs the web-admin next to the servers.'),
    Setting('web_admin', 'host', '127.0.0.1', parse_str, 'Address the web-admin listens on.'),
    Setting('web_admin', 'port', '8183', _port, 'Port of the web-admin.'),
    Setting('web_admin', 'require_totp', 'false', parse_bool, 'Every web-admin user must sign in with a TOTP code (users without a key cannot sign in until `zato reset-totp-key`).'),
    Setting('web_admin', 'session_idle_minutes', '30', _pos_int, 'A web-admin session unused this long ends.'),
    Setting('web_admin', 'session_max_hours', '12', _pos_int, 'A web-admin session ends this long after sign-in, used or not.'),
    Setting('web_admin', 'lockout_attempts', '5', _pos_int, 'Failed sign-ins in a row that lock a web-admin account.'),
    Setting('web_admin', 'lockout_minutes', '15', _pos_int, 'How long a locked web-admin account stays locked.'),
    Setting('web_admin', 'secure_cookies', 'auto', _choice('auto', 'true', 'false'), 'Mark the session cookie Secure: auto = when the request came over TLS (https, or X-Forwarded-Proto: https from the load balancer).'),
    Setting('hot_deploy', 'pickup_dir', 'pickup/incoming/services', parse_str, 'Directory watched for service modules.'),
    Setting('hot_deploy', 'poll_interval', '0.25', _pos_float, 'Seconds between scans of the pickup directory.'),
    Setting('hot_deploy', 'user_conf_dir', 'pickup/incoming/user-conf', parse_str, 'Directory watched for user config INI files (.ini, .conf): each one dropped or changed reaches self.user_config on every worker of the cluster (docs/user-config.md).'),
    Setting('async', 'claim_ttl', '30', _pos_float, 'Seconds a worker owns an invoke_async it runs, renewed while it runs: after a worker died, another runs it again once this passed (docs/invoking.md).'),
    Setting('async', 'sweep_interval', '2', _pos_float, 'Seconds between two looks of each worker for invoke_async messages no worker owns (a lost wake-up, a worker that died).'),
    Setting('misc', 'return_json_schema_errors', 'false', parse_bool, 'Default for services: say what failed JSON Schema validation.'),
    Setting('misc', 'config_check_interval', '5', _pos_float, 'Seconds between checks that no bus message was missed.'),
    Setting('component_enabled', 'sso', 'false', parse_bool, 'Single Sign-On: serve the /zato/sso/... channels, with config/repo/sso.conf (docs/sso.md).'),
    Setting('scheduler', 'lease_ttl', '5', _pos_float, 'Seconds the scheduler lease outlives a holder that died: another worker fires jobs within about this long (docs/scheduler.md).'),
    Setting('scheduler', 'misfire_grace', '30', _pos_float, 'Seconds after its due time a job still fires as usual, late; due times missed by more follow the job\'s misfire policy.'),
    Setting('stats', 'flush_interval', '10', _pos_float, 'Seconds between two writes of the service statistics and heartbeat of each worker to the ODB; a worker is down after three intervals without a heartbeat.'),
    Setting('stats', 'retention', '24', _pos_int, 'Hours service statistics, and heartbeats of workers gone, are kept in the ODB (the flushers delete older rows).'),
    Setting('pubsub', 'max_data_size', '1048576', _pos_int, 'Largest `data` of one pub/sub message, in bytes of UTF-8 (or of JSON); a larger one is refused with 413 (docs/pubsub.md).'),
    Setting('pubsub', 'cleanup_interval', '300', _pos_float, 'Seconds between two deletions of expired pub/sub messages: the interval the scheduler job `zato.pubsub.cleanup` is made with, when a server finds none (3.1: every 5 minutes); afterwards the job\'s own interval counts.'),
    Setting('pubsub', 'delivery_lease_ttl', '5', _pos_float, 'Seconds of the lease `zato.pubsub.sub.<sub_id>` a worker holds to run the push delivery task of one subscription; a worker that dies loses its tasks to others after this long (docs/pubsub.md, Push delivery).'),
    Setting('pubsub', 'task_sync_interval', '2', _pos_float, 'Seconds between two looks of a worker for push subscriptions without a delivery task, and the longest a task waits for a publication\'s wake-up before it pulls anyway.'),
    Setting('pubsub', 'meta_flush_interval', '5', _pos_float, 'Seconds between two writes, by each worker, of when each pub/sub endpoint last published and last had a message delivered (the endpoint\'s last_pub_time and last_delivery_time); publishing and delivering only note the time in memory (docs/pubsub.md).'),
    Setting('pubsub', 'delivery_timeout', '30', _pos_float, 'Seconds a push delivery may take; messages being delivered stay invisible to other pulls for twice this long plus delivery_lease_ttl.'),
)


class ServerConfig:
    """Parsed, validated server.conf of one environment: ``config.get('http', 'max_body')``."""

    def __init__(self, env_dir: str, values: dict[tuple[str, str], Any], raw: configparser.ConfigParser) -> None:
        self.env_dir = env_dir
        self._values = values
        self.raw = raw

    def get(self, section: str, key: str) -> Any:
        return self._values[(section, key)]

    def section(self, name: str) -> dict[str, Any]:
        return {key: value for (sec, key), value in self._values.items() if sec == name}

    def path(self, section: str, key: str) -> str:
        value = self.get(section, key)
        return value if os.path.isabs(value) else os.path.join(self.env_dir, value)


def conf_path(env_dir: str) -> str:
    return os.path.join(env_dir, 'config', 'repo', 'server.conf')


def load(env_dir: str, environ: Mapping[str, str] | None = None) -> ServerConfig:
    """Reads and validates server.conf; environment variables (ZATO_SECTION_KEY) override it.

    Raises ConfigError with a one-line message naming the file, section, key and reason.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    path = conf_path(env_dir)
    if not os.path.isfile(path):
        raise ConfigError(f'{env_dir} is not a Zato environment: {path} not found')
    raw = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding='utf-8') as f:
            raw.read_file(f)
    except (configparser.Error, UnicodeDecodeError) as e:
        raise ConfigError(f'{path}: cannot parse: {str(e).splitlines()[0]}') from None
    values: dict[tuple[str, str], Any] = {}
    for s in SETTINGS:
        text = env.get(s.env)
        source = f'environment variable {s.env}'
        if text is None:
            text = raw.get(s.section, s.key, fallback=s.default)
            source = f'{path} [{s.section}] {s.key}'
        try:
            values[(s.section, s.key)] = s.parse(text)
        except ValueError as e:
            raise ConfigError(f'{source}: invalid value `{text}`: {e}') from None
    return ServerConfig(os.path.abspath(env_dir), values, raw)


def render_docs() -> str:
    lines = ['# Server settings', '', 'Generated from `zato/config/settings.py`. Each can be set in',
             '`config/repo/server.conf` or overridden by its environment variable.', '',
             '| section | key | environment variable | default | what it does |', '|---|---|---|---|---|']
    for s in SETTINGS:
        lines.append(f'| {s.section} | {s.key} | `{s.env}` | `{s.default}` | {s.doc} |')
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    print(render_docs(), end='')
