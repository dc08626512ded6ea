# SPDX-License-Identifier: GPL-2.0-or-later
"""rawtls -- a TLS 1.2 client written byte by byte, for what no stock client
will do: a ClientKeyExchange of our own making (RFC 5246 7.4.7.1).

It offers only TLS_RSA_WITH_AES_128_GCM_SHA256, reads the server's flight
(ServerHello, Certificate, ServerHelloDone), sends a ClientKeyExchange whose
encrypted premaster it built with raw RSA (pow() on the certificate's
public key), then ChangeCipherSpec and a Finished record that cannot be
right (we never derive keys: with either a bad padding or a wrong premaster
the server must find out at our Finished).  It reports how the server
answered: the alert it sent, whether it closed, and how long it took.
Every read is bounded by a timeout; only loopback is ever contacted.
"""

import os
import socket
import struct
import time

TLS12 = b"\x03\x03"
RSA_AES128_GCM_SHA256 = 0x009C

CT_CCS, CT_ALERT, CT_HANDSHAKE = 20, 21, 22
HT_SERVER_HELLO, HT_CERTIFICATE, HT_SERVER_HELLO_DONE = 2, 11, 14
HT_CLIENT_KEY_EXCHANGE, HT_FINISHED = 16, 20


def _ext(typ, body):
    return struct.pack("!HH", typ, len(body)) + body


def client_hello():
    """A ClientHello offering TLS 1.2 and one RSA key-exchange suite."""
    sigalgs = b"".join(struct.pack("!H", a) for a in
                       (0x0401, 0x0501, 0x0601, 0x0804, 0x0805, 0x0806))
    exts = (_ext(0xff01, b"\x00")                      # renegotiation_info
            + _ext(0x000d, struct.pack("!H", len(sigalgs)) + sigalgs))
    body = (TLS12 + os.urandom(32) + b"\x00"
            + struct.pack("!HH", 2, RSA_AES128_GCM_SHA256)
            + b"\x01\x00" + struct.pack("!H", len(exts)) + exts)
    return _handshake(1, body)


def _handshake(typ, body):
    return struct.pack("!B", typ) + len(body).to_bytes(3, "big") + body


def _record(ct, body):
    return struct.pack("!B", ct) + TLS12 + struct.pack("!H", len(body)) + body


class Conn:
    """One TCP connection to moat, read record by record."""

    def __init__(self, port, host="127.0.0.1", timeout=20):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.hbuf = b""

    def close(self):
        self.sock.close()

    def _fill(self, n):
        while len(self.buf) < n:
            b = self.sock.recv(65536)
            if not b:
                raise EOFError("closed")
            self.buf += b

    def record(self):
        """(content type, body); raises EOFError when the server closed."""
        self._fill(5)
        ct, _, ln = struct.unpack("!BHH", self.buf[:5])
        self._fill(5 + ln)
        body = self.buf[5:5 + ln]
        self.buf = self.buf[5 + ln:]
        return ct, body

    def handshake_msg(self):
        """(type, body) of the next handshake message."""
        while len(self.hbuf) < 4 or \
                len(self.hbuf) < 4 + int.from_bytes(self.hbuf[1:4], "big"):
            ct, body = self.record()
            if ct == CT_ALERT:
                raise ConnectionError("alert %r during the server's flight"
                                      % body)
            if ct != CT_HANDSHAKE:
                raise ConnectionError("record type %d during the flight" % ct)
            self.hbuf += body
        ln = int.from_bytes(self.hbuf[1:4], "big")
        typ, body = self.hbuf[0], self.hbuf[4:4 + ln]
        self.hbuf = self.hbuf[4 + ln:]
        return typ, body


def _certificate_der(body):
    """The first certificate of a Certificate message."""
    total = int.from_bytes(body[0:3], "big")
    assert total + 3 == len(body), "malformed Certificate message"
    ln = int.from_bytes(body[3:6], "big")
    return body[6:6 + ln]


def server_flight(conn):
    """Read to ServerHelloDone; returns (cipher suite, certificate DER)."""
    suite, der = None, None
    for _ in range(16):
        typ, body = conn.handshake_msg()
        if typ == HT_SERVER_HELLO:
            sid_len = body[34]
            suite = struct.unpack("!H", body[35 + sid_len:37 + sid_len])[0]
        elif typ == HT_CERTIFICATE:
            der = _certificate_der(body)
        elif typ == HT_SERVER_HELLO_DONE:
            return suite, der
    raise ConnectionError("no ServerHelloDone")


def rsa_public(der):
    """(n, e) of an RSA certificate."""
    from cryptography import x509
    pub = x509.load_der_x509_certificate(der).public_key()
    nums = pub.public_numbers()
    return nums.n, nums.e


def _nonzero(n):
    out = bytearray()
    while len(out) < n:
        out += bytes(b for b in os.urandom(n) if b != 0)
    return bytes(out[:n])


def encoded_message(k, kind):
    """A k-byte RSA input: "good" is PKCS#1 v1.5 type 2 around a 48-byte
    premaster (whose value the server cannot know we got wrong: we never
    use it); the "bad-*" kinds break the padding in the ways Bleichenbacher
    oracles tell apart."""
    pms = TLS12 + os.urandom(46)
    if kind == "good":
        return b"\x00\x02" + _nonzero(k - 3 - 48) + b"\x00" + pms
    if kind == "bad-type":          # 00 01: a signature's block type
        return b"\x00\x01" + _nonzero(k - 3 - 48) + b"\x00" + pms
    if kind == "bad-first":         # first byte not zero
        return b"\x17\x02" + _nonzero(k - 3 - 48) + b"\x00" + pms
    if kind == "bad-nozero":        # no separator at all
        return b"\x00\x02" + _nonzero(k - 2)
    if kind == "bad-short-ps":      # separator after 4 bytes of padding
        return b"\x00\x02" + _nonzero(4) + b"\x00" + os.urandom(k - 7)
    if kind == "bad-length":        # fine padding, 47-byte premaster
        return b"\x00\x02" + _nonzero(k - 3 - 47) + b"\x00" + pms[:47]
    raise ValueError(kind)


BAD_KINDS = ("bad-type", "bad-first", "bad-nozero", "bad-short-ps",
             "bad-length")


def raw_rsa(n, e, em):
    k = (n.bit_length() + 7) // 8
    return pow(int.from_bytes(em, "big"), e, n).to_bytes(k, "big")


def rsa_kx_attempt(port, kind, timeout=20):
    """One handshake to the end of our Finished.  Returns a dict: the
    server's answer ("alert": (level, description) or None), "closed",
    "seconds" from our Finished to the server's last word, and the
    client's local port (to find the worker's log line)."""
    c = Conn(port, timeout=timeout)
    try:
        c.sock.sendall(_record(CT_HANDSHAKE, client_hello()))
        suite, der = server_flight(c)
        assert suite == RSA_AES128_GCM_SHA256, "server chose %#x" % suite
        n, e = rsa_public(der)
        k = (n.bit_length() + 7) // 8
        ct = raw_rsa(n, e, encoded_message(k, kind))
        cke = _handshake(HT_CLIENT_KEY_EXCHANGE, struct.pack("!H", k) + ct)
        # AES-GCM record: 8-byte explicit nonce, 16 bytes of Finished, tag.
        fin = os.urandom(8 + 16 + 16)
        t0 = time.monotonic()
        c.sock.sendall(_record(CT_HANDSHAKE, cke) + _record(CT_CCS, b"\x01")
                       + _record(CT_HANDSHAKE, fin))
        out = {"kind": kind, "alert": None, "closed": False, "other": [],
               "port": c.sock.getsockname()[1], "cert": der}
        try:
            for _ in range(16):
                ct_, body = c.record()
                if ct_ == CT_ALERT and len(body) == 2:
                    out["alert"] = (body[0], body[1])
                else:
                    out["other"].append(ct_)
        except EOFError:
            out["closed"] = True
        except (ConnectionResetError, BrokenPipeError):
            out["closed"] = "reset"
        except socket.timeout:
            out["closed"] = False
        out["seconds"] = time.monotonic() - t0
        return out
    finally:
        c.close()
