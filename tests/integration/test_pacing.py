# SPDX-License-Identifier: GPL-2.0-or-later
"""Mass renegotiation is paced (issue 9, point 3).

- rekey-concurrency: a `moatctl rekey` of many TLS 1.2 connections puts at
  most that many renegotiations in flight on a worker and queues the rest,
  so each signature waits for a few others, not for all of them: with a
  slow keyd (keyd-sign-delay-ms) and a short keyd-timeout every one of them
  completes, where asking all at once fails those at the back.
- A connection rekeys at most once a second: a burst of `moatctl rekey` on
  a TLS 1.3 connection sends a handful of KeyUpdates, not one per call (a
  GnuTLS peer ends a session that gets more than 8 in a second).

One moatd: one worker, keyd with two signer threads, each signature
delayed by SIGN_DELAY_MS, keyd-timeout 1 s.
"""

import time

import pytest

import moatlib
import reneglib

SIGN_DELAY_MS = 200
CONCURRENCY = 4
CLIENTS = 24		# all at once: 24 * 0.2 s / 2 threads = 2.4 s > 1 s


@pytest.fixture(scope="module")
def moat(module_moat_factory, backends, certs):
    echo = backends.echo()
    fe = reneglib.frontend(echo.address, *certs["ecdsa"], rekey_interval=0,
                           rekey_bytes=0, rekey_timeout="20s")
    return module_moat_factory({"fe": fe}, workers=1, keyd_threads=2,
                               keyd_timeout="1s",
                               keyd_sign_delay_ms=SIGN_DELAY_MS,
                               rekey_concurrency=CONCURRENCY)


def test_rekey_of_many_is_paced(moat):
    clients = []
    try:
        for _ in range(CLIENTS):	# one at a time: the first handshakes
            c = reneglib.RenegClient(moat.ports["fe"], mode="accept",
                                     version="1.2", duration_ms=15000,
                                     per_tick=256, timeout_ms=60000)
            clients.append(c)
            c.wait_ready()
        before = reneglib.counters(moat)
        assert reneglib.rekey(moat) == CLIENTS
        most, waited = 0, 0
        end = time.monotonic() + 30
        while time.monotonic() < end:
            st = moat.stats()
            most = max(most, st["renegotiations_in_flight"])
            waited = max(waited, st["renegotiations_waiting"])
            done = st["renegotiations_completed"] - \
                before["renegotiations_completed"]
            if done >= CLIENTS:
                break
            time.sleep(0.05)
        results = [c.result() for c in clients]
    finally:
        for c in clients:
            c.kill()
    assert 1 <= most <= CONCURRENCY, most
    assert waited >= 1, "nothing ever waited for a slot"
    bad = [r for r in results if r["end"] != "done" or not r["complete"] or
           r["handshakes"] != 2]
    assert not bad, "%d of %d renegotiations failed: %r\n%s" % (
        len(bad), CLIENTS, bad[:3], moat.log(60))
    reneglib.wait_counters(moat, before, {
        "renegotiations_requested": CLIENTS,
        "renegotiations_completed": CLIENTS})
    st = moat.stats()
    assert st["keyd_failures"] == before["_raw"]["keyd_failures"], st
    assert st["renegotiations_in_flight"] == 0 and \
        st["renegotiations_waiting"] == 0, st


def test_key_updates_at_most_one_a_second(moat):
    before = reneglib.wait_quiet(moat)
    c = reneglib.RenegClient(moat.ports["fe"], mode="accept", version="1.3",
                             duration_ms=5000, per_tick=512,
                             timeout_ms=60000)
    try:
        c.wait_ready()
        reneglib.wait_established(moat, before)
        t0 = time.monotonic()
        asked = 0
        for _ in range(20):
            asked += reneglib.rekey(moat)
        burst = time.monotonic() - t0
        res = c.result()
    finally:
        c.kill()
    reneglib.assert_intact(res)
    assert asked == 20, asked
    got = reneglib.wait_counters(moat, before, {"key_updates": 1})
    # 20 asks over `burst` seconds, and the stream went on ~5 s: at most one
    # key update a second, plus the first.
    allowed = int(max(burst, 5.0)) + 2
    assert 1 <= got["key_updates"] <= allowed, (got["key_updates"], burst)
