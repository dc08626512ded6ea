# SPDX-License-Identifier: GPL-2.0-or-later
"""What starts a server-initiated renegotiation besides `moatctl rekey`
(issue 4): rekey-interval, rekey-bytes and a certificate swap (SIGHUP with
rekey-on-cert-change), each on a long-lived connection that streams
checksummed data through it (tests/helpers/reneg_client, accept mode).
"""

import os

import moatlib
import reneglib


def test_rekey_interval(moat_factory, backends, certs):
    echo = backends.echo()
    m = moat_factory({"fe": reneglib.frontend(
        echo.address, *certs["ecdsa"], rekey_interval=1, rekey_bytes=0)},
        workers=1)
    before = reneglib.wait_quiet(m)
    c = reneglib.RenegClient(m.ports["fe"], duration_ms=4500, per_tick=512)
    res = c.result()
    reneglib.assert_intact(res)
    # About 4 in 4.5 s; at least one even on a very slow machine.
    assert res["hello_requests"] >= 1, res
    assert res["handshakes"] == 1 + res["hello_requests"], res
    d = reneglib.wait_counters(m, before, {
        "renegotiations_requested": res["hello_requests"],
        "renegotiations_completed": res["hello_requests"]})
    assert d["renegotiations_refused"] == d["renegotiations_ignored"] == 0, d


def test_rekey_interval_idle_connection(moat_factory, backends, certs):
    """The interval runs on time, not on traffic: an idle connection is
    rekeyed too (Python's ssl client renegotiates when it reads)."""
    echo = backends.echo()
    m = moat_factory({"fe": reneglib.frontend(
        echo.address, *certs["ecdsa"], rekey_interval=1)}, workers=1)
    before = reneglib.wait_quiet(m)
    with moatlib.tls_connect(m.ports["fe"], "1.2") as s:
        moatlib.round_trip(s)
        reneglib.wait_counters(m, before, {"renegotiations_requested": 1}, 20)
        # OpenSSL moves its side of the renegotiation on only inside
        # SSL_read/SSL_write: keep exchanging until moat counts it done.
        i = 0

        def renegotiated():
            nonlocal i
            i += 1
            moatlib.round_trip(s, b"exchange %d\n" % i)
            d = reneglib.reneg_delta(m, before)
            return d["renegotiations_completed"] >= 1
        moatlib.wait_for(renegotiated, 20, 0.05, "the renegotiation")
        moatlib.round_trip(s, b"and after the renegotiation\n" * 50)


def test_rekey_bytes(moat_factory, backends, certs):
    echo = backends.echo()
    m = moat_factory({"fe": reneglib.frontend(
        echo.address, *certs["ecdsa"], rekey_bytes="64K", rekey_interval=0)},
        workers=1)
    before = reneglib.wait_quiet(m)
    # ~100 KiB/s each way for 3 s: about 600 KiB both directions, so
    # several 64 KiB marks.
    c = reneglib.RenegClient(m.ports["fe"], duration_ms=3000, per_tick=1024)
    res = c.result()
    reneglib.assert_intact(res)
    total = res["sent"] + res["received"]
    assert total > 4 * 65536, res
    assert res["hello_requests"] >= 2, res
    # Not more than one per 64 KiB that went through (10 % slack in case
    # moat counts record overhead too).
    assert res["hello_requests"] <= total * 11 // 10 // 65536 + 1, res
    assert res["handshakes"] == 1 + res["hello_requests"], res
    d = reneglib.wait_counters(m, before, {
        "renegotiations_requested": res["hello_requests"],
        "renegotiations_completed": res["hello_requests"]})
    assert d["renegotiations_requested"] == res["hello_requests"], d


def test_rekey_bytes_not_reached(moat_factory, backends, certs):
    """Below the byte mark nothing happens (the trigger counts bytes)."""
    echo = backends.echo()
    m = moat_factory({"fe": reneglib.frontend(
        echo.address, *certs["ecdsa"], rekey_bytes="64K", rekey_interval=0)},
        workers=1)
    before = reneglib.wait_quiet(m)
    # 20 KiB each way, 40 KiB in all.
    c = reneglib.RenegClient(m.ports["fe"], duration_ms=400, per_tick=512,
                             timeout_ms=30000)
    res = c.result()
    reneglib.assert_intact(res)
    assert res["sent"] + res["received"] < 65536, res
    assert res["hello_requests"] == 0, res
    d = reneglib.reneg_delta(m, before)
    assert d["renegotiations_requested"] == 0, d


def test_cert_swap_moves_live_tls12_connection(moat_factory, backends,
                                               tmp_path):
    echo = backends.echo()
    cert, key = reneglib.private_cert(tmp_path, "ecdsa")
    old_fp = reneglib.cert_fp(cert)
    m = moat_factory({"fe": reneglib.frontend(
        echo.address, cert, key, rekey_on_cert_change="yes",
        rekey_interval=0, rekey_bytes=0)}, workers=2)
    before = reneglib.wait_quiet(m)
    assert reneglib.peer_fp(m.ports["fe"]) == old_fp

    # -i: GnuTLS clients refuse a certificate change in a renegotiation
    # unless told otherwise (GNUTLS_ALLOW_ID_CHANGE).
    c = reneglib.RenegClient(m.ports["fe"], duration_ms=8000, per_tick=512,
                             timeout_ms=90000, allow_id_change=True)
    try:
        c.wait_ready()
        reneglib.wait_established(m, before, 1)
        new_fp = reneglib.replace_cert(cert, key, "ecdsa")
        assert new_fp != old_fp
        assert oct(os.stat(key).st_mode & 0o777) == oct(0o600)
        log_mark = m.log_size()
        reneglib.reload(m)
        # New handshakes get the new certificate (bounded wait: the
        # master re-reads, keyd loads the key, the workers take it).
        moatlib.wait_for(lambda: reneglib.peer_fp(m.ports["fe"]) == new_fp,
                         30, 0.2, "new connections to see the new cert")
        # The live connection renegotiated onto the new certificate, so
        # nothing holds the old one: keyd drops its key while the
        # connection still runs.
        reneglib.wait_counters(m, before, {"renegotiations_completed": 1})
        reneglib.wait_keyd_keys(m, 1)
        assert "keyd dropped its key" in m.log_text()[log_mark:]
        res = c.result()
    finally:
        c.kill()
    reneglib.assert_intact(res)
    assert res["hello_requests"] >= 1, (res, m.log_text()[log_mark:])
    assert res["certs"] == [old_fp, new_fp], res
    # TLS 1.3 too, for a new connection.
    assert reneglib.peer_fp(m.ports["fe"], "1.3") == new_fp


def test_cert_swap_without_rekey_on_cert_change(moat_factory, backends,
                                                tmp_path):
    """rekey-on-cert-change = no: new handshakes get the new certificate,
    the live connection keeps its session (no HelloRequest)."""
    echo = backends.echo()
    cert, key = reneglib.private_cert(tmp_path, "ecdsa")
    old_fp = reneglib.cert_fp(cert)
    m = moat_factory({"fe": reneglib.frontend(
        echo.address, cert, key, rekey_on_cert_change="no",
        rekey_interval=0, rekey_bytes=0)}, workers=1)
    before = reneglib.wait_quiet(m)
    c = reneglib.RenegClient(m.ports["fe"], duration_ms=4000, per_tick=512,
                             timeout_ms=90000)
    try:
        c.wait_ready()
        reneglib.wait_established(m, before, 1)
        new_fp = reneglib.replace_cert(cert, key, "ecdsa")
        log_mark = m.log_size()
        reneglib.reload(m)
        moatlib.wait_for(lambda: reneglib.peer_fp(m.ports["fe"]) == new_fp,
                         30, 0.2, "new connections to see the new cert")
        # The live connection still holds the old certificate, so keyd
        # still holds its key, next to the new one.
        assert reneglib.keyd_keys(m) == 2
        res = c.result()
    finally:
        c.kill()
    reneglib.assert_intact(res)
    assert res["hello_requests"] == 0, res
    assert res["certs"] == [old_fp], res
    # Its end released the old generation: keyd forgot that key.
    reneglib.wait_keyd_keys(m, 1)
    assert "keyd dropped its key" in m.log_text()[log_mark:]
    assert reneglib.reneg_delta(m, before)["renegotiations_requested"] == 0


def test_reload_refuses_a_cert_that_holds_a_key(moat_factory, backends,
                                                tmp_path):
    """A rotation to a certificate file that also holds the private key (a
    combined PEM) is refused with the file and the reason; moat keeps
    serving the certificate it had, and keyd holds only that key."""
    echo = backends.echo()
    cert, key = reneglib.private_cert(tmp_path, "ecdsa")
    old_fp = reneglib.cert_fp(cert)
    m = moat_factory({"fe": reneglib.frontend(
        echo.address, cert, key, rekey_interval=0, rekey_bytes=0)},
        workers=1)
    reneglib.wait_quiet(m)
    with open(key) as f:
        key_pem = f.read()
    with open(cert, "a") as f:
        f.write(key_pem)
    r = m.ctl("reload", check=False, timeout=60)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert cert in out and "holds a private key" in out, out
    assert reneglib.peer_fp(m.ports["fe"]) == old_fp
    assert reneglib.keyd_keys(m) == 1
