#!/usr/bin/env bash
# Sets up Zato and starts a quickstart environment (SQLite ODB, no other service needed).
# Usage: scripts/quickstart.sh [ENV_DIR]     (default: ~/zato-quickstart)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
env_dir="${1:-$HOME/zato-quickstart}"
zato=".venv/bin/zato"
if [ ! -f "$env_dir/config/repo/server.conf" ]; then
  "$zato" quickstart create "$env_dir"
fi
if "$zato" info "$env_dir" --format json | grep -q '"running": true'; then
  echo "quickstart: already running"
else
  "$zato" start "$env_dir"
fi
cat <<TXT

Zato is running. Try it:
  curl http://127.0.0.1:17010/zato/ping
The web-admin is at http://127.0.0.1:8183 (user admin; its password was printed above, once).
Deploy a service by copying a .py file into:
  $env_dir/pickup/incoming/services/
Stop it with:
  $(pwd)/.venv/bin/zato stop $env_dir
Next steps: docs/getting-started.md
TXT
