# SPDX-License-Identifier: GPL-2.0-or-later
"""One client cannot monopolise a worker with records that carry no data
(issue 9, point 4).

A TLS record that is not application data (a warning alert, a ClientHello
the policy refuses) costs the worker a decryption and a decision but moves
no byte, so nothing else bounds it.  moat reads at most a few such records
per connection per wakeup, and closes a connection that keeps sending them
(past NOISE_MAX, the log line saying so); the refusal log lines are
rate-limited.  The clients are tests/helpers/noise_client (GnuTLS, TLS
1.2); one worker serves everything, so the probe shares it with the abuser.
"""

import json
import os
import subprocess
import threading
import time

import pytest

import moatlib
import reneglib

NOISE_CLIENT = os.path.join(reneglib.HELPERS, "noise_client")
NOISE_MAX = 8			# daemon/worker/noise.h
PROBE_P99_S = 0.050		# the bound for a probe on the same worker
FLOOD_CONNS = 20


@pytest.fixture(scope="module")
def moat(module_moat_factory, backends, certs):
    cert, key = certs["ecdsa"]
    fe = {"backend": backends.echo().address, "cert": cert, "key": key,
          "rekey-interval": "0", "client-renegotiation": "refuse"}
    return module_moat_factory({"fe": fe}, workers=1)


def noise(port, mode, n, timeout=60):
    r = subprocess.run([NOISE_CLIENT, str(port), mode, str(n)],
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def worker_cpu_s(m):
    """CPU seconds (user + system) the moat's one worker has used."""
    (pid,) = m.workers()
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Probe:
    """A legitimate client on the same worker: one echo of 64 bytes every
    10 ms on an established connection, each round trip timed."""

    def __init__(self, port):
        self.s = moatlib.tls_connect(port, version="1.3")
        self.times = []
        self.error = None
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        try:
            while not self._stop.is_set():
                t0 = time.monotonic()
                moatlib.round_trip(self.s, b"p" * 64)
                self.times.append(time.monotonic() - t0)
                time.sleep(0.01)
        except Exception as e:		# reported by stop()
            self.error = e

    def stop(self):
        self._stop.set()
        self._t.join(30)
        self.s.close()
        assert self.error is None, "probe failed: %r" % self.error
        assert len(self.times) >= 10, self.times
        t = sorted(self.times)
        return t[min(len(t) - 1, int(len(t) * 0.99))]


def test_alert_burst_is_cut_short_and_the_probe_keeps_its_latency(moat):
    port = moat.ports["fe"]
    start = moat.log_size()
    probe = Probe(port)
    time.sleep(0.2)
    res = noise(port, "alerts", 100000)
    time.sleep(0.2)
    p99 = probe.stop()
    assert res["end"] == "closed", "100,000 warning alerts and still open: %r" % res
    assert moat.wait_log(r'reason="client error: over %d warning alerts or '
                         r'refused renegotiations' % NOISE_MAX, seconds=10,
                         start=start)
    assert p99 < PROBE_P99_S, "probe p99 %.1f ms during the burst" % (p99 * 1000)


def flood(port, per_conn):
    out = []
    for _ in range(FLOOD_CONNS):
        out.append(noise(port, "renegs", per_conn))
    return out


def test_renegotiation_flood_costs_no_more_per_connection(moat):
    """20 connections that ask for 1,000 renegotiations each cost the
    worker what 20 that ask for 10 cost: each is closed after NOISE_MAX
    refusals, and the refusal log lines stay few."""
    port = moat.ports["fe"]
    before = reneglib.counters(moat)
    start = moat.log_size()
    c0 = worker_cpu_s(moat)
    small = flood(port, 10)
    c1 = worker_cpu_s(moat)
    big = flood(port, 1000)
    c2 = worker_cpu_s(moat)
    for r in small + big:
        assert r["end"] == "closed" and r["refused"] <= NOISE_MAX, r
    # The same work per connection, give or take scheduling noise.
    assert c2 - c1 < (c1 - c0) * 2 + 0.2, \
        "worker CPU: %.2f s for 10 renegotiations a connection, %.2f s for 1,000" \
        % (c1 - c0, c2 - c1)
    refused = reneglib.counters(moat)["client_renegotiations_refused"] - \
        before["client_renegotiations_refused"]
    assert refused >= 2 * FLOOD_CONNS, refused
    lines = [ln for ln in moat.log_text()[start:].splitlines()
             if "client-initiated renegotiation refused" in ln]
    assert len(lines) < refused / 2, \
        "%d refusal log lines for %d refusals: not rate-limited" % (len(lines), refused)
