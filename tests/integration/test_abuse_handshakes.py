# SPDX-License-Identifier: GPL-2.0-or-later
"""Handshakes that never finish (issue 9, abuse tests).

2,000 TCP connections that never complete a handshake -- half send the
first bytes of a real ClientHello, half send nothing -- against
handshake-timeout = 3s: moat closes each of them at handshake-timeout
(not before, and within a bound after), with a close line each, while a
legitimate client on the same worker and port keeps being served: its
handshake plus an echo stays under a second throughout.

max-pending-handshakes is set above the flood (its default, 2000, would
park the probe behind it in the listen queue: that cap has its own test,
test_parked.py), and max-connections above both.
"""

import selectors
import socket
import ssl
import threading
import time

import moatlib
import reneglib
from test_parked import client_hello

FLOOD = 2000
TIMEOUT_S = 3.0
EARLY_S = 0.5		# a close this much before handshake-timeout is early
LATE_S = 7.0		# ... this much after it is late (a loaded machine)
PROBE_MAX_S = 1.0


def partial_hello():
    """The first 60 bytes of a real ClientHello: a record header that
    promises more than ever comes."""
    hello = client_hello()
    assert len(hello) > 100, len(hello)
    return hello[:60]


class Silent:
    """FLOOD raw connections opened in batches; each records when it was
    opened and when the server ended it (EOF or reset)."""

    def __init__(self, port, hello):
        self.port, self.hello = port, hello
        self.sel = selectors.DefaultSelector()
        self.opened = {}
        self.closed = {}

    def open(self, n, batch=100, pause=0.05):
        for i in range(n):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex((moatlib.LOOPBACK, self.port))	# EINPROGRESS
            self.opened[s] = time.monotonic()
            # half send a partial ClientHello once connected, half nothing
            self.sel.register(s, selectors.EVENT_WRITE if i % 2 else
                              selectors.EVENT_READ, i)
            if i % batch == batch - 1:
                self.poll(pause)

    def poll(self, seconds):
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0 or not self.sel.get_map():
                return
            for key, ev in self.sel.select(left):
                s = key.fileobj
                if ev & selectors.EVENT_WRITE:
                    try:
                        s.send(self.hello)
                    except OSError:
                        self._ended(s)
                        continue
                    self.sel.modify(s, selectors.EVENT_READ, key.data)
                    continue
                try:
                    b = s.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    b = b""
                if not b:
                    self._ended(s)

    def _ended(self, s):
        self.closed[s] = time.monotonic()
        self.sel.unregister(s)

    def close(self):
        for s in self.opened:
            s.close()
        self.sel.close()


class Probe:
    """A legitimate client: handshake + echo, every 0.2 s, timed."""

    def __init__(self, port):
        self.port = port
        self.times = []
        self.errors = []
        self._stop = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                with moatlib.tls_connect(self.port, timeout=20) as s:
                    moatlib.round_trip(s)
                self.times.append(time.monotonic() - t0)
            except (OSError, EOFError, ssl.SSLError) as e:
                self.errors.append(repr(e))
            self._stop.wait(0.2)

    def stop(self):
        self._stop.set()
        self.t.join(30)


def test_silent_handshakes_end_at_handshake_timeout(moat_factory, backends,
                                                    certs):
    nofile = reneglib.raise_nofile()
    assert nofile >= 2 * FLOOD + 500, "RLIMIT_NOFILE %d is too low" % nofile
    m = moat_factory({"fe": reneglib.frontend(
        backends.echo().address, *certs["ecdsa"],
        handshake_timeout="%ds" % TIMEOUT_S)}, workers=1,
        max_connections=2 * FLOOD + 1000,
        max_pending_handshakes=2 * FLOOD)
    port = m.ports["fe"]
    log0 = m.log_size()
    flood = Silent(port, partial_hello())
    probe = Probe(port)
    try:
        flood.open(FLOOD)
        t_opened = time.monotonic()
        flood.poll(max(flood.opened.values()) + TIMEOUT_S + LATE_S -
                   time.monotonic())
        probe.stop()
        waited = {s: flood.closed.get(s, time.monotonic()) - t
                  for s, t in flood.opened.items()}
    finally:
        probe.stop()
        flood.close()
    open_left = len(flood.opened) - len(flood.closed)
    early = sorted(w for w in waited.values() if w < TIMEOUT_S - EARLY_S)
    print("%d connections opened in %.1f s; ended after %.2f .. %.2f s "
          "(%d still open); probe: %d handshakes+echo, slowest %.0f ms, "
          "%d errors"
          % (FLOOD, t_opened - min(flood.opened.values()),
             min(waited.values()), max(waited.values()), open_left,
             len(probe.times), max(probe.times, default=0) * 1000,
             len(probe.errors)))
    assert open_left == 0, "%d of %d connections still open %.0f s after " \
        "handshake-timeout" % (open_left, FLOOD, LATE_S)
    assert not early, "%d connections ended before handshake-timeout: %r" % (
        len(early), early[:5])
    assert not probe.errors, probe.errors[:5]
    assert len(probe.times) >= 10, probe.times
    assert max(probe.times) < PROBE_MAX_S, \
        "the probe took %.2f s" % max(probe.times)
    # moat ended them, one close line each
    lines = m.log_text()[log0:].count('reason="handshake timeout"')
    assert lines >= FLOOD, "%d handshake timeout lines for %d connections" % (
        lines, FLOOD)
