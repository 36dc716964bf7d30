from __future__ import annotations

import pytest

from zato.server.client_address import client_address, parse_networks

PROXIES = parse_networks('10.0.0.1, 192.168.0.0/16')


def test_without_trusted_proxies_the_peer_is_the_client():
    assert client_address('10.0.0.1', '1.2.3.4', ()) == '10.0.0.1'


def test_x_forwarded_for_from_an_untrusted_peer_is_ignored():
    assert client_address('8.8.8.8', '1.2.3.4', PROXIES) == '8.8.8.8'


def test_the_first_untrusted_hop_from_the_right_is_the_client():
    assert client_address('10.0.0.1', '1.2.3.4', PROXIES) == '1.2.3.4'
    assert client_address('10.0.0.1', '6.6.6.6, 1.2.3.4, 192.168.1.1', PROXIES) == '1.2.3.4'


def test_an_ipv4_mapped_peer_counts_as_its_ipv4_address():
    assert client_address('::ffff:10.0.0.1', '1.2.3.4', PROXIES) == '1.2.3.4'


@pytest.mark.parametrize('text', ['10.0.0.1/8', 'not-an-ip', '300.1.1.1'])
def test_a_bad_proxy_entry_is_refused(text):
    with pytest.raises(ValueError, match='is not an IP address or network'):
        parse_networks(text)
