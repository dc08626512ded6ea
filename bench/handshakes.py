#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""bench/handshakes.py -- full handshakes per second and proxy throughput.

Runs the moatd of a build tree (as root, sandboxed as in production) on
loopback with an ECDSA P-256 and an RSA-2048 frontend in front of a local
backend, then measures:

  * full TLS handshakes/s: PARALLEL `openssl s_time -new` clients for
    SECONDS each, per key type and TLS version (no session resumption);
  * proxy throughput: PARALLEL `curl` downloads of SIZE_MIB MiB each through
    moat, and the same downloads straight from the backend for comparison.

Usage (from the source tree, after `bash packaging/dev/test` or a build):

  /usr/bin/python3 bench/handshakes.py [--build build] [--seconds 10]
      [--parallel 4] [--size-mib 1024] [--workers auto]

Clients and moat share the machine, so the numbers are what this machine does
with both; bench/README.md has the numbers measured so far.
"""

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--build", default=os.path.join(SRC, "build"))
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--workers", default="auto")
    return ap.parse_args()


def source_handler(size):
    """HTTP/1.0 backend that answers any request with `size` bytes."""
    block = memoryview(b"\0" * (4 << 20))

    def handler(c):
        buf = b""
        c.settimeout(30)
        while b"\r\n\r\n" not in buf:
            b = c.recv(4096)
            if not b:
                return
            buf += b
        c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        left = size
        while left > 0:
            n = min(left, len(block))
            c.sendall(block[:n])
            left -= n
        c.shutdown(socket.SHUT_WR)
    return handler


def s_time(port, version, seconds, parallel):
    """Full handshakes/s summed over `parallel` openssl s_time clients."""
    cmd = ["openssl", "s_time", "-connect", "127.0.0.1:%d" % port, "-new",
           "-time", str(seconds), "-tls" + version.replace(".", "_")]
    t0 = time.monotonic()
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
             for _ in range(parallel)]
    total = 0
    for p in procs:
        out, _ = p.communicate(timeout=seconds + 60)
        m = re.search(r"(\d+) connections in [\d.]+s", out)
        if p.returncode != 0 or not m:
            raise RuntimeError("s_time failed (%s):\n%s" % (p.returncode, out))
        total += int(m.group(1))
    wall = time.monotonic() - t0
    return total / wall


def curl_mib_s(url, parallel, size):
    """Aggregate MiB/s of `parallel` curl downloads of `size` bytes."""
    cmd = ["curl", "-sS", "-k", "-o", "/dev/null", "-w", "%{size_download}", url]
    t0 = time.monotonic()
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
             for _ in range(parallel)]
    got = 0
    for p in procs:
        out, _ = p.communicate(timeout=600)
        if p.returncode != 0 or int(out or 0) != size:
            raise RuntimeError("curl %s: status %s, %s bytes" % (url, p.returncode, out))
        got += int(out)
    return got / (1 << 20) / (time.monotonic() - t0)


def main():
    args = parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: run as root (moatd drops privileges into its sandbox)")
    os.environ["MOAT_BUILD"] = os.path.abspath(args.build)
    os.environ["MOAT_SRC"] = SRC
    sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
    import moatlib

    size = args.size_mib << 20
    results = []
    with tempfile.TemporaryDirectory(prefix="moat-bench-") as d:
        certs = {k: moatlib.make_cert(d, k) for k in ("ecdsa", "rsa")}
        backend = moatlib.Backend(source_handler(size))
        m = moatlib.Moat(d, {k: {"backend": backend.address, "cert": certs[k][0],
                                 "key": certs[k][1]} for k in certs},
                         workers=args.workers, **{"log-level": "warn"})
        m.start()
        try:
            print("moatd %s, %d worker(s), %d CPU(s); %d clients in parallel"
                  % (moatlib.MOATD, len(m.workers()), os.cpu_count(), args.parallel))
            for kind in ("ecdsa", "rsa"):
                for version in ("1.2", "1.3"):
                    r = s_time(m.ports[kind], version, args.seconds, args.parallel)
                    results.append(("handshakes/s", "%s TLS %s" % (kind, version), r))
                    print("full handshakes/s  %-6s TLS %s: %8.0f" % (kind, version, r))
            direct = curl_mib_s("http://%s/" % backend.address, args.parallel, size)
            print("throughput direct to backend (http): %8.0f MiB/s" % direct)
            for kind in ("ecdsa",):
                r = curl_mib_s("https://127.0.0.1:%d/" % m.ports[kind],
                               args.parallel, size)
                print("throughput through moat (https):     %8.0f MiB/s" % r)
        finally:
            rc = m.stop()
            backend.close()
        if rc != 0:
            print(m.log())
            sys.exit("moatd exited with %s" % rc)


if __name__ == "__main__":
    main()
