# SPDX-License-Identifier: GPL-2.0-or-later
"""memscan -- search a live process's readable memory for byte strings.

Reads /proc/PID/maps, then every readable region through /proc/PID/mem (as
root).  Regions that cannot be read (guard pages, [vvar], a region that went
away) are skipped and counted.  Used to show that no network-facing process
holds a private key: the key tests and, later, the renegotiation tests.
In the sanitizer build ASan's shadow memory is left out (sanlib.is_shadow:
it holds no data of the process).
"""

import re

import sanlib

CHUNK = 1 << 22
MAPS_RE = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+\s*(.*)$")


def regions(pid):
    """(start, end, perms, name) of each mapping of pid."""
    out = []
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            m = MAPS_RE.match(line.rstrip("\n"))
            if m:
                out.append((int(m.group(1), 16), int(m.group(2), 16),
                            m.group(3), m.group(4)))
    return out


def scan(pid, needles):
    """Search pid's readable memory for each of needles ({label: bytes}).

    Returns (found, info): found maps label -> [(address, region name)];
    info has the bytes read and the regions read and skipped.
    """
    found = {}
    info = {"bytes": 0, "regions": 0, "skipped": 0}
    overlap = max(len(n) for n in needles.values()) - 1
    with open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
        for start, end, perms, name in regions(pid):
            if perms[0] != "r" or name in ("[vvar]", "[vsyscall]"):
                continue
            if sanlib.is_shadow(start, end):
                info["shadow"] = info.get("shadow", 0) + 1
                continue
            try:
                tail = b""
                base = start
                pos = start
                while pos < end:
                    n = min(CHUNK, end - pos)
                    mem.seek(pos)
                    data = mem.read(n)
                    if not data:
                        break
                    buf = tail + data
                    for label, needle in needles.items():
                        i = buf.find(needle)
                        while i >= 0:
                            found.setdefault(label, []).append((base + i, name))
                            i = buf.find(needle, i + 1)
                    info["bytes"] += len(data)
                    pos += len(data)
                    tail = buf[-overlap:] if overlap else b""
                    base = pos - len(tail)
                info["regions"] += 1
            except (OSError, ValueError, OverflowError):
                info["skipped"] += 1
    # A match that lay across two chunks may have been seen twice.
    return {k: sorted(set(v)) for k, v in found.items()}, info


# ------------------------------------------------- what to search for

def _der_int(n):
    """DER INTEGER of n (minimal, with a 0x00 where the top bit is set)."""
    body = n.to_bytes(max(1, (n.bit_length() + 8) // 8), "big")
    if len(body) > 1 and body[0] == 0 and not body[1] & 0x80:
        body = body[1:]
    return b"\x02" + _der_len(len(body)) + body


def _der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def pem_body_lines(key_path, shortest=16):
    """The base64 lines of a PEM file (no BEGIN/END lines, none shorter
    than `shortest` characters, whose bytes could turn up by chance)."""
    with open(key_path, "rb") as f:
        lines = f.read().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and
            not ln.startswith(b"-----") and b":" not in ln and
            len(ln.strip()) >= shortest]


def pem_der(key_path):
    """The DER inside a PEM private key file."""
    import base64
    return base64.b64decode(b"".join(pem_body_lines(key_path, 0)))


def key_needles(key_path, prefix=""):
    """Everything of a private key that no process but keyd may hold, as
    {label: bytes}.  Labels are "PREFIX<part>/<encoding>":

    - the raw secret numbers, big- and little-endian (DER and bignum
      limbs): the EC scalar; RSA d, p, q, dP, dQ, qInv;
    - their DER: the EC private key OCTET STRING (04 len scalar), each RSA
      private INTEGER (02 len value); not the whole DER, whose public part
      (the modulus, the public point) every worker holds in the
      certificate;
    - the base64 body lines of the key file as it is on disk ("pem").
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    with open(key_path, "rb") as f:
        k = serialization.load_pem_private_key(f.read(), password=None)
    out = {}
    if isinstance(k, ec.EllipticCurvePrivateKey):
        nb = (k.curve.key_size + 7) // 8
        v = k.private_numbers().private_value
        nums = {"ec-scalar": (v, nb)}
        out[prefix + "ec-scalar/der"] = b"\x04" + bytes([nb]) + \
            v.to_bytes(nb, "big")
    elif isinstance(k, rsa.RSAPrivateKey):
        pn = k.private_numbers()
        half = (k.key_size // 2 + 7) // 8
        nums = {"rsa-d": (pn.d, (k.key_size + 7) // 8), "rsa-p": (pn.p, half),
                "rsa-q": (pn.q, half), "rsa-dp": (pn.dmp1, half),
                "rsa-dq": (pn.dmq1, half), "rsa-qinv": (pn.iqmp, half)}
        for label, (n, _) in nums.items():
            out[prefix + label + "/der"] = _der_int(n)
    else:
        raise ValueError("unsupported key type in %s" % key_path)
    for label, (n, nb) in nums.items():
        # the numbers as they are, without leading zero bytes either way
        be = n.to_bytes(max(nb, (n.bit_length() + 7) // 8), "big")
        out[prefix + label + "/be"] = be.lstrip(b"\0")
        out[prefix + label + "/le"] = be[::-1].rstrip(b"\0")
    for i, line in enumerate(pem_body_lines(key_path)):
        out["%spem-line-%d/pem" % (prefix, i)] = line
    return out


def part_of(label):
    """"rsa:rsa-p/le" -> "rsa:rsa-p": one secret part, any encoding."""
    return label.rsplit("/", 1)[0]


def encoding_of(label):
    return label.rsplit("/", 1)[1]
