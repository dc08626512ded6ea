#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Write the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/).

Run from anywhere: ./make-corpus.py.  The files are committed; rerun this
after changing the wire format (ipc/ipc.h, ipc/ipc_codec.h) and commit the
result.  Message types come from the one table, ipc/ipc_msgs.h.  Each seed
is small: valid messages of every type and typical malformations (bad magic,
version, type, lengths, unterminated strings).  Integers are host order
(little-endian x86-64), as on the wire between processes of one host.

The config seeds are moat.conf texts: whole valid files (every key, long
priority lines, IPv6, unix: and host-name backends) and one of each kind
of mistake; fuzz_conf.c's fake system reads meaning into the paths
("ecdsa", "missing", "open").  The transcript and reneg seeds are event
scripts in the encodings their harness's header comment gives: real TLS
1.3 handshakes (with and without HelloRetryRequest), TLS 1.2, and each
renegotiation path (answered, refused, ignored and answered late,
client-initiated, key updates paced by the one-second gap).

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
MAX_CERTS = 8           # IPC_MAX_CERTS: cert/key pairs per frontend
MAX_KEYS = 512          # IPC_MAX_KEYS
SLOTS_PER_GEN = 256     # IPC_KEY_SLOTS_PER_GEN


def slot(frontend, cert, gen):
    """IPC_KEY_SLOT(): frontend * 8 + cert + 256 * (gen & 1)."""
    return frontend * MAX_CERTS + cert + SLOTS_PER_GEN * (gen & 1)

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
    # struct ipc_keyd_stats: 11 counters, 16 latency buckets, 4 gauges
    w("keyd-stats-reply", msg(T["KEYD_STATS_REPLY"],
                              struct.pack("<11Q16Q4I", *range(1, 12),
                                          *range(16), 2, 0, 2, 4)))
    # struct ipc_worker_stats is 24 counters, 16 latency buckets and 7 per
    # frontend for 32 frontends (a wrong size is refused)
    w("worker-stats-reply", msg(T["WORKER_STATS_REPLY"],
                                struct.pack("<264Q", *range(264))))
    w("rekey", msg(T["WORKER_REKEY"], cstr("imap", 64)))
    w("worker-stop", msg(T["WORKER_STOP"]))
    # certificate rotation: frontend 1, generation 1: its first cert's slot
    w("worker-cert", msg(T["WORKER_CERT"], struct.pack(
        "<IIII", 1, slot(1, 0, 1), 1, 0)))
    w("worker-cert-ocsp", msg(T["WORKER_CERT"], struct.pack(
        "<IIII", 1, slot(1, 0, 1), 1, 0x81)))
    w("worker-cert-ocsp-mask-too-wide", msg(T["WORKER_CERT"], struct.pack(
        "<IIII", 1, slot(1, 0, 1), 1, 0x100)))
    w("worker-cert-wrong-slot", msg(T["WORKER_CERT"], struct.pack(
        "<IIII", 1, slot(1, 0, 0), 1, 0)))
    w("worker-cert-second-cert-slot", msg(T["WORKER_CERT"], struct.pack(
        "<IIII", 1, slot(1, 1, 1), 1, 0)))
    w("worker-cert-reply", msg(T["WORKER_CERT_REPLY"], struct.pack(
        "<iII", 0, 4, 2)))
    w("key-drop", msg(T["KEY_DROP"], struct.pack("<I", slot(1, 0, 1))))
    w("key-drop-last-slot", msg(T["KEY_DROP"], struct.pack(
        "<I", slot(31, 7, 1))))
    w("key-drop-out-of-range", msg(T["KEY_DROP"], struct.pack(
        "<I", MAX_KEYS)))
    w("backend-connect", msg(T["BACKEND_CONNECT"], struct.pack("<I", 0)))
    w("cred-gone", msg(T["WORKER_CRED_GONE"], struct.pack("<II", 1, 2)))
    w("cancel", msg(T["CANCEL"]))
    # header-level malformations
    w("bad-magic", msg(T["KEY_LIST"], magic=0x1234))
    w("bad-version", msg(T["KEY_LIST"], version=VERSION + 1))
    w("bad-flags", msg(T["KEY_LIST"], flags=1))
    w("unknown-type", msg(999))
    w("too-many-fds", msg(T["KEY_LIST"], nfds=17))
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


CONF_FRONTEND = """[frontend www]
listen = 0.0.0.0:443, [::1]:8443
backend = 127.0.0.1:8080
cert = /etc/moat/www-ecdsa.crt
key = /etc/moat/www-ecdsa.key
"""

CONF_FULL = """; every key, most not at their default
[moat]
workers = 2
user = moat
keyd-user = moat-keyd
control = /run/moat/control
chroot = /var/lib/moat/empty
keyd = /usr/libexec/moat-keyd
keyd-threads = auto
keyd-timeout = 2s
keyd-sign-delay-ms = 0
keyd-rate = auto
keyd-key-rate = 5000
max-connections = 1000
max-pending-handshakes = 200
rekey-concurrency = 8
drain-timeout = 30s
log-level = debug

[frontend www]
listen = 0.0.0.0:443, [::1]:8443
backend = localhost:8080
cert = /etc/moat/www-ecdsa.crt
key = /etc/moat/www-ecdsa.key
key-passphrase-file = /etc/moat/www.pass
priority = NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-KX-ALL:+ECDHE-ECDSA:+DHE-RSA
allow-rsa-kx = yes
keyd-sign = digest-for-tls12
handshake-timeout = 10s
idle-timeout = 10m
backend-connect-timeout = 500ms
rekey-interval = 1h
rekey-bytes = 1G
rekey-on-cert-change = yes
on-refusal = close
on-ignore = keep
rekey-timeout = 5s
client-renegotiation = allow
client-renegotiation-limit = 3

[frontend imap]
listen = 127.0.0.1:993
backend = unix:/run/dovecot/imap.sock
cert = /etc/moat/imap-ed25519.crt
key = /etc/moat/imap-ed25519.key
keyd-sign = content-only
priority = NORMAL:-VERS-TLS1.0:-VERS-TLS1.1 ; a comment
"""

LONG_PRIORITY = ("NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:"
                 "+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:-KX-ALL:"
                 "+ECDHE-ECDSA:+ECDHE-RSA:-SIGN-RSA-SHA1:-SIGN-ECDSA-SHA1:"
                 "-SIGN-RSA-SHA224:-SIGN-ECDSA-SHA224:-SIGN-DSA-SHA1:"
                 "-SIGN-DSA-SHA224:-SIGN-DSA-SHA256:%SERVER_PRECEDENCE")


def conf_dict():
    """tests/fuzz/conf.dict: every key of daemon/conf_keys.c's tables and
    the words its values are made of, for libFuzzer's -dict=, so mutations
    write keys, not only change the seeds' values."""
    path = os.path.join(HERE, "..", "..", "daemon", "conf_keys.c")
    with open(path) as f:
        keys = re.findall(r'^\t\{ "([a-z0-9-]+)",', f.read(), re.M)
    if not keys:
        raise SystemExit("no key tables in %s" % path)
    words = ["[moat]", "[frontend ", "]", " = ", "\\x0a", "; ", "# ",
             "auto", "yes", "no", "true", "false", "keep", "close", "allow",
             "refuse", "content-only", "digest-for-tls12", "unix:/",
             "127.0.0.1:", "[::1]:", "localhost:", "/etc/moat/", ".crt",
             ".key", "ecdsa", "ed25519", "ed448", "pss", "missing", "open",
             "bad", "root", "ms", "s", "m", "h", "d", "K", "M", "G",
             "NORMAL", ":-VERS-TLS1.2", ":+VERS-TLS1.3", ":+DHE-RSA",
             ":-KX-ALL", ":+ECDHE-ECDSA", "debug"]
    with open(os.path.join(HERE, "conf.dict"), "w") as f:
        f.write("# SPDX-License-Identifier: GPL-2.0-or-later\n"
                "# made by make-corpus.py from daemon/conf_keys.c\n")
        for w in keys + words:
            f.write('"%s"\n' % w.replace('"', '\\"'))


def conf_corpus():
    w = lambda n, text: write("conf", n, text.encode() if isinstance(
        text, str) else text)
    w("full", CONF_FULL)
    w("minimal", CONF_FRONTEND)
    # every bounded value at its bound: one digit off is over it
    w("bounds", "[moat]\nworkers = 256\nkeyd-threads = 256\n"
      "keyd-timeout = 60000\nkeyd-sign-delay-ms = 10000\n"
      "keyd-rate = 10000000\nmax-connections = 1000000\n"
      "max-pending-handshakes = 1\nrekey-concurrency = 100000\n"
      "drain-timeout = 3600s\n" + CONF_FRONTEND +
      "rekey-bytes = 64K\nrekey-interval = 720h\n"
      "client-renegotiation-limit = 1000\nidle-timeout = 168h\n"
      "handshake-timeout = 1ms\nrekey-timeout = 3600000ms\n")
    w("long-priority", CONF_FRONTEND + "priority = %s\n" % LONG_PRIORITY)
    w("long-priority-comment", CONF_FRONTEND + "priority = %s ; why\n" %
      LONG_PRIORITY)
    w("long-line-no-equals", CONF_FRONTEND + "x" * 300 + "\n")
    w("bom-crlf-indent", ("\ufeff[moat]\r\n  workers = 1\r\n# c\r\n" +
                          CONF_FRONTEND).replace("\n", "\r\n"))
    w("rsa-tls13-only", CONF_FRONTEND.replace("ecdsa", "rsa") +
      "priority = NORMAL:-VERS-ALL:+VERS-TLS1.3\nkeyd-sign = content-only\n")
    w("pss-dhe", CONF_FRONTEND.replace("ecdsa", "pss") +
      "priority = NORMAL:+DHE-RSA\nallow-rsa-kx = true\n")
    w("ed448", CONF_FRONTEND.replace("ecdsa", "ed448"))
    # several cert/key pairs (SNI), each with its OCSP response
    w("pairs-ocsp", CONF_FRONTEND + "ocsp = /etc/moat/www-ecdsa.ocsp\n"
      "cert = /etc/moat/www-rsa.crt\nkey = /etc/moat/www-rsa.key\n"
      "ocsp = /etc/moat/www-rsa.ocsp\n[moat]\nocsp-check-interval = 5s\n")
    w("pairs-key-first", CONF_FRONTEND.replace(
        "cert = /etc/moat/www-ecdsa.crt\nkey = /etc/moat/www-ecdsa.key\n",
        "key = /etc/moat/www-ecdsa.key\ncert = /etc/moat/www-ecdsa.crt\n"))
    w("pairs-cert-without-key", CONF_FRONTEND +
      "cert = /etc/moat/www-rsa.crt\n")
    w("pairs-ocsp-first", "[frontend a]\nocsp = /a.ocsp\n" + CONF_FRONTEND)
    w("pairs-nine", CONF_FRONTEND + "cert = /c.crt\nkey = /k.key\n" * 8)
    # one mistake each
    w("content-only-tls12", CONF_FRONTEND + "keyd-sign = content-only\n")
    w("bad-priority", CONF_FRONTEND + "priority = NORMAL:+NOPE\n")
    w("dup-key", CONF_FRONTEND + "backend = 127.0.0.1:1\n")
    w("unknown-key", CONF_FRONTEND + "colour = blue\n")
    w("outside-section", "workers = 2\n" + CONF_FRONTEND)
    w("missing-key", "[frontend a]\nlisten = 127.0.0.1:1\n")
    w("no-frontend", "[moat]\nworkers = 1\n")
    w("root-user", "[moat]\nuser = root\n" + CONF_FRONTEND)
    w("unknown-user", "[moat]\nkeyd-user = nosuch\n" + CONF_FRONTEND)
    w("same-users", "[moat]\nuser = moat\nkeyd-user = moat\n" +
      CONF_FRONTEND)
    w("rekey-bytes-floor", CONF_FRONTEND + "rekey-bytes = 1K\n")
    w("rekey-interval-fraction", CONF_FRONTEND + "rekey-interval = 1500ms\n")
    w("dup-listen", CONF_FRONTEND + CONF_FRONTEND.replace("www", "w2"))
    w("dup-frontend", CONF_FRONTEND + CONF_FRONTEND)
    w("cert-missing", CONF_FRONTEND.replace("www-ecdsa.crt", "missing.crt"))
    w("cert-bad", CONF_FRONTEND.replace("www-ecdsa.crt", "bad.crt"))
    w("key-open", CONF_FRONTEND.replace("www-ecdsa.key", "open.key"))
    w("key-pkcs11", CONF_FRONTEND.replace("/etc/moat/www-ecdsa.key",
                                          "pkcs11:token=x"))
    w("keyd-missing", "[moat]\nkeyd = /missing/moat-keyd\n" + CONF_FRONTEND)
    w("too-many-listen", CONF_FRONTEND.replace(
        "listen = 0.0.0.0:443, [::1]:8443",
        "listen = " + ", ".join("127.0.0.1:%d" % p for p in range(1, 10))))
    w("too-many-frontends", "".join(
        "[frontend f%d]\nlisten = 127.0.0.1:%d\nbackend = 127.0.0.1:1\n"
        "cert = /c.crt\nkey = /k.key\n" % (i, i + 1) for i in range(33)))
    w("bad-addresses", CONF_FRONTEND.replace("127.0.0.1:8080", "[::1:80") +
      "\n")
    w("bad-port", CONF_FRONTEND.replace("8080", "65536"))
    w("nul-byte", CONF_FRONTEND.encode() + b"workers\0 = 1\n")
    w("bad-section", "[moat\n" + CONF_FRONTEND)
    w("text-after-section", "[moat] x\n" + CONF_FRONTEND)
    w("bad-frontend-name", CONF_FRONTEND.replace("www", "w w!"))
    w("bad-values", "[moat]\nworkers = 0\nkeyd-timeout = 0\n"
      "log-level = loud\n" + CONF_FRONTEND)
    w("bad-durations", CONF_FRONTEND + "idle-timeout = 5 parsecs\n")


# fuzz_transcript.c's encoding; PRF indices into fuzz_prfs
SHA256, SHA384, NOPRF, SHA512, SHAKE = 0, 1, 2, 3, 8
CH, SH, EE, CERT, FIN, NST, HRR = 1, 2, 8, 11, 20, 4, 0xff


def tmsg(htype, body, post=True, incoming=False, tls13=True, prf=SHA256):
    op = (0x08 if post else 0) | (0x10 if incoming else 0) | \
        (0x20 if tls13 else 0)
    if len(body) > 255:
        return bytes([op | 0x40, htype, prf, len(body) >> 8,
                      len(body) & 255]) + body
    return bytes([op, htype, prf, len(body)]) + body


def tcv(cap):
    return bytes([5 | (0x08 if cap > 255 else 0), cap & 255])


def client_hello(body, tls13=True, prf=SHA256):
    return tmsg(CH, body, post=False, incoming=True, tls13=tls13, prf=prf) + \
        tmsg(CH, body, post=True, incoming=True, tls13=tls13, prf=prf)


def tls13_flight(prf=SHA256):
    return b"".join(tmsg(t, bytes([t]) * n, prf=prf)
                    for t, n in ((SH, 90), (EE, 6), (CERT, 200)))


def transcript_corpus():
    w = lambda n, d: write("transcript", n, d)
    ch = bytes(range(256)) * 2
    w("tls13", client_hello(ch) + tls13_flight() + tcv(162) +
      tmsg(FIN, b"\x14" * 32) + tmsg(NST, b"t" * 20) + bytes([7]))
    w("tls13-sha384", client_hello(ch[:200], prf=SHA384) +
      tls13_flight(SHA384) + tcv(146))
    w("tls13-hrr", tmsg(CH, ch[:180], post=False, incoming=True) +
      tmsg(HRR, b"\x06" * 40) + client_hello(ch[:190]) + tls13_flight() +
      tcv(200))
    w("tls13-hrr-no-ch", tmsg(HRR, b"\x06" * 40) + tcv(200))
    w("tls13-cap-short", client_hello(ch[:100]) + tls13_flight() +
      tcv(129) + tcv(130))
    w("tls12", client_hello(ch[:100], tls13=False) + tmsg(SH, b"s" * 70,
                                                         tls13=False) +
      tcv(200))
    w("ch-post-only", tmsg(CH, b"c" * 50, incoming=True) + tcv(200))
    w("no-prf", client_hello(ch[:60], prf=NOPRF) + tcv(200))
    # hashes GnuTLS cannot make (its gnutls_hash_init() leaked them)
    w("shake", client_hello(ch[:60], prf=SHAKE) + tcv(200))
    w("prf-invalid", client_hello(ch[:60], prf=9) + tcv(200))
    w("hrr-shake", tmsg(CH, ch[:50], post=False, incoming=True) +
      tmsg(HRR, b"\x06" * 40, prf=SHAKE) + tcv(200))
    w("reset-again", client_hello(ch[:60]) + bytes([6]) +
      client_hello(ch[:70], prf=SHA512) + tls13_flight(SHA512) + tcv(162))


# fuzz_reneg.c's encoding: four settings bytes, then events
def rset(tls13=0, safe=1, refusal_close=0, ignore_close=0, client_allow=0,
         interval=4, rbytes=0, limit=2, rto=3, hto=3, jitter=0x80):
    b0 = tls13 | safe << 1 | refusal_close << 2 | ignore_close << 3 | \
        client_allow << 4 | interval << 5
    return bytes([b0, rbytes | limit << 2, rto | hto << 2, jitter])


def rsecs(n):
    return bytes([0x30, n])     # scale 1 s


TIMER, ASK, SEND, HELLO, UNEXP, NOREN, START, DONE, FAIL, EOF, NEWC, DATA = (
    b"\x01", b"\x02", b"\x04", b"\x05", b"\x06", b"\x17", b"\x08",
    b"\x09", b"\x0a", b"\x0b", b"\x0c", b"\x0d")


def reneg_corpus():
    w = lambda n, d: write("reneg", n, d)
    answered = ASK + SEND + DATA + HELLO + START + DONE
    w("answered", rset() + answered + rsecs(2) + answered + TIMER + SEND +
      HELLO + START + DONE)
    w("refused-keep", rset() + ASK + SEND + NOREN + rsecs(70) + TIMER +
      SEND)
    w("refused-close", rset(refusal_close=1) + ASK + SEND + NOREN + rset() +
      ASK)
    w("ignored-late-answer", rset(rto=0) + ASK + SEND + TIMER + rsecs(3) +
      HELLO + START + DONE)
    w("ignored-late-refusal", rset(rto=0) + ASK + SEND + TIMER + NOREN +
      ASK + SEND)
    w("ignored-close", rset(rto=1, ignore_close=1) + ASK + SEND + TIMER)
    w("hs-timeout", rset(hto=0) + ASK + SEND + HELLO + START + TIMER)
    w("hs-failed", rset() + ASK + SEND + HELLO + START + FAIL + ASK)
    w("client-refused", rset() + HELLO + UNEXP + UNEXP)
    w("client-allowed", rset(client_allow=1, limit=2) + HELLO + START +
      DONE + HELLO + START + DONE + HELLO + UNEXP + rsecs(61) + HELLO)
    w("client-unsafe", rset(client_allow=1, safe=0) + HELLO + UNEXP)
    w("unsafe", rset(safe=0) + ASK + TIMER + ASK)
    w("tls13-keyupdates", rset(tls13=1, interval=1) + ASK + SEND + ASK +
      TIMER + SEND + TIMER + TIMER + SEND + HELLO + NOREN)
    w("tls13-bytes", rset(tls13=1, rbytes=1) + bytes([0x83, 1]) + SEND +
      bytes([0x83, 1]) + b"\x4f" + b"\xff" * 1 + rsecs(1) +
      bytes([0x83, 1]) + SEND)
    w("bytes-tls12", rset(rbytes=3, interval=0) + bytes([0xa3, 1]) + SEND +
      HELLO + START + DONE + bytes([0xa3, 1]))
    w("closing-queued", rset() + ASK + EOF + SEND + TIMER + ASK)
    w("jitter-range", rset(interval=2) + b"\xfe" + TIMER + b"\xee" +
      SEND + HELLO + START + DONE + TIMER + NEWC + rset(tls13=1))


# fuzz_proxyproto.c: byte 0 bit 0 clear = parse (bits 1-2 the versions
# accepted, 0 = both), set = encode from fields
PP2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def pp2(cmd, fam, body):
    return PP2_SIG + struct.pack("!BBH", cmd, fam, len(body)) + body


def pp_tlv(t, v):
    return struct.pack("!BH", t, len(v)) + v


def proxyproto_corpus():
    w = lambda n, d: write("proxyproto", n, d)
    a4 = bytes([192, 0, 2, 7, 198, 51, 100, 1]) + struct.pack("!HH", 51234, 443)
    a6 = bytes(range(32)) + struct.pack("!HH", 1, 65535)
    ssl = pp_tlv(0x20, b"\x01\x00\x00\x00\x01" + pp_tlv(0x21, b"TLSv1.3") +
                 pp_tlv(0x22, b"client") +
                 pp_tlv(0x23, b"TLS_AES_256_GCM_SHA384"))
    tlvs = (pp_tlv(0x01, b"h2") + pp_tlv(0x02, b"www.example.test") +
            pp_tlv(0x05, bytes(16)) + ssl + pp_tlv(0x04, b"") +
            pp_tlv(0xe0, b"x"))
    w("v1-tcp4", b"\x00PROXY TCP4 192.0.2.7 198.51.100.1 51234 443\r\n\x16")
    w("v1-tcp6", b"\x00PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
      b"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n")
    w("v1-unknown", b"\x00PROXY UNKNOWN whatever\r\n")
    w("v1-cut", b"\x00PROXY TCP4 192.0.2.7 198.51.")
    w("v1-only-v2", b"\x04PROXY TCP4 192.0.2.7 198.51.100.1 1 2\r\n")
    w("v2-tcp4-tlvs", b"\x00" + pp2(0x21, 0x11, a4 + tlvs) + b"\x16\x03")
    w("v2-tcp6", b"\x00" + pp2(0x21, 0x21, a6 + pp_tlv(0x01, b"http/1.1")))
    w("v2-local", b"\x00" + pp2(0x20, 0x11, a4))
    w("v2-unspec", b"\x00" + pp2(0x21, 0x00, pp_tlv(0x02, b"a")))
    w("v2-ssl-short", b"\x00" + pp2(0x21, 0x11, a4 + pp_tlv(0x20, b"\x01")))
    w("v2-tlv-over", b"\x00" + pp2(0x21, 0x11, a4 + b"\x01\x00\x05h2"))
    w("v2-long", b"\x00" + PP2_SIG + b"\x21\x11\x07\xf1")
    # encode: flags, 32 address bytes, ports, cap, then TLVs
    addr = bytes(range(1, 33)) + b"\x01\xbb\xc8\x22"
    w("enc-v1-tcp4", b"\x01\x00" + addr + b"\x10\x00")
    w("enc-v1-tcp6-cap", b"\x01\x02" + addr + b"\x0d\x00")
    w("enc-v2-all", b"\x01\x01" + addr + b"\x80\x00" +
      b"\x01\x02h2" + b"\x01\x10www.example.test" + b"\x01\x10" +
      bytes(16) + b"\x01\x01\x00\x01" + b"\x01\x07TLSv1.3" +
      b"\x01\x06cipher" + b"\x01\x02cn")
    w("enc-v2-unspec-cap", b"\x01\x05" + addr + b"\x02\x00")


# fuzz_mailproto.c: byte 0 the protocol (0 smtp, 1 imap, 2 pop3); then per
# line a control byte (bit 0: backend's, bit 1: add CRLF), two length
# bytes (little-endian) and the line.
def mail_line(backend, text, crlf=True):
    return bytes([(1 if backend else 0) | (2 if crlf else 0),
                  len(text) & 0xff, len(text) >> 8]) + text


def mailproto_corpus():
    w = lambda n, d: write("mailproto", n, d)
    B = lambda t: mail_line(True, t)
    C = lambda t: mail_line(False, t)
    w("smtp-upgrade", b"\x00" + B(b"220 mx ESMTP") + C(b"EHLO c") +
      B(b"250-mx") + B(b"250-PIPELINING") + B(b"250-STARTTLS") +
      B(b"250 SIZE 1000") + C(b"STARTTLS") + B(b"250 late"))
    w("smtp-one-line-ehlo", b"\x00" + B(b"220 mx") + C(b"EHLO c") +
      B(b"250 mx") + C(b"MAIL FROM:<a@b>") + C(b"QUIT") + B(b"221 bye"))
    w("smtp-long", b"\x00" + B(b"220 mx") + C(b"NOOP " + b"x" * 600))
    w("smtp-bad-greeting", b"\x00" + B(b"hello"))
    w("imap-upgrade", b"\x01" + B(b"* OK [CAPABILITY IMAP4rev1 STARTTLS "
      b"AUTH=PLAIN] hi") + C(b"a1 CAPABILITY") + B(b"* CAPABILITY "
      b"IMAP4rev1 STARTTLS LOGINDISABLED") + B(b"a1 OK done") +
      C(b"a2 LOGIN u p") + C(b"a3 STARTTLS"))
    w("imap-preauth", b"\x01" + B(b"* PREAUTH hi"))
    w("imap-untagged", b"\x01" + B(b"* OK hi") + C(b"x NOOP") +
      B(b"y OK wrong tag"))
    w("pop3-upgrade", b"\x02" + B(b"+OK pop") + C(b"CAPA") + B(b"+OK") +
      B(b"USER") + B(b"STLS") + B(b".") + C(b"USER x") + C(b"STLS"))
    w("pop3-long", b"\x02" + B(b"+OK pop") + C(b"CAPA " + b"y" * 300))


if __name__ == "__main__":
    ipc_corpus()
    policy_corpus()
    conf_corpus()
    conf_dict()
    transcript_corpus()
    reneg_corpus()
    proxyproto_corpus()
    mailproto_corpus()
