#!/usr/bin/env bash
# Installs what Zato needs on a fresh Debian/Ubuntu machine into ./.venv (idempotent).
# Usage: scripts/setup.sh [--test]   (--test adds the test dependencies)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/pip-quiet.sh

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

need_apt=()
command -v python3 >/dev/null || need_apt+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
command -v gcc >/dev/null || need_apt+=(gcc)
py_inc=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])' 2>/dev/null || echo /nonexistent)
[ -f "$py_inc/Python.h" ] || need_apt+=(python3-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]} with apt-get"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

python3 - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f'setup: Zato needs Python 3.11 or newer, found {sys.version.split()[0]}')
PY

[ -x .venv/bin/python ] || python3 -m venv .venv
# A failed install stops here with pip's own message (an image built without the package index
# would otherwise end up without the `zato` command)
pip_quiet .venv/bin/pip install -q --upgrade pip setuptools wheel cython
extras=""
[ "${1:-}" = "--test" ] && extras="[test]"
# Builds the Cython modules in ext/ in place; without a compiler the pure-Python twins are used
pip_quiet .venv/bin/pip install -q -e ".${extras}"
[ -x .venv/bin/zato ] || { echo "setup: the install left no .venv/bin/zato" >&2; exit 1; }
.venv/bin/python setup.py -q build_ext --inplace >/dev/null 2>&1 || echo "setup: Cython build failed; using the pure-Python twins"
.venv/bin/python -c 'import zato.accel as a, importlib; m = a.load("zato.proto.http1"); print("setup: ready;", "compiled" if a.is_compiled(m) else "pure-Python", "HTTP parser")'
