# SPDX-License-Identifier: GPL-2.0-or-later
"""wirelib -- TLS records the test can alter on their way to the server.

A WireClient runs Python's ssl (OpenSSL) over a pair of MemoryBIOs and a
plain socket, so every record it sends passes through the test's hands:
the test can flip a ciphertext byte, send a record no client would make,
or write raw bytes of its own, and then read what the server answered.
Nothing here decrypts by itself: the server's records go back into the
same SSLObject, and OpenSSL says which alert arrived (SSLError reason
"..._ALERT_<NAME>"), or that close_notify came (SSLZeroReturnError).

ClientHellos with one thing wrong are built byte by byte (client_hello()),
and their plaintext alerts read with read_plain_alert().  Every read is
bounded by a deadline; only loopback is ever contacted.
"""

import os
import re
import socket
import ssl
import struct
import time

CT_CCS, CT_ALERT, CT_HANDSHAKE, CT_APPDATA = 20, 21, 22, 23
MAX_CIPHERTEXT = (1 << 14) + 256	# RFC 8446 5.2 / RFC 5246 6.2.3

ALERTS = {0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac",
          22: "record_overflow", 40: "handshake_failure",
          47: "illegal_parameter", 50: "decode_error", 70: "protocol_version",
          71: "insufficient_security", 80: "internal_error",
          86: "inappropriate_fallback", 109: "missing_extension",
          110: "unsupported_extension"}


def alert_name(desc):
    return ALERTS.get(desc, "alert %d" % desc)


class Outcome:
    """How the server answered: the alert (name), whether it was
    close_notify, whether the connection closed, and how long it took."""

    def __init__(self, alert=None, closed=False, seconds=0.0, detail=""):
        self.alert = alert
        self.closed = closed
        self.seconds = seconds
        self.detail = detail

    def __repr__(self):
        return "Outcome(alert=%r, closed=%r, %.3f s, %s)" % (
            self.alert, self.closed, self.seconds, self.detail)


def _alert_from_reason(reason):
    """OpenSSL's reason for a received alert: SSLV3_ALERT_BAD_RECORD_MAC,
    TLSV1_ALERT_RECORD_OVERFLOW, ... -> bad_record_mac, record_overflow."""
    m = re.search(r"(?:SSLV3|TLSV1|TLSV13)_ALERT_([A-Z_]+)", reason or "")
    return m.group(1).lower() if m else None


class WireClient:
    def __init__(self, port, version, timeout=10.0):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
        v = ssl.TLSVersion.TLSv1_3 if version == "1.3" else ssl.TLSVersion.TLSv1_2
        ctx.minimum_version = ctx.maximum_version = v
        self.version = version
        self.timeout = timeout
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.inc = ssl.MemoryBIO()
        self.out = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname="localhost")

    def close(self):
        self.sock.close()

    def _flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def _feed(self, deadline):
        """One read from the socket into OpenSSL; False at EOF."""
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        data = self.sock.recv(65536)
        if not data:
            self.inc.write_eof()
            return False
        self.inc.write(data)
        return True

    def handshake(self):
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                self.obj.do_handshake()
                self._flush()
                break
            except ssl.SSLWantReadError:
                self._flush()
                if not self._feed(deadline):
                    raise ConnectionError("server closed during handshake")
        if self.version == "1.3":
            # The server's NewSessionTicket (if any) and a round trip prove
            # the session works before the test spoils it.
            pass
        return self

    def record(self, payload):
        """The records OpenSSL makes for payload, not yet sent."""
        self.obj.write(payload)
        return self.out.read()

    def send_raw(self, data):
        self.sock.sendall(data)

    def outcome(self, seconds=5.0):
        """Read what the server sends back until it closes or `seconds`
        pass: the alert OpenSSL decrypted, or close_notify, or nothing."""
        t0 = time.monotonic()
        deadline = t0 + seconds
        closed = False
        alert = None
        detail = ""
        while time.monotonic() < deadline:
            try:
                self.obj.read(65536)
                continue			# application data: not expected
            except ssl.SSLZeroReturnError:
                alert = "close_notify"
                detail = "close_notify"
            except ssl.SSLWantReadError:
                try:
                    if not self._feed(deadline):
                        closed = True
                        # Let OpenSSL see the EOF after any last record.
                        try:
                            self.obj.read(65536)
                        except ssl.SSLZeroReturnError:
                            alert = alert or "close_notify"
                        except ssl.SSLError as e:
                            alert = alert or _alert_from_reason(e.reason)
                            detail = detail or str(e)
                        break
                except socket.timeout:
                    break
                except ConnectionResetError:
                    closed = True
                    detail = detail or "reset"
                    break
                continue
            except ssl.SSLError as e:
                alert = _alert_from_reason(e.reason)
                detail = str(e)
            if alert is not None:
                closed = self._wait_closed(deadline)
                break
        return Outcome(alert, closed, time.monotonic() - t0, detail)

    def _wait_closed(self, deadline):
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                if not self.sock.recv(65536):
                    return True
            except socket.timeout:
                return False
            except ConnectionResetError:
                return True
        return False


# ------------------------------------------------------------ ClientHellos

def ext(typ, body):
    return struct.pack("!HH", typ, len(body)) + body


def _vec8(b):
    return struct.pack("!B", len(b)) + b


def _vec16(b):
    return struct.pack("!H", len(b)) + b


SIGALGS = (0x0403, 0x0503, 0x0804, 0x0805, 0x0401, 0x0501)
GROUPS = (0x001d, 0x0017)		# x25519, secp256r1
SUITES12 = (0xc02b, 0xc02f, 0xc02c, 0xc030)	# ECDHE with AES-GCM
SUITES13 = (0x1301, 0x1302)


def client_hello(version="1.3", key_share_len=32, compression=b"\x00",
                 groups=GROUPS, sigalgs=SIGALGS, extra_exts=b"",
                 point_formats=b"\x00"):
    """A ClientHello record.  Arguments spoil one thing at a time: a
    key_share of the wrong size, no null compression, no groups..."""
    exts = ext(0x000a, _vec16(b"".join(struct.pack("!H", g) for g in groups)))
    exts += ext(0x000b, _vec8(point_formats))
    exts += ext(0x000d, _vec16(b"".join(struct.pack("!H", a) for a in sigalgs)))
    exts += ext(0xff01, b"\x00")
    suites = SUITES12
    if version == "1.3":
        suites = SUITES13 + SUITES12
        exts += ext(0x002b, _vec8(b"\x03\x04\x03\x03"))	# supported_versions
        share = struct.pack("!HH", 0x001d, key_share_len) + os.urandom(key_share_len)
        exts += ext(0x0033, _vec16(share))
        exts += ext(0x002d, _vec8(b"\x01"))			# psk_ke_modes
    exts += extra_exts
    body = (b"\x03\x03" + os.urandom(32) + _vec8(os.urandom(32))
            + _vec16(b"".join(struct.pack("!H", s) for s in suites))
            + _vec8(compression) + _vec16(exts))
    hs = struct.pack("!B", 1) + len(body).to_bytes(3, "big") + body
    return struct.pack("!BHH", CT_HANDSHAKE, 0x0301, len(hs)) + hs


def read_plain_alert(sock, seconds=5.0):
    """The first plaintext alert the server sends in answer to a
    ClientHello (skipping its handshake records), as an Outcome."""
    t0 = time.monotonic()
    deadline = t0 + seconds
    buf = b""
    closed = False
    alert = None
    while time.monotonic() < deadline and alert is None:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            closed = True
            break
        if not data:
            closed = True
            break
        buf += data
        while len(buf) >= 5:
            ct, _, n = struct.unpack("!BHH", buf[:5])
            if len(buf) < 5 + n:
                break
            body, buf = buf[5:5 + n], buf[5 + n:]
            if ct == CT_ALERT and n == 2:
                alert = alert_name(body[1]) + ("" if body[0] == 2 else
                                               " (warning)")
                break
    if alert is not None and not closed:
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                if not sock.recv(65536):
                    closed = True
                    break
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
    return Outcome(alert, closed, time.monotonic() - t0)
