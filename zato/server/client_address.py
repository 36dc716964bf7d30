"""The client's address for allow-lists and rate limits: the TCP peer, or - only when the peer is
one of the configured trusted proxies - the address that proxy reported in X-Forwarded-For."""

from __future__ import annotations

from zato.config.networks import Network, in_networks, parse_networks

__all__ = ['Network', 'client_address', 'parse_networks']


def client_address(peer: str, forwarded_for: str | None, proxies: tuple[Network, ...]) -> str:
    """Walks X-Forwarded-For from the right, past trusted proxies, to the first untrusted hop.

    A header from an untrusted peer is ignored: anyone can send one.
    """
    if not proxies or not forwarded_for or not in_networks(peer, proxies):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(',') if hop.strip()]
    for hop in reversed(hops):
        if not in_networks(hop, proxies):
            return hop
    return hops[0] if hops else peer
