#!/usr/bin/env python3
"""Desktop smoke test: the real `keyway` tray app on a virtual X display.

Run inside scripts/lib/keyring-session.sh (a private D-Bus session bus with an unlocked
gnome-keyring); scripts/test's `desktop` step does:

    KEYWAY_DESKTOP_BIN=... FAKE_UPSTREAM_BIN=... python tests/desktop/smoke.py

Environment:
    KEYWAY_DESKTOP_BIN  the desktop build of keyway (default: target/debug/keyway)
    FAKE_UPSTREAM_BIN   tests' fake upstream (default: target/debug/fake-upstream)
    ARTIFACT_DIR        where the logs, menu.txt and dashboard.png go
                        (default: target/desktop-smoke)

What it does, as a user's desktop would see it:
  * Xvfb on a free display, writing its screen to a file (-fbdir) that the test reads;
  * the fake upstream, a temp config pointing every provider at it, and two Anthropic API-key
    accounts (Work, Home) added with the binary's own CLI;
  * a StatusNotifierWatcher on the session bus, played by this process (a desktop panel's
    job): libayatana-appindicator registers its tray item only when one is there;
  * `keyway` with no arguments (the desktop app), then checks:
      tray     the item registers; its menu (com.canonical.dbusmenu) starts with the status
               line `Keyway — listening on 127.0.0.1:PORT` (saved as menu.txt)
      serve    two Anthropic requests through that port: round robin serves Work and Home
      policy   clicking Routing > Anthropic (all models) > Priority switches the policy: the
               API says priority, four requests are all served by Work, the menu shows it
      pause    clicking Pause proxy: the API says paused, a request gets 503 in Anthropic's
               error shape, the menu offers Resume proxy; clicking that serves again
      headless `keyway --headless --listen 127.0.0.1:PORT` (the desktop app's port) exits
               non-zero within 10 s saying the address is in use by another Keyway; the
               desktop app still serves
      no-display  `keyway` with DISPLAY and WAYLAND_DISPLAY unset exits 1 saying to run
               `--headless` (instead of GTK's panic)
      window   clicking Open dashboard puts the dashboard on the screen (dashboard.png), drawn
               by a WebKit web process below keyway
      close    closing the window (WM_DELETE_WINDOW, a window manager's ×) destroys it: no
               window titled Keyway is left, shown or hidden, the screen is blank, and every
               process it needed has ended (its own, WebKit's web and network processes:
               keyway has none left below it); keyway keeps running and serving
      reopen   clicking Open dashboard again builds a new window, which renders
               (dashboard-reopened.png) with a new web process; with that window off the
               screen (unmapped), Open dashboard brings the same window back, no second one
      second   with the window closed again, `keyway` launched again (same environment, no
               flags) exits 0 within 10 s, the first instance still serves, and its dashboard
               is on the screen again (dashboard-second-launch.png)
      copy     clicking Copy connection settings > Claude Code shows a notification from
               Keyway, "Claude Code settings copied" (this script plays the desktop's
               notification service too)
      autostart  ticking Start at login writes ~/.config/autostart/Keyway.desktop starting
               this binary and ticks the item; unticking it removes the file
      hung     with the running app stopped (SIGSTOP: it holds its bus name but answers
               nothing), a second `keyway` gives up within 10 s, exits 1 saying the running
               one did not answer and what to do; continued, the app serves as before
      quit     clicking Quit Keyway exits 0 within 10 s
Prints one PASS/FAIL line per check and exits non-zero on any failure (after the first
failure the remaining checks are not run), with the tail of keyway's stderr. Standard library
plus dbus-next only.

Artifacts: keyway.stdout/.stderr, keyway-logs/, fake-upstream.*, xvfb.log; menu.txt (the tray
menu as the panel got it, submenus indented), menu-after-priority.txt, dashboard.png (the
screen once the dashboard window has rendered), dashboard-reopened.png (after a close); keyway-headless.stdout/.stderr and
keyway-second.stdout/.stderr, keyway-hung.stdout/.stderr and keyway-no-display.stdout/.stderr
(the refused headless run, the second launches and the run without a display),
dashboard-second-launch.png (the screen after the second launch).
"""

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from array import array
from pathlib import Path

from dbus_next import BusType, Message, MessageType, RequestNameReply, Variant
from dbus_next.aio import MessageBus
from dbus_next.service import PropertyAccess, ServiceInterface, dbus_property, method
from dbus_next.service import signal as dbus_signal

ROOT = Path(__file__).resolve().parents[2]

WATCHER = "org.kde.StatusNotifierWatcher"
ITEM = "org.kde.StatusNotifierItem"
DBUSMENU = "com.canonical.dbusmenu"

# Deadlines (seconds). Generous: debug builds on a loaded 2-core machine.
START_TIMEOUT = 60  # keyway until its tray item registers
STEP_TIMEOUT = 15  # a menu action until its effect shows
WINDOW_TIMEOUT = 30  # Open dashboard until the page is on the screen
QUIT_TIMEOUT = 10  # Quit Keyway until the process exits
HANDOVER_TIMEOUT = 10  # a second `keyway` until it has handed over and exited
REFUSED_TIMEOUT = 10  # `keyway --headless` on the desktop app's port until it gives up

# Fewer distinct colours than this on the screen is a blank screen (the bare root window is
# one colour); the dashboard shows far more.
BLANK_BELOW = 256

# The accounts the CLI adds, and the key the fake names in every answer.
ACCOUNTS = [("Work", "sk-ant-work"), ("Home", "sk-ant-home")]

STATUS_RE = re.compile(r"^Keyway — listening on 127\.0\.0\.1:(\d+)$")
POLICY_SUBMENU = "Anthropic (all models) — Round robin"
PRIORITY = "Priority (first that can serve)"


class CheckFailed(Exception):
    pass


def expect(cond, message):
    if not cond:
        raise CheckFailed(message)


async def poll(what, timeout, probe, interval=0.2):
    """Call `probe` (sync or async) until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            result = probe()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
        except CheckFailed:
            raise
        except Exception as e:  # noqa: BLE001 - reported if the deadline passes
            last_error = e
        if time.monotonic() >= deadline:
            extra = f" (last error: {last_error!r})" if last_error else ""
            raise CheckFailed(f"{what}: not within {timeout} s{extra}")
        await asyncio.sleep(interval)


# ---------------------------------------------------------------------------
# The StatusNotifierWatcher a desktop panel would run.
# ---------------------------------------------------------------------------


class Watcher(ServiceInterface):
    """org.kde.StatusNotifierWatcher with one host (us) registered."""

    def __init__(self):
        super().__init__(WATCHER)
        self.items = []
        self.registered = asyncio.Queue()
        # The sender of the call being dispatched (set by the bus spy just before).
        self.caller = None

    @method()
    def RegisterStatusNotifierItem(self, service: "s"):  # noqa: N802, F821
        # An item may register with its object path (libayatana-appindicator) or its bus
        # name (the spec's form); the caller is the bus name either way.
        if service.startswith("/"):
            name, path = self.caller, service
        else:
            name, path = service, "/StatusNotifierItem"
        entry = f"{name}{path}"
        if entry not in self.items:
            self.items.append(entry)
        self.registered.put_nowait((name, path))
        self.StatusNotifierItemRegistered(entry)

    @method()
    def RegisterStatusNotifierHost(self, service: "s"):  # noqa: N802, F821
        self.StatusNotifierHostRegistered()

    @dbus_property(access=PropertyAccess.READ)
    def RegisteredStatusNotifierItems(self) -> "as":  # noqa: N802, F722
        return list(self.items)

    @dbus_property(access=PropertyAccess.READ)
    def IsStatusNotifierHostRegistered(self) -> "b":  # noqa: N802, F821
        return True

    @dbus_property(access=PropertyAccess.READ)
    def ProtocolVersion(self) -> "i":  # noqa: N802, F821
        return 0

    @dbus_signal()
    def StatusNotifierItemRegistered(self, service) -> "s":  # noqa: N802, F821
        return service

    @dbus_signal()
    def StatusNotifierItemUnregistered(self, service) -> "s":  # noqa: N802, F821
        return service

    @dbus_signal()
    def StatusNotifierHostRegistered(self):  # noqa: N802
        return None


# The notification service a desktop runs (org.freedesktop.Notifications, the Desktop
# Notifications Specification's methods), recording what it is asked to show.
NOTIFICATIONS = "org.freedesktop.Notifications"


class Notifications(ServiceInterface):
    def __init__(self):
        super().__init__(NOTIFICATIONS)
        self.shown = asyncio.Queue()
        self.next_id = 0

    @method()
    def Notify(self, app_name: "s", replaces_id: "u", app_icon: "s", summary: "s",  # noqa: N802, F821
               body: "s", actions: "as", hints: "a{sv}", expire_timeout: "i") -> "u":  # noqa: F821, F722
        self.next_id += 1
        self.shown.put_nowait((app_name, summary, body))
        return self.next_id

    @method()
    def GetCapabilities(self) -> "as":  # noqa: N802, F722
        return ["body"]

    @method()
    def GetServerInformation(self) -> "ssss":  # noqa: N802, F821
        return ["keyway-smoke", "keyway", "1", "1.2"]

    @method()
    def CloseNotification(self, id: "u"):  # noqa: N802, F821, A002
        pass


async def start_notifications(bus):
    service = Notifications()
    bus.export("/org/freedesktop/Notifications", service)
    reply = await bus.request_name(NOTIFICATIONS)
    expect(reply == RequestNameReply.PRIMARY_OWNER,
           f"cannot own {NOTIFICATIONS} on the session bus ({reply})")
    return service


async def start_watcher():
    bus = await MessageBus(bus_type=BusType.SESSION).connect()
    watcher = Watcher()

    def spy(msg):
        if (
            msg.message_type == MessageType.METHOD_CALL
            and msg.interface == WATCHER
            and msg.member == "RegisterStatusNotifierItem"
        ):
            watcher.caller = msg.sender
        return None  # let the service answer it

    bus.add_message_handler(spy)
    bus.export("/StatusNotifierWatcher", watcher)
    reply = await bus.request_name(WATCHER)
    expect(reply == RequestNameReply.PRIMARY_OWNER,
           f"cannot own {WATCHER} on the session bus (reply {reply!r})")
    return bus, watcher


# ---------------------------------------------------------------------------
# The tray menu over com.canonical.dbusmenu.
# ---------------------------------------------------------------------------


async def call(bus, dest, path, iface, member, signature="", body=()):
    reply = await bus.call(
        Message(
            destination=dest,
            path=path,
            interface=iface,
            member=member,
            signature=signature,
            body=list(body),
        )
    )
    if reply.message_type == MessageType.ERROR:
        raise RuntimeError(f"{iface}.{member} on {dest}{path}: {reply.error_name}: {reply.body}")
    return reply.body


def plain(label):
    """A dbusmenu label without GTK mnemonic underscores (`__` is a literal `_`)."""
    return label.replace("__", "\0").replace("_", "").replace("\0", "_")


def flatten(node):
    """(id, props, children) from GetLayout into a dict tree."""
    item_id, props, children = node
    p = {k: v.value for k, v in props.items()}
    return {
        "id": item_id,
        "type": p.get("type", "standard"),
        "label": plain(p.get("label", "")),
        "toggle_type": p.get("toggle-type", ""),
        "toggle_state": p.get("toggle-state", -1),
        "enabled": p.get("enabled", True),
        "visible": p.get("visible", True),
        "children": [flatten(c.value) for c in children],
    }


class Tray:
    def __init__(self, bus, name, item_path):
        self.bus, self.name, self.item_path = bus, name, item_path
        self.menu_path = None

    async def read_menu_path(self):
        (value,) = await call(
            self.bus, self.name, self.item_path, "org.freedesktop.DBus.Properties", "Get", "ss",
            [ITEM, "Menu"],
        )
        self.menu_path = value.value
        return self.menu_path

    async def layout(self):
        _revision, root = await call(
            self.bus, self.name, self.menu_path, DBUSMENU, "GetLayout", "iias", [0, -1, []]
        )
        return [c for c in flatten(root)["children"] if c["visible"]]

    async def click(self, *labels):
        """Click the item at the path of labels (submenus first), as a panel does.

        The app rebuilds its menu on engine events, which renumbers the items: a click that
        raced a rebuild is refused (unknown id), so the layout is read again and the click
        retried, within STEP_TIMEOUT."""
        deadline = time.monotonic() + STEP_TIMEOUT
        while True:
            items = await self.layout()
            level, parents = items, [0]
            for i, wanted in enumerate(labels):
                found = [it for it in level if it["label"] == wanted]
                expect(found, f"no menu item {' > '.join(labels[: i + 1])!r} in:\n{render(items)}")
                item = found[0]
                if i < len(labels) - 1:
                    parents.append(item["id"])
                    level = item["children"]
            expect(item["enabled"], f"menu item {' > '.join(labels)!r} is disabled")
            try:
                for parent in parents:
                    try:
                        await call(self.bus, self.name, self.menu_path, DBUSMENU, "AboutToShow",
                                   "i", [parent])
                    except RuntimeError:
                        pass  # optional for the server
                await call(
                    self.bus, self.name, self.menu_path, DBUSMENU, "Event", "isvu",
                    [item["id"], "clicked", Variant("s", ""), 0],
                )
                return
            except RuntimeError as e:
                if time.monotonic() >= deadline:
                    raise CheckFailed(f"clicking {' > '.join(labels)!r}: {e}") from None
                await asyncio.sleep(0.1)


async def next_while_alive(proc, queue):
    """The next item of `queue`, or None after half a second; fails once `proc` (a started
    `keyway`) has exited."""
    if proc.poll() is not None:
        raise CheckFailed(f"keyway exited with {proc.returncode}")
    try:
        return await asyncio.wait_for(queue.get(), 0.5)
    except asyncio.TimeoutError:
        return None


async def tray_when_listening(bus, watcher, proc, timeout):
    """The tray of `proc` (a started `keyway`) once it registers with `watcher` and its menu
    says where it listens (the menu may be built before the server has its port); for the
    scripts that measure the app at rest."""
    name, path = await poll("the tray item registers", timeout,
                            lambda: next_while_alive(proc, watcher.registered), interval=0)
    tray = Tray(bus, name, path)
    await tray.read_menu_path()

    async def listening():
        items = await tray.layout()
        return items and STATUS_RE.match(items[0]["label"])
    await poll("the tray says where it listens", timeout, listening)
    return tray


def render(items):
    """The menu as a user reads it: one line per item, submenus indented."""
    lines = []

    def walk(level, depth):
        for it in level:
            pad = "    " * depth
            if it["type"] == "separator":
                lines.append(f"{pad}────────")
                continue
            mark = ""
            if it["toggle_type"] == "checkmark":
                mark = "[x] " if it["toggle_state"] == 1 else "[ ] "
            elif it["toggle_type"] == "radio":
                mark = "(•) " if it["toggle_state"] == 1 else "( ) "
            tail = " ▸" if it["children"] else ""
            off = "   (disabled)" if not it["enabled"] else ""
            lines.append(f"{pad}{mark}{it['label']}{tail}{off}")
            walk(it["children"], depth + 1)

    walk(items, 0)
    return "\n".join(lines)


def find(items, *labels):
    level, item = items, None
    for wanted in labels:
        item = next((it for it in level if it["label"] == wanted), None)
        if item is None:
            return None
        level = item["children"]
    return item


# ---------------------------------------------------------------------------
# The screen: Xvfb's framebuffer file (XWD) and a small PNG writer.
# ---------------------------------------------------------------------------


def read_xwd(path):
    """(width, height, rgb bytes, distinct colours) of an XWD file of 24/32-bit TrueColor."""
    data = Path(path).read_bytes()
    header = struct.unpack(">25I", data[:100])
    (header_size, _version, _fmt, depth, width, height, _xoff, byte_order, _unit, _bit_order,
     _pad, bpp, bytes_per_line, _vclass, red_mask, green_mask, blue_mask, _bits_rgb, _cmap,
     ncolors) = header[:20]
    expect(bpp == 32 and depth == 24, f"framebuffer is {depth}-bit depth at {bpp} bpp, not 24/32")
    offset = header_size + ncolors * 12
    pixels = data[offset:offset + bytes_per_line * height]
    expect(len(pixels) == bytes_per_line * height,
           "framebuffer file is shorter than its header says")
    # Byte positions of red, green and blue within a 32-bit pixel as stored.
    def byte_index(mask):
        shift = {0xFF: 0, 0xFF00: 1, 0xFF0000: 2, 0xFF000000: 3}[mask]
        return shift if byte_order == 0 else 3 - shift  # 0 = LSBFirst
    r, g, b = byte_index(red_mask), byte_index(green_mask), byte_index(blue_mask)
    rows = [pixels[y * bytes_per_line:y * bytes_per_line + width * 4] for y in range(height)]
    packed = b"".join(rows)
    rgb = bytearray(width * height * 3)
    rgb[0::3], rgb[1::3], rgb[2::3] = packed[r::4], packed[g::4], packed[b::4]
    words = array("I")
    words.frombytes(packed)
    colours = len(set(words))
    return width, height, bytes(rgb), colours


def write_png(path, width, height, rgb):
    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    stride = width * 3
    raw = b"".join(b"\x00" + rgb[y * stride:(y + 1) * stride] for y in range(height))
    png = (b"\x89PNG\r\n\x1a\n"
           + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 6))
           + chunk(b"IEND", b""))
    Path(path).write_bytes(png)


# ---------------------------------------------------------------------------
# Closing a window as a window manager's × does: just enough X11 protocol (stdlib sockets).
# ---------------------------------------------------------------------------


def pad4(n):
    return (n + 3) & ~3


class X11:
    """A minimal X11 client: find mapped top-level windows by title and send them
    WM_DELETE_WINDOW. There is no window manager on the test's display, so a top-level window
    is a direct child of the root."""

    def __init__(self, display):
        number = int(display.lstrip(":").split(".")[0])
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(f"/tmp/.X11-unix/X{number}")
        # Little-endian, protocol 11.0, no authorization (Xvfb admits local clients).
        self.sock.sendall(struct.pack("<BxHHHHxx", 0x6C, 11, 0, 0, 0))
        head = self._read(8)
        extra = self._read(struct.unpack_from("<H", head, 6)[0] * 4)
        expect(head[0] == 1, f"the X server refused a connection: {extra[:head[1]]!r}")
        (vendor_len,) = struct.unpack_from("<H", extra, 16)
        screen = 32 + pad4(vendor_len) + 8 * extra[21]  # after the vendor and the formats
        (self.root,) = struct.unpack_from("<I", extra, screen)

    def close(self):
        self.sock.close()

    def _read(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise RuntimeError("the X server closed the connection")
            data += chunk
        return data

    def _request(self, opcode, data1=0, body=b"", reply=True):
        self.sock.sendall(struct.pack("<BBH", opcode, data1, 1 + len(body) // 4) + body)
        if not reply:
            return None
        while True:
            packet = self._read(32)
            if packet[0] == 0:  # an error (possibly for an earlier request without a reply)
                raise RuntimeError(f"X error {packet[1]} for request {packet[10]}")
            if packet[0] == 1:
                return packet + self._read(struct.unpack_from("<I", packet, 4)[0] * 4)
            # An event: none were asked for; ignore it.

    def atom(self, name):
        raw = name.encode()
        body = struct.pack("<H2x", len(raw)) + raw.ljust(pad4(len(raw)), b"\0")
        return struct.unpack_from("<I", self._request(16, 0, body), 8)[0]  # InternAtom

    def _property(self, window, atom):
        reply = self._request(20, 0, struct.pack("<5I", window, atom, 0, 0, 1024))  # GetProperty
        fmt, (count,) = reply[1], struct.unpack_from("<I", reply, 16)
        return reply[32:32 + count * fmt // 8]

    def windows(self, title, mapped=True):
        """The top-level windows whose title is `title`: the mapped (viewable) ones, or with
        `mapped=False` every one, shown or hidden."""
        tree = self._request(15, 0, struct.pack("<I", self.root))  # QueryTree
        (count,) = struct.unpack_from("<H", tree, 16)
        children = struct.unpack_from(f"<{count}I", tree, 32)
        names = [self.atom("_NET_WM_NAME"), self.atom("WM_NAME")]
        found = []
        for w in children:
            try:
                attrs = self._request(3, 0, struct.pack("<I", w))  # GetWindowAttributes
                if mapped and attrs[26] != 2:  # map state: Viewable
                    continue
                if any(self._property(w, n).decode(errors="replace") == title for n in names):
                    found.append(w)
            except RuntimeError:
                continue  # the window went away meanwhile
        return found

    def unmap(self, window):
        """Take the window off the screen (UnmapWindow), as if hidden behind others."""
        self._request(10, 0, struct.pack("<I", window), reply=False)  # UnmapWindow
        self._request(43)  # GetInputFocus: a round trip

    def delete_window(self, window):
        """Ask the window to close (ICCCM WM_DELETE_WINDOW), and wait until the server has
        delivered it."""
        protocols, delete = self.atom("WM_PROTOCOLS"), self.atom("WM_DELETE_WINDOW")
        # ClientMessage (33), format 32: data[0] = WM_DELETE_WINDOW, data[1] = CurrentTime.
        event = struct.pack("<BBHII5I", 33, 32, 0, window, protocols, delete, 0, 0, 0, 0)
        self._request(25, 0, struct.pack("<II", window, 0) + event, reply=False)  # SendEvent
        self._request(43)  # GetInputFocus: a round trip, so an error would show here


# ---------------------------------------------------------------------------
# Processes.
# ---------------------------------------------------------------------------


class Processes:
    """Everything started here, stopped in reverse order at the end (each in its own group)."""

    def __init__(self):
        self.procs = []
        self.files = []

    def start(self, name, argv, log_dir, env=None, stdout_name=None, stderr_name=None, **kw):
        out_path = log_dir / (stdout_name or f"{name}.stdout")
        err_path = log_dir / (stderr_name or f"{name}.stderr")
        out = open(out_path, "wb")
        err = out if err_path == out_path else open(err_path, "wb")
        self.files += [out, err] if err is not out else [out]
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                             start_new_session=True, **kw)
        self.procs.append((name, p))
        return p

    def stop_all(self):
        for name, p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    print(f"  cleanup: {name} (pid {p.pid}) ignored SIGTERM; killing it")
            # Children of its group (WebKit's helper processes) too.
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                print(f"  cleanup: {name} (pid {p.pid}) did not die")
        for f in self.files:
            f.close()


def start_xvfb(procs, tmp, artifacts):
    fbdir = tmp / "fb"
    fbdir.mkdir()
    for n in range(90, 190):
        if Path(f"/tmp/.X11-unix/X{n}").exists() or Path(f"/tmp/.X{n}-lock").exists():
            continue
        p = procs.start("xvfb", ["Xvfb", f":{n}", "-screen", "0", "1280x800x24", "-fbdir",
                                 str(fbdir), "-nolisten", "tcp"], artifacts,
                        stdout_name="xvfb.log", stderr_name="xvfb.log")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if p.poll() is not None:
                break  # lost a race for this display: try the next
            if Path(f"/tmp/.X11-unix/X{n}").exists() and (fbdir / "Xvfb_screen0").exists():
                return f":{n}", fbdir / "Xvfb_screen0"
            time.sleep(0.05)
        if p.poll() is None:
            raise CheckFailed(f"Xvfb :{n} did not create its socket within 10 s")
    raise CheckFailed("no free X display in :90..:189")


def start_fake(procs, binary, artifacts):
    out_path = artifacts / "fake-upstream.stdout"
    # The fake accepts exactly the keys of the accounts the CLI adds.
    keys = [arg for _, key in ACCOUNTS for arg in ("--key", f"anthropic:{key}")]
    p = procs.start("fake-upstream", [str(binary), *keys], artifacts)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        m = re.search(r"listening on (http://\S+)", out_path.read_text(errors="replace"))
        if m:
            return m.group(1)
        if p.poll() is not None:
            raise CheckFailed(f"fake-upstream exited with {p.returncode}")
        time.sleep(0.05)
    raise CheckFailed("fake-upstream did not print its address within 20 s")


def descendants(pid):
    """Every process below `pid`, as {pid: name}."""
    children = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The parent is the 2nd field after `(comm)`, which may contain spaces.
        children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry.name))
    found, todo = {}, list(children.get(pid, []))
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            name = Path(f"/proc/{p}/comm").read_text().strip()
        except OSError:
            continue
        found[p] = name
    return found


def webkit_processes(pid):
    """WebKit's helper processes below `pid` (web and network processes, possibly under a
    bwrap sandbox, below the dashboard window's own process), as {pid: name}."""
    return {p: name for p, name in descendants(pid).items() if name.startswith("WebKit")}


# ---------------------------------------------------------------------------
# HTTP.
# ---------------------------------------------------------------------------

HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_json(method, url, headers=None, body=None, timeout=10):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("content-type", "application/json")
    try:
        with HTTP.open(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def served_by(port, client_key):
    status, body = http_json(
        "POST", f"http://127.0.0.1:{port}/v1/messages",
        {"x-api-key": client_key, "anthropic-version": "2023-06-01"},
        {"model": "claude-sonnet-4-5", "max_tokens": 16,
         "messages": [{"role": "user", "content": "hi"}]},
    )
    expect(status == 200, f"POST /v1/messages: {status} {body}")
    text = body["content"][0]["text"]
    expect(text.startswith("served by "), f"unexpected answer text {text!r}")
    return text.removeprefix("served by ")


# ---------------------------------------------------------------------------
# The test.
# ---------------------------------------------------------------------------


class Smoke:
    def __init__(self, artifacts, tmp, keyway_bin, fake_bin):
        self.artifacts, self.tmp = artifacts, tmp
        self.keyway_bin, self.fake_bin = keyway_bin, fake_bin
        self.procs = Processes()
        self.keyway = None
        self.port = None
        self.tray = None
        self.bus = None
        self.watcher = None

    def cli(self, *args, stdin=""):
        r = subprocess.run([str(self.keyway_bin), *args], input=stdin.encode(), env=self.env,
                           capture_output=True, timeout=60)
        out = r.stdout.decode().strip()
        expect(r.returncode == 0,
               f"`keyway {' '.join(args)}` exited {r.returncode}: {r.stderr.decode().strip()}")
        return out

    async def setup(self):
        self.display, self.fb = start_xvfb(self.procs, self.tmp, self.artifacts)
        print(f"  Xvfb on {self.display}, screen file {self.fb}")
        upstream = start_fake(self.procs, self.fake_bin, self.artifacts)
        home = self.tmp / "home"
        for d in (".config", ".local/share", ".cache"):
            (home / d).mkdir(parents=True)
        config = self.tmp / "config.toml"
        config.write_text(
            'listen = "127.0.0.1:0"\n\n'
            f'[providers.anthropic]\nbase_url = "{upstream}"\n\n'
            f'[providers.openai]\nbase_url = "{upstream}"\n\n'
            f'[providers.google]\nbase_url = "{upstream}"\n'
        )
        self.data_dir = self.tmp / "data"
        env = {k: v for k, v in os.environ.items() if k != "RUST_LOG"}
        env.update(
            KEYWAY_CONFIG=str(config),
            KEYWAY_DATA_DIR=str(self.data_dir),
            KEYWAY_KEYRING_SERVICE=f"keyway-desktop-smoke-{os.getpid()}",
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / ".config"),
            XDG_DATA_HOME=str(home / ".local/share"),
            XDG_CACHE_HOME=str(home / ".cache"),
            DISPLAY=self.display,
            NO_AT_BRIDGE="1",  # no accessibility bus to look for
        )
        env.pop("WAYLAND_DISPLAY", None)
        self.env = env
        for label, key in ACCOUNTS:
            self.cli("account", "add", "anthropic", "--label", label, stdin=key)
        self.client_key = self.cli("client-key")
        self.token = self.cli("management-token")
        self.bus, self.watcher = await start_watcher()
        self.notifications = await start_notifications(self.bus)
        self.home = home
        self.keyway = self.procs.start("keyway", [str(self.keyway_bin)], self.artifacts, env=env)

    def keyway_exited(self):
        code = self.keyway.poll()
        expect(code is None, f"keyway exited with {code}")

    async def check_tray(self):
        name, path = await poll("the tray item registers with the watcher", START_TIMEOUT,
                                lambda: next_while_alive(self.keyway, self.watcher.registered),
                                interval=0)
        self.tray = Tray(self.bus, name, path)
        menu_path = await self.tray.read_menu_path()
        print(f"  item {name}{path}, menu {menu_path}")

        async def status_line():
            items = await self.tray.layout()
            m = STATUS_RE.match(items[0]["label"]) if items else None
            return (items, m) if m else None
        # The menu may be built before the server has its port: wait for the status line.
        items, m = await poll("the menu's first item is `Keyway — listening on 127.0.0.1:PORT`",
                              STEP_TIMEOUT, status_line)
        self.port = int(m.group(1))
        (self.artifacts / "menu.txt").write_text(render(items) + "\n")
        expect(not items[0]["enabled"], "the status line is clickable")
        accounts = find(items, "Anthropic")
        expect(accounts is not None, f"no Anthropic submenu in:\n{render(items)}")
        labels = sorted(c["label"].split(" — ")[0] for c in accounts["children"])
        expect(labels == ["Home", "Work"], f"Anthropic submenu lists {labels}")
        expect(find(items, "Routing", POLICY_SUBMENU), f"no Routing > {POLICY_SUBMENU!r}")
        return f"port {self.port}; {len(items)} top-level items (menu.txt)"

    async def check_serve(self):
        got = [await asyncio.to_thread(served_by, self.port, self.client_key) for _ in range(2)]
        expect(sorted(got) == ["sk-ant-home", "sk-ant-work"],
               f"two round-robin requests were served by {got}")
        return f"served by {', '.join(got)}"

    def strategy(self):
        status, policies = http_json("GET", f"http://127.0.0.1:{self.port}/api/policies",
                                     {"authorization": f"Bearer {self.token}"})
        expect(status == 200, f"GET /api/policies: {status} {policies}")
        return next((p["strategy"] for p in policies if p["key"] == "anthropic"), None)

    async def check_policy(self):
        await self.tray.click("Routing", POLICY_SUBMENU, PRIORITY)
        await poll("GET /api/policies says anthropic is `priority`", STEP_TIMEOUT,
                   lambda: asyncio.to_thread(lambda: self.strategy() == "priority"))
        got = [await asyncio.to_thread(served_by, self.port, self.client_key) for _ in range(4)]
        expect(got == ["sk-ant-work"] * 4, f"after the switch, 4 requests were served by {got}")
        new_label = f"Anthropic (all models) — {PRIORITY}"

        async def menu_shows_it():
            items = await self.tray.layout()
            item = find(items, "Routing", new_label, PRIORITY)
            return items if item and item["toggle_state"] == 1 else None
        items = await poll(f"the menu shows Routing > {new_label!r} with {PRIORITY!r} checked",
                           STEP_TIMEOUT, menu_shows_it)
        (self.artifacts / "menu-after-priority.txt").write_text(render(items) + "\n")
        others = [c["label"] for c in find(items, "Routing", new_label)["children"]
                  if c["toggle_state"] == 1 and c["label"] != PRIORITY]
        expect(not others, f"other strategies still checked: {others}")
        return "API says priority; 4/4 served by sk-ant-work; menu checked and relabelled"

    def paused(self):
        status, body = http_json("GET", f"http://127.0.0.1:{self.port}/api/status",
                                 {"authorization": f"Bearer {self.token}"})
        expect(status == 200, f"GET /api/status: {status} {body}")
        return body["paused"]

    async def check_pause(self):
        await self.tray.click("Pause proxy")
        await poll("GET /api/status says paused", STEP_TIMEOUT,
                   lambda: asyncio.to_thread(self.paused))
        status, body = await asyncio.to_thread(
            http_json, "POST", f"http://127.0.0.1:{self.port}/v1/messages",
            {"x-api-key": self.client_key, "anthropic-version": "2023-06-01"},
            {"model": "claude-sonnet-4-5", "max_tokens": 16,
             "messages": [{"role": "user", "content": "hi"}]},
        )
        expect(status == 503, f"a request while paused: {status} {body}")
        error = json.loads(body)
        expect(error.get("type") == "error" and "paused" in error["error"]["message"],
               f"not Anthropic's error shape naming the pause: {body}")

        async def resume_offered():
            items = await self.tray.layout()
            return items if find(items, "Resume proxy") else None
        await poll("the menu offers Resume proxy", STEP_TIMEOUT, resume_offered)
        await self.tray.click("Resume proxy")
        await poll("GET /api/status says not paused", STEP_TIMEOUT,
                   lambda: asyncio.to_thread(lambda: not self.paused()))
        got = await asyncio.to_thread(served_by, self.port, self.client_key)
        return f"paused: 503 `{error['error']['message']}`; resumed: served by {got}"

    async def screen_shows_dashboard(self, png_name):
        """Wait until the screen is non-blank and has settled; save it as `png_name`."""
        state = {"last": None, "since": None, "still": None, "shot": None}

        def rendered():
            self.keyway_exited()
            w, h, rgb, colours = read_xwd(self.fb)
            now = time.monotonic()
            if colours < BLANK_BELOW:
                state.update(last=None, since=None)
                return None
            # Non-blank: wait until it holds still for a second (the page finished loading),
            # or accept it as it is 5 s later.
            if rgb != state["last"]:
                state.update(last=rgb, since=state["since"] or now, still=now)
            state["shot"] = (w, h, rgb, colours)
            settled = now - state["still"] >= 1.0 or now - state["since"] >= 5
            return state["shot"] if settled else None

        try:
            return await poll(
                f"the screen shows the dashboard (≥ {BLANK_BELOW} colours)", WINDOW_TIMEOUT,
                lambda: asyncio.to_thread(rendered), interval=0.25)
        finally:
            shot = state["shot"] or read_xwd(self.fb)
            write_png(self.artifacts / png_name, shot[0], shot[1], shot[2])

    async def check_window(self):
        _, _, _, before = read_xwd(self.fb)
        await self.tray.click("Open dashboard")
        _, _, _, colours = await self.screen_shows_dashboard("dashboard.png")
        web = self.web_processes()
        expect(web, f"the dashboard renders but keyway has no WebKit web process: "
                    f"{webkit_processes(self.keyway.pid)}")
        return f"{colours} colours on screen (before: {before}); dashboard.png; web process {web}"

    def web_processes(self):
        return [p for p, name in webkit_processes(self.keyway.pid).items()
                if name.startswith("WebKitWebProces")]  # comm is cut at 15 characters

    async def close_window(self, what):
        """Close the dashboard as a window manager's × does (WM_DELETE_WINDOW), and wait until
        the window is destroyed (no window titled `Keyway` at all, shown or hidden), the screen
        is blank and the web process behind it has ended, with keyway still running."""
        x11 = await asyncio.to_thread(X11, self.display)
        try:
            windows = await asyncio.to_thread(x11.windows, "Keyway")
            expect(windows, "no mapped top-level window titled `Keyway` to close")
            for w in windows:
                await asyncio.to_thread(x11.delete_window, w)

            def gone():
                self.keyway_exited()
                return (not x11.windows("Keyway", mapped=False)
                        and read_xwd(self.fb)[3] < BLANK_BELOW and not self.web_processes())
            await poll(f"{what}: the window is destroyed (none titled `Keyway`, shown or "
                       "hidden; screen blank) and its web process ends, keyway running",
                       STEP_TIMEOUT, lambda: asyncio.to_thread(gone))
        finally:
            x11.close()

    async def check_close(self):
        opened = descendants(self.keyway.pid)
        await self.close_window("closing the dashboard")
        # Everything the window needed ends with it: its own process (where the window lives
        # in one) and WebKit's network process too, not only the web process.
        await poll("every process the window needed ends", STEP_TIMEOUT,
                   lambda: not descendants(self.keyway.pid))
        got = await asyncio.to_thread(served_by, self.port, self.client_key)
        expect(got == "sk-ant-work", f"after closing the window keyway served by {got}")
        return (f"window destroyed; {sorted(opened.values())} ended, keyway has no process "
                f"left below it; still serving (served by {got})")

    async def check_reopen(self):
        await self.tray.click("Open dashboard")
        _, _, _, colours = await self.screen_shows_dashboard("dashboard-reopened.png")
        web = self.web_processes()
        expect(web, "the reopened dashboard renders but keyway has no WebKit web process")
        # Open dashboard with the window open (here taken off the screen, as if behind other
        # windows) brings that window back: no second one, no second web process.
        x11 = await asyncio.to_thread(X11, self.display)
        try:
            (window,) = await asyncio.to_thread(x11.windows, "Keyway")
            await asyncio.to_thread(x11.unmap, window)
            await poll("the unmapped window is off the screen", STEP_TIMEOUT,
                       lambda: asyncio.to_thread(lambda: not x11.windows("Keyway")))
            await self.tray.click("Open dashboard")
            await poll("Open dashboard brings the open window back", STEP_TIMEOUT,
                       lambda: asyncio.to_thread(lambda: x11.windows("Keyway") == [window]))
            everywhere = await asyncio.to_thread(x11.windows, "Keyway", False)
            expect(everywhere == [window], f"windows titled Keyway: {everywhere}, not one")
            expect(self.web_processes() == web,
                   f"web processes {self.web_processes()} after Open dashboard, not {web}")
        finally:
            x11.close()
        return (f"{colours} colours on screen (dashboard-reopened.png); new web process {web}; "
                "Open dashboard again brought the same window back")

    def run_again(self, name, args, timeout, env=None):
        """Run the binary once more with the desktop app's environment (or `env`); (exit code,
        stdout, stderr) once it exits, or a failure naming what it printed if it still runs
        after `timeout` (it is then killed with its process group)."""
        p = self.procs.start(name, [str(self.keyway_bin), *args], self.artifacts,
                             env=env if env is not None else self.env)
        t0 = time.monotonic()
        try:
            code = p.wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        took = time.monotonic() - t0
        out = (self.artifacts / f"{name}.stdout").read_text(errors="replace")
        err = (self.artifacts / f"{name}.stderr").read_text(errors="replace")
        if code is None:
            tail = "\n".join(err.splitlines()[-15:])
            raise CheckFailed(f"`keyway {' '.join(args)}` still ran {timeout} s later (killed); "
                              f"its stderr ends:\n{tail}")
        return code, out, err, took

    async def check_headless(self):
        listen = f"127.0.0.1:{self.port}"
        args = ["--headless", "--listen", listen]
        code, _, err, took = await asyncio.to_thread(self.run_again, "keyway-headless", args,
                                                     REFUSED_TIMEOUT)
        message = next((line for line in err.splitlines() if line.startswith("error:")), None)
        expect(code != 0, f"`keyway {' '.join(args)}` exited 0; stderr:\n{err.strip()}")
        expect(message and "in use" in message and "another Keyway" in message,
               f"`keyway {' '.join(args)}` exited {code} without saying the address is in use "
               f"by another Keyway; stderr:\n{err.strip()}")
        self.keyway_exited()
        got = await asyncio.to_thread(served_by, self.port, self.client_key)
        expect(got == "sk-ant-work", f"afterwards the desktop app served by {got}")
        return f"exit {code} after {took:.1f} s: {message!r}; the desktop app still serves"

    async def check_no_display(self):
        env = {k: v for k, v in self.env.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
        code, _, err, took = await asyncio.to_thread(self.run_again, "keyway-no-display", [],
                                                     REFUSED_TIMEOUT, env)
        message = next((line for line in err.splitlines() if line.startswith("error:")), None)
        expect(code == 1, f"`keyway` without a display exited {code} (not 1); stderr:\n"
                          f"{err.strip()}")
        expect(message and "--headless" in message,
               f"`keyway` without a display did not point to --headless; stderr:\n{err.strip()}")
        self.keyway_exited()
        return f"exit {code} after {took:.1f} s: {message!r}"

    async def check_second_launch(self):
        # The order: `window` and `reopen` run first, so that their Open dashboard clicks are
        # what put the window up (were the second launch first, the click would find it
        # already shown and could not fail). Here the window is closed first, as a user's ×
        # does (the app destroys it and keeps running), so that the dashboard coming back can
        # only be the second launch's doing (the handover's show_dashboard, desktop/handover.rs);
        # with the window left up, "still shown" would pass even if the callback did nothing.
        await self.close_window("closing the reopened dashboard")
        self.keyway_exited()

        code, out, err, took = await asyncio.to_thread(self.run_again, "keyway-second", [],
                                                     HANDOVER_TIMEOUT)
        tail = "\n".join(err.splitlines()[-15:])
        expect(code == 0, f"the second `keyway` exited {code} (not 0); its stderr ends:\n{tail}")
        self.keyway_exited()
        got = await asyncio.to_thread(served_by, self.port, self.client_key)
        expect(got == "sk-ant-work", f"after the second launch the first served by {got}")
        # The second launch handed over before starting an engine of its own: commands
        # still find the running app where it listens.
        recorded = (self.data_dir / "instance.addr").read_text().strip()
        expect(recorded == f"127.0.0.1:{self.port}",
               f"after the second launch instance.addr says {recorded}, not the running app's "
               f"127.0.0.1:{self.port}")
        expect("listening on" not in out,
               f"the second `keyway` started an engine of its own: {out.strip()}")
        _, _, _, colours = await self.screen_shows_dashboard("dashboard-second-launch.png")
        return (f"closed window came back after a second launch that exited 0 in {took:.1f} s; "
                f"port {self.port} still serves; {colours} colours (dashboard-second-launch.png)")

    async def check_copy(self):
        await self.tray.click("Copy connection settings", "Claude Code")
        app, summary, body = await poll(
            "a notification after Copy connection settings", STEP_TIMEOUT,
            lambda: next_while_alive(self.keyway, self.notifications.shown), interval=0)
        expect(summary == "Claude Code settings copied",
               f"the notification after the copy says {summary!r}: {body!r}")
        expect(app == "Keyway", f"the notification comes from {app!r}, not Keyway")
        return f"{app}: {summary!r}"

    async def check_autostart(self):
        entry = self.home / ".config/autostart/Keyway.desktop"
        expect(not entry.exists(), f"{entry} exists before Start at login was ticked")
        await self.tray.click("Start at login")
        await poll("Start at login writes the autostart entry", STEP_TIMEOUT,
                   lambda: asyncio.to_thread(entry.exists))
        text = entry.read_text()
        expect(f"Exec={self.keyway_bin}" in text,
               f"{entry} does not start {self.keyway_bin}:\n{text}")

        async def ticked():
            items = await self.tray.layout()
            return any(it["label"] == "Start at login" and it["toggle_state"] == 1
                       for it in items)
        await poll("the menu shows Start at login ticked", STEP_TIMEOUT, ticked)
        await self.tray.click("Start at login")
        await poll("unticking Start at login removes the entry", STEP_TIMEOUT,
                   lambda: asyncio.to_thread(lambda: not entry.exists()))
        return f"{entry.name} written (Exec={self.keyway_bin.name}) and removed again"

    async def check_hung(self):
        # Stopped, the app keeps its name on the session bus (the bus answers for it) but
        # not the handover call: the second launch must give up with a clear error, not wait
        # for good, and must not start an engine of its own.
        os.kill(self.keyway.pid, signal.SIGSTOP)
        try:
            code, out, err, took = await asyncio.to_thread(self.run_again, "keyway-hung", [],
                                                         HANDOVER_TIMEOUT)
        finally:
            os.kill(self.keyway.pid, signal.SIGCONT)
        message = next((line for line in err.splitlines() if line.startswith("error:")), None)
        expect(code == 1, f"the second `keyway` exited {code} (not 1) while the first was "
                          f"stopped; stderr:\n{err.strip()}")
        expect(message and "did not answer" in message and "quit it" in message,
               f"the second `keyway` did not say the running app did not answer and what to "
               f"do; stderr:\n{err.strip()}")
        expect("listening on" not in out,
               f"the second `keyway` started an engine of its own: {out.strip()}")
        self.keyway_exited()
        got = await asyncio.to_thread(served_by, self.port, self.client_key)
        expect(got == "sk-ant-work", f"continued, the app served by {got}")
        return f"exit {code} after {took:.1f} s: {message!r}; continued, the app serves"

    async def check_quit(self):
        await self.tray.click("Quit Keyway")
        t0 = time.monotonic()
        try:
            code = await asyncio.to_thread(self.keyway.wait, QUIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise CheckFailed(f"keyway still runs {QUIT_TIMEOUT} s after Quit") from None
        expect(code == 0, f"keyway exited with {code} after Quit")
        return f"exit 0 after {time.monotonic() - t0:.1f} s"


# Everything written to ARTIFACT_DIR (a previous run's are removed first).
ARTIFACTS = [
    "xvfb.log", "fake-upstream.stdout", "fake-upstream.stderr", "keyway.stdout", "keyway.stderr",
    "menu.txt", "menu-after-priority.txt", "dashboard.png", "keyway-logs",
    "keyway-headless.stdout", "keyway-headless.stderr", "keyway-second.stdout",
    "keyway-second.stderr", "keyway-hung.stdout", "keyway-hung.stderr",
    "keyway-no-display.stdout", "keyway-no-display.stderr",
    "dashboard-second-launch.png", "dashboard-reopened.png",
]

CHECKS = [
    ("tray", "the tray registers and its menu shows where it listens", "check_tray"),
    ("serve", "the engine serves (round robin over Work and Home)", "check_serve"),
    ("policy", "a menu action switches a policy (Priority)", "check_policy"),
    ("pause", "Pause proxy refuses requests with 503 until Resume proxy", "check_pause"),
    ("headless", "keyway --headless while the desktop app holds the port fails with a clear "
                 "message", "check_headless"),
    ("no-display", "keyway without a graphical session says to run --headless",
     "check_no_display"),
    ("window", "the dashboard window renders the UI", "check_window"),
    ("close", "closing the window destroys it and every process it needed; keyway serves on",
     "check_close"),
    ("reopen", "Open dashboard after a close builds the window again", "check_reopen"),
    ("second-launch", "a second launch focuses the window instead of starting twice",
     "check_second_launch"),
    ("copy", "Copy connection settings copies and says so in a notification", "check_copy"),
    ("autostart", "Start at login writes the desktop's autostart entry, and unticked removes it",
     "check_autostart"),
    ("hung", "a second launch gives up on a running app that does not answer, saying so",
     "check_hung"),
    ("quit", "Quit exits 0 within a few seconds", "check_quit"),
]


async def main():
    artifacts = Path(os.environ.get("ARTIFACT_DIR") or ROOT / "target/desktop-smoke").resolve()
    keyway_bin = Path(os.environ.get("KEYWAY_DESKTOP_BIN") or ROOT / "target/debug/keyway")
    fake_bin = Path(os.environ.get("FAKE_UPSTREAM_BIN") or ROOT / "target/debug/fake-upstream")
    for name, p in (("KEYWAY_DESKTOP_BIN", keyway_bin), ("FAKE_UPSTREAM_BIN", fake_bin)):
        if not os.access(p, os.X_OK):
            print(f"desktop smoke: FAIL: {name}={p} is not an executable")
            return 1
    if not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        print("desktop smoke: FAIL: no session bus: run inside scripts/lib/keyring-session.sh")
        return 1
    if shutil.which("Xvfb") is None:
        print("desktop smoke: FAIL: Xvfb not found (Debian package xvfb)")
        return 1
    if not (ROOT / "ui/dist/index.html").exists():
        print("desktop smoke: ui/dist is missing: building the dashboard")
        subprocess.run(["npm", "--prefix", str(ROOT / "ui"), "run", "build"], check=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS:  # only what this test writes: ARTIFACT_DIR may hold other things
        path = artifacts / old
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    print(f"desktop smoke: {keyway_bin}; artifacts in {artifacts}")

    t0 = time.monotonic()
    results = []
    tmp = Path(tempfile.mkdtemp(prefix="keyway-desktop-smoke."))
    smoke = Smoke(artifacts, tmp, keyway_bin, fake_bin)
    try:
        try:
            await smoke.setup()
            failed = False
        except Exception as e:  # noqa: BLE001
            print(f"FAIL setup: {e}")
            results.append(("setup", "fail"))
            failed = True
        for key, title, fn in CHECKS:
            if failed:
                print(f"SKIP {key}: {title} (after an earlier failure)")
                results.append((key, "skip"))
                continue
            start = time.monotonic()
            try:
                detail = await getattr(smoke, fn)()
                print(f"PASS {key}: {title} — {detail} [{time.monotonic() - start:.1f} s]")
                results.append((key, "pass"))
            except Exception as e:  # noqa: BLE001
                kind = "" if isinstance(e, CheckFailed) else f"{type(e).__name__}: "
                print(f"FAIL {key}: {title} — {kind}{e} [{time.monotonic() - start:.1f} s]")
                results.append((key, "fail"))
                failed = True
    finally:
        if smoke.bus is not None:
            smoke.bus.disconnect()
        smoke.procs.stop_all()
        logs = tmp / "data" / "logs"
        if logs.is_dir():
            shutil.copytree(logs, artifacts / "keyway-logs", dirs_exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)

    count = {k: sum(r == k for _, r in results) for k in ("pass", "fail", "skip")}
    summary = f"{count['pass']} passed, {count['fail']} failed"
    if count["skip"]:
        summary += f", {count['skip']} skipped"
    took = f"in {time.monotonic() - t0:.1f} s; artifacts in {artifacts}"
    if not count["fail"] and not count["skip"]:
        print(f"desktop smoke: {summary} {took}")
        return 0
    stderr = artifacts / "keyway.stderr"
    if stderr.exists():
        tail = stderr.read_text(errors="replace").splitlines()[-40:]
        print(f"--- last {len(tail)} lines of {stderr} ---")
        print("\n".join(tail))
        print("---")
    print(f"desktop smoke: {summary} {took}")
    return 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
