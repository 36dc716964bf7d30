#!/usr/bin/env bash
# A plain `pip install` of this repository into an EMPTY venv gives a Zato that starts: every package
# it needs is declared in setup.py, none comes from a developer's venv or from what setup.sh adds
# (setup.sh upgrades wheel, which once hid that gunicorn's gevent worker needs `packaging`).
# Creates a quickstart on free ports, starts it, checks /zato/ping and the web-admin, stops it.
# Usage: scripts/test-plain-install.sh     (scripts/test.sh runs it; pip's cache keeps it quick)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/pip-quiet.sh
repo=$PWD
work=$(mktemp -d "${TMPDIR:-/tmp}/zato-plain-install.XXXXXX")
zato=$work/venv/bin/zato
env_dir=$work/env

finish() {
  status=$?
  if [ -f "$env_dir/config/repo/server.conf" ] && [ -x "$zato" ]; then
    "$zato" stop "$env_dir" >/dev/null 2>&1 || true
  fi
  if [ "$status" -ne 0 ]; then
    for log in "$env_dir"/logs/*.log; do
      [ -f "$log" ] && { echo "--- $log (last lines)" >&2; tail -n 30 "$log" >&2; }
    done
    echo "plain-install: FAILED" >&2
  fi
  rm -rf "$work"
}
trap finish EXIT

started=$(date +%s)
# The source as a fresh clone has it (tracked and new files, nothing .gitignore ignores): a stale
# build/ or egg-info of this checkout must not end up in the install
python3 - "$repo" "$work/src" <<'PY'
import os, shutil, subprocess, sys
repo, dest = sys.argv[1:]
try:
    listed = subprocess.run(['git', '-C', repo, 'ls-files', '-z', '--cached', '--others', '--exclude-standard'],
                            check=True, capture_output=True).stdout.decode().split('\0')
except (OSError, subprocess.CalledProcessError):
    # Not a git checkout (an unpacked archive): take the tree as it is
    shutil.copytree(repo, dest, ignore=shutil.ignore_patterns('.venv', 'build', '*.egg-info', '__pycache__'))
    sys.exit(0)
for name in filter(None, listed):
    source = os.path.join(repo, name)
    if os.path.isfile(source):  # listed but deleted in the work tree: skip
        os.makedirs(os.path.dirname(os.path.join(dest, name)), exist_ok=True)
        shutil.copy2(source, os.path.join(dest, name))
PY

python3 -m venv "$work/venv"
echo "plain-install: pip install into an empty venv ($("$work/venv/bin/pip" --version | cut -d' ' -f1-2))"
pip_quiet "$work/venv/bin/pip" install -q "$work/src"

# Consecutive free ports: the server's, then the web-admin's
base_port=$(python3 - <<'PY'
import socket
for _ in range(200):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        base = s.getsockname()[1]
    try:
        with socket.socket() as a, socket.socket() as b:
            a.bind(('127.0.0.1', base))
            b.bind(('127.0.0.1', base + 1))
    except OSError:
        continue
    print(base)
    break
PY
)
# Run from elsewhere, so that nothing is imported from the checkout by accident
cd "$work"
"$zato" quickstart create "$env_dir" --base-port "$base_port" --web-admin-port $((base_port + 1)) --workers 1 >/dev/null
"$zato" start "$env_dir"
pong=$(python3 -c 'import sys, urllib.request as u; print(u.urlopen(sys.argv[1], timeout=5).read().decode())' \
  "http://127.0.0.1:$base_port/zato/ping")
[ "$pong" = '{"pong":"zato"}' ] || { echo "plain-install: /zato/ping answered $pong" >&2; exit 1; }
python3 -c 'import sys, urllib.request as u; u.urlopen(sys.argv[1], timeout=5)' "http://127.0.0.1:$((base_port + 1))/login"
"$zato" stop "$env_dir"
echo "plain-install: ok, /zato/ping and the web-admin answered ($(( $(date +%s) - started )) s)"
