# Sourced by the scripts that install packages (setup.sh, test-plain-install.sh).
#
# pip_quiet CMD...: runs a pip command; when it fails, prints everything it said and returns its
# exit status, so that `set -e` stops the script there. The "WARNING: Location '...' is ignored"
# lines that some pip configurations print for every package are left out either way.
pip_quiet() {
  local out status=0
  out=$("$@" 2>&1) || status=$?
  if [ "$status" -ne 0 ]; then
    printf '%s\n' "$out" | grep -v '^WARNING: Location' >&2 || true
    echo "pip failed (exit $status): $*" >&2
    return "$status"
  fi
  # grep exits 1 when it filtered out every line: that is not a failure
  printf '%s\n' "$out" | grep -v -e '^WARNING: Location' -e '^$' || true
}
