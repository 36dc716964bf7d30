"""The CLI's commands over the admin API, made from its route table: one per route, named as the
admin services are, and FIELD=VALUE arguments read as JSON when they are JSON."""

from __future__ import annotations

import argparse

import pytest

from zato.cli.admin_commands import OWN_COMMANDS, commands, field_arg, json_value
from zato.cli.main import build_parser, parse
from zato.server.internal_routes import ADMIN_ROUTES


def test_every_admin_route_is_a_command_or_has_one_of_its_own():
    made = {cmd.service for cmd in commands()}
    for _path, _method, service in ADMIN_ROUTES:
        assert (service in made) != (service in OWN_COMMANDS), service


def test_no_two_routes_make_the_same_command():
    words = [cmd.words for cmd in commands()]
    assert len(words) == len(set(words))


def test_a_command_is_named_after_its_admin_service():
    by_service = {cmd.service: cmd for cmd in commands()}
    assert by_service['zato.channel.rest.create'].words == ('channel', 'rest', 'create')
    assert by_service['zato.channel.rest.get-list'].words == ('channel', 'rest', 'list')
    assert by_service['zato.outconn.get'].usage() == 'zato outconn get PATH KIND NAME'
    assert by_service['zato.rate-limit.edit'].usage() == 'zato rate-limit edit PATH NAME [FIELD=VALUE ...]'


@pytest.mark.parametrize('text, value', [
    ('5', 5), ('1.5', 1.5), ('false', False), ('null', None), ('["a", "b"]', ['a', 'b']), ('{"a": 1}', {'a': 1}),
    ('"007"', '007'), ('007', '007'), ('/api/x', '/api/x'), ('* = 10/m', '* = 10/m'), ('', ''),
    ('NaN', 'NaN'), ('Infinity', 'Infinity'), ('cn=zato', 'cn=zato'),
])
def test_a_value_is_json_when_it_parses_as_json_and_the_text_otherwise(text, value):
    assert json_value(text) == value and type(json_value(text)) is type(value)


def test_a_field_argument_splits_at_the_first_equals_sign():
    assert field_arg('username=cn=zato,dc=example') == ('username', 'cn=zato,dc=example')
    assert field_arg('rules=') == ('rules', '')
    for bad in ('no-sign', '=value'):
        with pytest.raises(argparse.ArgumentTypeError):
            field_arg(bad)


def test_fields_after_an_option_are_fields_too():
    args = parse(build_parser(), ['outconn', 'create', '/env', 'ldap', 'name=a', '--stdin', 'secret', 'is_active=false'])
    assert args.fields == [('name', 'a'), ('is_active', 'false')] and args.stdin == ['secret']
    args = parse(build_parser(), ['security', 'create', '/env', 'crm', '--username', 'crm', 'ttl=60'])
    assert args.fields == [('ttl', '60')] and args.username == 'crm'


@pytest.mark.parametrize('argv', [['start', '/env', 'extra=1'], ['outconn', 'create', '/env', 'ldap', '--stdin', 's', 'x'],
                                  ['channel', 'rest', 'list', '/env', '--bogus']])
def test_anything_else_left_over_is_a_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as e:
        parse(build_parser(), argv)
    assert e.value.code == 2 and capsys.readouterr().err.count('\n') == 1
