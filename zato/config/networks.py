"""IP addresses and networks as settings give them (trusted proxies ...)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """`10.0.0.1, 192.168.0.0/16` -> networks; raises ValueError naming the bad entry."""
    out = []
    for item in (part.strip() for part in text.split(',')):
        if item:
            try:
                out.append(ipaddress.ip_network(item, strict=True))
            except ValueError:
                raise ValueError(f'`{item}` is not an IP address or network') from None
    return tuple(out)


def in_networks(address: str, networks: Iterable[Network]) -> bool:
    """Whether an address (IPv4, IPv6, or IPv4 mapped into IPv6) is in any of `networks`; False for
    what is not an IP address at all."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in networks)
