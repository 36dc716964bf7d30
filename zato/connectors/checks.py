"""Field checks and types that several kinds of outgoing connection share: one of a set of values,
a positive number, seconds in a range, an http(s) URL or proxy, a host, a file that exists,
and a `server_list` of host:port entries."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

Check = Callable[[Any], 'str | None']

_PORT = re.compile(r'^[0-9]{1,5}$')          # never int() alone: it takes '+1', ' 1' and '1_0'
_HOST = re.compile(r'^[A-Za-z0-9._-]+$')       # a DNS name or an IPv4 address
_IPV6 = re.compile(r'^[0-9A-Fa-f:.]+$')
_IPV6_ZONE = re.compile(r'^[0-9A-Fa-f:.]+(%[A-Za-z0-9._-]+)?$')


def one_of(allowed: tuple[str, ...]) -> Check:
    def check(value: str) -> str | None:
        return None if value in allowed else f'expected one of {", ".join(repr(a) for a in allowed)}'
    return check


def http_url(value: str) -> str | None:
    """An http:// or https:// URL with a host, a valid port if any, and no query string or fragment."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as e:
        return f'not a valid URL ({e})'
    if parts.scheme not in ('http', 'https') or not parts.hostname:
        return 'expected an http:// or https:// URL'
    if parts.query or parts.fragment:
        return 'expected a URL without a query string or fragment'
    return None


def proxy_url(value: str) -> str | None:
    """A proxy's http(s) URL, or empty for none."""
    return http_url(value) if value else None


def host(value: str) -> str | None:
    """A DNS name, an IPv4 address or an IPv6 address (without brackets): nothing a command, a URL or
    a TLS server name would read as more than a host."""
    if _HOST.match(value) and not value.startswith(('-', '.')) and not value.endswith('-'):
        return None
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return 'expected a host name or an IP address'
    return None


def existing_file(value: str) -> str | None:
    """A path of the server's file system that is a file, or empty for none."""
    return f'no such file: {value}' if value and not os.path.isfile(value) else None


def positive(value: float) -> str | None:
    return None if value > 0 else 'expected a number above 0'


def seconds(low: float = 0.0, high: float = 86400.0) -> Check:
    def check(value: float) -> str | None:
        if value > high:
            return f'expected at most {high:g} seconds'
        return None if value > low else f'expected a number of seconds above {low:g}'
    return check


# ################################################################################################ server lists

class _ServerListType(type):
    """isinstance(value, ServerList): a string (host:port lines) or a list of strings."""

    def __instancecheck__(cls, value: Any) -> bool:
        return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))


class ServerList(metaclass=_ServerListType):
    """The type of `server_list`: `host:port` lines in one string, as 3.1's form, or a list of them."""


# What a wrong type is reported as: "expected host:port lines or a list of host:port strings"
ServerList.__name__ = 'host:port lines or a list of host:port strings'


def parse_server(entry: str, default_port: int, ipv6_zone: bool = False) -> str:
    """`host`, `host:port` or `[ipv6]:port` as `host:port`; ValueError saying what is wrong.
    With `ipv6_zone`, an IPv6 address may carry a zone (`[fe80::1%eth0]`)."""
    if '://' in entry:
        raise ValueError(f'`{entry}`: expected host:port, not a URL')
    if entry.startswith('['):
        host, bracket, rest = entry[1:].partition(']')
        ipv6 = _IPV6_ZONE if ipv6_zone else _IPV6
        if not bracket or not ipv6.match(host) or (rest and not rest.startswith(':')):
            raise ValueError(f'`{entry}`: expected [IPv6 address]:port')
        port_text, shown = rest[1:], f'[{host}]'
    else:
        host, colon, port_text = entry.partition(':')
        if not _HOST.match(host):
            raise ValueError(f'`{entry}`: expected host:port (an IPv6 address goes in brackets: '
                             f'[::1]:{default_port})')
        shown = host
        if colon and not port_text:
            raise ValueError(f'`{entry}`: the port is missing after the colon')
    if port_text:
        if not _PORT.match(port_text) or not 0 < int(port_text) < 65536:
            raise ValueError(f'`{entry}`: the port must be 1 to 65535')
        return f'{shown}:{int(port_text)}'
    return f'{shown}:{default_port}'


def server_list(value: str | list[str], default_port: int, *, commas: bool = False,
                ipv6_zone: bool = False) -> list[str]:
    """The servers of a `server_list` value: lines (or commas too, with `commas`), blanks and
    surrounding spaces ignored."""
    if isinstance(value, str):
        value = (value.replace(',', '\n') if commas else value).splitlines()
    return [parse_server(entry.strip(), default_port, ipv6_zone) for entry in value if entry.strip()]


def check_server_list(default_port: int, *, commas: bool = False, ipv6_zone: bool = False) -> Check:
    def check(value: str | list[str]) -> str | None:
        try:
            servers = server_list(value, default_port, commas=commas, ipv6_zone=ipv6_zone)
        except ValueError as e:
            return str(e)
        return None if servers else 'expected at least one host:port'
    return check
