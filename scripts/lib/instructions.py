"""Instructions per request: Keyway and its floor under valgrind's callgrind.

Run by scripts/instructions inside a private keyring session. It runs keyway-bench's c=16
scenario with Keyway and the floor (`floor-proxy`, Keyway's HTTP stack with no engine) each
started under callgrind, zeroes their counters once a target's measured run has begun,
dumps them a few seconds later, and divides the instructions by the requests served in that
window (the calls of hyper's server-side request parser, one a request on either stack).

Instruction counts do not depend on what else the machine is doing, so two builds compare
within a fraction of a percent where throughput on a shared host moves by tens of percent.
They are not time: under callgrind a proxy serves about a twentieth of its real rate, so the
usage history's work per batch (one SQLite upsert per group) is spread over fewer requests
than at full speed and is overstated; the per-thread split shows it apart.
"""

import argparse
import collections
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

# One call a request on both stacks: hyper parsing a request's head on the server side.
PER_REQUEST = "<hyper::proto::h1::role::Server as hyper::proto::h1::Http1Transaction>::parse"


def wrapper(path, out_dir, name, binary):
    """A script that runs `binary` under callgrind, for keyway-bench's --*-bin options."""
    with open(path, "w") as f:
        f.write(
            "#!/bin/sh\n"
            f"exec valgrind --tool=callgrind --separate-threads=yes --dump-instr=no "
            f"--callgrind-out-file={out_dir}/{name}.%p.out {binary} \"$@\"\n"
        )
    os.chmod(path, 0o755)


def callgrind_pid(pattern):
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
    return out[0] if out else None


def measure(log_lines, marker, pattern, settle, seconds, results, key):
    """Once `marker` shows in keyway-bench's progress, zero the counters of the process
    matching `pattern`, wait, dump them."""
    while True:
        if any(marker(line) for line in list(log_lines)):
            break
        if results.get("done"):
            return
        time.sleep(0.1)
    time.sleep(settle)
    pid = callgrind_pid(pattern)
    if pid is None:
        results[key] = "its process was not found"
        return
    subprocess.run(["callgrind_control", "-z", pid], capture_output=True, check=False)
    time.sleep(seconds)
    subprocess.run(["callgrind_control", "-d", pid], capture_output=True, check=False)
    results[key] = pid


def parse(path):
    """Self instructions per function, and calls per callee, of one callgrind file."""
    names, selfc, calls = {}, collections.Counter(), collections.Counter()
    fn = cfn = None
    after_calls = False
    name_re = re.compile(r"^(fn|cfn)=\((\d+)\)(?: (.*))?$")
    cost_re = re.compile(r"^[+-]?\d+ (\d+)$")
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            m = name_re.match(line)
            if m:
                kind, i, name = m.groups()
                if name:
                    names[i] = name
                if kind == "fn":
                    fn = names.get(i)
                else:
                    cfn = names.get(i)
                continue
            if line.startswith("calls="):
                calls[cfn] += int(line.split()[0][6:])
                after_calls = True
                continue
            m = cost_re.match(line)
            if m:
                if after_calls:
                    after_calls = False
                else:
                    selfc[fn] += int(m.group(1))
    return selfc, calls


def crate(name):
    """The crate a function belongs to: its path's first segment, or for a trait method
    (`<Type as Trait>::method`) the type's."""
    m = re.match(r"^<*(?:&(?:mut )?)?(?:dyn )?([a-z][a-z0-9_]*)::", name)
    if m:
        return m.group(1)
    if name.startswith(("mi_", "_mi_")):
        return "mimalloc"
    if name.startswith(("__mem", "mem")):
        return "libc memcpy/memmove"
    if "sqlite" in name.lower():
        return "sqlite"
    return "other"


def summarize(out_dir, pid):
    """Per-thread totals, requests, and self instructions by crate, of one dumped process."""
    files = sorted(glob.glob(f"{out_dir}/*.{pid}.out.1-*"))
    if not files:
        return None
    threads, crates, requests = [], collections.Counter(), 0
    for path in files:
        selfc, calls = parse(path)
        total = sum(selfc.values())
        if total == 0:
            continue
        requests += calls.get(PER_REQUEST, 0)
        threads.append((os.path.basename(path).rsplit("-", 1)[-1], total))
        for fn, n in selfc.items():
            crates[crate(fn or "")] += n
    return {"threads": threads, "crates": crates, "requests": requests}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True, help="keyway-bench")
    ap.add_argument("--keyway", required=True)
    ap.add_argument("--fake", required=True)
    ap.add_argument("--floor", required=True)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--top", type=int, default=20)
    args = ap.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        sys.exit("instructions: valgrind (with callgrind_control) is not installed")

    work = tempfile.mkdtemp(prefix="keyway-instructions-")
    wrapper(f"{work}/keyway", work, "keyway", args.keyway)
    wrapper(f"{work}/floor", work, "floor", args.floor)
    duration = args.seconds + 6
    cmd = [
        args.bench, "--keyway-bin", f"{work}/keyway", "--fake-bin", args.fake,
        "--floor", "--floor-bin", f"{work}/floor", "--no-nginx", "--scenarios", "c16",
        "--duration", str(duration), "--startup-runs", "0", "--rest", "1",
        "--out", f"{work}/bench",
    ]
    bench = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines, results = [], {}
    jobs = [
        ("keyway", lambda l: l.rstrip().endswith("c=16: keyway"), r"[c]allgrind.*--headless"),
        ("floor", lambda l: l.rstrip().endswith("c=16: floor"), r"[c]allgrind.*floor-proxy.*stack axum$"),
    ]
    watchers = [
        threading.Thread(target=measure, args=(lines, marker, pattern, 2.0, args.seconds, results, key))
        for key, marker, pattern in jobs
    ]
    for w in watchers:
        w.start()
    for line in bench.stderr:
        lines.append(line)
    code = bench.wait()
    results["done"] = True
    for w in watchers:
        w.join()
    if code != 0:
        sys.stderr.write("".join(lines[-30:]))
        sys.exit(f"instructions: keyway-bench failed (exit {code}); its last lines are above")

    summaries = {}
    for key, _, _ in jobs:
        pid = results.get(key)
        s = summarize(work, pid) if pid and pid.isdigit() else None
        if not s or not s["requests"]:
            sys.exit(f"instructions: no counts for {key} ({pid}); files in {work}")
        summaries[key] = s

    print(f"Instructions per request at c=16 (callgrind, {args.seconds:g} s of each target's run)\n")
    print("| target | requests counted | per request | runtime threads | other threads |")
    print("|---|--:|--:|--:|--:|")
    for key, s in summaries.items():
        n = s["requests"]
        busiest = max(t for _, t in s["threads"])
        total = sum(t for _, t in s["threads"])
        print(f"| {key} | {n:,} | {total / n:,.0f} | {busiest / n:,.0f} | {(total - busiest) / n:,.0f} |")
    k, f = summaries["keyway"], summaries["floor"]
    kn, fn = k["requests"], f["requests"]
    names = set(k["crates"]) | set(f["crates"])
    rows = sorted(names, key=lambda c: -(k["crates"][c] / kn - f["crates"][c] / fn))
    print("\nSelf instructions per request by crate, Keyway against the floor (largest differences):\n")
    print("| crate | keyway | floor | difference |")
    print("|---|--:|--:|--:|")
    for c in rows[: args.top]:
        a, b = k["crates"][c] / kn, f["crates"][c] / fn
        print(f"| {c} | {a:,.0f} | {b:,.0f} | {a - b:+,.0f} |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
