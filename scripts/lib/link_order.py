#!/usr/bin/env python3
"""Writes the link order of Keyway's code: the functions of the executable that ran at start,
then those that ran serving requests (scripts/link-order says when and why).

Runs inside a keyring session (scripts/lib/keyring-session.sh): the accounts' secrets go to
its Secret Service, as a user's do.
"""

import argparse
import asyncio
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECRETS = [f"sk-ant-api03-link-order-account-{n}" for n in ("one", "two", "three")]
REQUESTS = 100  # of each kind, plain and streamed
START_TIMEOUT = 120.0  # seconds; under callgrind a start takes a few
BODY = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 1024,
    "system": "You are a concise assistant for a software team.",
    "messages": [
        {"role": "user", "content": "Summarise in one sentence what changed in this diff."},
        {"role": "assistant", "content": "It reuses connections and hides credentials."},
        {"role": "user", "content": "Now say it in five words."},
    ],
}


def wait_for_line(path: Path, needle: str, proc: subprocess.Popen) -> str:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if path.exists():
            for line in path.read_text(errors="replace").splitlines():
                if needle in line:
                    return line
        if proc.poll() is not None:
            sys.exit(f"link_order: {proc.args[0]} ended ({proc.returncode}): {path.read_text()}")
        time.sleep(0.1)
    sys.exit(f"link_order: no `{needle}` from {proc.args[0]} within {START_TIMEOUT:.0f} s")


def wait_for_rest(proc: subprocess.Popen):
    """Until the process has used no CPU for a second: it printed its address before building
    its router and starting its background work, and at rest all of that has run."""
    stat = Path(f"/proc/{proc.pid}/stat")
    deadline = time.monotonic() + START_TIMEOUT
    last = None
    while time.monotonic() < deadline:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        used = int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
        if used == last:
            return
        last = used
        time.sleep(1.0)
    sys.exit(f"link_order: {proc.args[0]} did not come to rest within {START_TIMEOUT:.0f} s")


def address(line: str) -> tuple[str, int]:
    match = re.search(r"http://([0-9.]+):(\d+)", line) or re.search(r"([0-9.]+):(\d+)", line)
    if not match:
        sys.exit(f"link_order: no address in `{line}`")
    return match.group(1), int(match.group(2))


def functions(profile: Path) -> set[str]:
    """Every function callgrind saw."""
    seen = set()
    for line in profile.read_text(errors="replace").splitlines():
        match = re.match(r"c?fn=\(\d+\) (.+)", line)
        if match:
            seen.add(match.group(1).strip())
    return seen


def traced_run(keyway: str, env, work: Path, name: str, serve) -> set[str]:
    profile = work / f"{name}.callgrind"
    out = work / f"{name}.out"
    with open(out, "w") as stdout, open(work / f"{name}.err", "w") as stderr:
        proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--demangle=no", f"--callgrind-out-file={profile}",
             keyway, "--headless", "--listen", "127.0.0.1:0"],
            env=env, stdout=stdout, stderr=stderr)
    try:
        host, port = address(wait_for_line(out, "listening on", proc))
        wait_for_rest(proc)
        serve(host, port)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=START_TIMEOUT)
    return functions(profile)


def requests(env, keyway: str):
    key = subprocess.run([keyway, "client-key"], env=env, check=True, capture_output=True,
                         text=True, timeout=START_TIMEOUT).stdout.strip()

    def serve(host: str, port: int):
        conn = http.client.HTTPConnection(host, port, timeout=START_TIMEOUT)
        for stream in (False, True):
            body = json.dumps({**BODY, "stream": stream})
            for _ in range(REQUESTS):
                conn.request("POST", "/v1/messages", body, {
                    "content-type": "application/json",
                    "anthropic-version": "2023-06-01",
                    "x-api-key": key,
                })
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    sys.exit(f"link_order: a request through Keyway answered {response.status}")
        conn.close()
    return serve


async def desktop_functions(binary: str, work: Path) -> set[str]:
    """The functions a desktop build runs from its start to rest (tray shown, no window), on
    a virtual display with tests/desktop/smoke.py's panel, secrets in Keyway's encrypted
    file."""
    sys.path.insert(0, str(ROOT / "tests/desktop"))
    import smoke  # the desktop smoke test's pieces: Xvfb, the panel, the tray menu

    logs = work / "desktop-logs"
    home = work / "desktop-home"
    for d in (logs, home / ".config", home / ".local/share", home / ".cache"):
        d.mkdir(parents=True)
    key_file = work / "passphrase"
    key_file.write_text("link-order-passphrase")
    key_file.chmod(0o600)
    (work / "desktop-config").mkdir()
    config = work / "desktop-config" / "config.toml"
    config.write_text('listen = "127.0.0.1:0"\n\n'
                      '[providers.anthropic]\nbase_url = "http://127.0.0.1:9"\n')
    procs = smoke.Processes()
    display, _ = smoke.start_xvfb(procs, work, logs)
    env = {k: v for k, v in os.environ.items() if k not in ("RUST_LOG", "WAYLAND_DISPLAY")}
    env.update(KEYWAY_CONFIG=str(config), KEYWAY_DATA_DIR=str(work / "desktop-data"),
               KEYWAY_SECRETS="file", KEYWAY_SECRETS_KEY_FILE=str(key_file), HOME=str(home),
               XDG_CONFIG_HOME=str(home / ".config"), XDG_DATA_HOME=str(home / ".local/share"),
               XDG_CACHE_HOME=str(home / ".cache"), DISPLAY=display, NO_AT_BRIDGE="1")
    subprocess.run([binary, "account", "add", "anthropic", "--label", "Desktop"],
                   input=b"sk-ant-link-order", env=env, check=True, capture_output=True,
                   timeout=START_TIMEOUT)
    profile = work / "desktop.callgrind"
    bus, watcher = await smoke.start_watcher()
    try:
        keyway = procs.start("keyway", ["valgrind", "--tool=callgrind", "--demangle=no",
                                        f"--callgrind-out-file={profile}", binary], logs, env=env)
        tray = await smoke.tray_when_listening(bus, watcher, keyway, START_TIMEOUT)
        await asyncio.to_thread(wait_for_rest, keyway)
        await tray.click("Quit Keyway")
        await asyncio.to_thread(keyway.wait, START_TIMEOUT)
    finally:
        bus.disconnect()
        procs.stop_all()
    return functions(profile)


def code_of(binary: str) -> set[str]:
    nm = subprocess.run(["nm", "--defined-only", binary], check=True, capture_output=True,
                        text=True).stdout
    return {f[2] for f in (line.split() for line in nm.splitlines())
            if len(f) == 3 and f[1] in "tTwW"}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keyway", required=True)
    parser.add_argument("--fake", required=True)
    parser.add_argument("--desktop", help="a desktop build of keyway, whose start is added")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()

    code = code_of(args.keyway)

    with tempfile.TemporaryDirectory(prefix="keyway-link-order-") as tmp:
        work = Path(tmp)
        fake_out = work / "fake.out"
        fake_cmd = [args.fake, "--listen", "127.0.0.1:0", "--no-record"]
        for secret in SECRETS:
            fake_cmd += ["--key", f"anthropic:{secret}"]
        with open(fake_out, "w") as stdout:
            fake = subprocess.Popen(fake_cmd, stdout=stdout, stderr=subprocess.STDOUT)
        try:
            upstream = "http://%s:%d" % address(wait_for_line(fake_out, "listening on", fake))
            (work / "config").mkdir()
            config = work / "config" / "config.toml"
            config.write_text(
                f'[providers.anthropic]\nbase_url = "{upstream}"\n\n'
                '[policies.anthropic]\nstrategy = "round_robin"\nspread = "request"\n')
            env = {**os.environ, "KEYWAY_CONFIG": str(config),
                   "KEYWAY_DATA_DIR": str(work / "data"),
                   "KEYWAY_KEYRING_SERVICE": f"keyway-link-order-{os.getpid()}"}
            env.pop("RUST_LOG", None)
            for n, secret in enumerate(SECRETS):
                subprocess.run([args.keyway, "account", "add", "anthropic", "--label", f"a{n}"],
                               env=env, input=secret, text=True, check=True, capture_output=True,
                               timeout=START_TIMEOUT)
            start = traced_run(args.keyway, env, work, "start", lambda host, port: None) & code
            serving = traced_run(args.keyway, env, work, "serve", requests(env, args.keyway)) & code
        finally:
            fake.kill()
            fake.wait()
        if args.desktop:
            start |= asyncio.run(desktop_functions(args.desktop, work)) & code_of(args.desktop)

    # Sorted within each part, so that two runs give the same file but for the functions
    # timing decides (a poll that found data or not); the names' prefixes keep a crate's
    # functions together.
    at_start = sorted(start)
    order = at_start + sorted(serving - start)
    builds = "headless and desktop builds" if args.desktop else "headless build"
    header = (
        "# Written by scripts/link-order: the functions of Keyway's executable that ran at start\n"
        f"# ({builds}: {len(at_start)}), then those that ran serving requests"
        f" ({len(order) - len(at_start)}).\n"
    )
    args.out.write_text(header + "".join(f + "\n" for f in order))
    print(f"link_order: {args.out}: {len(at_start)} functions at start, "
          f"{len(order) - len(at_start)} more serving requests")


if __name__ == "__main__":
    main()
