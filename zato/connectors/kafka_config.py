"""What an outgoing Kafka connection is configured with: Zato 3.1's definition fields plus the
producer's, checked when the definition is saved, and turned into librdkafka configuration.

Times are in seconds, as in 3.1, and go to librdkafka in milliseconds. Nothing here does I/O or
imports confluent_kafka, so the admin API can check a definition in a worker that never uses Kafka.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

from zato.connectors import checks
from zato.connectors.base import Field, FieldError
from zato.connectors.checks import ServerList, one_of, seconds

__all__ = ['KAFKA_FIELDS', 'check_config', 'client_config', 'consumer_config', 'producer_config', 'server_list']

SASL_MECHANISMS = ('', 'PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512')
ACKS = ('all', '1', '0')
COMPRESSIONS = ('none', 'gzip', 'snappy', 'lz4', 'zstd')
DEFAULT_PORT = 9092
GROUP_REQUEST_TIMEOUT = 10000  # milliseconds: longer than a consumer group's session timeout



class _LibrdkafkaLog:
    """Where librdkafka's log lines go instead of stderr: logger zato.connectors.kafka.librdkafka,
    at WARNING at most. librdkafka logs a broker it cannot reach as an error at every reconnect;
    that is what a down broker looks like, not a fault of ours, and ping and send say so anyway."""

    def __init__(self) -> None:
        self.logger = logging.getLogger('zato.connectors.kafka.librdkafka')

    def log(self, level: int, msg: str, *args: Any, **kwargs: Any) -> None:
        self.logger.log(min(level, logging.WARNING), msg, *args, **kwargs)


librdkafka_logger = _LibrdkafkaLog()

_CLIENT_ID = re.compile(r'^[A-Za-z0-9._-]{1,255}$')


# ################################################################################################ the server list

def parse_server(entry: str) -> str:
    """`host`, `host:port` or `[ipv6]:port` as librdkafka's `host:port`; ValueError saying what is wrong."""
    return checks.parse_server(entry, DEFAULT_PORT)


def server_list(value: str | list[str]) -> list[str]:
    """The brokers of a `server_list` value: lines or commas, blanks and surrounding spaces ignored."""
    return checks.server_list(value, DEFAULT_PORT, commas=True)


# ################################################################################################ checks

def _linger(value: float) -> str | None:
    return None if 0 <= value <= 900 else 'expected 0 to 900 seconds'


def _client_id(value: str) -> str | None:
    return None if _CLIENT_ID.match(value) else 'expected 1 to 255 letters, digits, dots, underscores or hyphens'


def _file(value: str) -> str | None:
    if value and not os.path.isfile(value):
        return f'no such file: {value}'
    return None


def _no_zookeeper(value: bool) -> str | None:
    return 'ZooKeeper is not supported: set it to false and list Kafka brokers in server_list' if value else None


def _no_source_address(value: str) -> str | None:
    return 'librdkafka cannot bind to a source address; leave it empty' if value else None


def _broker_version(value: str) -> str | None:
    return None if re.match(r'^[0-9]+(\.[0-9]+){1,3}$', value) else 'expected a version such as 0.10.0 or 2.8.0'


KAFKA_FIELDS: tuple[Field, ...] = (
    Field('server_list', ServerList, '127.0.0.1:9092', checks.check_server_list(DEFAULT_PORT, commas=True),
          'host:port of each bootstrap broker: one per line (or separated by commas), or a list'),
    Field('client_id', str, 'zato', _client_id, 'Client id the brokers see in their logs and quotas'),
    Field('sasl_mechanism', str, '', one_of(SASL_MECHANISMS),
          "'' (no SASL), 'PLAIN', 'SCRAM-SHA-256' or 'SCRAM-SHA-512'"),
    Field('username', str, '', None, 'SASL user name; needs sasl_mechanism'),
    Field('password', str, '', None, 'SASL password; encrypted, also accepted as `secret`', secret=True),
    Field('is_tls_enabled', bool, False, None, 'Connect over TLS'),
    Field('tls_ca_file', str, '', _file, 'CA bundle (PEM) to verify brokers with; empty: the system\'s'),
    Field('tls_cert_file', str, '', _file, 'Client certificate (PEM), for brokers that require one'),
    Field('tls_key_file', str, '', _file, 'The client certificate\'s private key (PEM, unencrypted)'),
    Field('is_tls_hostname_verified', bool, True, None, 'Check that a broker\'s certificate names its host'),
    Field('acks', str, 'all', one_of(ACKS), "Producer acks: 'all' (every in-sync replica), '1' (the leader), '0'"),
    Field('compression', str, 'none', one_of(COMPRESSIONS), 'Producer compression: none, gzip, snappy, lz4, zstd'),
    Field('linger', float, 0.005, _linger, 'Seconds the producer waits to fill a batch (linger.ms)'),
    Field('message_timeout', float, 30.0, seconds(0.0, 86400.0),
          'Seconds a message may take to be delivered, retries included, before it fails'),
    Field('socket_timeout', float, 5.0, seconds(0.0, 300.0),
          'Seconds a network request to a broker may take; also the time ping and connecting wait for metadata'),
    Field('broker_version', str, '2.8.0', _broker_version,
          'Only used for a broker that cannot tell its API versions (older than 0.10)'),
    Field('should_exclude_internal_topics', bool, True, None, 'Leave topics starting with __ out of ping and topics()'),
    # 3.1's fields that librdkafka has no use for: accepted with their one valid value, so a 3.1 definition loads
    Field('should_use_zookeeper', bool, False, _no_zookeeper, 'Zato 3.1 compatibility: must be false'),
    Field('source_address', str, '', _no_source_address, 'Zato 3.1 compatibility: must be empty'),
    Field('offset_timeout', float, 10.0, seconds(), 'Zato 3.1 compatibility: kept, not used'),
)


def check_config(config: dict[str, Any]) -> None:
    """The rules that span fields; FieldError naming the field to change."""
    if config.get('sasl_mechanism') and not config.get('username'):
        raise FieldError('username', 'required with sasl_mechanism')
    if config.get('username') and not config.get('sasl_mechanism'):
        raise FieldError('sasl_mechanism', "required with a username: 'PLAIN', 'SCRAM-SHA-256' or 'SCRAM-SHA-512'")
    if not config.get('is_tls_enabled'):
        for name in ('tls_ca_file', 'tls_cert_file', 'tls_key_file'):
            if config.get(name):
                raise FieldError(name, 'set is_tls_enabled too')
    if bool(config.get('tls_cert_file')) != bool(config.get('tls_key_file')):
        raise FieldError('tls_key_file' if config.get('tls_cert_file') else 'tls_cert_file',
                         'tls_cert_file and tls_key_file go together')


# ################################################################################################ to librdkafka

def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def client_config(config: dict[str, Any], password: str) -> dict[str, Any]:
    """What every client of a connection shares: brokers, client id, security, timeouts, logging."""
    tls, sasl = config['is_tls_enabled'], config['sasl_mechanism']
    out: dict[str, Any] = {
        'bootstrap.servers': ','.join(server_list(config['server_list'])),
        'client.id': config['client_id'],
        'security.protocol': ('SASL_SSL' if tls else 'SASL_PLAINTEXT') if sasl else ('SSL' if tls else 'PLAINTEXT'),
        'socket.timeout.ms': max(10, _ms(config['socket_timeout'])),
        'logger': librdkafka_logger,
    }
    if config['broker_version'].startswith(('0.8.', '0.9.')):
        # Only a broker older than 0.10 cannot tell its versions; for others librdkafka warns it is deprecated
        out['api.version.request'] = False
        out['broker.version.fallback'] = config['broker_version']
    if sasl:
        out['sasl.mechanism'] = sasl
        out['sasl.username'] = config['username']
        out['sasl.password'] = password
    if tls:
        if config['tls_ca_file']:
            out['ssl.ca.location'] = config['tls_ca_file']
        if config['tls_cert_file']:
            out['ssl.certificate.location'] = config['tls_cert_file']
            out['ssl.key.location'] = config['tls_key_file']
        out['ssl.endpoint.identification.algorithm'] = 'https' if config['is_tls_hostname_verified'] else 'none'
    return out


def producer_config(config: dict[str, Any], password: str) -> dict[str, Any]:
    """`confluent_kafka.Producer` configuration for a checked config."""
    return {
        **client_config(config, password),
        'acks': config['acks'],
        'compression.type': config['compression'],
        'linger.ms': config['linger'] * 1000,
        'message.timeout.ms': _ms(config['message_timeout']),
    }


def consumer_config(config: dict[str, Any], password: str, group: str) -> dict[str, Any]:
    """`confluent_kafka.Consumer` configuration for a checked config and a consumer group.

    A short session timeout and heartbeat: a consumer that subscribes joins its group within
    seconds, instead of the tens of seconds librdkafka's defaults take on some brokers. Requests
    get at least GROUP_REQUEST_TIMEOUT: a broker holds a member's SyncGroup until every member has
    joined, and one answered later than socket.timeout.ms is sent again, so a group of two or more
    consumers on a connection with a short socket_timeout would never form.
    """
    out = {
        **client_config(config, password),
        'group.id': group,
        'auto.offset.reset': 'earliest',
        'session.timeout.ms': 6000,
        'heartbeat.interval.ms': 500,
    }
    out['socket.timeout.ms'] = max(out['socket.timeout.ms'], GROUP_REQUEST_TIMEOUT)
    return out
