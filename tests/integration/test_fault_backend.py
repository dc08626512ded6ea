# SPDX-License-Identifier: GPL-2.0-or-later
"""A backend that fails or is slow (issue 9, fault tests and point 6).

- A backend that writes 1 MiB and then resets: the client's stream ends
  without close_notify (Python's ssl, suppress_ragged_eofs off, raises
  SSLEOFError or UNEXPECTED_EOF), never as a clean EOF; the close line
  says notify=no.  The control, a backend that writes 1 MiB and closes
  normally: a clean end with every byte, notify=yes.
- A backend that stops reading while the client sends 64 MiB: the
  worker's memory stays bounded (back-pressure, no queue), and when it
  reads again every byte arrives intact, then the client's end.
- A client that sends and then closes its TCP connection without
  close_notify, in front of a backend that is not reading yet: the
  backend still gets every byte, then EOF.

One moatd (one worker) serves the file, a frontend per backend.
"""

import fcntl
import socket
import struct
import termios
import threading
import time

import pytest

import moatlib
import reneglib
import sanlib
import streamlib

MIB = 1 << 20
SLOW_TOTAL = 64 * MIB
RSS_GROWTH_KIB = 16 * 1024
EOF_TOTAL = 16 * MIB


def send_queue_empty(c, seconds=20):
    """Wait until the peer acknowledged all we sent (TIOCOUTQ is 0): a
    reset then takes nothing of ours with it."""
    buf = bytearray(4)

    def empty():
        fcntl.ioctl(c.fileno(), termios.TIOCOUTQ, buf)
        return struct.unpack("i", buf)[0] == 0
    moatlib.wait_for(empty, seconds, 0.01, "the backend's send queue to empty")


def reset_handler(c):
    c.sendall(moatlib.pattern(MIB, seed=1))
    send_queue_empty(c)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()		# SO_LINGER 0: an RST, not a FIN


def whole_handler(c):
    c.sendall(moatlib.pattern(MIB, seed=2))
    c.shutdown(socket.SHUT_WR)
    c.settimeout(30)
    while c.recv(65536):	# until moat passes on the client's end
        pass


class Sink:
    """The handler of one connection: a backend that reads `first` bytes,
    then stops reading until resume() (or `stall_s` passed), then reads to
    EOF -- `slowly`: 16 KiB every 4 ms -- checking every byte against
    PatternStream(seed)."""

    def __init__(self, seed, first, stall_s=60, slowly=False):
        self.seed, self.first, self.stall_s = seed, first, stall_s
        self.slowly = slowly
        self.stalled = threading.Event()
        self._resume = threading.Event()
        self.done = threading.Event()
        self.received = 0
        self.bad_at = None
        self.eof = False
        self.at_resume = None

    def resume(self):
        self._resume.set()

    def _take(self, b, want):
        exp = want.take(len(b))
        if b != exp and self.bad_at is None:
            self.bad_at = self.received + next(
                i for i in range(len(b)) if b[i] != exp[i])
        self.received += len(b)

    def __call__(self, c):
        want = streamlib.PatternStream(self.seed)
        try:
            while self.received < self.first:
                b = c.recv(min(65536, self.first - self.received))
                if not b:
                    return
                self._take(b, want)
            self.stalled.set()
            self._resume.wait(self.stall_s)
            self.at_resume = self.received
            while True:
                b = c.recv(16384 if self.slowly else 262144)
                if not b:
                    self.eof = True
                    break
                self._take(b, want)
                if self.slowly:
                    time.sleep(0.004)
        finally:
            self.done.set()


@pytest.fixture(scope="module")
def sinks():
    return {"slow": Sink(seed=7, first=MIB), "eof": Sink(seed=8, first=0, slowly=True)}


@pytest.fixture(scope="module")
def moat(module_moat_factory, backends, certs, sinks):
    cert, key = certs["ecdsa"]
    fes = {
        "echo": reneglib.frontend(backends.echo().address, cert, key),
        "reset": reneglib.frontend(backends.custom(reset_handler).address,
                                   cert, key),
        "whole": reneglib.frontend(backends.custom(whole_handler).address,
                                   cert, key),
        "slow": reneglib.frontend(backends.custom(sinks["slow"]).address,
                                  cert, key, idle_timeout="300s"),
        "eof": reneglib.frontend(backends.custom(sinks["eof"]).address,
                                 cert, key, idle_timeout="300s"),
    }
    return module_moat_factory(fes, workers=1)


def rss_kib(pid):
    return int(moatlib.proc_status(pid)["VmRSS"].split()[0])


def test_backend_reset_is_an_unclean_end(moat):
    """1 MiB, then an RST: what the worker read still reaches the client,
    then the stream ends without close_notify."""
    log0 = moat.log_size()
    with moatlib.tls_connect(moat.ports["reset"], timeout=30) as s:
        with pytest.raises(moatlib.UncleanEnd) as end:
            moatlib.recv_all(s)
    got = end.value.data
    assert got == moatlib.pattern(MIB, seed=1)[:len(got)], \
        "what came before the end is not the backend's prefix"
    line = streamlib.close_line(moat, "reset", log0)
    print("reset after %d of %d bytes: %s" % (len(got), MIB, line))
    assert streamlib.line_field(line, "notify") == "no", line
    assert streamlib.line_field(line, "reason").startswith("backend error"), \
        line
    assert int(streamlib.line_field(line, "b2c")) == len(got), line


def test_backend_normal_close_is_a_clean_end(moat):
    """The control: 1 MiB then a FIN gives every byte and close_notify."""
    log0 = moat.log_size()
    with moatlib.tls_connect(moat.ports["whole"], timeout=30) as s:
        got = moatlib.recv_all(s)	# raises UncleanEnd without close_notify
    assert got == moatlib.pattern(MIB, seed=2), \
        "a clean end with %d of %d bytes" % (len(got), MIB)
    line = streamlib.close_line(moat, "whole", log0)
    assert streamlib.line_field(line, "notify") == "yes", line
    assert int(streamlib.line_field(line, "b2c")) == MIB, line


class Sender:
    """Sends PatternStream(seed) bytes over a TLS socket in a thread;
    then ends with close_notify (clean) or a bare TCP shutdown."""

    def __init__(self, s, seed, total, notify=True):
        self.s, self.total, self.notify = s, total, notify
        self.out = streamlib.PatternStream(seed)
        self.sent = 0
        self.error = None
        self.closed = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        try:
            while self.sent < self.total:
                b = self.out.take(min(65536, self.total - self.sent))
                self.s.sendall(b)
                self.sent += len(b)
            if self.notify:
                self.s.unwrap()
            else:
                # SSLSocket.shutdown drops the TLS state without a
                # close_notify: a bare FIN
                self.s.shutdown(socket.SHUT_WR)
        except (OSError, ValueError) as e:
            self.error = repr(e)
        finally:
            self.closed.set()

    def progress_stopped(self, quiet_s=1.0, seconds=60):
        """Wait until `sent` did not move for quiet_s."""
        last, since = -1, time.monotonic()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.sent != last:
                last, since = self.sent, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return last
            time.sleep(0.05)
        raise AssertionError("the client kept sending: %d bytes" % self.sent)


def test_slow_backend_bounds_memory_and_loses_nothing(moat, sinks):
    """The backend reads 1 MiB and stops; the client goes on sending
    (64 MiB in all) until back-pressure stops it.  Meanwhile the worker's
    RSS grows by at most 16 MiB; once the backend reads again it gets all
    64 MiB intact, then EOF."""
    sink = sinks["slow"]
    worker = moat.workers()[0]
    with moatlib.tls_connect(moat.ports["echo"], timeout=30) as warm:
        moatlib.round_trip(warm)	# the first proxied connection's
					# one-off allocations
    time.sleep(0.5)
    rss0 = rss_kib(worker)
    s = moatlib.tls_connect(moat.ports["slow"], timeout=120)
    try:
        sender = Sender(s, sink.seed, SLOW_TOTAL)
        assert sink.stalled.wait(60), "the backend never got 1 MiB"
        stuck_at = sender.progress_stopped()
        peak = rss0
        for _ in range(10):
            peak = max(peak, rss_kib(worker))
            time.sleep(0.2)
        print("client stuck after %d bytes (backend read %d); worker RSS "
              "%d -> %d KiB" % (stuck_at, sink.received, rss0, peak))
        assert stuck_at < SLOW_TOTAL, "nothing held the client back"
        # (plus what ASan's quarantine keeps of freed memory in that build)
        assert peak - rss0 <= RSS_GROWTH_KIB + sanlib.rss_slack_kib(), \
            "worker RSS grew %d KiB with the backend stalled" % (peak - rss0)
        sink.resume()
        assert sender.closed.wait(180), "the client never finished sending"
        assert sender.error is None, sender.error
        assert sink.done.wait(60), "the backend never saw the end"
    finally:
        s.close()
    assert sink.bad_at is None, "byte %d arrived wrong" % sink.bad_at
    assert sink.received == SLOW_TOTAL and sink.eof, \
        (sink.received, sink.eof)


def test_client_eof_without_notify_reaches_a_slow_backend(moat, sinks):
    """The client sends 16 MiB and closes its TCP connection without
    close_notify while a slow backend has read only part of it: the
    backend still gets every byte, then EOF.  (The backend first reads
    nothing until the client is held back, so that when the client's end
    reaches moat much is still on its way.)"""
    sink = sinks["eof"]
    log0 = moat.log_size()
    s = moatlib.tls_connect(moat.ports["eof"], timeout=60)
    try:
        sender = Sender(s, sink.seed, EOF_TOTAL, notify=False)
        stuck_at = sender.progress_stopped()
        sink.resume()
        assert sender.closed.wait(120), \
            "the client never finished (%d bytes sent)" % sender.sent
        at_close = sink.received
        assert sender.error is None, sender.error
        assert sink.done.wait(120), "the backend never saw the end"
    finally:
        s.close()
    print("client held back at %d bytes; ended when the backend had %d of "
          "%d" % (stuck_at, at_close, EOF_TOTAL))
    assert at_close < EOF_TOTAL - MIB, \
        "the backend had read %d of %d bytes before the client ended: " \
        "nothing was in flight" % (at_close, EOF_TOTAL)
    assert sink.bad_at is None, "byte %d arrived wrong" % sink.bad_at
    assert sink.received == EOF_TOTAL and sink.eof, (sink.received, sink.eof)
    line = streamlib.close_line(moat, "eof", log0)
    assert streamlib.line_field(line, "reason") == \
        "client closed (no close_notify)", line
    assert int(streamlib.line_field(line, "c2b")) == EOF_TOTAL, line
