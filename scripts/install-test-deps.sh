#!/usr/bin/env bash
# The Debian packages imp's test suite needs. Run as root (or with sudo) on Debian/Ubuntu.
#   chromium            headless browser for the device-flow browser step (driven by playwright-core)
#   gnome-keyring dbus  a real Secret Service for the keychain tests (under dbus-run-session)
#   libsecret-tools     secret-tool, to look inside the keychain from tests
#   tmux                the pseudo-terminal the terminal-UX tests read like a person would
#   postgresql          the PostgreSQL store's tests (a throwaway cluster is started by the tests)
#   zsh fish            shell-completion tests
#   glewlwyd sqlite3 openssl curl
#                       a second, independent IdP that ignores max_age on the device grant
#                       (test/fixtures/glewlwyd/start.sh sets it up through its admin API)
#   asciinema           plays the asciicast exports of session recordings (`asciinema cat`)
#   build-essential python3  compile node-pty (the session pty) and pkcs11js (the PKCS#11 binding)
#                       where npm has no prebuilt binary
#   softhsm2 opensc     a real PKCS#11 token for the audit note key (--audit-key pkcs11:…):
#                       softhsm2-util initialises a throwaway token, pkcs11-tool makes the Ed25519 key
#   redmine redmine-sqlite   a real ticket system for tickets.system (scripts/redmine-test.sh starts a
#                       throwaway instance per test file); its "default" instance is not configured
set -euo pipefail
PACKAGES=(chromium gnome-keyring dbus libsecret-tools tmux postgresql zsh fish glewlwyd sqlite3 openssl curl asciinema build-essential python3 softhsm2 opensc redmine redmine-sqlite)
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-test-deps: all present (${PACKAGES[*]})"
  exit 0
fi
echo "install-test-deps: installing ${missing[*]}"
# Redmine: skip dbconfig-common's "default" instance (no database, no migrations in postinst, no prompt).
echo "redmine redmine/instances/default/dbconfig-install boolean false" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
