#!/usr/bin/env bash
# scripts/lib/keyring-session.sh — run a command against a private, unlocked
# Secret Service, so that the `keyring` crate (Secret Service over D-Bus) works
# headless, in CI and on a developer's machine alike, without ever touching the
# caller's real keyring.
#
# Usage: scripts/lib/keyring-session.sh COMMAND [ARGS...]
#   e.g. scripts/lib/keyring-session.sh cargo test -p keyway-core
#
# What it does:
#   1. Makes a throwaway sandbox dir and points HOME, XDG_DATA_HOME,
#      XDG_CONFIG_HOME, XDG_STATE_HOME, XDG_CACHE_HOME and XDG_RUNTIME_DIR into
#      it (CARGO_HOME, RUSTUP_HOME, PYENV_ROOT and npm's cache stay pinned to
#      the real home so the toolchains keep working).
#   2. Starts a private session bus with `dbus-run-session`.
#   3. On that bus starts gnome-keyring-daemon (secrets component only) with
#      `--unlock`, feeding a fixed password on stdin: with an empty data dir the
#      daemon creates the "login" keyring with that password, unlocks it, and
#      the Secret Service's "default" alias points at it, so creating an item
#      needs no prompt.
#   4. Waits (bounded polling) until org.freedesktop.secrets is owned on the bus.
#   5. Checks with Python `secretstorage` that an item can be stored, read back
#      and deleted in the default collection; fails with a clear message if not.
#   6. Runs COMMAND there; afterwards stops the daemon, the bus and removes the
#      sandbox. Exits with COMMAND's exit code.
#
# Environment:
#   KEYRING_CHECK_PYTHON  a Python with `secretstorage` for step 5
#                         (default: <repo>/.venv/bin/python, made by scripts/test)
#   KEYRING_SESSION_PASSWORD  the throwaway keyring's password (default keyway-test)
# Exported to COMMAND, besides the dirs above and DBUS_SESSION_BUS_ADDRESS:
#   KEYRING_SESSION_DIR   the sandbox dir
#   KEYRING_SESSION_REAL_HOME  the caller's real HOME
#
# Needs: dbus-run-session, dbus-send (Debian package dbus), gnome-keyring-daemon
# (package gnome-keyring). scripts/test installs them.
#
# Without step 3's --unlock the daemon would still be D-Bus-activated on first
# use, but with no login keyring: creating the default collection then needs a
# GUI prompt (gcr-prompter), which fails without a display, and the keyring
# crate gets Error::NoStorageAccess. As root in a container, dbus-daemon logs
# "Failed to set fd limit to 65536: Operation not permitted": harmless.

set -euo pipefail

self="${BASH_SOURCE[0]}"
repo_root="$(cd "$(dirname "$self")/../.." && pwd)"
me="keyring-session"

die() {
	printf '%s: error: %s\n' "$me" "$*" >&2
	exit 1
}

if [[ $# -eq 0 ]]; then
	die "usage: scripts/lib/keyring-session.sh COMMAND [ARGS...]"
fi

# ---------------------------------------------------------------------------
# Outer phase: sandbox dirs, then re-run this script inside a private bus.
# ---------------------------------------------------------------------------
if [[ "${_KEYRING_SESSION_PHASE:-}" != inner ]]; then
	missing=()
	for cmd in dbus-run-session dbus-send gnome-keyring-daemon; do
		command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
	done
	if ((${#missing[@]})); then
		die "missing ${missing[*]}: install the Debian/Ubuntu packages 'dbus' and 'gnome-keyring' (scripts/test does this when run as root)"
	fi

	real_home="${HOME:-}"
	if [[ -z "$real_home" ]]; then
		real_home="$(getent passwd "$(id -u)" | cut -d: -f6)"
	fi
	sandbox="$(mktemp -d "${TMPDIR:-/tmp}/keyway-keyring.XXXXXX")"
	trap 'rm -rf -- "$sandbox"' EXIT
	mkdir -p "$sandbox/home/.local/share" "$sandbox/home/.config" \
		"$sandbox/home/.local/state" "$sandbox/home/.cache" "$sandbox/runtime"
	chmod 700 "$sandbox/home" "$sandbox/runtime"

	# Keep the toolchains found under the real home usable with a fake HOME.
	export CARGO_HOME="${CARGO_HOME:-$real_home/.cargo}"
	export RUSTUP_HOME="${RUSTUP_HOME:-$real_home/.rustup}"
	if [[ -z "${PYENV_ROOT:-}" && -d "$real_home/.pyenv" ]]; then
		export PYENV_ROOT="$real_home/.pyenv"
	fi
	export npm_config_cache="${npm_config_cache:-$real_home/.npm}"

	rc=0
	env -u DBUS_SESSION_BUS_ADDRESS -u GNOME_KEYRING_CONTROL \
		HOME="$sandbox/home" \
		XDG_DATA_HOME="$sandbox/home/.local/share" \
		XDG_CONFIG_HOME="$sandbox/home/.config" \
		XDG_STATE_HOME="$sandbox/home/.local/state" \
		XDG_CACHE_HOME="$sandbox/home/.cache" \
		XDG_RUNTIME_DIR="$sandbox/runtime" \
		KEYRING_SESSION_DIR="$sandbox" \
		KEYRING_SESSION_REAL_HOME="$real_home" \
		_KEYRING_SESSION_PHASE=inner \
		dbus-run-session -- bash "$self" "$@" || rc=$?
	exit "$rc"
fi

# ---------------------------------------------------------------------------
# Inner phase: on the private bus. Start and unlock the keyring, check it,
# run the command.
# ---------------------------------------------------------------------------
unset _KEYRING_SESSION_PHASE

bus_call() {
	dbus-send --session --print-reply=literal --reply-timeout=5000 \
		--dest=org.freedesktop.DBus /org/freedesktop/DBus "$@"
}

secrets_owned() {
	bus_call org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null |
		grep -qw true
}

[[ -n "${DBUS_SESSION_BUS_ADDRESS:-}" ]] || die "dbus-run-session did not set DBUS_SESSION_BUS_ADDRESS"
if secrets_owned; then
	die "org.freedesktop.secrets is already owned on a fresh private bus; refusing to go on"
fi

# --unlock reads the password on stdin; the daemon forks into the background,
# serves org.freedesktop.secrets on this bus and exits when the bus goes away.
# It may print VAR=value lines (e.g. GNOME_KEYRING_CONTROL): export them.
daemon_out="$(printf '%s' "${KEYRING_SESSION_PASSWORD:-keyway-test}" |
	gnome-keyring-daemon --unlock --components=secrets)" ||
	die "gnome-keyring-daemon --unlock --components=secrets failed (see its messages above)"
while IFS= read -r line; do
	if [[ "$line" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; then
		export "${line?}"
	fi
done <<<"$daemon_out"

# Bounded wait for the daemon to own its name (usually it already does).
for ((i = 0; i < 100; i++)); do
	secrets_owned && break
	sleep 0.1
done
secrets_owned || die "gnome-keyring-daemon did not take org.freedesktop.secrets on the private bus within 10 s"

daemon_pid="$(bus_call org.freedesktop.DBus.GetConnectionUnixProcessID string:org.freedesktop.secrets 2>/dev/null |
	awk '{print $2}')" || daemon_pid=""

# Prove the Secret Service is usable without a prompt: store, read back, delete.
check_py="${KEYRING_CHECK_PYTHON:-$repo_root/.venv/bin/python}"
if ! "$check_py" -c 'import secretstorage' >/dev/null 2>&1; then
	die "cannot check the Secret Service: '$check_py' has no 'secretstorage' module (run scripts/test once to create .venv, or set KEYRING_CHECK_PYTHON)"
fi
check_rc=0
timeout 30 "$check_py" - <<'PY' || check_rc=$?
import sys
import secretstorage
from secretstorage.exceptions import SecretStorageException

attrs = {"service": "keyway-keyring-session-check", "username": "probe"}
secret = b"keyring-session-probe"
try:
    conn = secretstorage.dbus_init()
    col = secretstorage.get_default_collection(conn)
    if col.is_locked():
        sys.exit("keyring-session: the default collection %s is locked" % col.collection_path)
    item = col.create_item("keyway keyring-session check", attrs, secret, replace=True)
    found = [i for i in col.search_items(attrs)]
    if len(found) != 1 or found[0].get_secret() != secret:
        sys.exit("keyring-session: stored a probe item but could not read it back")
    item.delete()
    if list(col.search_items(attrs)):
        sys.exit("keyring-session: the probe item is still there after delete")
    print("keyring-session: Secret Service OK: default collection '%s' (%s) unlocked; "
          "probe item stored, read back and deleted without a prompt"
          % (col.get_label(), col.collection_path))
except secretstorage.exceptions.PromptDismissedException:
    sys.exit("keyring-session: the Secret Service wanted to show a prompt (no unlocked default "
             "collection), which cannot work headless")
except SecretStorageException as e:
    sys.exit("keyring-session: Secret Service check failed: %s: %s" % (type(e).__name__, e))
PY
if ((check_rc != 0)); then
	if ((check_rc == 124)); then
		die "the Secret Service check timed out after 30 s (a prompt is probably waiting): the keyring is not usable headless"
	fi
	die "the private Secret Service is not usable (see above); the keyring crate would fail the same way"
fi

rc=0
"$@" || rc=$?

if [[ "$daemon_pid" =~ ^[0-9]+$ ]]; then
	kill "$daemon_pid" 2>/dev/null || true
fi
exit "$rc"
