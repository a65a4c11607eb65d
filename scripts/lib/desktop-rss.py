#!/usr/bin/env python3
"""What the desktop app costs at rest: resident memory and idle wake-ups of `keyway` (the tray
app) on a virtual display, with one API-key account, at rest, with the dashboard window open,
and after closing it.

Usage:
    .venv/bin/python scripts/lib/desktop-rss.py [--json] [--smaps] [--cycles N] KEYWAY_BIN

    KEYWAY_BIN   a desktop build of keyway (e.g. target/release/keyway)
    --json       one JSON object on stdout instead of the table (for scripts/bench)
    --smaps      also print where the main process's resident memory is, by mapping, in
                 each phase (from /proc/PID/smaps)
    --cycles N   open and close the dashboard N times (default 1); each close is measured
                 (0: the figures at rest only)
    --settle S   seconds at rest before the first sample (default 20: past the tokio
                 blocking pool's 10 s keep-alive, so no thread ends during the count)
    --window S   seconds over which idle wake-ups are counted (default 30)

Needs Xvfb and a D-Bus session bus (without DBUS_SESSION_BUS_ADDRESS the script re-runs
itself under `dbus-run-session`), and the Python of scripts/test's .venv (dbus-next): it plays
the desktop panel (a StatusNotifierWatcher) with tests/desktop/smoke.py's pieces, opens the
dashboard from the tray menu (Open dashboard, over com.canonical.dbusmenu) and closes it as a
window manager's × does (WM_DELETE_WINDOW). Secrets are in Keyway's encrypted file under a
throwaway config and data dir; the user's own are never touched. No request is sent.

Figures, per phase (rest, window open, after close):
    main    VmRSS of the keyway process (/proc/PID/status)
    total   VmRSS summed over keyway and its descendants (WebKitWebProcess,
            WebKitNetworkProcess: the user pays for them too); shared pages count once per
            process, so `pss` (proportional, from smaps_rollup) is given beside it
Idle wake-ups: voluntary + non-voluntary context switches per minute summed over keyway's
threads present at both samples (and, apart, over its descendants), at rest and after close.
"""

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests/desktop"))
import smoke  # noqa: E402  (the desktop smoke test's pieces: Xvfb, the panel, the tray menu)

MIB = 1024 * 1024
# The stdout the caller gave, when the script runs itself again under dbus-run-session.
OUT_FD = "DESKTOP_RSS_STDOUT_FD"
# Deadlines (seconds) for what the script waits on; never sleeps as synchronisation.
START_TIMEOUT = 60
WINDOW_TIMEOUT = 30
CLOSE_TIMEOUT = 15
# After a phase's condition holds: let it settle before sampling (a measurement, not a wait).
OPEN_SETTLE = 5
CLOSE_SETTLE = 10


def read_kib(path, key):
    for line in Path(path).read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def comm(pid):
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def memory(pid):
    """{main, total, pss, processes: [(pid, comm, rss KiB, pss KiB)]} in KiB."""
    procs = []
    for p in [pid, *sorted(smoke.descendants(pid))]:
        try:
            rss = read_kib(f"/proc/{p}/status", "VmRSS")
            pss = read_kib(f"/proc/{p}/smaps_rollup", "Pss")
        except OSError:
            continue  # it ended meanwhile
        procs.append((p, comm(p), rss, pss))
    return {
        "main": procs[0][2] if procs and procs[0][0] == pid else 0,
        "main_pss": procs[0][3] if procs and procs[0][0] == pid else 0,
        "total": sum(r for _, _, r, _ in procs),
        "pss": sum(s for _, _, _, s in procs),
        "processes": procs,
    }


def switches(pid):
    """{(pid, tid): context switches so far} for `pid` and its descendants' threads."""
    out = {}
    for p in [pid, *sorted(smoke.descendants(pid))]:
        try:
            tasks = list(Path(f"/proc/{p}/task").iterdir())
        except OSError:
            continue
        for t in tasks:
            try:
                status = (t / "status").read_text().splitlines()
            except OSError:
                continue
            n = sum(int(line.split()[1]) for line in status if "ctxt_switches" in line)
            out[(p, int(t.name))] = n
    return out


async def wakeups(pid, seconds):
    """Wake-ups per minute of `pid`'s threads and of its descendants' over `seconds`, counting
    only threads present at both samples."""
    a = switches(pid)
    await asyncio.sleep(seconds)  # the measuring window itself
    b = switches(pid)
    main = sum(b[k] - a[k] for k in b if k in a and k[0] == pid)
    children = sum(b[k] - a[k] for k in b if k in a and k[0] != pid)
    threads = sum(1 for k in b if k in a and k[0] == pid)
    per_thread = defaultdict(int)
    for k in b:
        if k in a and k[0] == pid and b[k] != a[k]:
            try:
                name = Path(f"/proc/{pid}/task/{k[1]}/comm").read_text().strip()
            except OSError:
                name = "?"
            per_thread[name] += b[k] - a[k]
    scale = 60 / seconds
    return {
        "main": round(main * scale),
        "children": round(children * scale),
        "threads": threads,
        "by_thread": {n: round(v * scale) for n, v in sorted(per_thread.items())},
    }


def classify(path):
    name = path.rsplit("/", 1)[-1]
    for key in ("libwebkit2gtk", "libjavascriptcoregtk", "libgtk-3", "libgdk-3", "libglib",
                "libgio", "libicu", "libLLVM", "libgallium", "libmesa", "libharfbuzz",
                "libayatana", "libcairo", "libpango", "libfontconfig", "libfreetype"):
        if name.startswith(key):
            return key
    if path == "":
        return "[anon]"
    if path.startswith("["):
        return path
    if "/fontconfig/" in path or path.endswith(".cache-7") or path.endswith(".cache-8"):
        return "fontconfig caches"
    if name.endswith((".ttf", ".otf", ".ttc", ".pfb")):
        return "font files"
    if ".so" in name:
        return "other libraries"
    return name


def smaps(pid):
    """Resident KiB of `pid` by mapping class: {class: (rss, anonymous, private dirty)}."""
    groups = defaultdict(lambda: [0, 0, 0])
    current = None
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        parts = line.split()
        if not parts:
            continue
        if "-" in parts[0] and not parts[0].endswith(":"):
            current = groups[classify(parts[5] if len(parts) > 5 else "")]
        elif parts[0] == "Rss:":
            current[0] += int(parts[1])
        elif parts[0] == "Anonymous:":
            current[1] += int(parts[1])
        elif parts[0] == "Private_Dirty:":
            current[2] += int(parts[1])
    return dict(sorted(groups.items(), key=lambda kv: -kv[1][0]))


def mib(kib):
    return f"{kib / 1024:6.1f} MiB"


class Measure:
    def __init__(self, args, tmp):
        self.smoke, self.args, self.tmp = smoke, args, tmp
        self.procs = smoke.Processes()
        self.log_dir = tmp / "logs"
        self.log_dir.mkdir()
        self.phases = {}
        self.maps = {}

    def say(self, text):
        print(f"desktop-rss: {text}", file=sys.stderr, flush=True)

    async def run(self):
        smoke = self.smoke
        binary = Path(self.args.binary).resolve()
        display, self.fb = smoke.start_xvfb(self.procs, self.tmp, self.log_dir)
        home = self.tmp / "home"
        for d in (".config", ".local/share", ".cache"):
            (home / d).mkdir(parents=True)
        key_file = self.tmp / "passphrase"
        key_file.write_text("desktop-rss-passphrase")
        key_file.chmod(0o600)
        config = self.tmp / "config.toml"
        # Nothing listens on port 9: no request is sent anyway.
        config.write_text('listen = "127.0.0.1:0"\n\n'
                          '[providers.anthropic]\nbase_url = "http://127.0.0.1:9"\n')
        env = {k: v for k, v in os.environ.items() if k not in ("RUST_LOG", "WAYLAND_DISPLAY")}
        env.update(
            KEYWAY_CONFIG=str(config),
            KEYWAY_DATA_DIR=str(self.tmp / "data"),
            KEYWAY_SECRETS="file",
            KEYWAY_SECRETS_KEY_FILE=str(key_file),
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / ".config"),
            XDG_DATA_HOME=str(home / ".local/share"),
            XDG_CACHE_HOME=str(home / ".cache"),
            DISPLAY=display,
            NO_AT_BRIDGE="1",
        )
        subprocess.run([str(binary), "account", "add", "anthropic", "--label", "Rest"],
                       input=b"sk-ant-rest", env=env, check=True, capture_output=True,
                       timeout=120)
        bus, watcher = await smoke.start_watcher()
        try:
            keyway = self.procs.start("keyway", [str(binary)], self.log_dir, env=env)
            self.pid = keyway.pid
            self.say(f"{binary} pid {keyway.pid} on {display}")
            tray = await smoke.tray_when_listening(bus, watcher, keyway, START_TIMEOUT)

            self.say(f"at rest: settling {self.args.settle} s, then counting wake-ups over "
                     f"{self.args.window} s")
            await asyncio.sleep(self.args.settle)  # settling before a measurement
            self.sample("rest")
            self.phases["rest"]["wakeups"] = await wakeups(self.pid, self.args.window)

            x11 = smoke.X11(display)
            try:
                suffix = ""
                for cycle in range(1, self.args.cycles + 1):
                    suffix = "" if cycle == 1 else f" {cycle}"
                    await tray.click("Open dashboard")
                    await self.dashboard_shown(x11)
                    await asyncio.sleep(OPEN_SETTLE)
                    self.sample("window open" + suffix)
                    for w in x11.windows("Keyway"):
                        x11.delete_window(w)
                    await self.dashboard_closed(x11)
                    await asyncio.sleep(CLOSE_SETTLE)
                    self.sample("after close" + suffix)
                if self.args.cycles:
                    self.phases["after close" + suffix]["wakeups"] = await wakeups(
                        self.pid, self.args.window)
            finally:
                x11.close()
            await tray.click("Quit Keyway")
            await asyncio.to_thread(keyway.wait, 15)
        finally:
            bus.disconnect()
            self.procs.stop_all()

    def sample(self, phase):
        self.phases[phase] = memory(self.pid)
        if self.args.smaps:
            self.maps[phase] = smaps(self.pid)
        m = self.phases[phase]
        self.say(f"{phase}: main {mib(m['main'])}, total {mib(m['total'])} "
                 f"({len(m['processes'])} processes)")

    async def dashboard_shown(self, x11):
        smoke = self.smoke
        state = {"last": None, "still": None}

        def rendered():
            if not x11.windows("Keyway"):
                return False
            _, _, rgb, colours = smoke.read_xwd(self.fb)
            now = time.monotonic()
            if colours < smoke.BLANK_BELOW:
                return False
            if rgb != state["last"]:
                state.update(last=rgb, still=now)
            return now - state["still"] >= 1.0
        await smoke.poll("the dashboard renders", WINDOW_TIMEOUT,
                         lambda: asyncio.to_thread(rendered), interval=0.25)

    async def dashboard_closed(self, x11):
        smoke = self.smoke
        await smoke.poll("the dashboard window goes", CLOSE_TIMEOUT,
                         lambda: asyncio.to_thread(lambda: not x11.windows("Keyway")))
        # Its web process ends with its page (when the webview is destroyed, not hidden);
        # an older build keeps it, so its going is waited for but not required.
        try:
            await smoke.poll("the web process ends", CLOSE_TIMEOUT, lambda: not any(
                name.startswith("WebKitWebProces") for name in smoke.descendants(self.pid).values()))
        except smoke.CheckFailed:
            self.say("the WebKit web process is still there after closing the window")

    def report(self):
        if self.args.json:
            out = {}
            for phase, m in self.phases.items():
                out[phase] = {
                    "main_rss_kib": m["main"],
                    "main_pss_kib": m["main_pss"],
                    "total_rss_kib": m["total"],
                    "total_pss_kib": m["pss"],
                    "processes": [{"pid": p, "comm": c, "rss_kib": r, "pss_kib": s}
                                  for p, c, r, s in m["processes"]],
                }
                if "wakeups" in m:
                    out[phase]["wakeups_per_min"] = m["wakeups"]
            print(json.dumps(out, indent=2))
            return
        print(f"{'phase':<14} {'main RSS':>10} {'main PSS':>10} {'total RSS':>10} "
              f"{'total PSS':>10}  processes")
        for phase, m in self.phases.items():
            names = ", ".join(f"{c} {r // 1024}" for _, c, r, _ in m["processes"])
            print(f"{phase:<14} {mib(m['main'])} {mib(m['main_pss'])} {mib(m['total'])} "
                  f"{mib(m['pss'])}  {names}")
        for phase, m in self.phases.items():
            if "wakeups" in m:
                w = m["wakeups"]
                busy = " ".join(f"{n}:{v}" for n, v in w["by_thread"].items())
                print(f"idle wake-ups/min, {phase}: keyway {w['main']} ({w['threads']} threads"
                      f"{'; ' + busy if busy else ''}), descendants {w['children']}")
        for phase, groups in self.maps.items():
            print(f"\nmain process by mapping, {phase} (RSS / anonymous / private dirty, MiB):")
            for name, (rss, anon, dirty) in list(groups.items())[:16]:
                print(f"  {name:<28} {rss / 1024:7.1f} {anon / 1024:7.1f} {dirty / 1024:7.1f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("binary")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--smaps", action="store_true")
    parser.add_argument("--cycles", type=int, default=1)
    parser.add_argument("--settle", type=float, default=20)
    parser.add_argument("--window", type=float, default=30)
    args = parser.parse_args()
    if not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        if shutil.which("dbus-run-session") is None:
            sys.exit("desktop-rss: no session bus and no dbus-run-session (Debian package dbus)")
        # What the bus daemon and the services it starts print (WebKit asks for the
        # accessibility registry) goes to stderr; the figures alone to this stdout.
        out = os.dup(1)
        os.set_inheritable(out, True)
        os.dup2(2, 1)
        os.environ[OUT_FD] = str(out)
        os.execvp("dbus-run-session", ["dbus-run-session", "--", sys.executable, *sys.argv])
    if os.environ.get(OUT_FD):
        sys.stdout.flush()
        os.dup2(int(os.environ.pop(OUT_FD)), 1)
    if shutil.which("Xvfb") is None:
        sys.exit("desktop-rss: Xvfb not found (Debian package xvfb)")
    tmp = Path(tempfile.mkdtemp(prefix="keyway-desktop-rss."))
    measure = Measure(args, tmp)
    # Stopped from outside: still stop keyway, Xvfb and the rest (the `finally`s below).
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda n, _f: sys.exit(f"desktop-rss: stopped by signal {n}"))
    try:
        asyncio.run(measure.run())
    except Exception as e:  # noqa: BLE001
        err = tmp / "logs/keyway.stderr"
        tail = err.read_text(errors="replace").splitlines()[-20:] if err.exists() else []
        sys.exit(f"desktop-rss: {e}\n" + "\n".join(tail))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    measure.report()


if __name__ == "__main__":
    main()
