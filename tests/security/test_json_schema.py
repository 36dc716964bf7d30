from __future__ import annotations

import json

import fastjsonschema
import pytest

from zato.security.json_schema import SchemaError, SchemaRepository, error_details


@pytest.fixture
def repo(tmp_path):
    (tmp_path / 'user.json').write_text(json.dumps({'type': 'object', 'required': ['id'],
                                                    'properties': {'id': {'type': 'integer'},
                                                                   'address': {'$ref': 'address.json'}}}))
    (tmp_path / 'address.json').write_text(json.dumps({'type': 'object', 'required': ['city']}))
    return SchemaRepository(str(tmp_path))


def test_a_relative_ref_is_resolved_from_the_schema_directory_and_recorded_as_a_dependency(repo):
    compiled = repo.compile('user.json')
    assert compiled.deps == {'user.json', 'address.json'}
    compiled.validate({'id': 1, 'address': {'city': 'Oslo'}})
    with pytest.raises(fastjsonschema.JsonSchemaValueException):
        compiled.validate({'id': 1, 'address': {}})


def test_an_absolute_path_is_used_as_it_is(repo, tmp_path):
    other = tmp_path / 'elsewhere.json'
    other.write_text('{"type": "string"}')
    repo.compile(str(other)).validate('x')


def test_a_deployed_schema_wins_over_the_file(repo):
    repo.deployed['address.json'] = json.dumps({'type': 'object', 'required': ['zip']})
    with pytest.raises(fastjsonschema.JsonSchemaValueException):
        repo.compile('user.json').validate({'id': 1, 'address': {'city': 'Oslo'}})


def test_a_remote_ref_is_never_fetched_but_looked_up_by_file_name(repo):
    repo.deployed['remote.json'] = json.dumps({'$id': 'https://example.com/schemas/remote.json',
                                               'properties': {'a': {'$ref': 'address.json'}}})
    assert repo.compile('remote.json').deps == {'remote.json', 'address.json'}
    repo.deployed['bad.json'] = json.dumps({'properties': {'a': {'$ref': 'https://example.com/missing.json'}}})
    with pytest.raises(SchemaError, match='missing.json: no such schema'):
        repo.compile('bad.json')


@pytest.mark.parametrize('text, message', [
    ('{"type": ', 'not valid JSON'),
    ('[1, 2]', 'must be a JSON object'),
    ('{"type": "no-such-type"}', 'not a valid JSON Schema'),
])
def test_a_schema_that_cannot_compile_names_the_file_and_why(repo, text, message):
    repo.deployed['broken.json'] = text
    with pytest.raises(SchemaError, match=message) as e:
        repo.compile('broken.json')
    assert str(e.value).startswith('broken.json: ')


def test_a_name_outside_the_schema_directory_is_refused(repo):
    with pytest.raises(SchemaError, match='outside the schema directory'):
        repo.compile('../etc/passwd')


def test_error_details_follow_3_1_and_say_where_when_asked(repo):
    try:
        repo.compile('user.json').validate({'id': 'x'})
    except fastjsonschema.JsonSchemaValueException as e:
        assert error_details('c1', e, False) == {'is_ok': False, 'cid': 'c1', 'message': 'Invalid request'}
        detailed = error_details('c1', e, True)
        assert 'data.id must be integer' in detailed['message'] and '`type`' in detailed['message']
