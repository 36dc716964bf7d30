"""docs/sso.md's commands run as written, in fresh shells, against an environment at
~/zato-quickstart with SSO on, and print what the page shows; its table of sso.conf's keys is
the one generated from zato/sso/config.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from tests.e2e.harness import ROOT, WEB_ADMIN, Env
from tests.e2e.test_docs_shell import BLOCK, PATIENCE, same_output, steps_of
from zato.sso.config import render_docs
from zato.sso.mail import BUILT_IN

PAGE = os.path.join(ROOT, 'docs', 'sso.md')


def read_page() -> str:
    with open(PAGE, encoding='utf-8') as f:
        return f.read()


def test_the_page_lists_every_ssoconf_key_as_declared():
    assert render_docs() in read_page(), 'run: python -m zato.sso.config, and paste it into docs/sso.md'


def test_the_built_in_confirmation_email_is_the_one_the_page_shows():
    [shown] = re.findall(r'^```text\n(.*?)^```', read_page(), re.M | re.S)
    assert shown == BUILT_IN['sso-confirm.txt']


def apply_ini(conf: str, ini: str) -> str:
    """sso.conf as quickstart wrote it, with each key of `ini` set in its section."""
    section = ''
    for line in ini.splitlines():
        if line.startswith('['):
            section = line.strip()
        elif '=' in line:
            key, value = (part.strip() for part in line.split('=', 1))
            start = conf.index(f'\n{section}\n')
            tail, count = re.subn(rf'^{re.escape(key)} = .*$', f'{key} = {value}', conf[start:], count=1, flags=re.M)
            assert count == 1, key
            conf = conf[:start] + tail
    return conf


@pytest.fixture(scope='module')
def home(tmp_path_factory):
    home = str(tmp_path_factory.mktemp('sso-docs'))
    env = Env(os.path.join(home, 'zato-quickstart'), env={'ZATO_COMPONENT_ENABLED_SSO': 'true'})
    # The sso.conf settings the page shows, as a reader would set them
    [ini] = re.findall(r'^```ini\n(.*?)^```', read_page(), re.M | re.S)
    path = os.path.join(env.path, 'config', 'repo', 'sso.conf')
    with open(path, encoding='utf-8') as f:
        conf = f.read()
    with open(path, 'w', encoding='utf-8') as f:
        f.write(apply_ini(conf, ini))
    env.start()
    yield home, env
    env.stop()


def run(home: str, env: Env, command: str, shown: str | None) -> None:
    command = command.replace('17010', str(env.base_port))
    shell_env = {'HOME': home, 'LANG': 'C.UTF-8', 'PATH': f'{os.path.dirname(sys.executable)}:/usr/bin:/bin',
                 'PYTHONPATH': ROOT + os.pathsep + WEB_ADMIN, 'ZATO_WEB_ADMIN_ENABLED': 'false'}
    deadline = time.monotonic() + PATIENCE
    while True:
        proc = subprocess.run(['bash', '-c', command], env=shell_env, capture_output=True, text=True, timeout=60)
        if proc.returncode == 0 and (shown is None or same_output(shown, proc.stdout)):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f'`{command}` exited {proc.returncode}\n--- the page shows:\n{shown}\n'
                                 f'--- stdout:\n{proc.stdout}\n--- stderr:\n{proc.stderr}')
        time.sleep(0.5)


def test_every_command_of_the_page_runs_and_prints_what_it_shows(home):
    home_dir, env = home
    ran = 0
    for m in BLOCK.finditer(read_page()):
        body = m.group('body')
        if m.group('lang') == 'python':
            first = body.splitlines()[0]
            path = re.fullmatch(r'# ~/(\S+\.py)', first)
            assert path is not None, first
            with open(os.path.join(home_dir, path.group(1)), 'w', encoding='utf-8') as f:
                f.write(body)
        elif m.group('lang') == 'bash' and not m.group('skip'):
            for command, shown in steps_of(body):
                run(home_dir, env, command, shown)
                ran += 1
    assert ran >= 8
