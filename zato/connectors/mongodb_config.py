"""What an outgoing MongoDB connection is configured with: Zato 3.1's fields, checked when the
definition is saved, and turned into `pymongo.MongoClient` keyword arguments.

Times are in seconds, as in 3.1, and go to pymongo in milliseconds. Nothing here does I/O or
imports pymongo, so the admin API can check a definition in a worker that never connects to MongoDB.
"""

from __future__ import annotations

import os
import re
from typing import Any

from zato.connectors import checks
from zato.connectors.base import Field, FieldError
from zato.connectors.checks import ServerList, one_of, seconds

__all__ = ['MONGODB_FIELDS', 'ServerList', 'check_config', 'client_options', 'parse_server', 'server_list']

AUTH_MECHANISMS = ('', 'SCRAM-SHA-1', 'SCRAM-SHA-256')
READ_PREFERENCES = ('primary', 'primaryPreferred', 'secondary', 'secondaryPreferred', 'nearest')
COMPRESSORS = ('zlib', 'snappy', 'zstd')
TLS_VALIDATE = ('CERT_REQUIRED', 'CERT_NONE')
DEFAULT_PORT = 27017

_TAG_SET = re.compile(r'^[^:,\s]+:[^:,\s]+(,[^:,\s]+:[^:,\s]+)*$')  # dc:ny,rack:1
_W = re.compile(r'^(|[0-9]{1,3}|majority)$')


# ################################################################################################ the server list

def parse_server(entry: str) -> str:
    """`host`, `host:port` or `[ipv6%zone]:port` as pymongo's `host:port`; ValueError saying what is wrong."""
    return checks.parse_server(entry, DEFAULT_PORT, ipv6_zone=True)


def server_list(value: str | list[str]) -> list[str]:
    """The servers of a `server_list` value, blank lines and surrounding spaces ignored."""
    return checks.server_list(value, DEFAULT_PORT, ipv6_zone=True)


# ################################################################################################ checks

def _range(low: int, high: int) -> Any:
    def check(value: int) -> str | None:
        return None if low <= value <= high else f'expected {low} to {high}'
    return check


def _max_stale(value: int) -> str | None:
    # MongoDB's floor: twice the heartbeat plus ten seconds, never under 90
    return None if value == -1 or 90 <= value <= 86400 else 'expected -1 (no limit) or 90 to 86400 seconds'


def _tag_sets(value: list[str]) -> str | None:
    for tags in value:
        if tags and not _TAG_SET.match(tags):
            return f'`{tags}`: expected name:value pairs separated by commas (dc:ny,rack:1), or empty for any'
    return None


def _compressors(value: list[str]) -> str | None:
    unknown = [c for c in value if c not in COMPRESSORS]
    return f'`{unknown[0]}`: expected any of {", ".join(COMPRESSORS)}' if unknown else None


def _w(value: str) -> str | None:
    return None if _W.match(value) else "expected '' (the server's default), a number of members or 'majority'"


def _file(value: str) -> str | None:
    if value and not os.path.isfile(value):
        return f'no such file: {value}'
    return None


MONGODB_FIELDS: tuple[Field, ...] = (
    Field('server_list', ServerList, '127.0.0.1:27017', checks.check_server_list(DEFAULT_PORT, ipv6_zone=True),
          'host:port of each server (or a replica set\'s seeds): one per line, or a list'),
    Field('username', str, '', None, 'The user to authenticate as; empty for none'),
    Field('password', str, '', None, 'The user\'s password; encrypted, also accepted as `secret`', secret=True),
    Field('auth_source', str, 'admin', None, 'The database the user is defined in'),
    Field('auth_mechanism', str, '', one_of(AUTH_MECHANISMS),
          "'' (negotiated with the server), 'SCRAM-SHA-1' or 'SCRAM-SHA-256'"),
    Field('app_name', str, '', None, 'Shown by the server in its logs and currentOp'),
    Field('replica_set', str, '', None, 'The replica set\'s name; empty to connect to whatever server_list is'),
    Field('pool_size_max', int, 5, _range(1, 1000), 'Connections per server in each worker\'s pool'),
    Field('connect_timeout', float, 10.0, seconds(), 'Seconds to open a connection'),
    Field('socket_timeout', float, 30.0, seconds(), 'Seconds to wait for an answer to a command'),
    Field('server_select_timeout', float, 5.0, seconds(), 'Seconds an operation waits for a suitable server'),
    Field('wait_queue_timeout', float, 10.0, seconds(), 'Seconds an operation waits for a free pool connection'),
    Field('max_idle_time', float, 600.0, seconds(), 'Seconds an idle pooled connection is kept'),
    Field('hb_frequency', float, 10.0, seconds(0.499), 'Seconds between server monitor checks (0.5 at least)'),
    Field('is_tz_aware', bool, False, None, 'Return dates as timezone-aware datetimes (UTC)'),
    Field('compressor_list', list, [], _compressors, 'Wire compressors to offer: zlib, snappy, zstd'),
    Field('zlib_level', int, -1, _range(-1, 9), 'zlib level, -1 (its default) to 9'),
    Field('write_to_replica', str, '', _w, "Write concern w: '' (server default), a number of members or 'majority'"),
    Field('write_timeout', float, 5.0, seconds(), 'Seconds a write waits for its write concern (wtimeout)'),
    Field('is_write_journal_enabled', bool, False, None, 'Write concern j: wait until writes are in the journal'),
    Field('should_retry_write', bool, True, None, 'Let pymongo retry a write once, where the server makes that safe'),
    Field('read_pref_type', str, 'primary', one_of(READ_PREFERENCES), 'Read preference'),
    Field('read_pref_tag_list', list, [], _tag_sets, 'Read preference tag sets, tried in order: "dc:ny,rack:1"'),
    Field('read_pref_max_stale', int, -1, _max_stale, 'Seconds a secondary may lag to be read from; -1: no limit'),
    Field('is_tls_enabled', bool, False, None, 'Connect over TLS'),
    Field('tls_validate', str, 'CERT_REQUIRED', one_of(TLS_VALIDATE), 'Verify the server\'s certificate or not'),
    Field('is_tls_match_hostname_enabled', bool, True, None, 'Check that the certificate names the host'),
    Field('tls_ca_certs_file', str, '', _file, 'CA bundle (PEM) to verify servers with; empty: the system\'s'),
    Field('tls_cert_file', str, '', _file, 'Client certificate and its private key, in one PEM file'),
    Field('tls_crl_file', str, '', _file, 'Certificate revocation list (PEM)'),
)


def check_config(config: dict[str, Any]) -> None:
    """The rules that span fields; FieldError naming the field to change."""
    if config.get('auth_mechanism') and not config.get('username'):
        raise FieldError('auth_mechanism', 'requires a username')
    if config.get('read_pref_type', 'primary') == 'primary':
        if any(config.get('read_pref_tag_list') or []):
            raise FieldError('read_pref_tag_list', "tag sets cannot be used with read_pref_type 'primary'")
        if config.get('read_pref_max_stale', -1) != -1:
            raise FieldError('read_pref_max_stale', "cannot be used with read_pref_type 'primary'")
    if config.get('write_to_replica') == '0' and config.get('is_write_journal_enabled'):
        raise FieldError('is_write_journal_enabled', "cannot wait for the journal of unacknowledged writes (w '0')")
    if not config.get('is_tls_enabled'):
        for name in ('tls_ca_certs_file', 'tls_cert_file', 'tls_crl_file'):
            if config.get(name):
                raise FieldError(name, 'set is_tls_enabled too')


# ################################################################################################ to pymongo

def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def client_options(config: dict[str, Any], password: str) -> dict[str, Any]:
    """`pymongo.MongoClient` keyword arguments for a checked config. `connect=False`: the caller
    decides when the first round trip happens."""
    options: dict[str, Any] = {
        'host': server_list(config['server_list']),
        'connect': False,
        'authSource': config['auth_source'] or 'admin',
        'maxPoolSize': config['pool_size_max'],
        'minPoolSize': 0,
        'connectTimeoutMS': _ms(config['connect_timeout']),
        'socketTimeoutMS': _ms(config['socket_timeout']),
        'serverSelectionTimeoutMS': _ms(config['server_select_timeout']),
        'waitQueueTimeoutMS': _ms(config['wait_queue_timeout']),
        'maxIdleTimeMS': _ms(config['max_idle_time']),
        'heartbeatFrequencyMS': _ms(config['hb_frequency']),
        'tz_aware': config['is_tz_aware'],
        'retryWrites': config['should_retry_write'],
        'readPreference': config['read_pref_type'],
    }
    if config['username']:
        options['username'] = config['username']
        options['password'] = password
    if config['auth_mechanism']:
        options['authMechanism'] = config['auth_mechanism']
    if config['app_name']:
        options['appname'] = config['app_name']
    if config['replica_set']:
        options['replicaSet'] = config['replica_set']
    if config['compressor_list']:
        options['compressors'] = ','.join(config['compressor_list'])
        options['zlibCompressionLevel'] = config['zlib_level']
    w = config['write_to_replica']
    if w:
        options['w'] = int(w) if w.isdigit() else w
        if w != '0':
            options['wTimeoutMS'] = _ms(config['write_timeout'])
    if config['is_write_journal_enabled']:
        options['journal'] = True
    if config['read_pref_tag_list']:
        # pymongo's own form: one "name:value,name:value" string per tag set, '' matching any server
        options['readPreferenceTags'] = list(config['read_pref_tag_list'])
    if config['read_pref_max_stale'] != -1:
        options['maxStalenessSeconds'] = config['read_pref_max_stale']
    if config['is_tls_enabled']:
        options['tls'] = True
        if config['tls_validate'] == 'CERT_NONE':
            options['tlsAllowInvalidCertificates'] = True
        if not config['is_tls_match_hostname_enabled']:
            options['tlsAllowInvalidHostnames'] = True
        if config['tls_ca_certs_file']:
            options['tlsCAFile'] = config['tls_ca_certs_file']
        if config['tls_cert_file']:
            options['tlsCertificateKeyFile'] = config['tls_cert_file']
        if config['tls_crl_file']:
            options['tlsCRLFile'] = config['tls_crl_file']
    return options
