#!/usr/bin/env bash
# Container entry point: create the environment on first start, then run in the foreground so
# the container's stop signal (SIGTERM) reaches the servers and in-flight requests finish.
set -euo pipefail
env_dir="${ZATO_ENV:-/opt/zato/env}"
if [ ! -f "$env_dir/config/repo/server.conf" ]; then
  # shellcheck disable=SC2086 - the options are meant to be split
  zato quickstart create "$env_dir" --host 0.0.0.0 ${ZATO_QUICKSTART_ARGS:-}
fi
exec zato start "$env_dir" --fg
