# SPDX-License-Identifier: GPL-2.0-or-later
"""The PROXY protocol as a backend sees it: a parser of the test's own for
v1 and v2 headers (every length checked), a backend that queues the
header it read and echoes what follows (test_proxyproto.py, test_mtls.py),
and a v2 header builder for tests that play the proxy (maillib.py)."""

import queue
import socket
import struct

import moatlib

SIG2 = b"\r\n\r\n\x00\r\nQUIT\n"

PP2_TYPE_SSL = 0x20
PP2_SUBTYPE_SSL_VERSION = 0x21
PP2_CLIENT_SSL = 0x01


def v2_header(src, sport, dst, dport, cmd=0x21, tlvs=b""):
    """A v2 header for TCP over IPv4 (cmd 0x21 PROXY, 0x20 LOCAL)."""
    body = (socket.inet_aton(src) + socket.inet_aton(dst) +
            struct.pack("!HH", sport, dport) + tlvs)
    return SIG2 + struct.pack("!BBH", cmd, 0x11, len(body)) + body


def tlv(t, value):
    return struct.pack("!BH", t, len(value)) + value


def ssl_tlv(client=PP2_CLIENT_SSL, verify=0, version=b"TLSv1.3"):
    """PP2_TYPE_SSL: client flags, verify result, a version sub-TLV."""
    sub = tlv(PP2_SUBTYPE_SSL_VERSION, version) if version else b""
    return tlv(PP2_TYPE_SSL, struct.pack("!BI", client, verify) + sub)


def read_exact(c, n):
    out = b""
    while len(out) < n:
        b = c.recv(n - len(out))
        if not b:
            raise EOFError("EOF after %d of %d header bytes" % (len(out), n))
        out += b
    return out


def parse_tlvs(data):
    """{type: value} of a v2 TLV area, each length checked; a type twice or
    a TLV running past the area fails the test."""
    tlvs, at = {}, 0
    while at < len(data):
        assert len(data) - at >= 3, "TLV header cut: %r" % data[at:]
        t, n = data[at], struct.unpack("!H", data[at + 1:at + 3])[0]
        assert n <= len(data) - at - 3, "TLV 0x%02x runs past the header" % t
        assert t not in tlvs, "TLV 0x%02x twice" % t
        tlvs[t] = data[at + 3:at + 3 + n]
        at += 3 + n
    return tlvs


def read_proxy_header(c):
    """The PROXY header at the start of c, v1 or v2, as a dict; reads not
    a byte past it."""
    first = read_exact(c, 5)
    if first == b"PROXY":
        line = first
        while not line.endswith(b"\r\n"):
            assert len(line) < 107, "v1 line longer than 107 bytes"
            line += read_exact(c, 1)
        f = line[:-2].decode("ascii").split(" ")
        h = {"version": 1, "raw": line}
        if f[1] == "UNKNOWN":
            h["family"] = "UNKNOWN"
            return h
        assert f[1] in ("TCP4", "TCP6") and len(f) == 6, line
        h.update(family=f[1], src=f[2], dst=f[3], sport=int(f[4]),
                 dport=int(f[5]))
        return h
    hdr = first + read_exact(c, 7)
    assert hdr[:12] == SIG2, "neither a v1 nor a v2 header: %r" % hdr
    vc, fam, n = struct.unpack("!BBH", read_exact(c, 4))
    body = read_exact(c, n)
    assert vc == 0x21, "ver/cmd 0x%02x" % vc
    h = {"version": 2}
    if fam == 0x11:
        assert n >= 12
        h.update(family="TCP4", src=socket.inet_ntop(socket.AF_INET, body[0:4]),
                 dst=socket.inet_ntop(socket.AF_INET, body[4:8]))
        h["sport"], h["dport"] = struct.unpack("!HH", body[8:12])
        rest = body[12:]
    elif fam == 0x21:
        assert n >= 36
        h.update(family="TCP6",
                 src=socket.inet_ntop(socket.AF_INET6, body[0:16]),
                 dst=socket.inet_ntop(socket.AF_INET6, body[16:32]))
        h["sport"], h["dport"] = struct.unpack("!HH", body[32:36])
        rest = body[36:]
    else:
        assert fam == 0x00, "family 0x%02x" % fam
        h["family"] = "UNSPEC"
        rest = body
    tlvs = parse_tlvs(rest)
    h["tlvs"] = tlvs
    if 0x20 in tlvs:
        ssl_v = tlvs[0x20]
        assert len(ssl_v) >= 5, "SSL TLV shorter than client + verify"
        h["ssl_client"] = ssl_v[0]
        h["ssl_verify"] = struct.unpack("!I", ssl_v[1:5])[0]
        h["ssl"] = parse_tlvs(ssl_v[5:])
    return h


class PPBackend:
    """A backend that reads the PROXY header, queues it with the first
    bytes after it, and echoes everything after the header."""

    def __init__(self, backends):
        self.q = queue.Queue()
        self.b = backends.custom(self.handle)
        self.address = self.b.address

    def handle(self, c):
        c.settimeout(30)
        try:
            h = read_proxy_header(c)
        except (AssertionError, EOFError, UnicodeDecodeError) as e:
            self.q.put({"error": str(e)})
            return
        self.q.put(h)
        moatlib.echo_handler(c)

    def header(self, timeout=10):
        h = self.q.get(timeout=timeout)
        assert "error" not in h, h["error"]
        return h
