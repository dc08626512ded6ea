# SPDX-License-Identifier: GPL-2.0-or-later
"""Handshakes that wait for keyd are bounded (issue 9, point 5).

- A client that closes while its handshake waits for keyd is noticed at
  once (not when keyd answers), and its key request is cancelled in keyd:
  the handshakes that still wait are served next, not after signatures
  for nobody.
- A flood of ClientHellos against a slow keyd: at max-pending-handshakes
  a worker stops accepting, so its memory and its mapping count stay
  bounded, and a certificate rotation during the flood succeeds.

The ClientHellos are real ones (Python's ssl over a MemoryBIO) sent on raw
sockets that then never read.
"""

import selectors
import socket
import ssl
import time

import moatlib
import reneglib
import sanlib


def client_hello(version="1.3"):
    """The bytes of a real ClientHello."""
    ctx = moatlib.client_context(version)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def proc_maps(pid):
    with open("/proc/%d/maps" % pid) as f:
        return sum(1 for _ in f)


def proc_rss_kib(pid):
    return int(moatlib.proc_status(pid)["VmRSS"].split()[0])


def test_client_that_leaves_is_noticed_and_cancelled(moat_factory, backends,
                                                     certs):
    """keyd signs one at a time, a second each.  Ten clients send their
    ClientHello and leave after 0.3 s: each ends at once ("client closed
    [or error] during the handshake"), keyd drops the nine it had not
    started, and a
    client that stays is served in about two seconds instead of ten."""
    echo = backends.echo()
    m = moat_factory({"fe": reneglib.frontend(echo.address, *certs["ecdsa"])},
                     workers=1, keyd_threads=1, keyd_sign_delay_ms=1000,
                     keyd_timeout="20s")
    hello = client_hello()
    log0 = m.log_size()
    before = moatlib.stats_keyd(m.stats())
    st0 = m.stats()
    socks = []
    for _ in range(10):
        s = socket.create_connection((moatlib.LOOPBACK, m.ports["fe"]))
        s.sendall(hello)
        socks.append(s)
    moatlib.wait_for(lambda: m.stats()["handshakes_waiting_keyd"] == 10, 10,
                     0.05, "ten handshakes waiting for keyd")
    time.sleep(0.3)
    t_close = time.monotonic()
    for s in socks:
        s.close()
    # A close with the server's first flight unread is a reset: either way
    # the client is gone.
    m.wait_log(r'(?s)(.*reason="client (closed|error) during the '
               r'handshake[^"]*"){10}', 5, log0)
    noticed = time.monotonic() - t_close
    assert noticed < 1.5, "noticed after %.1f s" % noticed
    t0 = time.monotonic()
    with moatlib.tls_connect(m.ports["fe"], timeout=30) as s:
        moatlib.round_trip(s)
    served = time.monotonic() - t0
    st = m.stats()
    after = moatlib.stats_keyd(st)
    assert st["keyd_cancelled"] - st0.get("keyd_cancelled", 0) >= 8, st
    # the one keyd had begun, then ours: not the nine left behind
    assert served < 4.0, "the client that stayed waited %.1f s" % served
    assert after["signs"] - before["signs"] <= 3, (before, after)
    assert st["handshakes_waiting_keyd"] == 0, st


class Flood:
    """Keeps up to `width` raw connections to port, each sending one
    ClientHello and never reading; a connection the server ends is
    replaced, until `total` ClientHellos went out."""

    def __init__(self, port, hello, width, total):
        self.port, self.hello = port, hello
        self.width, self.total = width, total
        self.sel = selectors.DefaultSelector()
        self.sent = 0
        self.opened = 0

    def _open(self):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect((moatlib.LOOPBACK, self.port))
        except BlockingIOError:
            pass
        self.opened += 1
        self.sel.register(s, selectors.EVENT_WRITE)

    def _drop(self, s):
        self.sel.unregister(s)
        s.close()

    def run(self, seconds, during=None):
        """Flood for at most `seconds`; during() is called once, halfway
        through the ClientHellos."""
        end = time.monotonic() + seconds
        called = False
        while self.sent < self.total and time.monotonic() < end:
            while len(self.sel.get_map()) < self.width and \
                    self.opened < self.total + self.width:
                self._open()
            for k, ev in self.sel.select(0.2):
                s = k.fileobj
                if ev & selectors.EVENT_WRITE:
                    try:
                        s.send(self.hello)
                        self.sent += 1
                        self.sel.modify(s, selectors.EVENT_READ)
                    except OSError:
                        self._drop(s)
                    continue
                try:		# the server ended it (handshake-timeout)
                    if not s.recv(65536, socket.MSG_DONTWAIT):
                        self._drop(s)
                except BlockingIOError:
                    pass
                except OSError:
                    self._drop(s)
            if during is not None and not called and \
                    self.sent >= self.total // 2:
                called = True
                during()

    def close(self):
        for k in list(self.sel.get_map().values()):
            k.fileobj.close()
        self.sel.close()


def test_flood_of_client_hellos_stays_bounded(moat_factory, backends,
                                              tmp_path):
    """20,000 ClientHellos against keyd-sign-delay-ms = 3000 (keyd answers
    none of them in time): the worker takes max-pending-handshakes of them
    at a time and leaves the rest in the listen queue, ending each at
    handshake-timeout, so its RSS and its mapping count stay bounded; a
    certificate rotation in the middle of the flood succeeds, and the
    worker that took the flood is the one still serving after it.  (No
    handshake can finish here: keyd's 3 s per signature is longer than the
    1 s handshake-timeout, so that every ClientHello waits for keyd.)"""
    nofile = reneglib.raise_nofile()
    assert nofile >= 8000, "RLIMIT_NOFILE %d is too low for the flood" % nofile
    echo = backends.echo()
    cert, key = reneglib.private_cert(tmp_path, "ecdsa")
    cap = 1000
    m = moat_factory({"fe": reneglib.frontend(echo.address, cert, key,
                                              handshake_timeout="1s")},
                     workers=1, keyd_threads=2, keyd_sign_delay_ms=3000,
                     keyd_timeout="30s", max_pending_handshakes=cap)
    worker = m.workers()[0]
    maps0, rss0 = proc_maps(worker), proc_rss_kib(worker)
    peak = {"maps": maps0, "rss": rss0, "waiting": 0}
    rotated = []

    def sample():
        peak["maps"] = max(peak["maps"], proc_maps(worker))
        peak["rss"] = max(peak["rss"], proc_rss_kib(worker))

    def rotate():
        sample()
        peak["waiting"] = m.stats()["handshakes_waiting_keyd"]
        reneglib.replace_cert(cert, key, "ecdsa")
        r = m.ctl("reload", timeout=60)
        rotated.append(r.stdout)
        sample()

    flood = Flood(m.ports["fe"], client_hello(), width=3000, total=20000)
    t0 = time.monotonic()
    try:
        flood.run(120, during=rotate)
        sample()
    finally:
        flood.close()
    took = time.monotonic() - t0
    print("flood: %d ClientHellos in %.1f s; worker maps %d -> %d, RSS "
          "%d -> %d KiB; %d waiting for keyd at the rotation"
          % (flood.sent, took, maps0, peak["maps"], rss0, peak["rss"],
             peak["waiting"]))
    assert flood.sent >= 20000, flood.sent
    assert rotated and "reloaded certificate" in rotated[0], rotated
    assert 0 < peak["waiting"] <= cap, peak
    # Each handshake waiting for keyd holds a coroutine stack and its
    # guard (two mappings); everything else is the process's own.
    assert peak["maps"] <= maps0 + 2 * cap + 200, peak
    assert peak["rss"] <= rss0 + 200 * 1024 + sanlib.rss_slack_kib(), peak
    # The flood gone, nothing is left waiting and the same worker (its
    # allocations all good: no mmap failed) accepts again.
    moatlib.wait_for(lambda: m.stats()["handshakes_waiting_keyd"] == 0, 30,
                     0.2, "the flood's handshakes to end")
    assert m.workers() == [worker], "the worker was replaced"
    socket.create_connection((moatlib.LOOPBACK, m.ports["fe"]),
                             timeout=10).close()
