# SPDX-License-Identifier: GPL-2.0-or-later
"""`moatctl stats --json` counts what happened, exactly (issue 3), and
`moatctl status --json` names the processes."""

import socket

import pytest

import moatlib

N12 = 5		# connections over TLS 1.2
N13 = 7		# connections over TLS 1.3


@pytest.fixture(scope="module")
def run(module_moat_factory, backends, certs):
    """A fresh moat; the test's traffic; the stats after it."""
    echo = backends.echo()
    m = module_moat_factory({"echo": {"backend": echo.address,
                                      "cert": certs["ecdsa"][0],
                                      "key": certs["ecdsa"][1]}}, workers=2)
    port = m.ports["echo"]

    def settled(want_total):
        st = m.stats()
        t = moatlib.stats_total(st)
        done = t["conns_total"] >= want_total and t["conns_open"] == 0
        return st if done else None
    # The readiness probe of the harness was a connection too (a failed
    # handshake): count from here.
    base = moatlib.wait_for(lambda: settled(0), 10, 0.1, "a quiet moat")
    sent = 0
    for i in range(N12 + N13):
        version = "1.2" if i < N12 else "1.3"
        payload = bytes([i]) * (1000 + 37 * i)
        with moatlib.tls_connect(port, version) as s:
            assert s.version() == "TLSv" + version
            moatlib.round_trip(s, payload)
        sent += len(payload)
    # One failed handshake: not a ClientHello.
    with socket.create_connection((moatlib.LOOPBACK, port), 10) as s:
        s.sendall(b"\x16\x03\x01\x00\x05hello, not a handshake" * 3)
        s.settimeout(10)
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass

    want = base["conns_total"] + N12 + N13 + 1
    stats = moatlib.wait_for(lambda: settled(want), 10, 0.1,
                             "every connection to be counted")
    return m, delta(base, stats), sent


def delta(base, now):
    """now - base for every counter (maxima and gauges are taken as now)."""
    moatlib.stats_total(now)	# checks totals = sum over per_worker
    out = dict(now)
    del out["per_worker"]
    for k, v in now.items():
        if isinstance(v, int) and not isinstance(v, bool) and \
                k not in ("conns_open", "workers", "workers_answered") and \
                "_max" not in k and k not in (
                    "keyd_channels", "keyd_queue_depth", "keyd_threads",
                    "keyd_keys"):
            out[k] = v - base.get(k, 0)
    return out


def test_connections(run):
    _, st, _ = run
    t = moatlib.stats_total(st)
    assert t["conns_total"] == N12 + N13 + 1, t
    assert t["conns_open"] == 0, t
    assert t["conns_refused_limit"] == 0, t
    assert st["workers_answered"] == st["workers"] == 2, st


def test_handshakes_by_version(run):
    _, st, _ = run
    t = moatlib.stats_total(st)
    assert t["handshakes_ok_tls12"] == N12, t
    assert t["handshakes_ok_tls13"] == N13, t
    assert t["handshakes_failed"] == 1, t


def test_bytes_each_way(run):
    _, st, sent = run
    t = moatlib.stats_total(st)
    assert t["bytes_client_to_backend"] == sent, t
    assert t["bytes_backend_to_client"] == sent, t


def test_keyd_requests(run):
    _, st, _ = run
    t = moatlib.stats_total(st)
    k = moatlib.stats_keyd(st)
    assert t["keyd_requests"] >= N12 + N13, t
    assert t["keyd_failures"] == 0, t
    assert k["requests"] >= N12 + N13, k
    assert k["refused"] == 0, k
    assert k["errors"] == 0, k


def test_stats_human_readable(run):
    m, _, _ = run
    out = m.ctl("stats").stdout
    assert "handshake" in out.lower(), out


def test_status_lists_processes(run):
    m, _, _ = run
    st = m.status()
    workers, keyd = moatlib.status_pids(st)
    assert sorted(workers) == sorted(m.workers()), st
    assert set(keyd) & set(m.keyd_pids()), st
    assert m.proc.pid == moatlib.status_master_pid(st), st
    out = m.ctl("status").stdout
    for p in m.workers():
        assert str(p) in out, out
