from __future__ import annotations

import pytest

from zato.server.router import RouteError, Router


def test_a_static_path_is_found_with_no_params():
    r = Router([('/a/b', '', 'ab')])
    assert r.match('/a/b') == ({'': 'ab'}, {})
    assert r.match('/a/b/') is None


def test_a_pattern_fills_its_params_from_one_segment_each():
    r = Router([('/cust/{cust_id}/program/{prog_id}', 'GET', 'c')])
    assert r.match('/cust/12/program/ab-c') == ({'GET': 'c'}, {'cust_id': '12', 'prog_id': 'ab-c'})
    assert r.match('/cust/12/34/program/1') is None
    assert r.match('/cust//program/1') is None


def test_a_static_path_wins_over_a_pattern_that_also_matches():
    r = Router([('/customer/{id}', '', 'by-id'), ('/customer/me', '', 'me')])
    assert r.match('/customer/me')[0] == {'': 'me'}
    assert r.match('/customer/5')[0] == {'': 'by-id'}


def test_the_more_literal_pattern_is_tried_first():
    r = Router([('/{a}/{b}', '', 'generic'), ('/x/{b}', '', 'specific')])
    assert r.match('/x/1')[0] == {'': 'specific'}
    assert r.match('/y/1')[0] == {'': 'generic'}


def test_channels_on_one_path_may_differ_by_method_and_an_empty_method_takes_the_rest():
    r = Router([('/a', 'GET', 'get'), ('/a', 'POST', 'post'), ('/a', '', 'any')])
    methods, _ = r.match('/a')
    assert Router.pick(methods, 'GET') == 'get'
    assert Router.pick(methods, 'POST') == 'post'
    assert Router.pick(methods, 'DELETE') == 'any'


def test_head_falls_back_to_the_get_channel():
    methods, _ = Router([('/a', 'GET', 'get')]).match('/a')
    assert Router.pick(methods, 'HEAD') == 'get'
    assert Router.pick(methods, 'POST') is None


def test_regex_characters_in_a_path_are_literal():
    r = Router([('/a.b/{x}', '', 't')])
    assert r.match('/a.b/1') is not None
    assert r.match('/aXb/1') is None


@pytest.mark.parametrize('path', ['nope', '/a b', '/a?x', '/{x', '/{1x}', '/{x}/{x}', '/a}'])
def test_a_malformed_url_path_is_refused(path):
    with pytest.raises(RouteError):
        Router([(path, '', 't')])


def test_two_channels_for_the_same_path_and_method_are_refused():
    with pytest.raises(RouteError):
        Router([('/a', 'GET', 1), ('/a', 'get', 2)])
