"""The field checks the kinds share, and the host:port server lists of MongoDB and Kafka."""

from __future__ import annotations

import pytest

from zato.connectors import checks


def test_a_server_list_takes_lines_and_with_commas_commas_too():
    assert checks.server_list('a:1\n\n  b \r\n', 27017) == ['a:1', 'b:27017']
    assert checks.server_list(['a:1', ' b:2 '], 9092) == ['a:1', 'b:2']
    assert checks.server_list('a:1, b', 9092, commas=True) == ['a:1', 'b:9092']
    with pytest.raises(ValueError, match='the port must be 1 to 65535'):  # without commas, '1, b' is the port
        checks.server_list('a:1, b', 9092)


@pytest.mark.parametrize('entry, error', [('mongodb://h', 'not a URL'), ('h:', 'port is missing'),
                                          ('h:0', '1 to 65535'), ('h:+1', '1 to 65535'), ('[::1', 'IPv6'),
                                          ('h h', r'\[::1\]:9092')])
def test_a_bad_entry_says_what_is_wrong(entry, error):
    with pytest.raises(ValueError, match=error):
        checks.parse_server(entry, 9092)


def test_an_ipv6_zone_only_where_allowed():
    assert checks.parse_server('[fe80::1%eth0]:27017', 27017, ipv6_zone=True) == '[fe80::1%eth0]:27017'
    with pytest.raises(ValueError, match='IPv6'):
        checks.parse_server('[fe80::1%eth0]:9092', 9092)
    assert checks.check_server_list(9092)('') == 'expected at least one host:port'
    assert checks.seconds(0.0, 300.0)(301) == 'expected at most 300 seconds'
    assert checks.one_of(('a', 'b'))('c') == "expected one of 'a', 'b'"


@pytest.mark.parametrize('value, ok', [('mail.example.com', True), ('127.0.0.1', True), ('::1', True),
                                       ('fe80::1', True), ('-oProxyCommand', False), ('a b', False),
                                       ('smtp://h', False), ('h\r\nx', False), ('', False), ('[::1]', False)])
def test_a_host_is_a_name_or_an_address_and_nothing_more(value, ok):
    assert (checks.host(value) is None) is ok


def test_a_file_that_exists(tmp_path):
    path = tmp_path / 'ca.pem'
    path.write_text('x')
    assert checks.existing_file(str(path)) is None and checks.existing_file('') is None
    assert checks.existing_file(str(tmp_path / 'no.pem')) == f'no such file: {tmp_path / "no.pem"}'
