# SPDX-License-Identifier: GPL-2.0-or-later
"""A worker's loop never waits for keyd (issue 3, DESIGN.md "Processes").

keyd is slowed down on purpose (keyd-sign-delay-ms = 200) and there is one
worker.  While new handshakes through that worker wait for their signatures,
round trips on an already established connection through the same worker
keep being answered quickly.
"""

import statistics
import threading
import time

import moatlib

DELAY_MS = 200


def test_established_connection_served_while_handshakes_wait(
        moat_factory, backends, certs):
    echo = backends.echo()
    m = moat_factory({"echo": {"backend": echo.address, "cert": certs["ecdsa"][0],
                               "key": certs["ecdsa"][1]}},
                     workers=1, **{"keyd-sign-delay-ms": DELAY_MS})
    port = m.ports["echo"]
    assert len(m.workers()) == 1

    est = moatlib.tls_connect(port, "1.3", timeout=30)
    moatlib.round_trip(est)

    handshake_s = []
    errors = []
    lock = threading.Lock()
    stop = threading.Event()

    def handshaker(version):
        # Keep new handshakes coming for as long as we measure.
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                s = moatlib.tls_connect(port, version, timeout=30)
            except Exception as e:  # noqa: BLE001
                with lock:
                    errors.append(repr(e))
                return
            dt = time.monotonic() - t0
            s.close()
            with lock:
                handshake_s.append(dt)

    threads = [threading.Thread(target=handshaker, args=(v,))
               for v in ("1.2", "1.3", "1.2", "1.3")]
    for t in threads:
        t.start()

    rtts = []
    # Measure for at least 3 s and at least 100 round trips (bounded).
    end = time.monotonic() + 3.0
    hard_end = time.monotonic() + 60
    while (time.monotonic() < end or len(rtts) < 100) and time.monotonic() < hard_end:
        t0 = time.monotonic()
        moatlib.round_trip(est, b"x" * 100)
        rtts.append(time.monotonic() - t0)
    stop.set()
    for t in threads:
        t.join(60)
    est.close()

    assert not errors, errors
    assert len(handshake_s) >= 8, \
        "only %d handshakes completed while measuring" % len(handshake_s)
    # keyd really was slow: every new handshake waited for its signature.
    assert min(handshake_s) >= DELAY_MS / 1000 * 0.95, \
        "a handshake took %.0f ms, less than the %d ms keyd delay" % (
            min(handshake_s) * 1000, DELAY_MS)
    med = statistics.median(rtts)
    p90 = sorted(rtts)[int(len(rtts) * 0.9)]
    print("round trips: %d, median %.1f ms, p90 %.1f ms, max %.1f ms; "
          "handshakes: %d, median %.0f ms" % (
              len(rtts), med * 1000, p90 * 1000, max(rtts) * 1000,
              len(handshake_s), statistics.median(handshake_s) * 1000))
    # The requirement is "well under 200 ms".  A loop that blocked in the key
    # callback would be stalled nearly all the time here (the handshakes
    # follow each other), so a round trip would wait what is left of the
    # current 200 ms signature: uniform over 0..200 ms, median ~100 ms.
    # A loop that keeps serving answers in about a millisecond; the bounds
    # leave room for a slow, loaded machine.
    assert med < 0.050, "median round trip %.0f ms while handshakes waited" % (med * 1000)
    assert p90 < 0.150, "90th percentile round trip %.0f ms" % (p90 * 1000)
