#!/usr/bin/env bash
# Sets up Zato, creates a quickstart environment (SQLite ODB, no other service needed) unless it
# exists, starts it unless it runs, and puts the `zato` command on PATH (a link in ~/.local/bin).
# Usage: scripts/quickstart.sh [ENV_DIR [OPTIONS]]     (default: ~/zato-quickstart)
#   OPTIONS, and those in $ZATO_QUICKSTART_ARGS, are `zato quickstart create`'s (--base-port,
#   --web-admin-port ...); they apply when the environment is created.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
env_dir="${1:-$HOME/zato-quickstart}"
zato=".venv/bin/zato"

# `zato` on PATH as pipx puts its commands there: a link in ~/.local/bin, which the ~/.profile of
# Debian and Ubuntu puts on PATH once the directory exists. A file of another program is left alone.
bin_dir="$HOME/.local/bin"
target="$(pwd)/$zato"
zato_cmd="$target"
if [ -e "$bin_dir/zato" ] && [ ! -L "$bin_dir/zato" ]; then
  launcher="$bin_dir/zato is not ours and was left alone: run Zato as $target"
else
  mkdir -p "$bin_dir"
  ln -sfn "$target" "$bin_dir/zato"
  case ":$PATH:" in
    *":$bin_dir:"*)
      zato_cmd="zato"
      launcher="The zato command: $bin_dir/zato (a link to $target)" ;;
    *)
      launcher="The zato command is $bin_dir/zato (a link to $target),
but $bin_dir is not on your PATH yet. Put it there in this shell and in any other open already
(new login shells on Debian and Ubuntu have it from ~/.profile):
  export PATH=\"\$HOME/.local/bin:\$PATH\"" ;;
  esac
fi

if [ ! -f "$env_dir/config/repo/server.conf" ]; then
  # shellcheck disable=SC2086 - the options are meant to be split, as in the Docker image
  "$zato" quickstart create "$env_dir" --start ${ZATO_QUICKSTART_ARGS:-} "${@:2}"
  passwords="printed above, once"
else
  echo "quickstart: already created in $env_dir (its passwords were printed when it was created;"
  echo "  the CLI keeps its own credential)"
  [ $# -le 1 ] || echo "quickstart: the options given apply only when an environment is created; not used"
  passwords="printed when the environment was created"
  if "$zato" info "$env_dir" --format json | grep -q '"running": true'; then
    echo "quickstart: already running"
  else
    echo "quickstart: starting it"
    "$zato" start "$env_dir"
  fi
fi

info=$("$zato" info "$env_dir")
url=$(echo "$info" | sed -n 's/^server1: *\(http[^ ]*\).*/\1/p')
cat <<TXT

Zato is running:
$(echo "$info" | grep -E '^(server[0-9]+|web-admin):')
Try it:
  curl $url/zato/ping
The web-admin's user is admin; its password was $passwords
(for a new one: $zato_cmd update password $env_dir admin).
Deploy a service by copying a .py file into:
  $env_dir/pickup/incoming/services/
$launcher
Stop it with:
  $zato_cmd stop $env_dir
Next steps: docs/getting-started.md
TXT
