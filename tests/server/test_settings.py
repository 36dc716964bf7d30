from __future__ import annotations

import os

import pytest

from zato.errors import ConfigError
from zato.config import settings


def write_conf(tmp_path, text: str) -> str:
    os.makedirs(tmp_path / 'config' / 'repo', exist_ok=True)
    (tmp_path / 'config' / 'repo' / 'server.conf').write_text(text)
    return str(tmp_path)


def test_defaults_apply_to_keys_the_file_does_not_set(tmp_path):
    config = settings.load(write_conf(tmp_path, '[main]\nworkers = 3\n'), environ={})
    assert config.get('main', 'workers') == 3
    assert config.get('main', 'base_port') == 17010
    assert config.get('http', 'header_timeout') == 10.0


def test_an_environment_variable_overrides_the_file(tmp_path):
    config = settings.load(write_conf(tmp_path, '[main]\nworkers = 3\n'), environ={'ZATO_MAIN_WORKERS': '5'})
    assert config.get('main', 'workers') == 5


@pytest.mark.parametrize('text, message', [
    ('[main]\nworkers = 0\n', '[main] workers: invalid value `0`'),
    ('[main]\nbase_port = 70000\n', '[main] base_port: invalid value `70000`'),
    ('[odb]\nengine = oracle\n', 'expected one of: sqlite, postgresql'),
    ('[misc]\nreturn_json_schema_errors = maybe\n', 'expected true or false'),
    ('[main\n', 'cannot parse'),
])
def test_a_bad_value_is_a_one_line_config_error_naming_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as e:
        settings.load(write_conf(tmp_path, text), environ={})
    assert message in str(e.value)
    assert '\n' not in str(e.value)


def test_a_directory_without_server_conf_is_not_an_environment(tmp_path):
    with pytest.raises(ConfigError, match='is not a Zato environment'):
        settings.load(str(tmp_path), environ={})


def test_every_setting_is_documented_in_the_generated_page():
    page = settings.render_docs()
    for s in settings.SETTINGS:
        assert f'`{s.env}`' in page and s.doc in page
