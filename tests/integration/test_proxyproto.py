# SPDX-License-Identifier: GPL-2.0-or-later
"""ALPN and the PROXY protocol (issue 10): the header moat writes to the
backend (v1, and v2 with its ALPN, authority, unique id and SSL TLVs),
checked by a parser of the test's own; curl --http2 negotiating h2; and
the header a balancer in front sends (accept-proxy), whose client address
then shows in the log line and in the backend's header, refused from an
address not allowed and when malformed.  Every byte after a header
arrives intact both ways."""

import os
import re
import socket
import ssl
import subprocess
import time

import pytest

import moatlib
from pplib import PPBackend, SIG2, read_exact, read_proxy_header, v2_header  # noqa: F401

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SNI = "www.example.test"


@pytest.fixture(scope="module")
def env(module_moat_factory, backends, certs):
    cert, key = certs["ecdsa"]
    fe = {"cert": cert, "key": key}
    be = {n: PPBackend(backends) for n in ("v2", "v1", "in", "deny")}
    m = module_moat_factory({
        "v2": dict(fe, backend=be["v2"].address, alpn="h2, http/1.1",
                   **{"proxy-protocol": "v2"}),
        "v1": dict(fe, backend=be["v1"].address, **{"proxy-protocol": "v1"}),
        "in": dict(fe, backend=be["in"].address, **{
            "proxy-protocol": "v2", "accept-proxy": "any",
            "accept-proxy-from": "10.9.0.0/16, 127.0.0.0/8",
            "handshake-timeout": "3s"}),
        "deny": dict(fe, backend=be["deny"].address, **{
            "proxy-protocol": "v2", "accept-proxy": "v2",
            "accept-proxy-from": "192.0.2.0/24"}),
    })
    # the readiness probes' connections end before any header: let their
    # log lines and backend-less ends go by
    time.sleep(0.3)
    return m, be


def ctx_alpn(protocols):
    ctx = moatlib.client_context()
    if protocols:
        ctx.set_alpn_protocols(protocols)
    return ctx


def echo_check(s, n=256 * 1024):
    data = os.urandom(n)
    s.sendall(data)
    got = moatlib.recv_exact(s, n)
    assert got == data, "bytes after the header changed"


def conn_line(m, regex, start):
    return m.wait_log(r"conn client=\S+ frontend=.*" + regex, start=start)


def test_v2_header_tlvs(env):
    m, be = env
    start = m.log_size()
    s = moatlib.tls_connect(m.ports["v2"], version="1.3", ctx=ctx_alpn(["h2"]))
    sport = s.getsockname()[1]
    assert s.selected_alpn_protocol() == "h2"
    echo_check(s)
    s.close()
    h = be["v2"].header()
    assert h["version"] == 2 and h["family"] == "TCP4"
    assert (h["src"], h["sport"]) == ("127.0.0.1", sport)
    assert (h["dst"], h["dport"]) == ("127.0.0.1", m.ports["v2"])
    t = h["tlvs"]
    assert t.get(0x01) == b"h2", t
    assert t.get(0x02) == b"localhost", t     # the SNI tls_connect sends
    assert h["ssl_client"] == 0x01            # PP2_CLIENT_SSL, no certificate
    assert h["ssl_verify"] != 0               # spec: 0 only for a verified cert
    assert h["ssl"].get(0x21) == b"TLSv1.3", h["ssl"]
    assert 0x22 not in h["ssl"]               # no client CN without a cert
    line = conn_line(m, r"alpn=h2 id=([0-9a-f]{32})", start)
    assert t.get(0x05) == bytes.fromhex(line.group(1)), \
        "UNIQUE_ID TLV is not the log line's id"
    cipher = re.search(r"cipher=(\S+)", line.group(0)).group(1)
    assert h["ssl"].get(0x23) == cipher.encode(), (h["ssl"], cipher)


def test_server_precedence(env):
    """The frontend's order wins over the client's (SERVER_PRECEDENCE)."""
    m, be = env
    s = moatlib.tls_connect(m.ports["v2"], ctx=ctx_alpn(["http/1.1", "h2"]))
    assert s.selected_alpn_protocol() == "h2"
    s.close()
    assert be["v2"].header()["tlvs"].get(0x01) == b"h2"
    s = moatlib.tls_connect(m.ports["v2"], ctx=ctx_alpn(["http/1.1"]))
    assert s.selected_alpn_protocol() == "http/1.1"
    s.close()
    assert be["v2"].header()["tlvs"].get(0x01) == b"http/1.1"
    # no ALPN offered: none chosen, no ALPN TLV
    s = moatlib.tls_connect(m.ports["v2"], ctx=ctx_alpn(None))
    assert s.selected_alpn_protocol() is None
    s.close()
    assert 0x01 not in be["v2"].header()["tlvs"]


def test_curl_http2(env):
    m, be = env
    moatlib.need_tool("curl")
    start = m.log_size()
    port = m.ports["v2"]
    r = subprocess.run(
        ["curl", "--http2", "-k", "-v", "-sS", "--max-time", "10",
         "--resolve", "%s:%d:127.0.0.1" % (SNI, port),
         "https://%s:%d/" % (SNI, port)],
        capture_output=True, text=True, timeout=30)
    # the echo backend answers the preface with itself: curl gives up,
    # after the part that matters here
    assert re.search(r"ALPN[:,] server accepted (to use )?h2", r.stderr), \
        r.stderr
    h = be["v2"].header()
    assert h["tlvs"].get(0x01) == b"h2"
    assert h["tlvs"].get(0x02) == SNI.encode()
    assert h["ssl"].get(0x21) in (b"TLSv1.3", b"TLSv1.2")
    conn_line(m, r"sni=%s .*alpn=h2 " % re.escape(SNI), start)


def test_v1_header(env):
    m, be = env
    s = moatlib.tls_connect(m.ports["v1"])
    sport = s.getsockname()[1]
    echo_check(s)
    s.close()
    h = be["v1"].header()
    assert h["raw"] == ("PROXY TCP4 127.0.0.1 127.0.0.1 %d %d\r\n"
                        % (sport, m.ports["v1"])).encode()


def tls_after(port, header, pieces=1, host="127.0.0.1"):
    """A connection that sends header (in `pieces` parts), then TLS."""
    raw = socket.create_connection((host, port), timeout=20)
    step = max(1, len(header) // pieces)
    for i in range(0, len(header), step):
        raw.sendall(header[i:i + step])
        if pieces > 1:
            time.sleep(0.05)
    return moatlib.client_context().wrap_socket(
        raw, server_hostname="localhost", suppress_ragged_eofs=False)


@pytest.mark.parametrize("version,pieces", [(2, 1), (1, 1), (2, 7), (1, 9)])
def test_accept_proxy(env, version, pieces):
    """The balancer's client is the connection's client: log line and the
    backend's header; the bytes after the header arrive intact."""
    m, be = env
    start = m.log_size()
    if version == 2:
        hdr = v2_header("203.0.113.9", 40000, "198.51.100.2", 443,
                        tlvs=b"\x04\x00\x02xx")   # a NOOP TLV, skipped
    else:
        hdr = b"PROXY TCP4 203.0.113.9 198.51.100.2 40000 443\r\n"
    s = tls_after(m.ports["in"], hdr, pieces)
    echo_check(s, 1 << 20)
    s.close()
    h = be["in"].header()
    assert (h["src"], h["sport"]) == ("203.0.113.9", 40000)
    assert (h["dst"], h["dport"]) == ("198.51.100.2", 443)
    m.wait_log(r"conn client=203\.0\.113\.9:40000 frontend=in ", start=start)


def test_accept_proxy_local(env):
    """LOCAL (a balancer's health check): the real peer stays."""
    m, be = env
    s = tls_after(m.ports["in"], v2_header("0.0.0.0", 0, "0.0.0.0", 0,
                                           cmd=0x20))
    sport = s.getsockname()[1]
    echo_check(s)
    s.close()
    h = be["in"].header()
    assert (h["src"], h["sport"]) == ("127.0.0.1", sport)


def expect_closed(raw):
    raw.settimeout(10)
    try:
        assert raw.recv(1) == b"", "the connection stayed open"
    except ConnectionResetError:
        pass
    raw.close()


def test_accept_proxy_not_allowed(env):
    """From an address not in accept-proxy-from a header is refused; a
    client's plain TLS from there is served with its own address."""
    m, be = env
    start = m.log_size()
    raw = socket.create_connection(("127.0.0.1", m.ports["deny"]), timeout=10)
    raw.sendall(v2_header("203.0.113.9", 40000, "198.51.100.2", 443))
    expect_closed(raw)
    m.wait_log(r'frontend=deny .*reason="PROXY header from a non-allowed '
               r'address"', start=start)
    s = moatlib.tls_connect(m.ports["deny"])
    sport = s.getsockname()[1]
    echo_check(s)
    s.close()
    h = be["deny"].header()
    assert (h["src"], h["sport"]) == ("127.0.0.1", sport)


@pytest.mark.parametrize("bad", [
    b"PROXY TCP4 203.0.113.9 198.51.100.2 40000\r\n",
    b"PROXY TCP4 203.0.113.9 198.51.100.2 40000 443\n",
    SIG2 + b"\x21\x11\x00\x0b" + b"\x00" * 11,
    SIG2 + b"\x31\x11\x00\x0c" + b"\x00" * 12,
    b"\x16\x03\x01\x00\x05hello",     # TLS with no header, from a balancer
])
def test_accept_proxy_malformed(env, bad):
    m, be = env
    start = m.log_size()
    raw = socket.create_connection(("127.0.0.1", m.ports["in"]), timeout=10)
    raw.sendall(bad)
    expect_closed(raw)
    m.wait_log(r'frontend=in .*reason="PROXY header missing or malformed"',
               start=start)
    assert be["in"].q.empty(), "a malformed header reached the backend"


def test_accept_proxy_timeout(env):
    m, be = env
    start = m.log_size()
    raw = socket.create_connection(("127.0.0.1", m.ports["in"]), timeout=10)
    raw.sendall(b"PROXY TCP4 ")
    expect_closed(raw)
    m.wait_log(r'frontend=in .*reason="PROXY header timeout"', start=start)
