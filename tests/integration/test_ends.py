# SPDX-License-Identifier: GPL-2.0-or-later
"""How a connection ends says whether its stream is whole (issue 9, points
1, 2 and 6): close_notify only after the backend's normal end with every
byte delivered; a policy end flushes what was held before it ends, without
close_notify; an idle timeout is unclean; a late ClientHello answers the
HelloRequest it ignored; and a drain closes a long-lived idle connection
with close_notify and its log line before drain-timeout, while one still
streaming is cut without it.

The clients are Python's ssl (OpenSSL) with suppress_ragged_eofs off, so
an end without close_notify is ssl.SSLEOFError (moatlib.UncleanEnd), never
a silent EOF.  One moatd serves the file but for the drain, which stops
its own.
"""

import queue
import re
import socket
import ssl
import threading
import time

import pytest

import moatlib
import reneglib

HELD = 8192		# what the backend sends while a HelloRequest is out


class PushBackend:
    """A backend the test drives: each accepted connection goes to a
    queue, and the test writes to it when it wants."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind((moatlib.LOOPBACK, 0))
        self.sock.listen(16)
        self.address = "%s:%d" % self.sock.getsockname()
        self.conns = queue.Queue()
        self._t = threading.Thread(target=self._accept, daemon=True)
        self._t.start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.put(c)

    def next(self, seconds=20):
        return self.conns.get(timeout=seconds)

    def close(self):
        self.sock.close()


@pytest.fixture(scope="module")
def push():
    b = PushBackend()
    yield b
    b.close()


@pytest.fixture(scope="module")
def moat(module_moat_factory, backends, certs, push):
    echo = backends.echo()
    cert, key = certs["ecdsa"]
    fes = {
        "push": reneglib.frontend(push.address, cert, key, on_refusal="close",
                                  rekey_interval=0, rekey_bytes=0,
                                  rekey_timeout="10s"),
        "idle": reneglib.frontend(echo.address, cert, key,
                                  idle_timeout="1s", rekey_interval=0),
        "late": reneglib.frontend(echo.address, cert, key, rekey_interval=0,
                                  rekey_bytes=0, rekey_timeout="1s",
                                  on_ignore="keep"),
    }
    return module_moat_factory(fes, workers=1)


def conn_line(m, start, frontend_name, reason):
    """The close line of a connection of that frontend with that reason,
    from log offset start (waited for)."""
    rx = r'conn client=\S+ frontend=%s .*reason="%s"' % (
        re.escape(frontend_name), re.escape(reason))
    return m.wait_log(rx, 20, start).group(0)


def field(line, name):
    return re.search(r"\b%s=(\S+)" % name, line).group(1)


def test_policy_close_flushes_what_was_held(moat, push):
    """on-refusal = close: the backend's bytes that waited while the
    HelloRequest was unanswered reach the client before the end, and the
    end has no close_notify (moat cut the stream, not the backend)."""
    ctx = moatlib.client_context("1.2")
    ctx.options |= ssl.OP_NO_RENEGOTIATION	# OpenSSL answers no_renegotiation
    before = reneglib.counters(moat)
    log0 = moat.log_size()
    s = moatlib.tls_connect(moat.ports["push"], ctx=ctx)
    b = push.next()
    try:
        b.sendall(b"hello\n")
        assert moatlib.recv_exact(s, 6) == b"hello\n"
        assert reneglib.rekey(moat, "push") == 1
        reneglib.wait_counters(moat, before, {"renegotiations_requested": 1})
        # Now held: nothing goes to the client until it answers.
        data = moatlib.pattern(HELD, seed=3)
        b.sendall(data)
        time.sleep(0.3)
        with pytest.raises(moatlib.UncleanEnd) as end:
            moatlib.recv_all(s)
        assert end.value.data == data, \
            "%d of %d held bytes reached the client" % (len(end.value.data),
                                                        HELD)
    finally:
        s.close()
        b.close()
    line = conn_line(moat, log0, "push", "client refused renegotiation")
    assert field(line, "notify") == "no", line
    assert int(field(line, "b2c")) == 6 + HELD, line
    reneglib.wait_counters(moat, before, {"renegotiations_refused": 1})


def test_idle_timeout_is_unclean(moat):
    """An idle timeout cuts the stream: no close_notify."""
    log0 = moat.log_size()
    with moatlib.tls_connect(moat.ports["idle"]) as s:
        moatlib.round_trip(s)
        s.settimeout(20)
        t0 = time.monotonic()
        with pytest.raises(moatlib.UncleanEnd):
            moatlib.recv_all(s)
        assert time.monotonic() - t0 < 15
    line = conn_line(moat, log0, "idle", "idle timeout")
    assert field(line, "notify") == "no", line


def test_late_answer_to_an_ignored_hello_request(moat):
    """An OpenSSL client that does not read for 3 s past rekey-timeout
    (1 s) renegotiates on its next read, as pooled HTTP/1.1 clients do:
    that late ClientHello answers our HelloRequest (never refused as the
    client's own under client-renegotiation = refuse), the renegotiation
    completes and the echo comes back intact."""
    before = reneglib.counters(moat)
    with moatlib.tls_connect(moat.ports["late"], version="1.2",
                             timeout=30) as s:
        moatlib.round_trip(s)
        assert reneglib.rekey(moat, "late") == 1
        reneglib.wait_counters(moat, before, {"renegotiations_ignored": 1},
                               seconds=20)
        time.sleep(3)
        request = moatlib.pattern(4000, seed=9)
        s.sendall(request)
        assert moatlib.recv_exact(s, len(request)) == request
        moatlib.round_trip(s, b"after the renegotiation " * 8)
    got = reneglib.wait_counters(moat, before, {
        "renegotiations_requested": 1, "renegotiations_ignored": 1,
        "renegotiations_completed": 1})
    assert got["client_renegotiations_refused"] == 0, got
    assert got["client_renegotiations_allowed"] == 0, got


def test_drain_closes_idle_cleanly_and_cuts_streams(moat_factory, backends,
                                                   certs):
    """SIGTERM with drain-timeout = 3s: a long-lived idle connection (IMAP
    IDLE) gets close_notify and its log line before the master's kill; a
    connection still streaming when the drain runs out is cut without
    close_notify, its echo a clean prefix; moatd exits 0 on its own."""
    echo = backends.echo()
    m = moat_factory({"fe": reneglib.frontend(
        echo.address, *certs["ecdsa"], rekey_interval=0)}, workers=1,
        drain_timeout="3s")
    idle = moatlib.tls_connect(m.ports["fe"], timeout=30)
    moatlib.round_trip(idle)
    stream = reneglib.RenegClient(m.ports["fe"], duration_ms=30000,
                                  per_tick=1024, timeout_ms=60000)
    try:
        stream.wait_ready()
        log0 = m.log_size()
        t0 = time.monotonic()
        rc = m.stop(timeout=20)
        took = time.monotonic() - t0
        res = stream.result()
    finally:
        stream.kill()
    idle.settimeout(10)
    assert moatlib.recv_all(idle) == b""	# close_notify, nothing lost
    idle.close()
    assert rc == 0, m.log()
    assert took < 3.0, "moatd took %.1f s to stop (drain-timeout 3 s)" % took
    log = m.log_text()[log0:]
    assert "killing" not in log, log
    clean = re.findall(r'conn client=\S+ frontend=fe .*notify=yes '
                       r'reason="worker stopping"', log)
    cut = re.findall(r'conn client=\S+ frontend=fe .*notify=no '
                     r'reason="worker stopping: drain timeout"', log)
    assert len(clean) == 1 and len(cut) == 1, log
    reneglib.assert_ended_honestly(res)
    assert res["end"] == "server_unclean", res
