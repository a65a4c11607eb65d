#!/usr/bin/env bash
# tests/package/check-deb.sh — install the headless .deb on this machine, use the installed
# Keyway as a user would on a server, and remove it cleanly.
#
# Usage: tests/package/check-deb.sh PATH/keyway-headless_*.deb
#
# Needs root (dpkg -i); as another user it says it skipped the install and why. Refuses to
# touch a machine that already has a Keyway package installed. Steps:
#   1. dpkg -i; the package is installed and /usr/bin/keyway answers --version and --help;
#      the man page and the desktop entry are in place.
#   2. The installed `keyway --headless` runs with no session bus (so no OS keyring), its
#      secrets in the encrypted file with the passphrase in a key file, in a throwaway config
#      and data dir: an account is added, the running instance reports the file store, and
#      SIGTERM stops it with exit 0 (bounded waits).
#   3. dpkg --purge; the package is gone and none of its files is left.

set -euo pipefail

me="check-deb"
say() { printf '%s: %s\n' "$me" "$*"; }
fail() {
	printf '%s: FAILED: %s\n' "$me" "$*" >&2
	exit 1
}

deb="${1:-}"
[[ -f "$deb" ]] || fail "usage: tests/package/check-deb.sh PATH/keyway-headless_*.deb"
name="$(dpkg-deb -f "$deb" Package)"
version="$(dpkg-deb -f "$deb" Version)"

if [[ "$(id -u)" -ne 0 ]]; then
	say "skipped installing $name: dpkg -i needs root (run scripts/test as root, as CI does)"
	exit 0
fi
for other in "$name" keyway; do
	if dpkg-query -W -f '${Status}' "$other" 2>/dev/null | grep -q 'install ok installed'; then
		say "skipped installing $name: the package $other is already installed here, and this test does not replace it"
		exit 0
	fi
done

work="$(mktemp -d "${TMPDIR:-/tmp}/keyway-deb.XXXXXX")"
keyway_pid=""
cleanup() {
	if [[ -n "$keyway_pid" ]] && kill -0 "$keyway_pid" 2>/dev/null; then
		kill "$keyway_pid" 2>/dev/null || true
	fi
	if dpkg-query -W -f '${Status}' "$name" 2>/dev/null | grep -q installed; then
		dpkg --purge "$name" >/dev/null 2>&1 || true
	fi
	rm -rf -- "$work"
}
trap cleanup EXIT

# 1. Install.
say "dpkg -i $(basename "$deb")"
dpkg -i "$deb" >"$work/dpkg-install.log" 2>&1 || {
	cat "$work/dpkg-install.log" >&2
	fail "dpkg -i failed"
}
dpkg-query -W -f '${Status} ${Version}\n' "$name" | grep -q "install ok installed $version" ||
	fail "$name $version is not installed after dpkg -i"
files="$(dpkg-query -L "$name")"
[[ "$(command -v keyway)" == /usr/bin/keyway ]] || fail "keyway on the PATH is $(command -v keyway), not /usr/bin/keyway"
/usr/bin/keyway --version | grep -q "^keyway " || fail "keyway --version: $(/usr/bin/keyway --version 2>&1)"
/usr/bin/keyway --help | grep -q -- "--headless" || fail "keyway --help does not describe --headless"
[[ -f /usr/share/man/man1/keyway.1.gz ]] || fail "no man page"
grep -q '^Exec=keyway dashboard-url --open$' /usr/share/applications/keyway-dashboard.desktop ||
	fail "no desktop entry opening the dashboard"
say "installed: $(/usr/bin/keyway --version), man page, desktop entry, icons"

# 2. Use it: no session bus, the encrypted file store with a key file.
mkdir -p "$work/runtime"
chmod 700 "$work/runtime"
printf 'a passphrase for the package test\n' >"$work/secrets.key"
chmod 600 "$work/secrets.key"
# `exec`, so that the process started in the background with `run_keyway … &` is Keyway
# itself, not a subshell around it.
run_keyway() {
	exec env -u DBUS_SESSION_BUS_ADDRESS XDG_RUNTIME_DIR="$work/runtime" HOME="$work" \
		KEYWAY_CONFIG="$work/config.toml" KEYWAY_DATA_DIR="$work/data" \
		KEYWAY_KEYRING_SERVICE=keyway-deb-check KEYWAY_SECRETS_KEY_FILE="$work/secrets.key" \
		/usr/bin/keyway "$@"
}
printf 'sk-ant-deb-check-0123456789' | (run_keyway account add anthropic --label Work) >"$work/add.out" 2>"$work/add.err" ||
	fail "keyway account add: $(cat "$work/add.err")"
grep -q "No OS keyring can be reached" "$work/add.err" || fail "the fallback to the file store was not said: $(cat "$work/add.err")"
[[ -s "$work/data/secrets/secrets.db" ]] || fail "no encrypted secrets file after account add"
if grep -q "sk-ant-deb-check" "$work/data/secrets/secrets.db"; then
	fail "the secrets file holds the key in clear"
fi
run_keyway --headless --listen 127.0.0.1:0 </dev/null >"$work/keyway.out" 2>"$work/keyway.err" &
keyway_pid=$!
addr=""
for ((i = 0; i < 300; i++)); do
	addr="$(sed -n 's/.*listening on http:\/\/\([0-9.:]*\).*/\1/p' "$work/keyway.out" | head -n1)"
	[[ -n "$addr" ]] && break
	kill -0 "$keyway_pid" 2>/dev/null || fail "keyway --headless exited: $(cat "$work/keyway.err")"
	sleep 0.1
done
[[ -n "$addr" ]] || fail "keyway --headless did not listen within 30 s: $(cat "$work/keyway.err")"
status="$( (run_keyway --listen "$addr" status) 2>&1)" || fail "keyway status: $status"
grep -q "secrets: the encrypted file $work/data/secrets/secrets.db" <<<"$status" ||
	fail "keyway status does not report the file store: $status"
grep -q "Work" <<<"$status" || fail "keyway status does not list the account: $status"
kill -TERM "$keyway_pid"
rc=0
for ((i = 0; i < 200; i++)); do
	kill -0 "$keyway_pid" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$keyway_pid" 2>/dev/null && fail "keyway did not stop within 20 s of SIGTERM"
wait "$keyway_pid" || rc=$?
keyway_pid=""
((rc == 0)) || fail "keyway exited $rc on SIGTERM: $(cat "$work/keyway.err")"
say "ran the installed keyway --headless at $addr with the encrypted file store; stopped with exit 0"

# 3. Remove.
dpkg --purge "$name" >"$work/dpkg-purge.log" 2>&1 || {
	cat "$work/dpkg-purge.log" >&2
	fail "dpkg --purge failed"
}
if dpkg-query -W -f '${Status}' "$name" 2>/dev/null | grep -q installed; then
	fail "$name is still installed after dpkg --purge"
fi
left=()
while IFS= read -r path; do
	[[ -f "$path" || -L "$path" ]] && left+=("$path")
done <<<"$files"
((${#left[@]} == 0)) || fail "files left after dpkg --purge: ${left[*]}"
say "removed cleanly: dpkg --purge $name left none of its $(wc -l <<<"$files") paths' files"
