"""IP addresses and networks as settings give them (trusted proxies ...)."""

from __future__ import annotations

import ipaddress

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
