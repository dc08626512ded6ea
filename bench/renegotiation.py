#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""bench/renegotiation.py -- server-initiated renegotiations per second and
worker memory per connection.

Runs the moatd of a build tree (as root, sandboxed as in production) with
one worker in front of an echo backend, opens CONNECTIONS TLS 1.2
connections with tests/helpers/reneg_swarm, and for each key type (ECDSA
P-256, RSA-2048):

  * renegotiations/s: `moatctl rekey` asks every connection at once; each
    renegotiation is a full handshake whose signature keyd makes, so this is
    the rate at which one worker and keyd move live connections to new keys;
  * worker memory: the worker's resident and proportional set size (VmRSS,
    Pss from /proc/PID/smaps_rollup) with no connection and with CONNECTIONS
    idle ones, and the difference per connection.

Usage (from the source tree, after `bash packaging/dev/test` or a build):

  /usr/bin/python3 bench/renegotiation.py [--build build] [--connections 1000]

Clients and moat share the machine; bench/README.md has the numbers measured
so far.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--build", default=os.path.join(SRC, "build"))
    ap.add_argument("--connections", type=int, default=1000)
    return ap.parse_args()


def memory_kib(pid):
    """(VmRSS, Pss) of a process in KiB."""
    rss = pss = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
    return rss, pss


def read_line(proc, seconds):
    """One line of the swarm's stdout, or None after `seconds`."""
    import select
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        r, _, _ = select.select([proc.stdout], [], [], 0.5)
        if r:
            return proc.stdout.readline().decode().strip()
        if proc.poll() is not None:
            return None
    return None


def run(kind, m, reneglib, n):
    worker = m.workers()[0]
    idle = memory_kib(worker)
    swarm = subprocess.Popen(
        [reneglib.RENEG_SWARM, "-p", str(m.ports[kind]), "-n", str(n),
         "-c", "64", "-T", "300000", "-t", "300000"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL)
    try:
        line = read_line(swarm, 300)
        if not line or not line.startswith("ready"):
            sys.exit("bench: swarm did not get ready: %r" % line)
        time.sleep(1.0)         # let the last proxy buffers settle
        loaded = memory_kib(worker)
        t0 = time.monotonic()
        asked = reneglib.rekey(m, kind, timeout=300)
        line = read_line(swarm, 300)
        t1 = time.monotonic()
        summary = json.loads(line) if line and line.startswith("{") else {}
    finally:
        if swarm.poll() is None:
            swarm.kill()
        swarm.wait(30)
    done = summary.get("renegotiated", 0)
    return {
        "asked": asked, "renegotiated": done, "seconds": t1 - t0,
        "per_s": done / (t1 - t0) if t1 > t0 else 0.0,
        "idle_kib": idle, "loaded_kib": loaded,
    }


def main():
    args = parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: run as root (moatd drops privileges into its sandbox)")
    os.environ["MOAT_BUILD"] = os.path.abspath(args.build)
    os.environ["MOAT_SRC"] = SRC
    sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
    import moatlib
    import reneglib

    n = args.connections
    if reneglib.raise_nofile() < 2 * n + 256:
        sys.exit("bench: RLIMIT_NOFILE too low for %d connections" % n)
    print("%d CPU(s), %d connections, one worker, a fresh moatd per key "
          "type (so the memory numbers do not reuse another run's heap)"
          % (os.cpu_count(), n))
    for kind in ("ecdsa", "rsa"):
        with tempfile.TemporaryDirectory(prefix="moat-bench-") as d:
            cert, key = moatlib.make_cert(d, kind)
            echo = reneglib.EchoServer()
            m = moatlib.Moat(d, {kind: reneglib.frontend(
                echo.address, cert, key, rekey_interval=0, rekey_bytes=0,
                idle_timeout="600s")},
                workers=1, max_connections=n + 100, **{"log-level": "warn"})
            m.start()
            try:
                r = run(kind, m, reneglib, n)
            finally:
                rc = m.stop()
                echo.close()
            if rc != 0:
                print(m.log())
                sys.exit("moatd exited with %s" % rc)
        per_conn = (r["loaded_kib"][0] - r["idle_kib"][0]) / n
        print("%-5s renegotiated %d/%d in %.2f s: %6.0f renegotiations/s; "
              "worker RSS %d -> %d KiB (%.1f KiB per connection), "
              "Pss %d -> %d KiB"
              % (kind, r["renegotiated"], r["asked"], r["seconds"], r["per_s"],
                 r["idle_kib"][0], r["loaded_kib"][0], per_conn,
                 r["idle_kib"][1], r["loaded_kib"][1]))

if __name__ == "__main__":
    main()
