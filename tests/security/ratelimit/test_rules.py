"""Rule text: Zato 3.1's syntax, strict validation that names the line, and first-match-wins matching."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zato.security.ratelimit.rules import GCRA, UNLIMITED, WINDOW, RuleError, parse_rules


def test_a_definition_of_3_1_parses_with_comments_and_blank_lines():
    rules = parse_rules(
        '# partners\n'
        '\n'
        '172.16.13.0/24 = 100/m   # the office\n'
        '192.168.79.0/24 = 5/d\n'
        '127.0.0.1 = *\n'
        '* = 1000/h\n'
    )
    assert [str(rule) for rule in rules] == [
        '172.16.13.0/24 = 100/m', '192.168.79.0/24 = 5/d', '127.0.0.1 = *', '* = 1000/h']
    assert [rule.line_no for rule in rules] == [3, 4, 5, 6]
    assert [rule.index for rule in rules] == [0, 1, 2, 3]


def test_a_per_second_limit_with_a_burst_precomputes_gcra_parameters():
    rule = parse_rules('* = 10/s burst=5').rules[0]
    assert (rule.kind, rule.limit, rule.burst, rule.interval, rule.tolerance) == (GCRA, 10, 5, 0.1, 0.5)


def test_per_minute_hour_and_day_limits_are_windows_of_60_3600_and_86400_seconds():
    rules = parse_rules('1.1.1.1 = 1/m\n2.2.2.2 = 1/h\n3.3.3.3 = 1/d')
    assert [(rule.kind, rule.period) for rule in rules] == [(WINDOW, 60), (WINDOW, 3600), (WINDOW, 86400)]


def test_a_star_limit_is_unlimited_and_burst_defaults_to_zero():
    unlimited, per_second = parse_rules('10.0.0.0/8 = *\n* = 3/s').rules
    assert unlimited.kind == UNLIMITED and unlimited.is_unlimited
    assert per_second.burst == 0 and per_second.tolerance == 0.0


def test_leading_zeros_are_allowed_in_limits():
    assert parse_rules('* = 007/s burst=03').rules[0].limit_text == '7/s burst=3'


@pytest.mark.parametrize('line, reason', [
    ('10.0.0.1/8 = 1/s', "invalid source '10.0.0.1/8': host bits are set in the network address"),
    ('10.0.0.256 = 1/s', "invalid source '10.0.0.256': expected *, an IP address or a CIDR network"),
    ('010.0.0.1 = 1/s', "invalid source '010.0.0.1': expected *, an IP address or a CIDR network"),
    ('10.0.0.0/33 = 1/s', "invalid source '10.0.0.0/33': expected *, an IP address or a CIDR network"),
    ('example.com = 1/s', "invalid source 'example.com': expected *, an IP address or a CIDR network"),
    ('fe80::1%eth0 = 1/s', "invalid source 'fe80::1%eth0': zone ids (%) are not allowed"),
    ('2001:db8::1/32 = 1/s', "invalid source '2001:db8::1/32': host bits are set in the network address"),
    ('* = 10/x', "invalid limit '10/x': expected N/s, N/m, N/h, N/d or *"),
    ('* = 10', "invalid limit '10': expected N/s, N/m, N/h, N/d or *"),
    ('* = 0/s', "invalid limit '0/s': N must be at least 1"),
    ('* = +10/s', "invalid limit '+10/s': expected N/s, N/m, N/h, N/d or *"),
    ('* = -1/s', "invalid limit '-1/s': expected N/s, N/m, N/h, N/d or *"),
    ('* = 1_0/s', "invalid limit '1_0/s': expected N/s, N/m, N/h, N/d or *"),
    ('* = 1 0/s', "invalid limit '1 0/s': expected N/s, N/m, N/h, N/d or *"),
    ('* = 10 /s', "invalid limit '10 /s': expected N/s, N/m, N/h, N/d or *"),
    ('* = 10/S', "invalid limit '10/S': expected N/s, N/m, N/h, N/d or *"),
    ('* = \u0661\u0660/s', "invalid limit '\u0661\u0660/s': expected N/s, N/m, N/h, N/d or *"),
    ('* = 10/m burst=5', "invalid limit '10/m burst=5': burst is allowed only with per-second limits (N/s)"),
    ('* = 10/s burst = 5',
     "invalid limit '10/s burst = 5': expected N/s, N/m, N/h, N/d or * (a burst is written 'N/s burst=M')"),
    ('* = 10/s burst=-1',
     "invalid limit '10/s burst=-1': expected N/s, N/m, N/h, N/d or * (a burst is written 'N/s burst=M')"),
    ('* = 1000000000/s', "invalid limit '1000000000/s': N and burst must be at most 999999999"),
    ('* = ' + '9' * 5000 + '/s', "invalid limit '" + '9' * 5000 + "/s': N and burst must be at most 999999999"),
    ('* 10/s', "expected 'source = limit', got '* 10/s'"),
    ('= 10/s', "missing source before '='"),
    ('* =', "missing limit after '='"),
    ('* = # nothing', "missing limit after '='"),
])
def test_every_invalid_line_is_refused_with_its_line_number_and_reason(line, reason):
    with pytest.raises(RuleError) as info:
        parse_rules(f'# first\n* = 1/s\n{line}\n* = 2/s')
    assert info.value.line_no == 3
    assert info.value.reason == reason
    assert str(info.value) == f'line 3: {reason}'


def test_a_vertical_tab_or_unicode_line_separator_does_not_start_a_new_line():
    with pytest.raises(RuleError) as info:
        parse_rules('* = 1/s\u2028* = 2/s')
    assert info.value.line_no == 1


def test_crlf_line_endings_are_accepted():
    assert len(parse_rules('* = 1/s\r\n10.0.0.0/8 = *\r\n')) == 2


def test_an_empty_definition_is_valid_and_matches_nothing():
    rules = parse_rules('# only a comment\n\n   \n')
    assert len(rules) == 0
    assert rules.match('10.0.0.1') is None
    assert rules.match('::1') is None
    assert rules.match('not an address') is None


def test_the_first_matching_rule_wins():
    rules = parse_rules('10.1.0.0/16 = 5/m\n10.0.0.0/8 = 100/m\n* = 1/m')
    assert rules.match('10.1.2.3').source == '10.1.0.0/16'
    assert rules.match('10.2.2.3').source == '10.0.0.0/8'
    assert rules.match('11.0.0.1').source == '*'


def test_a_star_first_applies_to_everyone_and_hides_later_rules():
    rules = parse_rules('* = 1/m\n10.0.0.0/8 = 100/m')
    assert rules.match('10.1.2.3').source == '*'


def test_no_matching_rule_means_the_address_is_not_allowed():
    rules = parse_rules('10.0.0.0/8 = *')
    assert rules.match('10.255.255.255') is not None
    assert rules.match('11.0.0.0') is None
    assert rules.match('2001:db8::1') is None


def test_ipv6_addresses_and_networks_match():
    rules = parse_rules('2001:db8::/32 = 10/s\n::1 = *')
    assert rules.match('2001:db8:ffff::1').source == '2001:db8::/32'
    assert rules.match('2001:0db8:0000::0001').source == '2001:db8::/32'
    assert rules.match('::1').source == '::1'
    assert rules.match('2001:db9::1') is None
    assert rules.match('10.0.0.1') is None


def test_an_ipv4_mapped_ipv6_client_matches_its_ipv4_rule_under_the_same_key():
    rules = parse_rules('10.0.0.0/8 = 10/s\n* = 1/s')
    assert rules.lookup('::ffff:10.0.0.1') == rules.lookup('10.0.0.1')
    assert rules.lookup('::ffff:192.168.0.1')[1] == '192.168.0.1'


def test_an_ipv4_mapped_rule_is_the_ipv4_rule():
    rules = parse_rules('::ffff:10.0.0.0/104 = 10/s\n::ffff:192.168.0.7 = *')
    assert [rule.source for rule in rules] == ['10.0.0.0/8', '192.168.0.7']
    assert rules.match('10.1.1.1').index == 0
    assert rules.match('::ffff:192.168.0.7').index == 1


def test_an_unparsable_client_address_matches_only_star():
    rules = parse_rules('0.0.0.0/0 = *\n::/0 = *')
    assert rules.match('unix:/tmp/sock') is None
    assert rules.match('fe80::1%eth0') is None
    rules = parse_rules('0.0.0.0/0 = *\n* = 5/m')
    assert rules.lookup('') == (rules.rules[1], '')


def test_a_cidr_rule_counts_the_whole_network_under_one_key():
    rules = parse_rules('10.0.0.0/8 = 10/s')
    assert rules.lookup('10.0.0.1')[1] == rules.lookup('10.9.9.9')[1] == '10.0.0.0/8'


def test_a_star_rule_counts_each_ipv4_client_apart_and_each_ipv6_client_by_its_slash_64():
    rules = parse_rules('* = 10/s')
    assert rules.lookup('10.0.0.1')[1] == '10.0.0.1'
    assert rules.lookup('10.0.0.2')[1] == '10.0.0.2'
    assert rules.lookup('2001:db8:1:2:aaaa::1')[1] == rules.lookup('2001:db8:1:2::ffff')[1] == '2001:db8:1:2::/64'
    assert rules.lookup('2001:db8:1:3::1')[1] == '2001:db8:1:3::/64'


def test_the_match_cache_stays_bounded_and_correct_after_it_is_cleared():
    rules = parse_rules('10.0.0.0/8 = 1/s\n* = 2/s')
    for i in range(10_000):
        assert rules.match(f'10.0.{i // 256}.{i % 256}').index == 0
    assert len(rules._cache) <= 4096
    assert rules.match('11.0.0.1').index == 1


ipv4_networks = st.builds(
    lambda addr, prefix: ipaddress.IPv4Network((addr, prefix), strict=False),
    st.integers(0, 2**32 - 1), st.integers(0, 32))
ipv6_networks = st.builds(
    lambda addr, prefix: ipaddress.IPv6Network((addr, prefix), strict=False),
    st.integers(0, 2**128 - 1), st.integers(0, 128))


@given(st.lists(st.one_of(ipv4_networks, ipv6_networks), min_size=1, max_size=8),
       st.one_of(st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address),
                 st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address)))
def test_matching_agrees_with_the_ipaddress_module(networks, address):
    # Mapped addresses are IPv4 on both sides, as the rules promise
    def fold(value):
        mapped = getattr(value, 'ipv4_mapped', None)
        return mapped if mapped is not None else value

    rules = parse_rules('\n'.join(f'{net} = 1/s' for net in networks))
    client = fold(address)
    expected = None
    for index, net in enumerate(networks):
        if isinstance(net, ipaddress.IPv6Network) and net.prefixlen >= 96 and net.network_address.ipv4_mapped:
            net = ipaddress.IPv4Network((int(net.network_address) & 0xFFFFFFFF, net.prefixlen - 96))
        if net.version == client.version and client in net:
            expected = index
            break
    found = rules.match(str(address))
    assert (found.index if found else None) == expected


@given(st.text(max_size=40))
def test_any_text_either_parses_or_raises_rule_error(text):
    try:
        parse_rules(text)
    except RuleError as e:
        assert str(e).startswith(f'line {e.line_no}: ')
