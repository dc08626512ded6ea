# SPDX-License-Identifier: GPL-2.0-or-later
"""Proxying through moat (issue 3): bulk data, Unix backends, half-close,
and bad peers that end only their own connection, with a log line."""

import hashlib
import os
import select
import shutil
import socket
import ssl
import tempfile
import threading
import time

import pytest

import moatlib

MiB = 1 << 20
BULK = 16 * MiB
NCONN = 50
CHUNK = 16384


@pytest.fixture(scope="module")
def bulk_data():
    return os.urandom(BULK)


@pytest.fixture(scope="module")
def unix_dir():
    """A directory the unprivileged worker user can reach (pytest's own
    tmp dirs are private to root)."""
    d = tempfile.mkdtemp(prefix="moat-unix-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def moat(module_moat_factory, backends, certs, unix_dir):
    """One moat with a frontend per backend kind the tests need."""
    cert, key = certs["ecdsa"]
    fe = {"cert": cert, "key": key}
    echo = backends.echo()
    uecho = backends.echo(unix_path=os.path.join(unix_dir, "echo.sock"))
    halfclose = backends.custom(moatlib.drain_then_reply_handler)
    stall = backends.stall()
    return module_moat_factory({
        "echo": dict(fe, backend=echo.address),
        "unix": dict(fe, backend=uecho.address),
        "half": dict(fe, backend=halfclose.address),
        "refuse": dict(fe, backend=backends.refusing()),
        "stall": dict(fe, backend=stall.address, **{"idle-timeout": "2s"}),
        "slowhs": dict(fe, backend=echo.address, **{"handshake-timeout": "2s"}),
    }, workers=2)


def pump(port, data, offset, timeout=300):
    """data rotated by `offset` through moat and back (moatlib.echo_pump)."""
    return moatlib.echo_pump(port, data[offset:] + data[:offset], timeout)


@pytest.mark.slow
def test_16mib_on_50_connections(moat, bulk_data):
    results = [None] * NCONN
    errors = []

    def run(i):
        try:
            results[i] = pump(moat.ports["echo"], bulk_data, i * 4099)
        except Exception as e:  # noqa: BLE001 -- reported below
            errors.append("conn %d: %r" % (i, e))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(NCONN)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert not errors, "\n".join(errors[:10])
    for i, (want, got, n) in enumerate(results):
        assert n == BULK, "conn %d: %d of %d bytes came back" % (i, n, BULK)
        assert want == got, "conn %d: data differs" % i


def test_unix_backend(moat):
    want, got, n = pump(moat.ports["unix"], os.urandom(MiB), 0, timeout=60)
    assert (n, got) == (MiB, want)


def test_client_half_close(moat):
    """The client sends, then close_notify; the backend sees EOF and its
    answer still reaches the client."""
    data = os.urandom(3 * MiB + 17)
    raw = socket.create_connection((moatlib.LOOPBACK, moat.ports["half"]), 30)
    ctx = moatlib.client_context("1.3")
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, out, server_hostname="localhost")

    def flush():
        b = out.read()
        if b:
            raw.sendall(b)

    def feed():
        b = raw.recv(262144)
        if not b:
            inc.write_eof()
            return False
        inc.write(b)
        return True

    for _ in range(100):
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            flush()
            feed()
    flush()

    # Send everything, then close_notify: our write side ends here.
    view = memoryview(data)
    for i in range(0, len(view), CHUNK):
        tls.write(view[i:i + CHUNK])
        flush()
    try:
        tls.unwrap()
    except ssl.SSLWantReadError:
        pass	# the peer's close_notify has not come; we only half-closed
    flush()

    reply = bytearray()
    end = time.monotonic() + 60
    while time.monotonic() < end:
        try:
            b = tls.read(262144)
            if not b:
                break
            reply += b
            continue
        except ssl.SSLWantReadError:
            if not feed():
                break
        except ssl.SSLZeroReturnError:
            break	# close_notify: the backend ended normally, all is here
        except ssl.SSLEOFError:
            raise AssertionError("no close_notify after the backend's normal "
                                 "end (%d bytes in)\n%s" % (len(reply),
                                                              moat.log()))
    raw.close()
    head, _, rest = bytes(reply).partition(b"\n")
    assert head == ("%d %s" % (len(data), hashlib.sha256(data).hexdigest())).encode(), \
        "backend did not get all the data before EOF: %r\n%s" % (head, moat.log())
    assert rest == moatlib.pattern(MiB), \
        "reply after half-close: %d bytes, want %d" % (len(rest), MiB)


class Witness:
    """A normal connection kept open across a bad one, to show it survives."""

    def __init__(self, moat):
        self.s = moatlib.tls_connect(moat.ports["echo"], timeout=10)
        moatlib.round_trip(self.s)

    def check(self):
        moatlib.round_trip(self.s, b"still here " * 10)

    def close(self):
        self.s.close()


def wait_closed(sock, seconds):
    """True when the peer closed (EOF or reset) within `seconds`."""
    sock.settimeout(seconds)
    try:
        while True:
            b = sock.recv(4096)
            if not b:
                return True
    except (ConnectionResetError, ssl.SSLError, ssl.SSLEOFError):
        return True
    except socket.timeout:
        return False


def closed_with_log(moat, sock, start, why, seconds=15):
    """The connection ends and moat logs its line: the client's address
    and port, and a reason matching `why`."""
    port = sock.getsockname()[1]
    assert wait_closed(sock, seconds), "moat kept the connection open\n" + moat.log()
    moat.wait_log(r"(?i)client=127\.0\.0\.1:%d\b.*reason=\"[^\"]*(%s)" % (port, why),
                  10, start)


def test_garbage_instead_of_client_hello(moat):
    w = Witness(moat)
    start = moat.log_size()
    s = socket.create_connection((moatlib.LOOPBACK, moat.ports["echo"]), 10)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + os.urandom(2000))
    closed_with_log(moat, s, start, "handshake fail")
    s.close()
    w.check()
    w.close()


def test_client_stalls_mid_handshake(moat):
    w = Witness(moat)
    start = moat.log_size()
    s = socket.create_connection((moatlib.LOOPBACK, moat.ports["slowhs"]), 10)
    s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a ClientHello's start
    closed_with_log(moat, s, start, "handshake timeout", seconds=30)
    s.close()
    w.check()
    w.close()


def test_refusing_backend(moat):
    w = Witness(moat)
    start = moat.log_size()
    s = moatlib.tls_connect(moat.ports["refuse"], timeout=10)
    try:
        s.sendall(b"hello?\n")
    except OSError:
        pass
    closed_with_log(moat, s, start, "backend|refused")
    s.close()
    w.check()
    w.close()


def test_stalling_backend(moat):
    w = Witness(moat)
    start = moat.log_size()
    s = moatlib.tls_connect(moat.ports["stall"], timeout=10)
    s.sendall(b"anyone there?\n")
    closed_with_log(moat, s, start, "idle|timeout", seconds=30)
    s.close()
    w.check()
    w.close()


def test_max_connections(moat_factory, backends, certs):
    """Past max-connections a worker refuses, says so in its log, and
    serves again once a slot is free."""
    limit = 4
    echo = backends.echo()
    m = moat_factory({"echo": {"backend": echo.address, "cert": certs["ecdsa"][0],
                               "key": certs["ecdsa"][1]}},
                     workers=1, **{"max-connections": limit})
    port = m.ports["echo"]
    start = m.log_size()
    held = [moatlib.tls_connect(port, timeout=10) for _ in range(limit)]
    for s in held:
        moatlib.round_trip(s)
    refused = None
    try:
        # Not served: refused, or left waiting in the listen queue.
        extra = moatlib.tls_connect(port, timeout=3)
        try:
            moatlib.round_trip(extra)
        except (OSError, EOFError, ssl.SSLError):
            refused = True
        else:
            refused = False
        extra.close()
    except (OSError, ssl.SSLError):
        refused = True
    assert refused, "connection %d over the limit of %d was served" % (limit + 1, limit)
    m.wait_log(r"(?i)max(imum)?[-_ ]?conn", 10, start)
    for s in held:
        moatlib.round_trip(s)
    held.pop().close()

    def served():
        try:
            with moatlib.tls_connect(port, timeout=5) as s:
                moatlib.round_trip(s)
            return True
        except (OSError, EOFError, ssl.SSLError):
            return False
    moatlib.wait_for(served, 10, 0.1, "a free slot to serve again")
    for s in held:
        s.close()
