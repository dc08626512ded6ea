# SPDX-License-Identifier: GPL-2.0-or-later
"""A fully compromised worker gets nothing of the key (issue 8, Done when).

One moatd, two workers, five frontends: a TLS 1.3-only ECDSA one, a
default-priority ECDSA one, a default-priority RSA one, an Ed25519 one and
an RSA one with allow-rsa-kx.  tests/helpers/rogue_worker takes over a real
worker (SIGSTOP, then pidfd_getfd of its keyd and master channels; the
numbers are on its command line) and attacks from there:

- sign: digests, JWTs, non-TLS content, DH-shaped and off-curve
  ServerKeyExchange content for every key; every signature that comes back
  is verified here with the certificate's public key over the attacker's
  message.  None may verify on the TLS 1.3-only frontend or with the
  Ed25519 key; a digest is signed only for the frontends that serve TLS 1.2
  with an RSA or ECDSA key (the documented residual risk); a TLS 1.3
  CertificateVerify (the control) is signed everywhere.
- linger: a socket that blocks whoever closes it, sent to keyd on worker
  0's channel; keyd must keep answering worker 1's channel within 2 s.
- flood: every request type, as fast as the socket takes them; with
  keyd-rate low, over-limit requests are refused (-EBUSY) and counted.
- master: a message only the master may send, and one nobody may send to
  the master; the master closes the channel, the worker dies, a fresh one
  replaces it.
- decrypt (allow-rsa-kx): 1000 good and 1000 bad PKCS#1 paddings get
  answers of the same status and length.
- and at the wire: a TLS 1.2 RSA key exchange with a bad padding ends
  exactly as one with a good padding and a wrong premaster, with no log
  line of its own.

Plus: the workers are exec'd, not just forked (own load address, own
AT_RANDOM).  After each attack the taken-over worker is killed (it is
compromised) and the test waits for the master to start a fresh one.
"""

import collections
import json
import os
import random
import re
import struct
import subprocess
import time

import pytest

import moatlib
import rawtls

ROGUE = os.path.join(moatlib.BUILD, "tests", "helpers", "rogue_worker")
EPERM, EBUSY = 1, 16

# Requests per second per worker channel: low, so a flood crosses it, and
# high enough that handshakes and the paced attacks (the rogue's default
# pace is 150 per second, with -EBUSY retried) do not.
KEYD_RATE = 200
FLOOD_PER_TYPE = 3000

# Frontends in config order: the order gives the key slot (generation 0,
# their one certificate): IPC_KEY_SLOT(i, 0, 0) = i * IPC_MAX_CERTS (8).
FRONTENDS = ("tls13", "ecdsa", "rsa", "ed25519", "rsakx")
SLOT = {name: i * 8 for i, name in enumerate(FRONTENDS)}
TLS13_ONLY = "NORMAL:-VERS-ALL:+VERS-TLS1.3"
# Keys whose frontend serves TLS 1.2 with an RSA or ECDSA key: keyd must
# sign bare digests for them (GnuTLS 3.7 hands an external key nothing
# else under TLS 1.2), which is the residual risk moat.conf(5) states.
DIGEST_ALLOWED = {"ecdsa", "rsa", "rsakx"}
NO_ORACLE = {"tls13", "ed25519"}      # content-checking signer only
NON_TLS = ("jwt-content", "http", "x509", "ske-dh", "ske-offcurve")
DIGESTS = ("digest", "jwt-digest", "raw32")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("rogue-keys"))
    return {
        "tls13": moatlib.make_cert(d, "ecdsa", name="tls13"),
        "ecdsa": moatlib.make_cert(d, "ecdsa", name="ecdsa"),
        "rsa": moatlib.make_cert(d, "rsa", name="rsa"),
        "ed25519": moatlib.make_cert(d, "ed25519"),
        "rsakx": moatlib.make_cert(d, "rsa", name="rsakx"),
    }


def config_check(m):
    """`moatd -t` on m's config: (ok, output)."""
    r = subprocess.run([moatlib.MOATD, "-t", "-c", m.conf],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=60)
    return r.returncode == 0, r.stdout + r.stderr


@pytest.fixture(scope="module")
def moat(module_moat_factory, backends, keys):
    echo = backends.echo()
    fes = {}
    for name in FRONTENDS:
        cert, key = keys[name]
        fes[name] = {"backend": echo.address, "cert": cert, "key": key}
    fes["tls13"]["priority"] = TLS13_ONLY
    fes["rsakx"]["allow-rsa-kx"] = "yes"
    # drain-timeout: how long a worker asked to stop may take before the
    # master kills it (test_rotation_is_not_blocked_by_a_refusing_worker).
    m = module_moat_factory(fes, start=False, workers=2,
                            **{"keyd-rate": str(KEYD_RATE),
                               "drain-timeout": "3s"})
    ok, out = config_check(m)
    assert ok, "moatd -t refuses the test's config:\n%s" % out
    m.start()
    wait_workers(m)
    return m


# ------------------------------------------------------------- workers

def worker_index(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return None
    for i, a in enumerate(argv[:-1]):
        if a == b"--worker":
            return int(argv[i + 1])
    return None


def workers_by_index(m):
    out = {}
    for p in m.workers():
        i = worker_index(p)
        if i is not None:
            out[i] = p
    return out


def wait_workers(m, gone=(), seconds=30):
    """Both workers running, none of the pids in `gone`, and both
    answering the master (so their channels are past the hello)."""
    def ready():
        w = workers_by_index(m)
        if sorted(w) != [0, 1] or set(w.values()) & set(gone):
            return None
        st = m.stats()
        per = {x["index"]: x for x in st.get("per_worker", [])}
        if not all(per.get(i, {}).get("answered") and
                   per[i].get("pid") == w[i] for i in (0, 1)):
            return None
        return w
    try:
        return moatlib.wait_for(ready, seconds, 0.1, "two fresh workers")
    except TimeoutError:
        raise AssertionError("no two fresh, answering workers within %d s "
                             "(gone: %s)\n%s" % (seconds, gone, m.log()))


def rogue(m, pids, mode, *args, end="kill", timeout=240, seconds=None,
          hold_keyd=False):
    """Run the rogue worker on pids; its JSON answer.  With end="kill"
    the workers are replaced before this returns."""
    seconds = seconds or timeout - 10
    cmd = [ROGUE, "-T", str(seconds), "-e", end]
    if hold_keyd:
        for k in m.keyd_pids():
            cmd += ["-K", str(k)]
    for p in pids:
        cmd += ["-p", str(p)]
    cmd += [mode, *args]
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout)
    finally:
        if end == "kill":
            wait_workers(m, gone=pids, seconds=60)
    assert r.returncode == 0, "rogue_worker %s failed (%d):\n%s\n%s\n%s" % (
        mode, r.returncode, r.stdout[-4000:], r.stderr[-4000:], m.log())
    return json.loads(r.stdout)


@pytest.fixture(scope="module", autouse=True)
def rogue_built():
    if not os.access(ROGUE, os.X_OK):
        pytest.fail("%s is not built (MOAT_BUILD=%r)" % (ROGUE, moatlib.BUILD))


# ---------------------------------------------------------------- sign

def public_key(cert_path):
    from cryptography import x509
    with open(cert_path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read()).public_key()


def verifies(pub, attack):
    """Does attack["sig"] verify with pub over attack["msg"] the way a
    relying party would check it (the scheme and hash it names)?"""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding
    if not attack.get("sig"):
        return False
    sig, msg = bytes.fromhex(attack["sig"]), bytes.fromhex(attack["msg"])
    h = {"SHA256": hashes.SHA256, "SHA384": hashes.SHA384,
         "SHA512": hashes.SHA512}.get(attack["hash"].upper())
    scheme = attack["scheme"]
    try:
        if scheme == "eddsa":
            pub.verify(sig, msg)
        elif scheme == "ecdsa":
            pub.verify(sig, msg, ec.ECDSA(h()))
        elif scheme == "pkcs1":
            pub.verify(sig, msg, padding.PKCS1v15(), h())
        elif scheme == "pss":
            pub.verify(sig, msg, padding.PSS(mgf=padding.MGF1(h()),
                                             salt_length=padding.PSS.AUTO),
                       h())
        elif scheme == "rsa-raw":
            return pub.recover_data_from_signature(
                sig, padding.PKCS1v15(), None) == msg
        else:
            raise AssertionError("unknown scheme %r" % scheme)
    except (InvalidSignature, ValueError):
        return False
    return True


@pytest.fixture(scope="module")
def signed(moat, keys):
    """Every sign attack on every slot, from worker 0; each signature
    verified.  {frontend: [attack, ...]} with attack["verifies"]."""
    w = wait_workers(moat)
    slots = []
    for name in FRONTENDS:
        slots += ["-k", str(SLOT[name])]
    res = rogue(moat, [w[0]], "sign", *slots)
    out = {}
    for name, s in zip(FRONTENDS, res["slots"]):
        assert s["slot"] == SLOT[name]
        assert "error" not in s, "slot %d (%s): %s" % (s["slot"], name, s)
        pub = public_key(keys[name][0])
        for a in s["attacks"]:
            a["verifies"] = verifies(pub, a)
            assert a["status"] is not None, \
                "%s %s: no answer from keyd: %s" % (name, a["name"], a)
            if a["status"] == 0 and a["sig"]:
                assert a["verifies"] or a["name"] == "raw32" or \
                    a["scheme"] == "unknown", \
                    "%s %s: keyd signed, yet the signature does not verify: " \
                    "the check here is wrong\n%s" % (name, a["name"], a)
        out[name] = s["attacks"]
    return out


def describe(name, a):
    return "%s: %s %s (%s) status %s%s" % (
        name, a["name"], a["form"], a["algo_name"], a["status"],
        " -- the signature VERIFIES" if a["verifies"] else "")


def test_rogue_holds_a_real_worker(signed):
    """The takeover works: keyd answered the rogue on worker 0's channel
    and listed all five keys."""
    assert set(signed) == set(FRONTENDS)
    for name, attacks in signed.items():
        assert len(attacks) >= 6, (name, attacks)


def test_tls13_certificate_verify_is_signed_everywhere(signed):
    """The control: what a real handshake asks is signed and verifies."""
    for name, attacks in signed.items():
        cv = [a for a in attacks if a["name"] == "tls13-cv"]
        assert len(cv) == 1 and cv[0]["status"] == 0 and cv[0]["verifies"], \
            describe(name, cv[0])


def test_no_signature_over_non_tls_content(signed):
    """A JWT, an HTTP request, an X.509-looking blob, DH-shaped
    ServerKeyExchange junk and an off-curve ECDHE point: keyd signs none
    of them, for any key, with any algorithm the key lists."""
    bad = [describe(name, a) for name, attacks in signed.items()
           for a in attacks if a["name"] in NON_TLS and
           (a["verifies"] or a["status"] == 0)]
    assert not bad, "keyd signed non-TLS content:\n" + "\n".join(bad)


def test_no_oracle_on_tls13_only_and_ed25519(signed):
    """On the TLS 1.3-only frontend and with the Ed25519 key, nothing but
    the CertificateVerify control verifies with the certificate's key."""
    bad = [describe(name, a) for name in NO_ORACLE for a in signed[name]
           if a["name"] != "tls13-cv" and a["verifies"]]
    assert not bad, "signatures an attacker can use:\n" + "\n".join(bad)


def test_digest_signed_only_where_the_key_flag_allows(signed):
    """A bare digest (and a DigestInfo for PKCS#1) is refused with -EPERM
    for the keys loaded without digest permission (TLS 1.3-only frontend,
    Ed25519 key) and signed for the default-priority RSA and ECDSA
    frontends.  The latter is the documented TLS 1.2 residual risk: GnuTLS
    3.7 hands an external RSA or ECDSA key only a digest under TLS 1.2, so
    keyd cannot see what it signs; moat.conf(5) says so, and keyd-sign =
    content-only (or a TLS 1.3-only priority, or an Ed25519 key) removes
    it."""
    bad = []
    for name, attacks in signed.items():
        for a in attacks:
            if a["form"] != "digest":
                continue
            if name in NO_ORACLE:
                if a["status"] != -EPERM:
                    bad.append(describe(name, a) + ", want -EPERM")
            elif a["name"] == "raw32":
                # RSA_RAW over anything but a DigestInfo is never TLS.
                if a["verifies"] or a["status"] == 0:
                    bad.append(describe(name, a) + ", want a refusal")
            elif not (a["status"] == 0 and a["verifies"]):
                bad.append(describe(name, a) + ", want signed (TLS 1.2)")
    assert not bad, "\n".join(bad)


def test_ske_junk_is_what_it_claims(signed):
    """The attack inputs are what their names say: the ECDHE point is off
    P-256, and the DH p is no RFC 7919 group (none is random)."""
    from cryptography.hazmat.primitives.asymmetric import ec
    seen = 0
    for attacks in signed.values():
        for a in attacks:
            msg = bytes.fromhex(a["msg"])
            if a["name"] == "ske-offcurve":
                assert msg[64:69] == b"\x03\x00\x17\x41\x04"
                x = int.from_bytes(msg[69:101], "big")
                y = int.from_bytes(msg[101:133], "big")
                with pytest.raises(ValueError):
                    ec.EllipticCurvePublicNumbers(
                        x, y, ec.SECP256R1()).public_key()
                seen += 1
            elif a["name"] == "ske-dh":
                plen = struct.unpack("!H", msg[64:66])[0]
                assert plen == 256 and msg[66] & 0x80
                # every RFC 7919 prime starts with 64 one bits
                assert msg[66:74] != b"\xff" * 8
                seen += 1
    assert seen > 0


# -------------------------------------------------------------- linger

def test_lingering_socket_does_not_freeze_keyd(moat):
    """Worker 0 sends keyd a TCP socket whose close() would block 3 s
    (full send buffer, SO_LINGER {1, 3}); sign requests on worker 1's
    channel must all be answered within 2 s.  The probes are paced (20 a
    second) and the worst latency of the whole window counts, so a slow,
    loaded machine does not fail it: only a blocked keyd loop does."""
    keyd_before = moat.keyd_pids()
    w = wait_workers(moat)
    # The close that waits is the last one: the rogue holds keyd still
    # (SIGSTOP) while it sends the socket and closes its own copy, so that
    # keyd's is the last (a real attacker just tries until it wins).  The
    # probes start after keyd runs again.
    res = rogue(moat, [w[0], w[1]], "linger", "-k", str(SLOT["ecdsa"]),
                "-d", "6", timeout=120, hold_keyd=True)
    print(res)
    assert not res["race_lost"], "keyd did not hold the last copy: %r" % res
    assert res["queued_bytes"] > 0, "the attack is not armed: %r" % res
    assert res["probes"] >= 10 and res["lost"] == 0, res
    assert res["worst_ms"] < 2000, \
        "keyd stalled %.0f ms on worker 1's channel while it closed worker " \
        "0's lingering socket: %r" % (res["worst_ms"], res)
    assert moat.keyd_pids() == keyd_before, "keyd was restarted"
    with moatlib.tls_connect(moat.ports["ecdsa"]) as s:
        moatlib.round_trip(s)


# --------------------------------------------------------------- flood

def rate_log_lines(text):
    """Lines about rate-limited requests (not a channel's closing tally)."""
    return [ln for ln in text.splitlines()
            if re.search(r"(?i)rate[ -]?limit", ln) and
            not re.search(r"channel .*closed", ln)]


def test_flood_is_refused_and_counted(moat):
    """KEY_LIST, malformed SIGN and valid SIGN requests, 3000 each, as
    fast as the socket takes them: with keyd-rate = 200 every type meets
    the limit (-EBUSY), keyd answers every request, moatctl counts each
    refusal in keyd_rate_limited, and the refusals are not logged one by
    one (at most a few lines)."""
    w = wait_workers(moat)
    before = moatlib.stats_keyd(moat.stats())
    log0 = moat.log_size()
    res = rogue(moat, [w[0]], "flood", "-k", str(SLOT["ecdsa"]),
                "-n", str(FLOOD_PER_TYPE), timeout=180)
    print(res)
    after = moatlib.stats_keyd(moat.stats())
    total = 3 * FLOOD_PER_TYPE
    assert res["sent"] == total and not res["closed"], res
    assert res["answered"] == total, "keyd left requests unanswered: %r" % res
    busy = {t: h.get(str(-EBUSY), 0) for t, h in res["by_type"].items()}
    assert all(busy.values()), \
        "not every request type meets the rate limit: %r" % res["by_type"]
    served = total - sum(busy.values())
    secs = res["elapsed_ms"] / 1000.0
    # A channel's bucket holds 2 s of its rate (keyd.c, "Rate limits").
    assert served <= KEYD_RATE * (secs + 2) + 20, \
        "%d of %d requests served in %.1f s at keyd-rate %d" % (
            served, total, secs, KEYD_RATE)
    counted = after["rate_limited"] - before["rate_limited"]
    assert counted >= sum(busy.values()), \
        "%d refusals seen, keyd_rate_limited grew by %d" % (
            sum(busy.values()), counted)
    # keyd's lines reach moatd's log through the master: give them time.
    # Refusals are logged at most once a minute, not one by one.
    time.sleep(1.0)
    lines = rate_log_lines(moat.log_text()[log0:])
    assert len(lines) <= 3, \
        "%d log lines about the rate limit:\n%s" % (len(lines),
                                                     "\n".join(lines[:20]))


# -------------------------------------------------------------- master

@pytest.mark.parametrize("message", ["WORKER_STATS", "KEY_LOAD"])
def test_master_kills_a_worker_that_speaks_out_of_turn(moat, message):
    """WORKER_STATS is the master's to send, KEY_LOAD is for keyd: from a
    worker either makes the master log it once, close the channel and
    kill the worker; a fresh worker takes its place."""
    w = wait_workers(moat)
    pid = w[0]
    log0 = moat.log_size()
    res = rogue(moat, [pid], "master", "-m", message, end="cont",
                timeout=60)
    print(res)
    assert res["send"] == 0, res
    assert res["closed"], "the master kept the channel open: %r" % res
    moatlib.wait_for(lambda: not moatlib.proc_alive(pid), 10, 0.05,
                     "worker %d to die" % pid)
    fresh = wait_workers(moat, gone=[pid])
    assert fresh[0] != pid
    text = moat.log_text()[log0:]
    # The master's lines about it (the worker's own last words, if it
    # had time for any before the SIGKILL, are not the master's).
    said = [ln for ln in text.splitlines() if str(pid) in ln and
            not ln.startswith("moatd[worker") and
            not re.search(r"killed by signal|exited with|exited$|"
                          r"restarting", ln)]
    assert len(said) == 1, "want one line about worker %d:\n%s" % (
        pid, "\n".join(said) or text[-3000:])


# ------------------------------------------------------------- decrypt

def rsa_numbers(cert_path):
    nums = public_key(cert_path).public_numbers()
    return nums.n, nums.e


def test_decrypt_answers_do_not_depend_on_padding(moat, keys, tmp_path):
    """1000 good and 1000 bad PKCS#1 v1.5 paddings (five kinds of bad),
    shuffled, on worker 0's channel: every answer has status 0 and 48
    bytes, the good ones the premaster that was encrypted, the bad ones a
    random premaster each (no two alike), so the answers tell nothing of
    the padding (RFC 5246 7.4.7.1)."""
    n, e = rsa_numbers(keys["rsakx"][0])
    k = (n.bit_length() + 7) // 8
    lines = []
    for i in range(1000):
        em = rawtls.encoded_message(k, "good")
        lines.append("good %s %s" % (rawtls.raw_rsa(n, e, em).hex(),
                                     em[-48:].hex()))
        bad = rawtls.encoded_message(k, rawtls.BAD_KINDS[i % 5])
        lines.append("bad %s" % rawtls.raw_rsa(n, e, bad).hex())
    random.shuffle(lines)
    path = tmp_path / "ciphertexts"
    path.write_text("\n".join(lines) + "\n")
    w = wait_workers(moat)
    res = rogue(moat, [w[0]], "decrypt", "-k", str(SLOT["rsakx"]),
                "-f", str(path), timeout=300)
    print(res)
    good, bad = res["good"], res["bad"]
    assert good["n"] == 1000 and bad["n"] == 1000 and res["lost"] == 0, res
    assert good["status"] == {"0": 1000} and good["len"] == {"48": 1000}, res
    assert good["correct"] == 1000, res
    assert bad["status"] == good["status"], \
        "bad padding answered differently: %r vs %r" % (bad["status"],
                                                         good["status"])
    assert bad["len"] == good["len"], (bad["len"], good["len"])
    assert bad["distinct"] == 1000, \
        "bad paddings got %d distinct answers, not a random premaster " \
        "each" % bad["distinct"]


# ---------------------------------------------- RSA key exchange, wire

CONN_RE = r'conn client=127\.0\.0\.1:%d\b'


def normalized(lines):
    """Log lines with what differs from one connection to the next
    (times, ports, pids, counters) taken out."""
    out = []
    for ln in lines:
        ln = re.sub(r"^\S+ \S+ ", "", ln) if re.match(r"^\d{4}-", ln) else ln
        ln = re.sub(r" id=\S+", " id=ID", ln)	# random per connection
        out.append(re.sub(r"\d+(\.\d+)?", "N", ln))
    return sorted(out)


def test_rsa_kx_bad_padding_ends_like_a_wrong_premaster(moat, keys):
    """Through moat, a ClientKeyExchange with a bad padding (each kind)
    and one with a good padding around a premaster the client then does
    not use: every handshake ends the same way (the same alert, promptly,
    the connection closed), and leaves the same log lines (no line that
    only a padding failure writes)."""
    wait_workers(moat)
    port = moat.ports["rsakx"]
    kinds = ["good", *rawtls.BAD_KINDS] * 2
    results = []
    for kind in kinds:
        log0 = moat.log_size()
        r = rawtls.rsa_kx_attempt(port, kind)
        moat.wait_log(CONN_RE % r["port"], 15, start=log0)
        time.sleep(0.3)             # let keyd's lines, if any, arrive
        r["log"] = normalized(moat.log_text()[log0:].splitlines())
        results.append(r)
    with open(keys["rsakx"][0]) as f:
        import ssl
        assert results[0]["cert"] == ssl.PEM_cert_to_DER_cert(f.read())
    ends = collections.Counter(
        (r["alert"], r["closed"], r["seconds"] < 5.0, tuple(r["other"]))
        for r in results)
    assert len(ends) == 1, "the handshakes end differently:\n%s" % "\n".join(
        "%s: alert %s closed %s in %.2f s" % (r["kind"], r["alert"],
                                             r["closed"], r["seconds"])
        for r in results)
    ref = results[0]
    assert ref["alert"] is not None and ref["alert"][0] == 2, ref
    assert ref["closed"], ref
    logs = collections.Counter(tuple(r["log"]) for r in results)
    assert len(logs) == 1, "the log tells the paddings apart:\n%s" % \
        "\n".join("%s:\n  %s" % (r["kind"], "\n  ".join(r["log"]))
                  for r in results[:6])


# ------------------------------------------------------- exec, not fork

AT_RANDOM = 25


def first_mapping(pid):
    exe = os.path.realpath("/proc/%d/exe" % pid)
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            p = line.split()
            if len(p) >= 6 and p[5] == exe:
                return int(p[0].split("-")[0], 16)
    raise AssertionError("no mapping of %s in %d" % (exe, pid))


def at_random(pid):
    """AT_RANDOM's address and its 16 bytes (the stack canary's source)."""
    with open("/proc/%d/auxv" % pid, "rb") as f:
        data = f.read()
    for i in range(0, len(data) - 15, 16):
        key, val = struct.unpack("QQ", data[i:i + 16])
        if key == AT_RANDOM:
            with open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
                mem.seek(val)
                return val, mem.read(16)
    raise AssertionError("no AT_RANDOM in %d's auxv" % pid)


def test_workers_are_execd_not_forked(moat):
    """Each worker has its own load address and its own AT_RANDOM: it was
    exec'd, not just forked from the root master (which would share the
    master's layout and stack canary)."""
    w = wait_workers(moat)
    master = moat.proc.pid
    aslr = open("/proc/sys/kernel/randomize_va_space").read().strip()
    base, rnd = first_mapping(master), at_random(master)
    seen_base, seen_rnd = {base}, {rnd[1]}
    for pid in w.values():
        b, r = first_mapping(pid), at_random(pid)
        print("master %d: %#x %s; worker %d: %#x %s" % (
            master, base, rnd[1].hex(), pid, b, r[1].hex()))
        assert r[1] != rnd[1], "worker %d shares the master's AT_RANDOM" % pid
        if aslr != "0":
            assert b != base, \
                "worker %d is loaded where the master is (%#x)" % (pid, b)
        seen_base.add(b)
        seen_rnd.add(r[1])
    assert len(seen_rnd) == 3
    if aslr != "0":
        assert len(seen_base) == 3


def test_exec_check_tells_a_fork_from_an_exec():
    """The control of the test above: a child this test forks (and does
    not exec) shows its parent's load address and AT_RANDOM, so equal
    values are what a forked-only worker would show."""
    pid = os.fork()
    if pid == 0:
        try:
            time.sleep(30)
        finally:
            os._exit(0)
    try:
        me = os.getpid()
        assert first_mapping(pid) == first_mapping(me)
        assert at_random(pid) == at_random(me)
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)


# ------------------------------------------------------------ rotation
# Last in this file: it rotates the ecdsa frontend, so that frontend's key
# is in slot SLOT["ecdsa"] no more.

def test_rotation_is_not_blocked_by_a_refusing_worker(moat, keys):
    """A taken-over worker answers the rotation's IPC_WORKER_CERT with an
    error and swallows the IPC_WORKER_STOP that follows, as a compromised
    worker that wants to keep the old key signable would.  The master
    kills it at drain-timeout and starts a fresh one on the new
    certificate; keyd drops the old key, and the next rotation goes
    through."""
    import reneglib
    w = wait_workers(moat)
    victim = w[0]
    cert, key = keys["ecdsa"]
    old_fp = reneglib.cert_fp(cert)
    keys_before = reneglib.keyd_keys(moat)
    cmd = [ROGUE, "-T", "90", "-e", "cont", "-p", str(victim),
           "certfail", "-d", "60"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        moatlib.wait_for(
            lambda: moatlib.proc_status(victim).get("State", "")[:1] == "T",
            30, 0.05, "the rogue to hold worker 0")
        new_fp = reneglib.replace_cert(cert, key, "ecdsa")
        log0 = moat.log_size()
        r = moat.ctl("reload", check=False, timeout=60)
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, (out, err)
    res = json.loads(out)
    # SIGHUP rotates every frontend: one IPC_WORKER_CERT each.
    assert res["answered"] == len(FRONTENDS) and res["send"] == 0, res
    assert res["stop"], "the master did not stop the refusing worker: %r" % res
    answer = r.stdout + r.stderr
    assert "did not take it and are being restarted" in answer, answer
    # The worker never heard the stop (the rogue took it): only the
    # master's deadline ends it.
    wait_workers(moat, gone=[victim], seconds=60)
    log = moat.log_text()[log0:]
    assert "did not stop when asked; killing it" in log
    assert log.count("did not take the new certificate") == len(FRONTENDS), log
    for _ in range(6):			# both workers, whoever accepts
        assert reneglib.peer_fp(moat.ports["ecdsa"]) == new_fp
    reneglib.wait_keyd_keys(moat, keys_before)
    assert "keyd dropped its key" in moat.log_text()[log0:]
    # The next rotation is not blocked: every worker takes it.
    newer_fp = reneglib.replace_cert(cert, key, "ecdsa")
    assert newer_fp not in (old_fp, new_fp)
    r = moat.ctl("reload", timeout=60)
    assert "are being restarted" not in r.stdout, r.stdout
    for _ in range(6):
        assert reneglib.peer_fp(moat.ports["ecdsa"]) == newer_fp
    reneglib.wait_keyd_keys(moat, keys_before)
