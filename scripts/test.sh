#!/usr/bin/env bash
# Sets up Zato with its test dependencies, starts the real peers the tests need, and runs the
# suite with the compiled Cython modules, then what runs through the pure-Python twins once more.
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
# The unit tests of each compiled module already run it and its pure-Python twin side by side
# (tests/twins.py). This second pass starts real servers on the pure-Python twins (ZATO_PURE_PYTHON=1:
# the HTTP/1.1 parser, the rate limiter's counters, the WebSocket masker) and runs what goes through
# them: HTTP framing, REST, security and rate limits, the connection flood, JSON-RPC, WebSockets.
# Tests named on the command line run in both passes, as they are.
PURE_TESTS=(tests/proto tests/security tests/server tests/test_extensions.py
            tests/e2e/test_raw_http.py tests/e2e/test_rest.py tests/e2e/test_security.py
            tests/e2e/test_rate_limits.py tests/e2e/test_rate_limit_check.py tests/e2e/test_default_allow_list.py
            tests/e2e/test_connection_flood.py tests/e2e/test_jsonrpc.py tests/e2e/test_lifecycle.py
            tests/e2e/test_wsx.py tests/e2e/test_wsx_conformance.py)
echo "== tests, pure-Python twins (ZATO_PURE_PYTHON=1): what runs through them"
if [ "$#" -gt 0 ]; then
    ZATO_PURE_PYTHON=1 $py -m pytest -q "$@"
else
    ZATO_PURE_PYTHON=1 $py -m pytest -q "${PURE_TESTS[@]}"
fi
