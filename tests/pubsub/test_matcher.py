"""Topic names and endpoint patterns (zato.pubsub.matcher): each rule of the module's docstring."""

from __future__ import annotations

import pytest

from zato.pubsub.matcher import MAX_TOPIC_DEPTH, can_publish, can_subscribe, parse_patterns, topic_name_error


@pytest.mark.parametrize('name', ['/a', '/customer/new', '/zato/demo/sample', '/orders/eu-west.1', '/ünïcode/ok'])
def test_a_valid_topic_name(name):
    assert topic_name_error(name) is None


@pytest.mark.parametrize('name', ['', 'a', 'customer/new', '/', '/a/', '//a', '/a//b', '/a/*', '/a b', '/a?',
                                  '/a#b', '/a%2F', '/a/./b', '/a/..', '/x\x00', '/' + 'a' * 200,
                                  '/a' * (MAX_TOPIC_DEPTH + 1), 5, None])
def test_an_invalid_topic_name_says_why(name):
    assert topic_name_error(name)


@pytest.mark.parametrize('pattern, topic, matches', [
    ('/customer/*/changed', '/customer/1/changed', True),
    ('/customer/*/changed', '/customer/a/b/changed', False),
    ('/orders/eu-*', '/orders/eu-west', True),
    ('/orders/eu-*', '/orders/eu-west/1', False),
    ('/usa/**', '/usa/ny', True),
    ('/usa/**', '/usa/ny/nyc', True),
    ('/usa/**', '/usa', False),
    ('/**', '/anything/at/all', True),
    ('/a/*', '/a/b', True),
    ('/a', '/a/b', False),           # anchored at both ends
    ('/a/b', '/A/b', False),         # case-sensitive
    ('/a.b', '/axb', False),         # a dot is a dot, not a regex
])
def test_star_stays_in_a_segment_and_double_star_crosses_them(pattern, topic, matches):
    [p] = parse_patterns(f'pub={pattern}')
    assert p.matches(topic) is matches


def test_an_endpoint_needs_both_the_role_and_a_matching_pattern():
    patterns = parse_patterns('pub=/orders/**\nsub=/news/*\n\n# a comment')
    assert can_publish('pub-only', patterns, '/orders/1') == '/orders/**'
    assert can_publish('pub-sub', patterns, '/orders/1') == '/orders/**'
    assert can_publish('sub-only', patterns, '/orders/1') is None
    assert can_publish('pub-only', patterns, '/news/1') is None    # a sub= pattern does not let one publish
    assert can_subscribe('sub-only', patterns, '/news/1') == '/news/*'
    assert can_subscribe('pub-only', patterns, '/news/1') is None


@pytest.mark.parametrize('text', ['/orders', 'pub:/orders', 'get=/orders', 'pub=orders', 'pub=/a b',
                                  'pub=/' + 'a' * 200])
def test_a_bad_pattern_line_is_refused_naming_its_line(text):
    with pytest.raises(ValueError, match='line 1'):
        parse_patterns(text)
