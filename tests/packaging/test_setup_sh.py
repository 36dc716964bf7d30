"""scripts/setup.sh fails, with pip's own message, when pip cannot install: a container built while the
package index was out of reach used to end with "setup: ready" and no `zato` command."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def closed_port() -> int:
    """A loopback port nobody listens on (bound and released, so a connect is refused)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_setup_sh_stops_with_pips_error_when_the_package_index_is_unreachable(tmp_path):
    # A copy of the tree (what the Dockerfile copies), so the run makes its own empty .venv and leaves the
    # checkout alone; with zato/ there, the old script's closing import check passed and it said "ready"
    for name in ('scripts', 'zato'):
        shutil.copytree(os.path.join(ROOT, name), tmp_path / name, ignore=shutil.ignore_patterns('__pycache__'))
    shutil.copy(os.path.join(ROOT, 'setup.py'), tmp_path / 'setup.py')
    index = f'http://127.0.0.1:{closed_port()}/simple'
    env = {**os.environ,
           # Only this index: no pip config file, no local wheel directories, no retries
           'PIP_CONFIG_FILE': os.devnull, 'PIP_INDEX_URL': index, 'PIP_EXTRA_INDEX_URL': '', 'PIP_FIND_LINKS': '',
           'PIP_RETRIES': '0', 'PIP_TIMEOUT': '2', 'PIP_NO_INPUT': '1'}
    proc = subprocess.run(['bash', 'scripts/setup.sh'], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode != 0, (proc.stdout, proc.stderr)
    assert 'setup: ready' not in proc.stdout
    # pip's own words, then which command failed
    assert 'ERROR: Could not find a version that satisfies the requirement' in proc.stderr, proc.stderr
    assert 'ERROR: No matching distribution found for' in proc.stderr, proc.stderr
    assert 'pip failed (exit 1): .venv/bin/pip install -q --upgrade pip setuptools wheel cython' in proc.stderr
    assert "WARNING: Location" not in proc.stderr + proc.stdout
