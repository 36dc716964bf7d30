from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zato.server.router import RouteError, Router, template_of


def test_a_static_path_is_found_with_no_params():
    r = Router([('/a/b', '', 'ab')])
    assert r.route('GET', '/a/b') == ('ab', {})
    assert r.route('GET', '/a/b/') is None


def test_a_pattern_fills_its_params_from_one_segment_each():
    r = Router([('/cust/{cust_id}/program/{prog_id}', 'GET', 'c')])
    assert r.route('GET', '/cust/12/program/ab-c') == ('c', {'cust_id': '12', 'prog_id': 'ab-c'})
    assert r.route('GET', '/cust/12/34/program/1') is None
    assert r.route('GET', '/cust//program/1') is None


def test_a_static_path_wins_over_a_pattern_that_also_matches():
    r = Router([('/customer/{id}', '', 'by-id'), ('/customer/me', '', 'me')])
    assert r.route('GET', '/customer/me') == ('me', {})
    assert r.route('GET', '/customer/5') == ('by-id', {'id': '5'})


def test_a_literal_segment_outranks_a_variable_at_its_level_whatever_comes_after():
    # Counting literal characters would pick /{kind}/summary-report (15 of them against 10)
    r = Router([('/{kind}/summary-report', '', 'report'), ('/customer/{id}', '', 'customer')])
    assert r.route('GET', '/customer/summary-report') == ('customer', {'id': 'summary-report'})
    assert r.route('GET', '/invoice/summary-report') == ('report', {'kind': 'invoice'})


def test_a_branch_that_fails_deeper_gives_way_to_the_next_at_its_level():
    r = Router([('/customer/{id}/orders', '', 'orders'), ('/{kind}/{id}/notes', '', 'notes')])
    assert r.route('GET', '/customer/5/notes') == ('notes', {'kind': 'customer', 'id': '5'})
    assert r.route('GET', '/customer/5/orders') == ('orders', {'id': '5'})


def test_a_segment_mixing_literals_and_params_ranks_between_a_literal_and_a_variable():
    r = Router([('/files/{name}', '', 'any'), ('/files/{name}.json', '', 'json'), ('/files/list.json', '', 'list'),
                ('/files/{base}.{ext}', '', 'dotted')])
    assert r.route('GET', '/files/list.json') == ('list', {})
    assert r.route('GET', '/files/a.json') == ('json', {'name': 'a'})      # 5 literal characters beat 1
    assert r.route('GET', '/files/a.xml') == ('dotted', {'base': 'a', 'ext': 'xml'})
    assert r.route('GET', '/files/a') == ('any', {'name': 'a'})


def test_the_order_of_the_rows_decides_nothing():
    routes = [('/{a}/{b}', '', 'generic'), ('/x/{b}', '', 'specific'), ('/{a}/y', '', 'other')]
    for order in (routes, routes[::-1], routes[1:] + routes[:1]):
        r = Router(order)
        assert r.route('GET', '/x/1') == ('specific', {'b': '1'})
        assert r.route('GET', '/x/y') == ('specific', {'b': 'y'})
        assert r.route('GET', '/z/y') == ('other', {'a': 'z'})
        assert r.route('GET', '/z/1') == ('generic', {'a': 'z', 'b': '1'})


@pytest.mark.parametrize('first, second', [('/a/{x}', '/a/{y}'), ('/a/{x}.json', '/a/{y}.json'),
                                           ('/{a}/b/{c}', '/{x}/b/{y}')])
def test_two_templates_that_differ_only_in_parameter_names_are_one_template_and_refused(first, second):
    assert template_of(first) == template_of(second)
    with pytest.raises(RouteError, match='one template'):
        Router([(first, 'GET', 1), (second, 'GET', 2)])
    Router([(first, 'GET', 1), (second, 'POST', 2)])  # other methods: allowed


def test_channels_on_one_path_may_differ_by_method_and_an_empty_method_takes_the_rest():
    for path, params in (('/a', {}), ('/b/{x}', {'x': '1'})):
        request_path = path.replace('{x}', '1')
        r = Router([(path, 'GET', 'get'), (path, 'POST', 'post'), (path, '', 'any')])
        assert r.route('GET', request_path) == ('get', params)
        assert r.route('POST', request_path) == ('post', params)
        assert r.route('DELETE', request_path) == ('any', params)
        assert r.route('HEAD', request_path) == ('any', params)


def test_head_falls_back_to_the_get_channel():
    for path in ('/a', '/b/{x}'):
        r = Router([(path, 'GET', 'get')])
        request_path = path.replace('{x}', '1')
        assert r.route('HEAD', request_path)[0] == 'get'
        assert r.route('POST', request_path) is None
        assert r.allowed(request_path) == ['GET']


def test_a_method_is_routed_by_the_templates_that_serve_it():
    r = Router([('/customer/me', 'GET', 'me'), ('/customer/{id}', 'DELETE', 'delete')])
    assert r.route('DELETE', '/customer/me') == ('delete', {'id': 'me'})
    assert r.route('PUT', '/customer/me') is None
    assert r.allowed('/customer/me') == ['DELETE', 'GET']
    assert r.allowed('/nowhere') == []


def test_regex_characters_in_a_path_are_literal():
    r = Router([('/a.b/{x}', '', 't'), ('/c/{x}.(y)', '', 'u')])
    assert r.route('GET', '/a.b/1') is not None
    assert r.route('GET', '/aXb/1') is None
    assert r.route('GET', '/c/1.(y)') == ('u', {'x': '1'})
    assert r.route('GET', '/c/1.y') is None


@pytest.mark.parametrize('path', ['nope', '/a b', '/a?x', '/{x', '/{1x}', '/{x}/{x}', '/a}'])
def test_a_malformed_url_path_is_refused(path):
    with pytest.raises(RouteError):
        Router([(path, '', 't')])


def test_two_channels_for_the_same_path_and_method_are_refused():
    with pytest.raises(RouteError):
        Router([('/a', 'GET', 1), ('/a', 'get', 2)])
    with pytest.raises(RouteError):
        Router([('/a/{x}', '', 1), ('/a/{x}', '', 2)])


# The rules checked against a reference: every template that matches, ranked segment by segment

SEGMENTS = st.sampled_from(['a', 'b', 'ab', '{p}', '{q}.json', 'x.{r}', '{s}-{t}'])
PATH_PARTS = st.sampled_from(['a', 'b', 'ab', 'x.json', 'a.json', 'x.y', 'a-b', 'zz', ''])


def _reference(templates: list[str], path: str) -> str | None:
    import re
    parts = path.split('/')[1:]
    candidates = []
    for template in templates:
        segs = template.split('/')[1:]
        if len(segs) != len(parts):
            continue
        rank = []
        ok = True
        for seg, part in zip(segs, parts, strict=True):
            regex = ''.join(re.escape(p) if i % 2 == 0 else '([^/]+)' for i, p in enumerate(re.split(r'\{(\w+)\}', seg)))
            if not re.fullmatch(regex, part):
                ok = False
                break
            literal = len(re.sub(r'\{\w+\}', '', seg))
            kind = 0 if '{' not in seg else (2 if re.fullmatch(r'\{\w+\}', seg) else 1)
            rank.append((kind, -literal, re.sub(r'\{\w+\}', '{}', seg)))
        if ok:
            candidates.append((rank, template))
    return min(candidates)[1] if candidates else None


def _numbered(segments: list[str]) -> str:
    """A template of these segments, its parameters renamed p0, p1 ... so that no name repeats."""
    import itertools
    import re
    counter = itertools.count()
    return re.sub(r'\{\w+\}', lambda _: f'{{p{next(counter)}}}', '/' + '/'.join(segments))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(SEGMENTS, min_size=1, max_size=3).map(_numbered), min_size=1, max_size=8,
                unique_by=template_of),
       st.lists(PATH_PARTS, min_size=1, max_size=3).map(lambda s: '/' + '/'.join(s)))
def test_the_compiled_router_picks_what_the_ranking_rules_pick(templates, path):
    r = Router([(t, '', t) for t in templates])
    found = r.route('GET', path)
    assert (found[0] if found else None) == _reference(templates, path)
