#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Write the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/).

Run from anywhere: ./make-corpus.py.  The files are committed; rerun this
after changing the wire format (ipc/ipc.h, ipc/ipc_codec.h) and commit the
result.  Message types come from the one table, ipc/ipc_msgs.h.  Each seed
is small: valid messages of every type and typical malformations (bad magic,
version, type, lengths, unterminated strings).  Integers are host order
(little-endian x86-64), as on the wire between processes of one host.

The policy seeds carry real key-exchange params, so the fuzzer starts from
what keyd accepts: ECDHE points of fixed keys (cryptography, deterministic)
and the RFC 7919 primes read from the installed libgnutls (ctypes), the
very bytes keyd compares against.
"""
import ctypes
import os
import re
import struct

from cryptography.hazmat.primitives.asymmetric import ec

HERE = os.path.dirname(os.path.abspath(__file__))
MAGIC = 0x4D54


def ipc_version():
    """IPC_VERSION, read from ipc/ipc_codec.h: seeds must speak it."""
    path = os.path.join(HERE, "..", "..", "ipc", "ipc_codec.h")
    with open(path) as f:
        m = re.search(r"#define\s+IPC_VERSION\s+(\d+)u", f.read())
    if not m:
        raise SystemExit("no IPC_VERSION in %s" % path)
    return int(m.group(1))


VERSION = ipc_version()


def message_table():
    """name -> value, read from IPC_MESSAGES in ipc/ipc_msgs.h."""
    path = os.path.join(HERE, "..", "..", "ipc", "ipc_msgs.h")
    with open(path) as f:
        rows = re.findall(r"\bX\((\w+),\s*(\d+),", f.read())
    if not rows:
        raise SystemExit("no IPC_MESSAGES rows in %s" % path)
    return {name: int(value) for name, value in rows}


T = message_table()
SLOTS_PER_GEN = 32      # IPC_KEY_SLOTS_PER_GEN: key slot = frontend + 32 * (gen & 1)
# gnutls_sign_algorithm_t / gnutls_pk_algorithm_t (GnuTLS 3.7)
RSA_SHA256, RSA_SHA384, RSA_SHA512, RSA_RAW = 6, 7, 8, 36
PSS256, PSS384, PSS512 = 40, 41, 42
ECDSA256, ECDSA384, ECDSA512 = 14, 15, 16
P256_SHA256, P384_SHA384, ED25519 = 37, 38, 35
CONTENT, DIGEST = 1, 2
DI = {32: bytes.fromhex("3031300d060960864801650304020105000420"),
      48: bytes.fromhex("3041300d060960864801650304020205000430"),
      64: bytes.fromhex("3051300d060960864801650304020305000440")}


def hdr(typ, length, magic=MAGIC, version=VERSION, flags=0, nfds=0, rid=7):
    return struct.pack("<HBBHHII", magic, version, flags, typ, nfds, rid,
                       length)


def msg(typ, payload=b"", **kw):
    return hdr(typ, len(payload), **kw) + payload


def cstr(s, size):
    b = s.encode()
    return b + b"\0" * (size - len(b))


def key_info(key_id=0, pk=4, bits=256, algos=(P256_SHA256, ECDSA256),
             name="www"):
    a = list(algos) + [0] * (16 - len(algos))
    return struct.pack("<IIII16I", key_id, pk, bits, len(algos), *a) + \
        cstr(name, 64)


def sign(key_id, algo, form, data, flags=0, dlen=None):
    return struct.pack("<IIIII", key_id, algo, form, flags,
                       len(data) if dlen is None else dlen) + data


def cv(hash_len, fill=0xAB):
    return b" " * 64 + b"TLS 1.3, server CertificateVerify\0" + \
        bytes([fill]) * hash_len


def ske_ecdh(group, point):
    return bytes(range(64)) + bytes([3, group >> 8, group & 255,
                                     len(point)]) + point


def nist_point(curve, scalar=0x1234567):
    """0x04 || X || Y of a fixed key on curve, as GnuTLS writes it."""
    pub = ec.derive_private_key(scalar, curve).public_key().public_numbers()
    n = (curve.key_size + 7) // 8
    return b"\x04" + pub.x.to_bytes(n, "big") + pub.y.to_bytes(n, "big")


class _Datum(ctypes.Structure):
    _fields_ = [("data", ctypes.POINTER(ctypes.c_ubyte)),
                ("size", ctypes.c_uint)]


def ffdhe_prime(bits):
    """gnutls_ffdhe_<bits>_group_prime from the installed libgnutls."""
    lib = ctypes.CDLL("libgnutls.so.30")
    d = _Datum.in_dll(lib, "gnutls_ffdhe_%d_group_prime" % bits)
    return bytes(d.data[:d.size])


def ske_dh(pbytes, g=b"\x02", ys=None):
    ys = ys if ys is not None else b"\x33" * len(pbytes)
    f = b""
    for v in (pbytes, g, ys):
        f += struct.pack(">H", len(v)) + v
    return b"\x11" * 64 + f


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def ipc_corpus():
    w = lambda n, d: write("ipc", n, d)
    hello = struct.pack("<III", VERSION, 2, 1234)
    w("hello", msg(T["HELLO"], hello))
    w("hello-bad-role", msg(T["HELLO"], struct.pack("<III", VERSION, 9, 1)))
    w("error", msg(T["ERROR"], struct.pack("<i", -1) + cstr("refused", 256)))
    w("error-unterminated", msg(T["ERROR"], struct.pack("<i", -1) +
                                b"x" * 256))
    w("key-list", msg(T["KEY_LIST"]))
    w("key-list-reply", msg(T["KEY_LIST_REPLY"], struct.pack("<I", 2) +
                            key_info(0) + key_info(1, 1, 2048,
                                                   (PSS256, RSA_SHA256))))
    w("key-list-reply-short", msg(T["KEY_LIST_REPLY"], struct.pack("<I", 2) +
                                  key_info(0)))
    w("sign-cv", msg(T["SIGN"], sign(0, P256_SHA256, CONTENT, cv(32))))
    w("sign-digest", msg(T["SIGN"], sign(1, RSA_RAW, DIGEST,
                                         DI[32] + b"\x01" * 32)))
    w("sign-len-mismatch", msg(T["SIGN"], sign(0, 37, 1, b"abc", dlen=4)))
    w("sign-len-huge", msg(T["SIGN"], sign(0, 37, 1, b"abc",
                                          dlen=0xFFFFFFFF)))
    w("sign-bad-form", msg(T["SIGN"], sign(0, 37, 9, b"abc")))
    w("decrypt", msg(T["DECRYPT"], struct.pack("<III", 1, 0, 256) +
                     b"\x42" * 256))
    w("sign-reply", msg(T["SIGN_REPLY"], struct.pack("<iI", 0, 72) +
                        b"\x30" * 72))
    w("reply-status", msg(T["CHANNEL_ADD_REPLY"], struct.pack("<iI", -2, 0)))
    w("reply-error-with-data", msg(T["SIGN_REPLY"],
                                   struct.pack("<iI", -1, 2) + b"xx"))
    kl = struct.pack("<II", 0, 1) + cstr("www", 64) + \
        cstr("/etc/moat/www.key", 256) + cstr("/etc/moat/www.crt", 256)
    w("key-load", msg(T["KEY_LOAD"], kl, nfds=0))
    w("key-load-unterminated", msg(T["KEY_LOAD"], kl[:8] + b"n" * 64 +
                                   kl[72:]))
    w("key-loaded", msg(T["KEY_LOAD_REPLY"], struct.pack("<i", 0) +
                        key_info() + cstr("loaded", 256)))
    w("key-loaded-failed", msg(T["KEY_LOAD_REPLY"], struct.pack("<i", -22) +
                               b"\0" * 144 +
                               cstr("key does not match certificate", 256)))
    w("channel-add", msg(T["CHANNEL_ADD"], struct.pack("<II", 3, 1)))
    w("keyd-stats", msg(T["KEYD_STATS"]))
    w("keyd-stats-reply", msg(T["KEYD_STATS_REPLY"],
                              struct.pack("<11Q4I", *range(1, 12), 2, 0, 2,
                                          4)))
    w("worker-stats-reply", msg(T["WORKER_STATS_REPLY"],
                                struct.pack("<20Q", *range(20))))
    w("rekey", msg(T["WORKER_REKEY"], cstr("imap", 64)))
    w("worker-stop", msg(T["WORKER_STOP"]))
    # certificate rotation: frontend 1, generation 1 lives in slot 33
    w("worker-cert", msg(T["WORKER_CERT"], struct.pack(
        "<III", 1, 1 + SLOTS_PER_GEN, 1)))
    w("worker-cert-wrong-slot", msg(T["WORKER_CERT"], struct.pack(
        "<III", 1, 1, 1)))
    w("worker-cert-reply", msg(T["WORKER_CERT_REPLY"], struct.pack(
        "<iII", 0, 4, 2)))
    w("key-drop", msg(T["KEY_DROP"], struct.pack("<I", 1 + SLOTS_PER_GEN)))
    w("key-drop-out-of-range", msg(T["KEY_DROP"], struct.pack("<I", 64)))
    w("backend-connect", msg(T["BACKEND_CONNECT"], struct.pack("<I", 0)))
    w("cred-gone", msg(T["WORKER_CRED_GONE"], struct.pack("<II", 1, 2)))
    w("cancel", msg(T["CANCEL"]))
    # header-level malformations
    w("bad-magic", msg(T["KEY_LIST"], magic=0x1234))
    w("bad-version", msg(T["KEY_LIST"], version=VERSION + 1))
    w("bad-flags", msg(T["KEY_LIST"], flags=1))
    w("unknown-type", msg(999))
    w("too-many-fds", msg(T["KEY_LIST"], nfds=9))
    w("length-too-long", hdr(T["SIGN"], 100) + b"\0" * 50)
    w("length-over-cap", hdr(T["SIGN"], 16385))
    w("truncated-header", msg(T["KEY_LIST"])[:10])


def policy_corpus():
    # selector byte: key = sel & 3 (0 RSA, 1 P-256, 2 P-384, 3 Ed25519);
    # bit 7 = which load flags go first (the harness tries all of them)
    w = lambda n, sel, d: write("keyd_policy", n, bytes([sel]) + d)
    w("rsa-cv-pss", 0, sign(0, PSS256, CONTENT, cv(32)))
    w("rsa-cv-pss384", 0, sign(0, PSS384, CONTENT, cv(48)))
    w("rsa-cv-pkcs1", 0, sign(0, RSA_SHA256, CONTENT, cv(32)))
    w("p256-cv", 1, sign(1, P256_SHA256, CONTENT, cv(32)))
    w("p384-cv", 2, sign(2, P384_SHA384, CONTENT, cv(48)))
    w("ed-cv", 3, sign(3, ED25519, CONTENT, cv(32)))
    w("cv-client", 3, sign(3, ED25519, CONTENT,
                           cv(32).replace(b"server", b"client")))
    w("cv-trailing", 3, sign(3, ED25519, CONTENT, cv(32) + b"\0"))
    w("ske-x25519", 0, sign(0, RSA_SHA256, CONTENT,
                            ske_ecdh(29, b"\x09" * 32)))
    w("ske-x448", 3, sign(3, ED25519, CONTENT, ske_ecdh(30, b"\x05" * 56)))
    # NIST points: on the curve, one bit off it, filler, compressed
    p256, p384 = nist_point(ec.SECP256R1()), nist_point(ec.SECP384R1())
    p521 = nist_point(ec.SECP521R1())
    w("ske-p256", 1, sign(1, ECDSA384, CONTENT, ske_ecdh(23, p256)))
    w("ske-p384", 2, sign(2, ECDSA512, CONTENT, ske_ecdh(24, p384)))
    w("ske-p521", 0, sign(0, PSS512, CONTENT, ske_ecdh(25, p521)))
    w("ed-ske-p521", 3, sign(3, ED25519, CONTENT, ske_ecdh(25, p521)))
    w("ske-p256-off-curve", 3, sign(3, ED25519, CONTENT,
                                    ske_ecdh(23, p256[:-1] +
                                             bytes([p256[-1] ^ 1]))))
    w("ske-p384-filler", 2, sign(2, ECDSA512, CONTENT,
                                 ske_ecdh(24, b"\x04" + b"\x07" * 96)))
    w("ske-compressed", 0, sign(0, RSA_SHA256, CONTENT,
                                ske_ecdh(23, b"\x02" + b"\x07" * 32)))
    # DHE: every RFC 7919 group (ffdhe6144's length starts with 0x03, as
    # named_curve does), then near misses; only IPC_KEY_F_ALLOW_DHE signs
    for bits in (2048, 3072, 4096, 6144, 8192):
        p = ffdhe_prime(bits)
        ys = p[:-1] + bytes([p[-1] - 2])        # p - 2: the largest allowed
        w("ed-ske-ffdhe%d" % bits, 0x83, sign(3, ED25519, CONTENT,
                                                ske_dh(p, ys=ys)))
    p = ffdhe_prime(2048)
    w("ske-ffdhe2048", 0, sign(0, RSA_SHA512, CONTENT, ske_dh(p)))
    w("ske-ffdhe2048-near-p", 3, sign(3, ED25519, CONTENT,
                                      ske_dh(p[:-1] + b"\xfd", ys=b"\x02")))
    w("ske-ffdhe2048-g5", 3, sign(3, ED25519, CONTENT,
                                  ske_dh(p, g=b"\x05", ys=b"\x02")))
    w("ske-ffdhe2048-ys1", 3, sign(3, ED25519, CONTENT,
                                   ske_dh(p, ys=b"\x01")))
    w("ske-ffdhe2048-ys-p1", 3, sign(3, ED25519, CONTENT,
                                     ske_dh(p, ys=p[:-1] + b"\xfe")))
    w("ske-dhe2048", 0, sign(0, RSA_SHA512, CONTENT,
                             ske_dh(b"\xff" * 256)))
    w("ske-dhe1024", 0, sign(0, RSA_SHA512, CONTENT, ske_dh(b"\xff" * 128)))
    # digests: signed only for a key loaded with IPC_KEY_F_ALLOW_DIGEST
    w("digest-ecdsa", 1, sign(1, ECDSA256, DIGEST, b"\x5a" * 32))
    w("digest-ecdsa-flags-first", 0x81, sign(1, P256_SHA256, DIGEST,
                                             b"\x5a" * 32))
    w("digest-ecdsa-sha1", 1, sign(1, ECDSA256, DIGEST, b"\x5a" * 20))
    w("digest-pss", 0, sign(0, PSS384, DIGEST, b"\x5a" * 48))
    for n in (32, 48, 64):
        w("digestinfo-%d" % n, 0, sign(0, RSA_RAW, DIGEST,
                                        DI[n] + b"\x66" * n))
    w("digestinfo-md5sha1", 0, sign(0, RSA_RAW, DIGEST, b"\x66" * 36))
    w("digest-eddsa", 3, sign(3, ED25519, DIGEST, b"\x5a" * 32))
    w("http", 1, sign(1, P256_SHA256, CONTENT,
                      b"GET / HTTP/1.1\r\nHost: example.org\r\n\r\n"))
    # raw data (not a sign payload): the selector picks algo and form
    w("raw-cv", 0x03 | (12 << 2), cv(32))
    w("raw-digest", 0x41 | (7 << 2), b"\x01" * 32)
    w("raw-digest-flags-first", 0xc1 | (7 << 2), b"\x01" * 32)


if __name__ == "__main__":
    ipc_corpus()
    policy_corpus()
