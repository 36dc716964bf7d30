"""The client's address for allow-lists and rate limits: the TCP peer, or - only when the peer is
one of the configured trusted proxies - the address that proxy reported in X-Forwarded-For."""

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


def _trusted(address: str, proxies: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in proxies)


def client_address(peer: str, forwarded_for: str | None, proxies: tuple[Network, ...]) -> str:
    """Walks X-Forwarded-For from the right, past trusted proxies, to the first untrusted hop.

    A header from an untrusted peer is ignored: anyone can send one.
    """
    if not proxies or not forwarded_for or not _trusted(peer, proxies):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(',') if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            return hop
    return hops[0] if hops else peer
