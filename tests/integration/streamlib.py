# SPDX-License-Identifier: GPL-2.0-or-later
"""streamlib -- long-lived TLS streams whose every byte is checked, for the
fault tests and bench/soak.

- PatternStream: the deterministic bytes of one stream (block-wise, so two
  readers that take different chunk sizes see the same bytes).
- CheckingEcho: a backend that reads a stream header (stream id and
  seed), checks every byte the client sent against PatternStream(seed) as
  it arrives and echoes it back; it records, per stream id, what it got and
  whether it was intact -- the client->backend direction, checked apart.
- Streams: client connections driven by one selector thread, each sending
  its pattern at a paced rate and checking the echo byte for byte (the
  backend->client direction); stop_sending() + drain() + close() end them
  and say exactly what went and came back.

Every wait is bounded.  Nothing here knows moat's internals: a stream only
sees bytes and how its connection ended.
"""

import random
import selectors
import socket
import ssl
import struct
import threading
import time

import re

import moatlib

BLOCK = 65536
HEADER = struct.Struct("!II")	# stream id, seed


class PatternStream:
    """The bytes of stream `seed`: block i is random.Random((seed, i))."""

    def __init__(self, seed):
        self.seed = seed
        self.block_no = 0
        self.block = b""
        self.pos = 0
        self.taken = 0

    def take(self, n):
        out = bytearray()
        while len(out) < n:
            if self.pos == len(self.block):
                self.block = random.Random(
                    "%d/%d" % (self.seed, self.block_no)).randbytes(BLOCK)
                self.block_no += 1
                self.pos = 0
            k = min(n - len(out), len(self.block) - self.pos)
            out += self.block[self.pos:self.pos + k]
            self.pos += k
        self.taken += n
        return bytes(out)


def pattern_bytes(seed, n):
    return PatternStream(seed).take(n)


# ------------------------------------------------------------------- backend

class CheckingEcho:
    """handler(conn) for moatlib.Backend: header, then check and echo.

    self.streams[id] = {"received", "echoed", "bad_at" (offset of the first
    wrong byte or None), "eof" (the client's end reached us)}."""

    def __init__(self):
        self.streams = {}
        self.lock = threading.Lock()

    def __call__(self, c):
        hdr = b""
        while len(hdr) < HEADER.size:
            b = c.recv(HEADER.size - len(hdr))
            if not b:
                return
            hdr += b
        sid, seed = HEADER.unpack(hdr)
        st = {"received": 0, "echoed": 0, "bad_at": None, "eof": False}
        with self.lock:
            self.streams[sid] = st
        want = PatternStream(seed)
        while True:
            b = c.recv(262144)
            if not b:
                st["eof"] = True
                break
            exp = want.take(len(b))
            if b != exp and st["bad_at"] is None:
                st["bad_at"] = st["received"] + next(
                    i for i in range(len(b)) if b[i] != exp[i])
            st["received"] += len(b)
            c.sendall(b)
            st["echoed"] += len(b)
        c.shutdown(socket.SHUT_WR)

    def get(self, sid):
        with self.lock:
            return dict(self.streams.get(sid, {}))


# ------------------------------------------------------------------- clients

class Stream:
    """One client connection; the fields are the Streams thread's."""

    def __init__(self, sid, sock, rate):
        self.sid = sid
        self.sock = sock
        self.rate = rate		# bytes/s it sends at most
        self.out = PatternStream(sid)
        self.check = PatternStream(sid)
        self.pending = b""		# a chunk that must be sent again as is
        self.sent = 0			# pattern bytes handed to TLS
        self.received = 0		# echo bytes that came back, all checked
        self.bad_at = None		# offset of the first wrong byte
        self.end = None			# None while open; "clean", "unclean",
        self.error = None		# "error" (with .error)
        self.t0 = time.monotonic()
        self.sending = True
        self.closing = False		# close() has taken it over
        self.worker = None

    @property
    def ok(self):
        return self.bad_at is None and self.end is None

    def describe(self):
        return ("stream %d: sent %d received %d bad_at %s end %s %s"
                % (self.sid, self.sent, self.received, self.bad_at, self.end,
                   self.error or ""))


class Streams:
    """Echo streams through moat, driven by one thread.

    open(port, n) connects n more (blocking handshakes, in the caller's
    thread); the driver sends each stream's pattern at `rate` bytes/s and
    checks what comes back."""

    CHUNK = 8192

    def __init__(self, rate=64 * 1024):
        self.rate = rate
        self.streams = []
        self.sel = selectors.DefaultSelector()
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self._next = 1

    def open(self, port, n=1, version=None, timeout=30):
        made = []
        for _ in range(n):
            with self.lock:
                sid = self._next
                self._next += 1
            s = moatlib.tls_connect(port, version, timeout=timeout)
            s.sendall(HEADER.pack(sid, sid))
            s.setblocking(False)
            st = Stream(sid, s, self.rate)
            with self.lock:
                self.streams.append(st)
                self.sel.register(s, selectors.EVENT_READ, st)
            made.append(st)
        return made

    # -- the driver thread

    def _finish(self, st, end, error=None):
        st.end, st.error = end, error
        try:
            self.sel.unregister(st.sock)
        except (KeyError, ValueError):
            pass
        st.sock.close()

    def _send(self, st):
        now = time.monotonic()
        while st.end is None:
            if not st.pending:
                if not st.sending or \
                        st.sent + self.CHUNK > st.rate * (now - st.t0):
                    return False
                st.pending = st.out.take(self.CHUNK)
            try:
                n = st.sock.send(st.pending)
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                return True
            st.sent += n
            st.pending = st.pending[n:]
        return False

    def _recv(self, st):
        while st.end is None:
            try:
                b = st.sock.recv(262144)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return
            except ssl.SSLZeroReturnError:
                b = b""
            if not b:
                self._finish(st, "clean")
                return
            exp = st.check.take(len(b))
            if b != exp and st.bad_at is None:
                st.bad_at = st.received + next(
                    i for i in range(len(b)) if b[i] != exp[i])
            st.received += len(b)

    def _step(self, st, readable):
        try:
            blocked = self._send(st)
            # OpenSSL may hold decrypted records the socket no longer
            # signals (read while it wrote): pending() says so.
            if st.end is None and (readable or st.sock.pending()):
                self._recv(st)
            if st.end is None:
                ev = selectors.EVENT_READ | (selectors.EVENT_WRITE
                                             if blocked else 0)
                self.sel.modify(st.sock, ev, st)
        except ssl.SSLError as e:
            self._finish(st, "unclean" if moatlib.is_unclean_eof(e) else
                         "error", repr(e))
        except OSError as e:
            self._finish(st, "error", repr(e))

    def _run(self):
        while not self._stop.is_set():
            with self.lock:
                ready = self.sel.select(0) if self.sel.get_map() else []
                woke = {key.data for key, _ in ready}
                for st in self.streams:
                    if st.end is None and not st.closing:
                        self._step(st, st in woke)
            if not ready:
                # the pacing tick; wait outside the lock
                if self.sel.get_map():
                    try:
                        self.sel.select(0.02)
                    except (OSError, ValueError):
                        time.sleep(0.02)
                else:
                    time.sleep(0.02)

    # -- the caller's side

    def live(self):
        with self.lock:
            return [st for st in self.streams if st.end is None]

    def totals(self):
        with self.lock:
            return (sum(st.sent for st in self.streams),
                    sum(st.received for st in self.streams))

    def stop_sending(self, streams=None):
        with self.lock:
            for st in streams or self.streams:
                st.sending = False

    def drain(self, streams=None, seconds=60):
        """Wait until every open stream of `streams` got its echo back
        whole (nothing pending, received == sent)."""
        streams = streams or self.streams

        def done():
            with self.lock:
                return all(st.end is not None or
                           (not st.pending and st.received >= st.sent)
                           for st in streams)
        moatlib.wait_for(done, seconds, 0.05, "the echo of every stream")

    def close(self, streams=None, seconds=30):
        """End the open streams with close_notify and read to the server's
        end: moat's close_notify after the backend's EOF ("clean")."""
        with self.lock:
            streams = [st for st in (streams or self.streams)
                       if st.end is None]
            for st in streams:
                st.closing = True
                try:
                    self.sel.unregister(st.sock)
                except (KeyError, ValueError):
                    pass
        for st in streams:
            st.sock.settimeout(seconds)
            try:
                st.sock.unwrap().close()	# ours, then moat's close_notify
                st.end = "clean"
            except ssl.SSLError as e:
                st.end = "unclean" if moatlib.is_unclean_eof(e) else "error"
                st.error = repr(e)
                st.sock.close()
            except OSError as e:
                st.end, st.error = "error", repr(e)
                st.sock.close()

    def shutdown(self):
        self._stop.set()
        self.thread.join(10)
        with self.lock:
            for st in self.streams:
                if st.end is None:
                    st.end = "abandoned"
                    st.sock.close()
        self.sel.close()


def assert_stream_whole(st, echo):
    """A stream that ended cleanly: every byte it sent reached the backend
    intact, every byte came back intact, and the counts match exactly."""
    be = echo.get(st.sid)
    assert st.end == "clean", st.describe()
    assert st.bad_at is None, st.describe()
    assert be, "the backend never saw stream %d" % st.sid
    assert be["bad_at"] is None, (st.describe(), be)
    assert be["received"] == st.sent == st.received == be["echoed"], \
        (st.describe(), be)
    assert be["eof"], (st.describe(), be)


# ------------------------------------------------------------ moatd's log

def close_line(m, frontend_name, start=0, seconds=30):
    """moatd's close line of the first connection of frontend_name that
    ended after log offset `start` (waited for) and got as far as a TLS
    version: the start-up probes of the listening ports, which may be
    logged late on a slow machine, never do."""
    rx = (r'conn client=\S+ frontend=%s sni=\S+ tls=TLS\S* .*notify=\S+ '
          r'reason="[^"]*"' % re.escape(frontend_name))
    return m.wait_log(rx, seconds, start).group(0)


def line_field(line, name):
    """A key=value field of a close line (reason: the quoted text)."""
    if name == "reason":
        return re.search(r'reason="([^"]*)"', line).group(1)
    return re.search(r"\b%s=(\S+)" % name, line).group(1)
