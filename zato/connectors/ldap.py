"""Outgoing LDAP connections (OpenLDAP, Active Directory ...): ``self.out.ldap['name'].conn``, over ldap3.

As in Zato 3.1::

    with self.out.ldap['My LDAP'].conn.client() as client:
        with client.get() as c:            # an ldap3 Connection, bound with the configured credentials
            c.search('ou=people,dc=example,dc=com', '(uid=alice)', attributes=['mail'])
        client.check_credentials(user_dn, password)   # True or False
        for entry in client.search_paged(base, '(objectClass=user)', attributes=['cn']):  # past AD's 1000
            ...

Each worker keeps a pool of up to `pool_size` bound ldap3 connections (SYNC strategy, which is plain
sockets, so cooperative under gevent) to an ldap3 server pool built from `server_list`. A connection
goes back to the pool only if it is still bound as the configured user and nothing broke it; one the
server closed while it sat idle (a restart, an idle timeout) is noticed when it is taken, without a
round trip, and replaced. ldap3's own errors come out as the ConnectorError hierarchy: connection
failures as ConnectorUnavailable, timeouts as ConnectorTimeout, a refused bind as ConnectorAuthError.
What the directory answers (no such object, insufficient access ...) is raised by ldap3 as it is.

Referrals are never chased (ldap3 would bind to whatever host a referral names, with our
credentials): a search answered with one returns False, with the URLs in `result['referrals']`.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import gevent.lock

from zato.connectors.base import (
    Connector, ConnectorAuthError, ConnectorError, ConnectorTimeout, ConnectorUnavailable, Field, FieldError)
from zato.connectors.checks import one_of
from zato.connectors.session_pool import still_open

if TYPE_CHECKING:
    from ldap3 import Connection

logger = logging.getLogger('zato.connectors.ldap')

AUTH_TYPES = ('SIMPLE', 'NTLM')
GET_INFO = ('NONE', 'DSA', 'SCHEMA', 'ALL')
IP_MODES = ('IP_SYSTEM_DEFAULT', 'IP_V4_ONLY', 'IP_V6_ONLY', 'IP_V4_PREFERRED', 'IP_V6_PREFERRED')
AUTO_BIND = ('DEFAULT', 'NO_TLS', 'TLS_BEFORE_BIND', 'TLS_AFTER_BIND')
HA_STRATEGIES = ('ROUND_ROBIN', 'FIRST', 'RANDOM')

# The control of paged searches (RFC 2696), under which AD answers with more than MaxPageSize entries
PAGED_RESULTS = '1.2.840.113556.1.4.319'

# After the directory refused our bind, how long before the background greenlet binds again: a bind
# every few seconds with a wrong password would lock the account out where a lockout policy is on (AD).
# An edit or a change of password rebuilds the connection and binds at once.
AUTH_RETRY_AFTER = 300.0


# ################################################################################################ checks

class _ServerListMeta(type):
    def __instancecheck__(cls, value: object) -> bool:
        return isinstance(value, str | list)


class ServerList(metaclass=_ServerListMeta):
    """The type of `server_list`: a list of strings, or one string with a server a line (3.1's form).
    coerce() checks isinstance(value, Field.type), which both shapes pass; check_server_list() does the rest."""


# What coerce() says a value of another type is not
ServerList.__name__ = 'a list of strings or a string with a server a line'


def server_entries(value: str | list[str]) -> list[str]:
    """The non-empty entries of a server list, either shape."""
    lines = value.splitlines() if isinstance(value, str) else value
    return [line.strip() for line in lines if line.strip()]


def server_url(entry: str) -> tuple[str, str, int | None]:
    """(scheme, host, port or None) of `host`, `host:port`, `ldap://host[:port]` or `ldaps://host[:port]`,
    the scheme empty for the first two; ValueError saying what is wrong otherwise."""
    text = entry if '://' in entry else f'ldap://{entry}'
    parts = urlsplit(text)
    port = parts.port  # raises ValueError for a port out of range or not a number
    if parts.scheme not in ('ldap', 'ldaps'):
        raise ValueError(f'`{entry}`: expected host[:port], ldap://host[:port] or ldaps://host[:port]')
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise ValueError(f'`{entry}`: expected a host, with no credentials (they go into username and password)')
    if parts.path not in ('', '/') or parts.query or parts.fragment:
        raise ValueError(f'`{entry}`: expected no path, query or fragment')
    if port == 0:
        raise ValueError(f'`{entry}`: expected a port from 1 to 65535')
    return parts.scheme if '://' in entry else '', parts.hostname, port


def check_server_list(value: str | list[str]) -> str | None:
    if isinstance(value, list) and not all(isinstance(item, str) for item in value):
        return 'expected a list of strings'
    entries = server_entries(value)
    if not entries:
        return 'expected at least one server'
    for entry in entries:
        try:
            server_url(entry)
        except ValueError as e:
            return str(e)
    return None


_HOST_NAME = re.compile(r'^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$')


def check_valid_names(value: list[str]) -> str | None:
    for name in value:
        # ldap3 takes '*' as any name, which would turn the check of names off behind tls_validate's back
        if not _HOST_NAME.match(name):
            return f'`{name}`: expected a host name or an IP address (no wildcards)'
    return None


def check_ca_file(value: str) -> str | None:
    if value and not os.path.isfile(value):
        return f'no such file: {value}'
    return None


def _positive(value: float) -> str | None:
    return None if 0 < value <= 3600 else 'expected a number above 0, up to 3600'


def _not_negative(value: float) -> str | None:
    return None if 0 <= value <= 86400 else 'expected 0 to 86400'


def _pool_size(value: int) -> str | None:
    return None if 0 < value <= 1000 else 'expected 1 to 1000'


def _cycles(value: int) -> str | None:
    return None if 0 < value <= 100 else 'expected 1 to 100'


LDAP_FIELDS: tuple[Field, ...] = (
    Field('server_list', ServerList, None, check_server_list,
          'Servers as host[:port], ldap://host[:port] or ldaps://host[:port]: a list, or one a line'),
    Field('username', str, '', None, 'The DN to bind as (AD also takes user@domain or DOMAIN\\user; DOMAIN\\user '
                                     'for NTLM); empty for an anonymous bind'),
    Field('password', str, '', None, 'The password of username; encrypted', secret=True),
    Field('auth_type', str, 'SIMPLE', one_of(AUTH_TYPES), "'SIMPLE' or 'NTLM'"),
    Field('get_info', str, 'SCHEMA', one_of(GET_INFO), 'What ldap3 reads from the server on binding: NONE, DSA, '
                                                        'SCHEMA or ALL'),
    Field('ip_mode', str, 'IP_SYSTEM_DEFAULT', one_of(IP_MODES), 'IPv4 or IPv6 for host names that have both'),
    Field('connect_timeout', float, 10.0, _positive, 'Seconds to open a connection to a server'),
    # Whole seconds: ldap3 also sets SO_RCVTIMEO, which takes an integer
    Field('receive_timeout', int, 30, _positive, 'Seconds to wait for an answer to an operation'),
    Field('auto_bind', str, 'DEFAULT', one_of(AUTO_BIND),
          'DEFAULT or NO_TLS (bind), TLS_BEFORE_BIND (StartTLS, then bind) or TLS_AFTER_BIND'),
    Field('use_tls', bool, False, None, 'TLS from the first byte (LDAPS) for servers given without a scheme'),
    Field('tls_validate', bool, True, None, "Verify the server's certificate (LDAPS and StartTLS)"),
    Field('tls_ca_file', str, '', check_ca_file, 'CA bundle (PEM) to verify servers with instead of the system CAs'),
    Field('tls_valid_names', list, [], check_valid_names,
          "Names the server's certificate may carry besides the host in server_list (a DC reached by IP address)"),
    Field('pool_size', int, 10, _pool_size, 'Connections per worker; a get() waits connect_timeout for a free one'),
    Field('pool_lifetime', float, 3600.0, _not_negative, 'Seconds a pooled connection is reused for; 0 for ever'),
    Field('pool_ha_strategy', str, 'ROUND_ROBIN', one_of(HA_STRATEGIES),
          'Which server a new connection goes to: ROUND_ROBIN, FIRST or RANDOM'),
    Field('pool_max_cycles', int, 1, _cycles, 'Times the server list is tried before giving up'),
    Field('pool_exhaust_timeout', float, 5.0, _not_negative,
          'Seconds a server that did not answer is skipped for (with more than one server); 0 never skips'),
    Field('is_read_only', bool, False, None, 'Refuse operations that change the directory'),
    Field('should_check_names', bool, True, None, 'Check attribute and class names against the schema'),
    Field('use_auto_range', bool, True, None, 'Fetch all values of a ranged attribute (AD)'),
    Field('should_return_empty_attrs', bool, True, None, 'Return requested attributes an entry lacks as empty'),
)


# ################################################################################################ errors

class NTLMUnsupported(ConnectorAuthError):
    """The server closed the connection on an NTLM bind: it does not implement the one ldap3 makes.

    ldap3 binds with Microsoft's "Sicily" NTLM bind, which Active Directory implements and Samba's AD DC
    does not (Samba offers NTLM inside SASL GSS-SPNEGO, which ldap3 does not speak). It says nothing
    about the password, so check_credentials raises it rather than answer False, and the connection is
    retried as after any failure, not held back as after a refused password."""


NTLM_UNSUPPORTED = ("the server closed the connection on ldap3's NTLM (Sicily) bind, which it does not implement "
                    "(Samba's AD DC does not); use auth_type SIMPLE, over LDAPS, instead")


def classify(e: BaseException) -> tuple[type[ConnectorError], str] | None:
    """The ConnectorError class and a one-line reason for an ldap3 connection, auth or timeout error;
    None for what the directory answered (no such object ...) and anything else."""
    from ldap3.core import exceptions as x

    if isinstance(e, NTLMUnsupported):
        return NTLMUnsupported, str(e)
    text = _certificate_names(' '.join(str(e).split())) or type(e).__name__
    if isinstance(e, x.LDAPInvalidCredentialsResult | x.LDAPBindError):
        return ConnectorAuthError, text
    if isinstance(e, x.LDAPOperationResult) and e.result in (7, 8, 48):  # authMethodNotSupported, strongerAuth ...
        return ConnectorAuthError, text
    if isinstance(e, x.LDAPSocketOpenError):
        return ConnectorUnavailable, text  # nothing was sent, even if it timed out
    if isinstance(e, x.LDAPResponseTimeoutError | TimeoutError):
        return ConnectorTimeout, text
    if isinstance(e, x.LDAPServerPoolExhaustedError):
        return ConnectorUnavailable, 'no server in server_list answered'
    if isinstance(e, x.LDAPCommunicationError | x.LDAPStartTLSError | x.LDAPSocketCloseError | OSError):
        return ConnectorUnavailable, text
    return None


def _certificate_names(text: str) -> str:
    """ldap3's "certificate {the whole certificate} doesn't match any name in [...]" as the names it has."""
    found = re.search(r"certificate (\{.*\}) doesn't match any name in (\[[^\]]*\])", text)
    if found is None:
        return text
    subject = found[1].split("'issuer'", 1)[0]
    names = re.findall(r"\('(?:DNS|IP Address)', '([^']+)'\)", found[1]) or \
        re.findall(r"\('commonName', '([^']+)'\)", subject)
    return text.replace(found[0], f"the server's certificate names {', '.join(names) or 'no host'}, "
                                  f"none of {found[2]}: use one of its names in server_list or tls_valid_names")


def _broken(e: BaseException | None) -> bool:
    """Whether a connection that raised `e` inside a `with client.get()` block must not be reused."""
    if e is None:
        return False
    from ldap3.core.exceptions import LDAPException, LDAPOperationResult

    if isinstance(e, LDAPOperationResult):
        return False  # the server answered; the connection is fine
    # An ldap3 error (the socket ...) or a BaseException (gevent.Timeout) half way through a message
    return isinstance(e, LDAPException) or not isinstance(e, Exception)


# ################################################################################################ the pool

class LDAPPool:
    """Up to `pool_size` bound connections of one worker to the configured servers; what the connector builds.

    Idle connections are reused newest first; one closed by the server, too old, or no longer bound as
    the configured user is closed instead of reused.
    """

    def __init__(self, config: dict[str, Any], password: str) -> None:
        import ldap3

        self.config = config
        self.size = int(config['pool_size'])
        self.lifetime = float(config['pool_lifetime'])
        self.wait = float(config['connect_timeout'])
        self.servers = self._servers(ldap3)
        self.username = str(config['username']) or None
        self._password = password
        self._idle: list[tuple[Connection, float]] = []
        self._slots = gevent.lock.BoundedSemaphore(self.size)
        self._born: dict[int, float] = {}
        self.closed = False

    def _servers(self, ldap3: Any) -> Any:
        config = self.config
        tls = None
        entries = [server_url(entry) for entry in server_entries(config['server_list'])]
        if config['use_tls'] or config['auto_bind'] in ('TLS_BEFORE_BIND', 'TLS_AFTER_BIND') or \
                any(scheme == 'ldaps' for scheme, _, _ in entries):
            import ssl
            tls = ldap3.Tls(validate=ssl.CERT_REQUIRED if config['tls_validate'] else ssl.CERT_NONE,
                            ca_certs_file=config['tls_ca_file'] or None,
                            valid_names=list(config.get('tls_valid_names') or ()) or None)
        servers = []
        for scheme, host, port in entries:
            use_ssl = scheme == 'ldaps' or (config['use_tls'] and not scheme)
            servers.append(ldap3.Server(host, port=port, use_ssl=use_ssl, tls=tls, get_info=config['get_info'],
                                        mode=config['ip_mode'], connect_timeout=config['connect_timeout']))
        if len(servers) == 1:
            return servers[0]  # a pool of one would hide why its server failed
        exhaust = config['pool_exhaust_timeout']
        return ldap3.ServerPool(servers, pool_strategy=config['pool_ha_strategy'], active=config['pool_max_cycles'],
                                exhaust=int(exhaust) if exhaust else False)

    def describe_servers(self) -> str:
        return ', '.join(server_entries(self.config['server_list']))

    def open(self, user: str | None, password: str, authentication: str | None = None) -> Connection:
        """A new connection, bound as `user` (anonymously if None); raises ldap3's error if it cannot be,
        or NTLMUnsupported."""
        import ldap3
        from ldap3.core.exceptions import LDAPSessionTerminatedByServerError

        config = self.config
        if authentication is None:
            authentication = ldap3.ANONYMOUS if user is None else config['auth_type']
        auto_bind = {'DEFAULT': ldap3.AUTO_BIND_NO_TLS}.get(config['auto_bind'], config['auto_bind'])
        try:
            # auto_referrals off: ldap3 would bind, with these credentials, to any host a referral names
            return ldap3.Connection(
                self.servers, user=user, password=password or None, authentication=authentication,
                auto_bind=auto_bind, client_strategy=ldap3.SYNC, raise_exceptions=True, auto_referrals=False,
                receive_timeout=config['receive_timeout'], read_only=config['is_read_only'],
                check_names=config['should_check_names'], auto_range=config['use_auto_range'],
                return_empty_attributes=config['should_return_empty_attrs'])
        except LDAPSessionTerminatedByServerError as e:
            if authentication != ldap3.NTLM:
                raise
            raise NTLMUnsupported(NTLM_UNSUPPORTED) from e

    def acquire(self) -> Connection:
        """A bound connection for the caller alone; give it back with release()."""
        if self.closed:
            raise ConnectorUnavailable('stopped')
        if not self._slots.acquire(timeout=self.wait):
            raise ConnectorUnavailable(f'all {self.size} connections of the pool are in use (waited {self.wait}s)')
        try:
            while self._idle:
                conn, born = self._idle.pop()
                if self._fresh(conn, born):
                    return conn
                self._close(conn)
            conn = self.open(self.username, self._password)
            self._born[id(conn)] = time.monotonic()
            return conn
        except BaseException:
            self._slots.release()
            raise

    def release(self, conn: Connection, reuse: bool) -> None:
        try:
            if reuse and not self.closed and not conn.closed and conn.bound and conn.user == self.username:
                self._idle.append((conn, self._born.get(id(conn), time.monotonic())))
            else:
                self._close(conn)
        finally:
            self._slots.release()

    def prime(self) -> None:
        """Opens and binds one connection and keeps it: proves the servers answer and take our credentials."""
        self.release(self.acquire(), reuse=True)

    def ping(self) -> None:
        """Binds on a new connection, then unbinds: the servers answer and take our credentials now."""
        self._close(self.open(self.username, self._password))

    def close(self) -> None:
        self.closed = True
        idle, self._idle = self._idle, []
        for conn, _ in idle:
            self._close(conn)

    def _fresh(self, conn: Connection, born: float) -> bool:
        if conn.closed or not conn.bound:
            return False
        if self.lifetime and time.monotonic() - born > self.lifetime:
            return False
        return still_open(conn.socket)

    def _close(self, conn: Connection) -> None:
        self._born.pop(id(conn), None)
        try:
            conn.unbind()
        except Exception:  # noqa: BLE001, S110 - a broken connection is closed as well as it can be
            pass


# ################################################################################################ the API

class LDAPClient:
    """What ``with conn.client() as client`` gives: `get()` for a bound connection and `check_credentials()`."""

    def __init__(self, connector: LDAPConnector, pool: LDAPPool) -> None:
        self._connector = connector
        self._pool = pool

    @contextmanager
    def get(self) -> Iterator[Connection]:
        """An ldap3 Connection bound with the configured credentials, for this block alone.

        ldap3 raises what the directory answers (LDAPNoSuchObjectResult ...) as it is; a connection,
        auth or timeout error comes out as a ConnectorError and the connection is not reused."""
        connector, pool = self._connector, self._pool
        try:
            conn = pool.acquire()
        except Exception as e:  # noqa: BLE001 - mapped
            raise connector.map_error(e) from e
        error: BaseException | None = None
        try:
            yield conn
        except BaseException as e:
            error = e
            if classify(e) is not None and not isinstance(e, ConnectorError):
                raise connector.map_error(e) from e
            raise
        finally:
            pool.release(conn, reuse=not _broken(error))

    def check_credentials(self, dn: str, password: str, raise_on_error: bool = True) -> bool:
        """True if `dn` (DOMAIN\\user for NTLM) can bind with `password`, on a new connection; if not,
        ConnectorAuthError as in Zato 3.1, or False with `raise_on_error=False`.

        An empty DN or password is refused without asking the server (an empty password is an
        unauthenticated bind, which servers accept). Whatever the reason a bind is refused, the answer
        is the same, so callers cannot tell an unknown user from a wrong password. A server that cannot be
        reached is a ConnectorUnavailable or ConnectorTimeout either way: that is not a wrong password;
        nor is a server that does not implement NTLM binds (NTLMUnsupported).
        """
        from ldap3.core.exceptions import LDAPOperationResult

        refused = False
        if not dn or not password:
            refused = True
        else:
            try:
                conn = self._pool.open(dn, password)
            except LDAPOperationResult:
                refused = True
            except Exception as e:  # noqa: BLE001 - mapped
                found = classify(e)
                if found is None or found[0] is not ConnectorAuthError:
                    raise self._connector.map_error(e) from None
                refused = True  # LDAPBindError: auto_bind found it was not bound
            else:
                self._pool._close(conn)
        if refused and raise_on_error:
            raise self._connector.error(ConnectorAuthError, 'invalid credentials')
        return not refused

    def search_paged(self, search_base: str, search_filter: str, attributes: Any = None, page_size: int = 500,
                     search_scope: str = 'SUBTREE', **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Every entry a search finds, asking for `page_size` at a time (the paged results control).

        Active Directory answers a plain search with at most MaxPageSize entries (1000 by default) and
        then sizeLimitExceeded; a paged one with all of them. Yields ldap3's response of each entry
        (`dn`, `attributes`, `raw_attributes`), never the references to other naming contexts that AD
        adds (searchResRef). `kwargs` go to ldap3's search (controls, size_limit ...). A pooled
        connection is held until the generator ends; one left before its end is closed, not reused."""
        with self.get() as conn:
            cookie: bytes | None = None
            while True:
                conn.search(search_base, search_filter, search_scope=search_scope, attributes=attributes,
                            paged_size=page_size, paged_cookie=cookie, **kwargs)
                for response in conn.response or ():
                    if response.get('type') == 'searchResEntry':
                        yield response
                control = (conn.result.get('controls') or {}).get(PAGED_RESULTS) or {}
                cookie = (control.get('value') or {}).get('cookie')
                if not cookie:
                    return


class LDAPConnection:
    """``self.out.ldap['name'].conn``: `client()` is a context manager giving an LDAPClient."""

    def __init__(self, connector: LDAPConnector) -> None:
        self._connector = connector

    @contextmanager
    def client(self) -> Iterator[LDAPClient]:
        """The connection's client; ConnectorUnavailable (or ConnectorAuthError) until it is built."""
        yield LDAPClient(self._connector, self._connector.client)

    def ping(self) -> float:
        """Seconds a bind on a new connection took."""
        return self._connector.ping()

    def __repr__(self) -> str:
        return f'<LDAPConnection `{self._connector.name}`>'


# ################################################################################################ the connector

class LDAPConnector(Connector):
    """An outgoing LDAP connection; `conn` is an LDAPConnection, whose client() gives get() and check_credentials()."""

    kind: ClassVar[str] = 'ldap'
    fields: ClassVar[tuple[Field, ...]] = LDAP_FIELDS

    def __init__(self, name: str, config: dict[str, Any], secret: str = '', hooks: Any = None) -> None:
        super().__init__(name, config, secret, hooks)
        self._conn = LDAPConnection(self)
        self._auth_refused_at: float | None = None
        self._auth_reason = ''

    @property
    def conn(self) -> LDAPConnection:
        return self._conn

    def connect(self) -> LDAPPool:
        """Builds the pool and binds one connection; a refused bind is not tried again for AUTH_RETRY_AFTER."""
        if self._auth_refused_at is not None and time.monotonic() - self._auth_refused_at < AUTH_RETRY_AFTER:
            raise ConnectorAuthError(self._auth_reason, kind=self.kind, name=self.name)
        pool = LDAPPool(self.config, self.secret)
        try:
            pool.prime()
        except Exception as e:
            pool.close()
            found = classify(e)
            if found is None:
                raise
            cls, reason = found
            reason = self._reason(pool, cls, reason)
            if cls is ConnectorAuthError:  # not NTLMUnsupported: no password was refused
                self._auth_refused_at, self._auth_reason = time.monotonic(), reason
            raise cls(reason, kind=self.kind, name=self.name) from e
        self._auth_refused_at = None
        return pool

    def ping_client(self, client: LDAPPool) -> None:
        client.ping()

    def close_client(self, client: LDAPPool) -> None:
        client.close()

    def map_error(self, e: BaseException) -> ConnectorError:
        if isinstance(e, ConnectorError):
            if not e.name:  # raised by the pool, which knows no names
                return self.error(type(e), str(e))
            return e
        found = classify(e)
        if found is None:
            return super().map_error(e)
        cls, reason = found
        pool = self._client
        return self.error(cls, self._reason(pool, cls, reason) if pool is not None else reason)

    def unavailable(self) -> ConnectorError:
        if self._auth_refused_at is not None and not self._stopping:
            return self.error(ConnectorAuthError, f'not connected: {self._auth_reason}')
        return super().unavailable()

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> None:
        if config.get('auth_type') == 'NTLM' and '\\' not in str(config.get('username', '')):
            raise FieldError('username', r'NTLM needs DOMAIN\user')

    def _reason(self, pool: LDAPPool, cls: type[ConnectorError], reason: str) -> str:
        if issubclass(cls, ConnectorAuthError):
            who = f'`{pool.username}`' if pool.username else 'anonymously'
            return f'bind as {who} refused by {pool.describe_servers()}: {reason}'
        return f'{pool.describe_servers()}: {reason}'
