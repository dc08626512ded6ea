# SPDX-License-Identifier: GPL-2.0-or-later
"""Stock clients against moat's renegotiation (issue 4, "Done when" lines
2 to 4).

- gnutls-cli survives `moatctl rekey` under TLS 1.2, says it performed the
  rehandshake ("*** Rehandshake was performed.", src/cli.c
  check_server_cmd()), and goes on exchanging data;
- openssl s_client -msg shows the HelloRequest under TLS 1.2 and the
  KeyUpdate under TLS 1.3 (never a HelloRequest there) and goes on;
- Python's ssl (OpenSSL 3) with OP_NO_RENEGOTIATION answers the
  HelloRequest with no_renegotiation: moat counts one refusal and, with the
  default on-refusal = keep, the connection goes on;
- client-initiated renegotiation (s_client's R command, and reneg_client
  -c): refused by default, allowed with client-renegotiation = allow, and
  refused again over client-renegotiation-limit.

Each interactive client is driven through pipes: write a line, wait (with
a bound) until the echo backend's copy of it shows up.
"""

import ssl

import pytest

import moatlib
import reneglib


def start(factory, backends, certs, **fe_opts):
    echo = backends.echo()
    m = factory({"fe": reneglib.frontend(echo.address, *certs["ecdsa"],
                                         **fe_opts)}, workers=1)
    return m, reneglib.wait_quiet(m)


def only(d, **want):
    """d's renegotiation counters equal want (others 0)."""
    exp = dict.fromkeys(reneglib.RENEG_KEYS, 0)
    exp.update(want)
    got = {k: d[k] for k in reneglib.RENEG_KEYS}
    assert got == exp, got


# ------------------------------------------------------------ gnutls-cli

def test_gnutls_cli_survives_rekey_tls12(moat_factory, backends, certs):
    m, before = start(moat_factory, backends, certs)
    cli = reneglib.gnutls_cli(m.ports["fe"], "1.2")
    try:
        cli.expect(r"Handshake was completed", 30)
        cli.exchange("before-rekey-gnutls-cli")
        reneglib.wait_established(m, before)
        mark = cli.mark()
        assert reneglib.rekey(m) == 1
        cli.expect(r"\*\*\* Received rehandshake request", 30, mark)
        cli.expect(r"\*\*\* Rehandshake was performed", 30, mark)
        d = reneglib.wait_counters(m, before, {"renegotiations_completed": 1})
        cli.exchange("after-rekey-gnutls-cli")
        cli.exchange("and-once-more")
        assert "Rehandshake Failed" not in cli.text()
        assert cli.proc.poll() is None, cli.text()
    finally:
        cli.close()
    only(d, renegotiations_requested=1, renegotiations_completed=1)


# ------------------------------------------------------- openssl s_client

def test_s_client_sees_hello_request_tls12(moat_factory, backends, certs):
    m, before = start(moat_factory, backends, certs)
    sc = reneglib.s_client(m.ports["fe"], "1.2", ["-msg"])
    try:
        sc.exchange("before-rekey-s-client-12")
        assert "HelloRequest" not in sc.text()
        reneglib.wait_established(m, before)
        mark = sc.mark()
        assert reneglib.rekey(m) == 1
        sc.expect(r"<<< .*HelloRequest", 30, mark)
        # ... and renegotiates: a new ClientHello goes out after it.
        hr = sc.expect(r"HelloRequest", 1, mark).end()
        sc.expect(r">>> .*ClientHello", 30, hr)
        d = reneglib.wait_counters(m, before, {"renegotiations_completed": 1})
        sc.exchange("after-rekey-s-client-12")
        sc.exchange("and-once-more")
        assert sc.proc.poll() is None, sc.text()
    finally:
        sc.close()
    only(d, renegotiations_requested=1, renegotiations_completed=1)


def test_s_client_sees_key_update_tls13(moat_factory, backends, certs):
    m, before = start(moat_factory, backends, certs)
    sc = reneglib.s_client(m.ports["fe"], "1.3", ["-msg"])
    try:
        sc.exchange("before-rekey-s-client-13")
        reneglib.wait_established(m, before)
        mark = sc.mark()
        assert reneglib.rekey(m) == 1
        sc.expect(r"<<< .*KeyUpdate", 30, mark)
        d = reneglib.wait_counters(m, before, {"key_updates": 1})
        # update_requested: s_client answers with its own KeyUpdate before
        # its next application data.
        sc.exchange("after-rekey-s-client-13")
        sc.expect(r">>> .*KeyUpdate", 10, mark)
        sc.exchange("and-once-more")
        assert "HelloRequest" not in sc.text()
        assert sc.proc.poll() is None, sc.text()
    finally:
        sc.close()
    d = reneglib.reneg_delta(m, before)
    assert d["key_updates"] == 1, d
    for k in ("renegotiations_completed", "renegotiations_refused",
              "renegotiations_ignored", "client_renegotiations_refused",
              "client_renegotiations_allowed"):
        assert d[k] == 0, d


# ------------------------------------------- Python ssl, OP_NO_RENEGOTIATION

def test_python_no_renegotiation_is_a_refusal(moat_factory, backends, certs):
    m, before = start(moat_factory, backends, certs, on_refusal="keep")
    ctx = moatlib.client_context("1.2")
    ctx.options |= ssl.OP_NO_RENEGOTIATION
    with moatlib.tls_connect(m.ports["fe"], ctx=ctx) as s:
        assert s.version() == "TLSv1.2"
        moatlib.round_trip(s, b"before the rekey\n")
        reneglib.wait_established(m, before)
        assert reneglib.rekey(m) == 1
        # Reading makes OpenSSL see the HelloRequest (it answers with the
        # no_renegotiation warning) before the echo behind it.
        moatlib.round_trip(s, b"read past the HelloRequest\n" * 10)
        d = reneglib.wait_counters(m, before, {"renegotiations_refused": 1})
        # on-refusal = keep: the connection goes on.
        moatlib.round_trip(s, b"still here\n" * 100)
    only(d, renegotiations_requested=1, renegotiations_refused=1)


# --------------------------------------- client-initiated, openssl s_client

def renegotiate_s_client(sc):
    """Type R, s_client's renegotiate command (OpenSSL 3.0 runs the
    handshake at once: SSL_renegotiate() + SSL_do_handshake())."""
    mark = sc.mark()
    sc.send("R\n")
    sc.expect(r"RENEGOTIATING", 10, mark)
    return mark


def test_s_client_R_refused_by_default(moat_factory, backends, certs):
    m, before = start(moat_factory, backends, certs)
    sc = reneglib.s_client(m.ports["fe"], "1.2", ["-msg"])
    try:
        sc.exchange("before-R")
        reneglib.wait_established(m, before)
        mark = renegotiate_s_client(sc)
        sc.expect(r">>> .*ClientHello", 30, mark)
        d = reneglib.wait_counters(m, before,
                                   {"client_renegotiations_refused": 1})
        # What s_client does after the no_renegotiation alert is OpenSSL's
        # business (3.0 aborts the connection); moat must not crash.
    finally:
        sc.close()
    m.wait_log(r"client-initiated renegotiation refused", 10)
    only(d, client_renegotiations_refused=1)
    with moatlib.tls_connect(m.ports["fe"], "1.2") as s:
        moatlib.round_trip(s)


def test_s_client_R_allowed(moat_factory, backends, certs):
    m, before = start(moat_factory, backends, certs,
                      client_renegotiation="allow")
    sc = reneglib.s_client(m.ports["fe"], "1.2", ["-msg"])
    try:
        sc.exchange("before-R")
        reneglib.wait_established(m, before)
        mark = renegotiate_s_client(sc)
        sc.expect(r">>> .*ClientHello", 30, mark)
        sc.expect(r"<<< .*ServerHello", 30, mark)
        sc.exchange("after-allowed-R")
        d = reneglib.wait_counters(m, before,
                                   {"client_renegotiations_allowed": 1})
        sc.exchange("data-still-flows")
        assert sc.proc.poll() is None, sc.text()
    finally:
        sc.close()
    only(d, client_renegotiations_allowed=1)


def test_s_client_R_over_the_limit_refused(moat_factory, backends, certs):
    m, before = start(moat_factory, backends, certs,
                      client_renegotiation="allow",
                      client_renegotiation_limit=1)
    sc = reneglib.s_client(m.ports["fe"], "1.2", ["-msg"])
    try:
        sc.exchange("before-R")
        reneglib.wait_established(m, before)
        mark = renegotiate_s_client(sc)
        sc.expect(r"<<< .*ServerHello", 30, mark)
        sc.exchange("after-first-R")
        reneglib.wait_counters(m, before, {"client_renegotiations_allowed": 1})
        sc.exchange("between-the-two")
        # The second one within the same minute: over the limit.
        mark = renegotiate_s_client(sc)
        sc.expect(r">>> .*ClientHello", 30, mark)
        d = reneglib.wait_counters(m, before,
                                   {"client_renegotiations_refused": 1})
    finally:
        sc.close()
    only(d, client_renegotiations_allowed=1, client_renegotiations_refused=1)


# ----------------------------------- client-initiated, reneg_client -c

def test_reneg_client_initiated_refused(moat_factory, backends, certs):
    m, before = start(moat_factory, backends, certs)
    c = reneglib.RenegClient(m.ports["fe"], duration_ms=3000, per_tick=1024,
                             client_reneg_at=[1000])
    res = c.result()
    assert res["client_renegs"] == 1 and res["client_reneg_refused"] == 1, res
    assert res["client_reneg_ok"] == 0 and res["handshakes"] == 1, res
    reneglib.assert_intact(res)	# a refusal does not end the connection
    d = reneglib.wait_counters(m, before, {"client_renegotiations_refused": 1})
    only(d, client_renegotiations_refused=1)


def test_reneg_client_initiated_allowed(moat_factory, backends, certs):
    m, before = start(moat_factory, backends, certs,
                      client_renegotiation="allow")
    c = reneglib.RenegClient(m.ports["fe"], duration_ms=3000, per_tick=1024,
                             client_reneg_at=[1000])
    res = c.result()
    assert res["client_renegs"] == 1 and res["client_reneg_ok"] == 1, res
    assert res["handshakes"] == 2, res
    reneglib.assert_intact(res)
    d = reneglib.wait_counters(m, before, {"client_renegotiations_allowed": 1})
    assert d["client_renegotiations_allowed"] == 1, d
    assert d["client_renegotiations_refused"] == 0, d


@pytest.mark.parametrize("limit", [1, 2])
def test_reneg_client_initiated_limit(moat_factory, backends, certs, limit):
    m, before = start(moat_factory, backends, certs,
                      client_renegotiation="allow",
                      client_renegotiation_limit=limit)
    at = [700, 1400, 2100]		# three within one minute
    c = reneglib.RenegClient(m.ports["fe"], duration_ms=3500, per_tick=1024,
                             client_reneg_at=at)
    res = c.result()
    assert res["client_renegs"] == 3, res
    assert res["client_reneg_ok"] == limit, res
    assert res["client_reneg_refused"] == 3 - limit, res
    reneglib.assert_intact(res)
    d = reneglib.wait_counters(m, before, {
        "client_renegotiations_allowed": limit,
        "client_renegotiations_refused": 3 - limit})
    assert d["client_renegotiations_allowed"] == limit, d
    assert d["client_renegotiations_refused"] == 3 - limit, d


def test_reneg_client_initiated_refused_no_data_lost_tls12_many(
        moat_factory, backends, certs):
    """Several refusals in a row: the refused ClientHello is dropped, the
    data around it is not."""
    m, before = start(moat_factory, backends, certs)
    c = reneglib.RenegClient(m.ports["fe"], duration_ms=3000, per_tick=2048,
                             client_reneg_at=[300, 600, 900, 1200, 1500])
    res = c.result()
    assert res["client_reneg_refused"] == 5, res
    reneglib.assert_intact(res)
    d = reneglib.wait_counters(m, before, {"client_renegotiations_refused": 5})
    assert d["client_renegotiations_refused"] == 5, d
