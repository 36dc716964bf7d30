#!/usr/bin/env bash
# Sets up Zato with its test dependencies, starts the real peers the tests need, and runs the
# suite: once with the compiled Cython modules, once more for the pure-Python twins.
# Usage: scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
scripts/peers.sh
export ZATO_TEST_PG_USER=zato_test ZATO_TEST_PG_PASSWORD=zato_test
py=.venv/bin/python

echo "== lint: ruff and mypy"
.venv/bin/ruff check zato tests web-admin
.venv/bin/mypy

echo "== plain install: pip install into an empty venv, then start and ping a quickstart"
scripts/test-plain-install.sh

echo "== tests, compiled modules"
$py -m pytest -q "$@"
echo "== tests, pure-Python twins (ZATO_PURE_PYTHON=1)"
ZATO_PURE_PYTHON=1 $py -m pytest -q "$@"
