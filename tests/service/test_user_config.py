"""self.user_config: INI files as ``self.user_config.<stem>.<section>.<key>``."""

from __future__ import annotations

import pytest

from zato.service.user_config import UserConfig, parse


def test_files_are_read_by_stem_section_and_key_with_their_case_kept(tmp_path):
    (tmp_path / 'orders.ini').write_text('[db]\nHost = db.example.com\nport = 5432\n')
    (tmp_path / 'crm.conf').write_text('[api]\nurl = https://crm\n')
    (tmp_path / 'notes.txt').write_text('[x]\ny = 1\n')
    config = UserConfig()
    config.load_dir(str(tmp_path))
    view = config.view
    assert view.orders.db.Host == 'db.example.com' and view.orders.db.port == '5432'
    assert view['crm']['api']['url'] == 'https://crm'
    assert 'notes' not in view


def test_a_missing_name_is_an_attribute_error_saying_where(tmp_path):
    config = UserConfig()
    config.set_deployed('orders.ini', '[db]\nhost = a\n')
    with pytest.raises(AttributeError, match=r'No `user` in user config `orders.db`'):
        config.view.orders.db.user  # noqa: B018


def test_a_deployed_file_replaces_a_local_one_of_the_same_stem_and_removing_it_brings_the_local_back(tmp_path):
    (tmp_path / 'orders.ini').write_text('[db]\nhost = local\n')
    config = UserConfig()
    config.load_dir(str(tmp_path))
    held = config.view
    config.set_deployed('orders.ini', '[db]\nhost = cluster\n')
    assert config.view.orders.db.host == 'cluster'
    assert held.orders.db.host == 'local'  # a view already read never changes under a service
    config.remove_deployed('orders.ini')
    assert config.view.orders.db.host == 'local'


def test_a_broken_file_is_refused_with_its_name(tmp_path):
    with pytest.raises(ValueError, match='orders.ini: not a valid INI file'):
        parse('orders.ini', 'no section header\n')
    (tmp_path / 'bad.ini').write_text('no section\n')
    config = UserConfig()
    config.load_dir(str(tmp_path))  # logged, left out
    assert 'bad' not in config.view


def test_user_config_is_read_only():
    config = UserConfig()
    config.set_deployed('a.ini', '[s]\nk = v\n')
    with pytest.raises(TypeError, match='read-only'):
        config.view.a.s.k = 'w'
