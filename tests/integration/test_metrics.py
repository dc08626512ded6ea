# SPDX-License-Identifier: GPL-2.0-or-later
"""Prometheus metrics (issue 12): `moatctl stats --prometheus` and the
metrics-listen HTTP listener print the same counters as `moatctl stats
--json`, parsed by prometheus_client's own parser; the keyd latency
histograms are cumulative and count what keyd did; the listener answers
GET /metrics only, and neither an endless header nor a crowd of clients
stalls the master's loop."""

import os
import socket
import subprocess
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

import moatlib
import reneglib

N12 = 4		# TLS 1.2 connections on frontend "alpha"
N13 = 5		# TLS 1.3 connections on frontend "beta"
CTYPE = "text/plain; version=0.0.4"
CLIENTS_MAX = 8	# METRICS_CLIENTS_MAX in daemon/master/metrics.c
READ_S = 5.0	# METRICS_READ_S

# Prometheus sample (no labels) -> the `moatctl stats --json` member.
PLAIN = {
    "moat_workers": "workers",
    "moat_workers_answered": "workers_answered",
    "moat_connections_open": "conns_open",
    "moat_connections_refused_total": "conns_refused_limit",
    "moat_backend_errors_total": "backend_errors",
    "moat_worker_keyd_requests_total": "keyd_requests",
    "moat_worker_keyd_failures_total": "keyd_failures",
    "moat_renegotiations_requested_total": "renegotiations_requested",
    "moat_renegotiations_completed_total": "renegotiations_completed",
    "moat_renegotiations_refused_total": "renegotiations_refused",
    "moat_renegotiations_ignored_total": "renegotiations_ignored",
    "moat_key_updates_total": "key_updates",
    "moat_client_renegotiations_refused_total":
        "client_renegotiations_refused",
    "moat_client_renegotiations_allowed_total":
        "client_renegotiations_allowed",
    "moat_renegotiations_in_flight": "renegotiations_in_flight",
    "moat_renegotiations_waiting": "renegotiations_waiting",
    "moat_tls_handshakes_waiting_keyd": "handshakes_waiting_keyd",
    "moat_keyd_requests_total": "keyd_served_requests",
    "moat_keyd_decrypts_total": "keyd_decrypts",
    "moat_keyd_refused_total": "keyd_refused",
    "moat_keyd_errors_total": "keyd_errors",
    "moat_keyd_rate_limited_total": "keyd_rate_limited",
    "moat_keyd_cancelled_total": "keyd_cancelled",
    "moat_keyd_queue_depth": "keyd_queue_depth",
    "moat_keyd_channels": "keyd_channels",
    "moat_keyd_threads": "keyd_threads",
    "moat_keyd_keys": "keyd_keys",
}
# Per frontend: sample name and extra labels -> the per_frontend member
# (whose sum over the frontends is the top-level member of that name).
PER_FRONTEND = {
    ("moat_connections_total", ()): "conns_total",
    ("moat_tls_handshakes_total", (("tls_version", "1.2"),)):
        "handshakes_ok_tls12",
    ("moat_tls_handshakes_total", (("tls_version", "1.3"),)):
        "handshakes_ok_tls13",
    ("moat_tls_handshakes_failed_total", ()): "handshakes_failed",
    ("moat_tls_handshakes_resumed_total", ()): "handshakes_resumed",
    ("moat_client_to_backend_bytes_total", ()): "bytes_client_to_backend",
    ("moat_backend_to_client_bytes_total", ()): "bytes_backend_to_client",
}
ALGOS = ("rsa_pkcs1", "rsa_pss", "ecdsa", "eddsa")
# (histogram, its JSON buckets, the JSON sum in microseconds)
HISTOGRAMS = {
    "moat_keyd_operation_duration_seconds":
        ("keyd_served_latency_buckets", "keyd_served_latency_us_total"),
    "moat_worker_keyd_duration_seconds":
        ("keyd_latency_buckets", "keyd_latency_us_total"),
}
# JSON numbers Prometheus derives itself (averages, maxima: a histogram
# has them) or holds as a sum of labelled samples (keyd_signs).
NOT_EXPOSED = {"keyd_latency_avg_ms", "keyd_latency_max_ms",
               "keyd_served_latency_avg_ms", "keyd_served_latency_max_ms",
               "keyd_signs"}


def parse(text):
    """{family name: Metric} as prometheus_client reads the text."""
    fams = {}
    for f in text_string_to_metric_families(text):
        assert f.name not in fams, "family %s twice" % f.name
        fams[f.name] = f
    return fams


def samples(fams):
    """{(sample name, sorted labels): value} of every family."""
    out = {}
    for f in fams.values():
        for s in f.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in out, "sample %r twice" % (key,)
            out[key] = s.value
    return out


def http(port, request, timeout=10):
    """Send request bytes; (status, headers, body) of the answer, read to
    the EOF the listener must send after it."""
    with socket.create_connection((moatlib.LOOPBACK, port), timeout) as s:
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), headers, body


def curl(port):
    r = subprocess.run(["curl", "-sS", "--max-time", "10", "-D", "-",
                        "http://%s:%d/metrics" % (moatlib.LOOPBACK, port)],
                       capture_output=True, timeout=20)
    assert r.returncode == 0, r.stderr
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    return head.decode(), body.decode()


@pytest.fixture(scope="module")
def run(module_moat_factory, backends, certs):
    """One moat with two frontends and metrics-listen; TLS 1.2 and 1.3
    traffic, one failed handshake and one renegotiation through it."""
    moatlib.need_tool("curl")
    echo = backends.echo()
    port = moatlib.free_port()
    m = module_moat_factory({
        "alpha": {"backend": echo.address, "cert": certs["ecdsa"][0],
                  "key": certs["ecdsa"][1]},
        "beta": {"backend": echo.address, "cert": certs["rsa"][0],
                 "key": certs["rsa"][1]}},
        workers=2, metrics_listen="%s:%d" % (moatlib.LOOPBACK, port))
    m.metrics_port = port
    before = reneglib.wait_quiet(m)
    for i in range(N12):
        with moatlib.tls_connect(m.ports["alpha"], "1.2") as s:
            moatlib.round_trip(s, bytes([i]) * (500 + i))
    for i in range(N13):
        with moatlib.tls_connect(m.ports["beta"], "1.3") as s:
            moatlib.round_trip(s, bytes([i]) * (700 + i))
    # a failed handshake on beta: not a ClientHello
    with socket.create_connection((moatlib.LOOPBACK, m.ports["beta"]),
                                  10) as s:
        s.sendall(b"\x16\x03\x01\x00\x05not a handshake" * 3)
        s.settimeout(10)
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass
    # one TLS 1.2 renegotiation, asked by moatctl rekey, with Python's ssl
    mid = reneglib.counters(m)
    with moatlib.tls_connect(m.ports["alpha"], "1.2") as s:
        moatlib.round_trip(s)
        reneglib.wait_established(m, mid, 1)
        assert reneglib.rekey(m, "alpha") == 1
        i = 0

        def renegotiated():
            nonlocal i
            i += 1
            moatlib.round_trip(s, b"exchange %d\n" % i)
            return reneglib.reneg_delta(m, before)[
                "renegotiations_completed"] >= 1
        moatlib.wait_for(renegotiated, 20, 0.05, "the renegotiation")
    reneglib.wait_quiet(m)
    return m, before


def scrape(m):
    """The HTTP answer and `moatctl stats --json`, taken while nothing
    moves (no connection open), so they must agree to the unit."""
    head, body = curl(m.metrics_port)
    return head, body, m.stats()


def test_http_answer(run):
    m, _ = run
    status, headers, body = http(
        m.metrics_port, b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
    assert status == 200, (status, headers)
    assert headers["content-type"] == CTYPE, headers
    assert int(headers["content-length"]) == len(body), headers
    assert headers["connection"] == "close", headers
    head, text = curl(m.metrics_port)
    assert head.startswith("HTTP/1.1 200 "), head
    assert text.endswith("\n") and "# TYPE moat_connections_total" in text


def test_help_and_type_for_every_family(run):
    m, _ = run
    _, text, _ = scrape(m)
    fams = parse(text)
    assert len(fams) >= len(PLAIN), sorted(fams)
    for name, f in fams.items():
        assert f.documentation, name
        assert f.type in ("counter", "gauge", "histogram"), (name, f.type)
        if f.type == "counter":
            # the parser names a counter's family without its _total
            assert all(s.name == name + "_total" for s in f.samples), name
            name += "_total"
        assert "# HELP %s " % name in text and "# TYPE %s %s\n" % (
            name, f.type) in text, name


def test_counters_match_json(run):
    m, before = run
    _, text, st = scrape(m)
    got = samples(parse(text))
    assert st["keyd_answered"] is True and got[("moat_keyd_up", ())] == 1
    seen = {"moat_keyd_up"}
    for name, key in PLAIN.items():
        assert got[(name, ())] == st[key], (name, got[(name, ())], st[key])
        seen.add(name)
    fes = {f["name"]: f for f in st["per_frontend"]}
    assert sorted(fes) == ["alpha", "beta"], st["per_frontend"]
    for (name, extra), key in PER_FRONTEND.items():
        total = 0
        for fe, f in fes.items():
            labels = tuple(sorted((("frontend", fe),) + extra))
            assert got[(name, labels)] == f[key], (name, fe, f)
            total += f[key]
        assert total == st[key], (name, total, st[key])
        seen.add(name)
    for a in ALGOS:
        labels = (("algorithm", a),)
        assert got[("moat_keyd_signs_total", labels)] == st[
            "keyd_signs_" + a], a
    assert sum(got[("moat_keyd_signs_total", (("algorithm", a),))]
               for a in ALGOS) == st["keyd_signs"]
    seen.add("moat_keyd_signs_total")
    # every JSON counter has its sample, every sample a JSON counter
    covered = set(PLAIN.values()) | set(PER_FRONTEND.values()) | {
        "keyd_signs_" + a for a in ALGOS} | NOT_EXPOSED | {
        k for pair in HISTOGRAMS.values() for k in pair}
    missing = [k for k, v in st.items() if isinstance(v, (int, float)) and
               not isinstance(v, bool) and k not in covered]
    assert not missing, "in the JSON, not in Prometheus: %r" % missing
    hist = {n + sfx for n in HISTOGRAMS for sfx in ("_bucket", "_sum",
                                                    "_count")}
    unknown = {n for n, _ in got} - seen - hist
    assert not unknown, "in Prometheus, not checked: %r" % unknown
    # and they counted the traffic of the fixture
    base = {f["name"]: f for f in before["_raw"]["per_frontend"]}
    assert fes["alpha"]["handshakes_ok_tls12"] - \
        base["alpha"]["handshakes_ok_tls12"] == N12 + 1
    assert fes["beta"]["handshakes_ok_tls13"] - \
        base["beta"]["handshakes_ok_tls13"] == N13
    assert fes["beta"]["handshakes_failed"] > base["beta"][
        "handshakes_failed"]
    assert got[("moat_renegotiations_completed_total", ())] >= 1


def test_histograms(run):
    m, _ = run
    _, text, st = scrape(m)
    fams = parse(text)
    for name, (jbuckets, jsum) in HISTOGRAMS.items():
        f = fams[name]
        assert f.type == "histogram", name
        buckets = [(float(s.labels["le"]), s.value) for s in f.samples
                   if s.name == name + "_bucket"]
        assert buckets == sorted(buckets), (name, buckets)
        assert buckets[-1][0] == float("inf"), buckets
        values = [v for _, v in buckets]
        assert all(a <= b for a, b in zip(values, values[1:])), \
            "%s: buckets not cumulative: %r" % (name, values)
        cum, n = [], 0
        for c in st[jbuckets]:
            n += c
            cum.append(n)
        assert values == cum, (name, values, st[jbuckets])
        count = [s.value for s in f.samples if s.name == name + "_count"]
        total = [s.value for s in f.samples if s.name == name + "_sum"]
        assert count == [values[-1]], (name, count, values)
        assert abs(total[0] - st[jsum] / 1e6) < 1e-6, (name, total, st[jsum])
    # keyd's histogram counts every key operation keyd made
    ops = st["keyd_signs"] + st["keyd_decrypts"] + st["keyd_errors"]
    assert ops >= N12 + N13, st
    count = [s.value for s in fams["moat_keyd_operation_duration_seconds"]
             .samples if s.name.endswith("_count")]
    assert count == [ops], (count, ops)


def test_moatctl_prometheus(run):
    m, _ = run
    _, text, _ = scrape(m)
    out = m.ctl("stats", "--prometheus").stdout
    a, b = samples(parse(out)), samples(parse(text))
    assert a == b


def test_refusals(run):
    m, _ = run
    p = m.metrics_port
    status, headers, _ = http(p, b"POST /metrics HTTP/1.1\r\n\r\n")
    assert status == 405 and headers["allow"] == "GET", (status, headers)
    assert http(p, b"HEAD /metrics HTTP/1.1\r\n\r\n")[0] == 405
    assert http(p, b"GET / HTTP/1.1\r\n\r\n")[0] == 404
    assert http(p, b"GET /metricsx HTTP/1.0\r\n\r\n")[0] == 404
    assert http(p, b"GET /metrics HTTP/2.0\r\n\r\n")[0] == 505
    assert http(p, b"nonsense\r\n\r\n")[0] == 400
    assert http(p, b"GET /metrics HTTP/1.1\r\nX: \x00\r\n\r\n")[0] == 400
    status, headers, body = http(
        p, b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 5000 + b"\r\n\r\n")
    assert status == 431 and int(headers["content-length"]) == len(body)


def master_cpu_s(m):
    with open("/proc/%d/stat" % m.proc.pid) as f:
        st = f.read()
    fields = st[st.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_time(m):
    t = time.monotonic()
    m.ctl("status", timeout=5)
    return time.monotonic() - t


def master_metrics_conns(m):
    """The master's TCP connections on the metrics port (not its
    listener): accepted clients."""
    mine = moatlib.socket_inodes(m.proc.pid)
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            p = line.split()
            if int(p[1].split(":")[1], 16) == m.metrics_port and \
                    p[3] != "0A" and int(p[9]) in mine:
                n += 1
    return n


def test_endless_header_is_cut(run):
    """A client trickling an endless header: refused once it passes the
    bound, or dropped at the read deadline; the master answers meanwhile
    and does not spin."""
    m, _ = run
    s = socket.create_connection((moatlib.LOOPBACK, m.metrics_port), 10)
    s.sendall(b"GET /metrics HTTP/1.1\r\nX-Endless: ")
    cpu = master_cpu_s(m)
    t0 = time.monotonic()
    closed = None
    try:
        while time.monotonic() - t0 < READ_S + 5:
            assert status_time(m) < 1.0
            try:
                s.sendall(b"a" * 10)
            except OSError:
                closed = time.monotonic() - t0
                break
            s.settimeout(0.2)
            try:
                if s.recv(4096) == b"":
                    closed = time.monotonic() - t0
                    break
            except socket.timeout:
                pass
    finally:
        s.close()
    assert closed is not None and closed < READ_S + 2, closed
    assert master_cpu_s(m) - cpu < 1.0

    # and one that sends it fast: 431 long before any deadline
    s = socket.create_connection((moatlib.LOOPBACK, m.metrics_port), 10)
    t0 = time.monotonic()
    s.settimeout(10)
    got = b""
    try:
        s.sendall(b"GET /metrics HTTP/1.1\r\nX-Endless: ")
        while b"\r\n\r\n" not in got:
            s.sendall(b"b" * 1024)
            s.setblocking(False)
            try:
                got += s.recv(4096)
            except BlockingIOError:
                pass
            s.setblocking(True)
    except OSError:
        pass
    finally:
        s.close()
    assert got.startswith(b"HTTP/1.1 431 "), got
    assert time.monotonic() - t0 < 2.0


def test_many_clients_are_capped(run):
    """200 clients that connect and say nothing: the master serves at most
    CLIENTS_MAX at once, stays responsive and idle, and scrapes work again
    once they are gone."""
    m, _ = run
    socks = []
    try:
        for _ in range(200):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect((moatlib.LOOPBACK, m.metrics_port))
            except BlockingIOError:
                pass
            socks.append(s)
        cpu = master_cpu_s(m)
        time.sleep(0.5)
        assert status_time(m) < 1.0
        assert 0 < master_metrics_conns(m) <= CLIENTS_MAX, \
            master_metrics_conns(m)
        t = time.monotonic()
        assert m.ctl("stats", "--prometheus", timeout=5).stdout
        assert time.monotonic() - t < 3.0
        time.sleep(1.5)
        assert master_metrics_conns(m) <= CLIENTS_MAX
        assert master_cpu_s(m) - cpu < 1.0
    finally:
        for s in socks:
            s.close()
    moatlib.wait_for(lambda: master_metrics_conns(m) == 0, READ_S + 5, 0.1,
                     "the idle clients to be dropped")
    assert curl(m.metrics_port)[0].startswith("HTTP/1.1 200 ")
