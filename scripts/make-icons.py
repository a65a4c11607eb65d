#!/usr/bin/env python3
"""Draws Keyway's icons (a key on a rounded square) as PNGs with the standard library only.

Usage: scripts/make-icons.py   (writes src-tauri/icons/)

App icons in the sizes the Linux bundles use, and one tray icon per state: serving (green),
degraded (amber), exhausted (red), paused (grey). Re-run after changing the drawing.
"""

import math
import struct
import zlib
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "src-tauri" / "icons"

APP = (79, 70, 229)  # indigo
TRAY = {
    "tray-serving": (22, 163, 74),
    "tray-degraded": (217, 119, 6),
    "tray-exhausted": (220, 38, 38),
    "tray-paused": (107, 114, 128),
}


def inside_key(x: float, y: float) -> bool:
    """The key, in a unit square: a ring (the bow), a shaft and two teeth."""
    cx, cy = 0.34, 0.5
    d = math.hypot(x - cx, y - cy)
    if 0.09 <= d <= 0.19:
        return True
    if 0.52 <= x <= 0.84 and 0.46 <= y <= 0.54:
        return True
    if 0.70 <= x <= 0.76 and 0.54 <= y <= 0.66:
        return True
    if 0.78 <= x <= 0.84 and 0.54 <= y <= 0.62:
        return True
    return 0.51 <= x <= 0.55 and 0.44 <= y <= 0.56


def inside_square(x: float, y: float, r: float = 0.22) -> bool:
    """A rounded square filling the unit square."""
    m = 0.04
    qx = min(max(x, m + r), 1 - m - r)
    qy = min(max(y, m + r), 1 - m - r)
    return math.hypot(x - qx, y - qy) <= r


def draw(size: int, color: tuple[int, int, int]) -> bytes:
    """RGBA rows, 4×4 supersampled so edges are smooth."""
    s = 4
    rows = []
    for py in range(size):
        row = bytearray([0])  # filter: none
        for px in range(size):
            bg = fg = 0
            for sy in range(s):
                for sx in range(s):
                    x = (px + (sx + 0.5) / s) / size
                    y = (py + (sy + 0.5) / s) / size
                    if inside_square(x, y):
                        bg += 1
                        if inside_key(x, y):
                            fg += 1
            n = s * s
            alpha = bg / n
            white = fg / max(bg, 1)
            rgb = [round(c * (1 - white) + 255 * white) for c in color]
            row += bytes(rgb + [round(255 * alpha)])
        rows.append(bytes(row))
    return b"".join(rows)


def png(size: int, rgba: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rgba, 9))
        + chunk(b"IEND", b"")
    )


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, size in [("32x32", 32), ("128x128", 128), ("128x128@2x", 256), ("icon", 512)]:
        (OUT / f"{name}.png").write_bytes(png(size, draw(size, APP)))
    for name, color in TRAY.items():
        (OUT / f"{name}.png").write_bytes(png(64, draw(64, color)))
    print(f"icons written to {OUT}")


if __name__ == "__main__":
    main()
