# SPDX-License-Identifier: GPL-2.0-or-later
"""Server-initiated renegotiation against the three answers a client can
give, under policies keep and close (issue 4, first "Done when" line).

gnutls_rehandshake(3): the server sends a HelloRequest; the client either
renegotiates (accept), answers with the no_renegotiation warning alert
(refuse) or does nothing (ignore, noticed after rekey-timeout).
on-refusal / on-ignore say whether moat then keeps or closes the
connection.  tests/helpers/reneg_client streams checksummed data the whole
time, so a kept connection must return every byte in order and a closed
one a clean prefix of them.
"""

import re

import pytest

import reneglib

MODES = ("accept", "refuse", "ignore")
POLICIES = ("keep", "close")

# What moat must count for each mode (the rest of RENEG_KEYS stays 0).
COUNTED = {
    "accept": {"renegotiations_requested": 1, "renegotiations_completed": 1},
    "refuse": {"renegotiations_requested": 1, "renegotiations_refused": 1},
    "ignore": {"renegotiations_requested": 1, "renegotiations_ignored": 1},
}

# A word the close reason in moatd's "conn ... reason=" line must hold.
CLOSE_REASON = {
    "refuse": r"(?i)refus|no.?renegotiation",
    "ignore": r"(?i)ignor|timed? ?out|no answer|did not answer|unanswered",
}


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("mode", MODES)
def test_policy(moat_factory, backends, certs, mode, policy):
    echo = backends.echo()
    m = moat_factory({"reneg": reneglib.frontend(
        echo.address, *certs["ecdsa"], on_refusal=policy, on_ignore=policy,
        rekey_timeout="1s", rekey_interval=0, rekey_bytes=0)}, workers=1)
    before = reneglib.wait_quiet(m)

    # Streams for 5 s: the rekey comes ~0.3 s in and the 1 s rekey-timeout
    # of the ignore case runs out while data still flows.
    c = reneglib.RenegClient(m.ports["reneg"], mode=mode, version="1.2",
                             duration_ms=5000, per_tick=1024)
    try:
        c.wait_ready()
        reneglib.wait_established(m, before)
        assert reneglib.rekey(m) == 1
        res = c.result()
    finally:
        c.kill()

    assert res["version"] == "TLS1.2", res
    assert res["hello_requests"] == 1, res
    want = dict.fromkeys(reneglib.RENEG_KEYS, 0)
    want.update(COUNTED[mode])
    got = reneglib.wait_counters(m, before, COUNTED[mode], 20)
    got = {k: got[k] for k in reneglib.RENEG_KEYS}
    assert got == want, (mode, policy, got)

    if mode == "accept":
        # Renegotiated whatever the refusal/ignore policy says.
        assert res["handshakes"] == 2, res
        reneglib.assert_intact(res)
        return
    assert res["handshakes"] == 1, res
    assert res[{"refuse": "refused", "ignore": "ignored"}[mode]] == 1, res
    if policy == "keep":
        reneglib.assert_intact(res)
        return
    reneglib.assert_ended_honestly(res)
    lines = reneglib.wait_conn_line(m, "reneg")
    assert len(lines) == 1, lines
    reason = lines[0][2]
    assert re.search(CLOSE_REASON[mode], reason), \
        "close reason %r does not say why (%s)\n%s" % (reason, mode, lines[0][3])


def test_accept_many_times_while_streaming(moat_factory, backends, certs):
    """The same accept case, 40 times on one moat, each time with data
    flowing both ways when the HelloRequest goes out: every renegotiation
    must complete (a race here shows up as a few percent of failures)."""
    echo = backends.echo()
    m = moat_factory({"reneg": reneglib.frontend(
        echo.address, *certs["ecdsa"], rekey_interval=0, rekey_bytes=0)},
        workers=1)
    bad = []
    for i in range(40):
        before = reneglib.wait_quiet(m)
        c = reneglib.RenegClient(m.ports["reneg"], duration_ms=600,
                                 per_tick=1024)
        try:
            c.wait_ready()
            reneglib.wait_established(m, before)
            assert reneglib.rekey(m) == 1
            res = c.result()
        finally:
            c.kill()
        if res["end"] != "done" or not res["complete"] or \
                res["handshakes"] != 2:
            bad.append((i, res["end"], res["detail"]))
    assert not bad, "%d of 40 renegotiations failed: %r\n%s" % (
        len(bad), bad, "\n".join(line for line in m.log_text().splitlines()
                                 if "renegotiation failed" in line))


def test_no_renegotiation_without_rfc5746(moat_factory, backends, certs):
    """A client that did not negotiate safe renegotiation (RFC 5746) is never
    sent a HelloRequest: `moatctl rekey` asks nobody, nothing is counted,
    the stream stays intact and moat says why in its log."""
    echo = backends.echo()
    m = moat_factory({"reneg": reneglib.frontend(
        echo.address, *certs["ecdsa"], rekey_timeout="1s", rekey_interval=0,
        rekey_bytes=0)}, workers=1)
    before = reneglib.wait_quiet(m)
    c = reneglib.RenegClient(m.ports["reneg"], version="1.2",
                             duration_ms=2000, per_tick=1024, unsafe=True)
    try:
        c.wait_ready()
        reneglib.wait_established(m, before)
        assert reneglib.rekey(m) == 0
        res = c.result()
    finally:
        c.kill()
    assert res["hello_requests"] == 0 and res["handshakes"] == 1, res
    reneglib.assert_intact(res)
    got = reneglib.reneg_delta(m, before)
    assert all(got[k] == 0 for k in reneglib.RENEG_KEYS), got
    assert "did not negotiate safe renegotiation" in m.log(), m.log()
