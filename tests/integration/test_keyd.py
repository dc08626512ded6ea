# SPDX-License-Identifier: GPL-2.0-or-later
"""moat-keyd on its own, driven by tests/helpers/keyd_client (which plays the
master and a worker): 100 sign requests in flight per key, every signature
verified with the certificate; refusals counted; bad keys refused with a
clear reason; the sandbox visible in /proc; and the seccomp filter biting.

Runs as root (the real privilege drop, chroot and seccomp happen).
"""
import json
import os
import pwd
import re
import subprocess

import pytest

import memscan
import moatlib
import sanlib

BUILD = os.environ.get("MOAT_BUILD", "")
KEYD = os.path.join(BUILD, "keyd", "moat-keyd")
CLIENT = os.path.join(BUILD, "tests", "helpers", "keyd_client")
BITE = os.path.join(BUILD, "tests", "helpers", "seccomp_bite")
KEYD_USER = "moat-keyd"
TIMEOUT = 300

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root (privdrop)")

EPERM, ENOENT, EBUSY, EINVAL, EBADMSG, EOPNOTSUPP = 1, 2, 16, 22, 74, 95
SIGSYS = 31


@pytest.fixture(scope="module", autouse=True)
def moat_built():
    """Overrides conftest's: these tests need moat-keyd and the helpers
    only, not moatd, so they run (and fail) on keyd's merits alone."""
    missing = [p for p in (KEYD, CLIENT, BITE) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail("not built (MOAT_BUILD=%r): %s" % (BUILD,
                                                        ", ".join(missing)))


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                   timeout=TIMEOUT)


def keypair(d, name, newkey, mode=0o600):
    """A key and a self-signed certificate for it (openssl CLI)."""
    openssl("req", "-x509", "-new", "-nodes", "-newkey", newkey,
            "-keyout", name + ".key", "-out", name + ".crt", "-days", "2",
            "-subj", "/CN=" + name, cwd=d)
    os.chmod(os.path.join(d, name + ".key"), mode)
    return os.path.join(d, name + ".key"), os.path.join(d, name + ".crt")


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("keyd"))
    k = {}
    openssl("ecparam", "-name", "prime256v1", "-out", "p256.param", cwd=d)
    k["ec"] = keypair(d, "ec", "ec:" + os.path.join(d, "p256.param"))
    k["ec2"] = keypair(d, "ec2", "ec:" + os.path.join(d, "p256.param"))
    k["rsa"] = keypair(d, "rsa", "rsa:2048")
    k["ed"] = keypair(d, "ed", "ed25519")
    k["rsa1024"] = keypair(d, "rsa1024", "rsa:1024")
    # Encrypted PKCS#8 and its passphrase file.
    with open(os.path.join(d, "pass"), "w") as f:
        f.write("correct horse\n")
    with open(os.path.join(d, "wrongpass"), "w") as f:
        f.write("battery staple\n")
    os.chmod(os.path.join(d, "pass"), 0o600)
    os.chmod(os.path.join(d, "wrongpass"), 0o600)
    openssl("pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", "ec.key",
            "-out", "ec-enc.key", "-passout", "file:pass", cwd=d)
    os.chmod(os.path.join(d, "ec-enc.key"), 0o600)
    k["enc"] = (os.path.join(d, "ec-enc.key"), k["ec"][1])
    # The same key, readable by everyone.
    with open(k["ec"][0]) as src, open(os.path.join(d, "open.key"), "w") as f:
        f.write(src.read())
    os.chmod(os.path.join(d, "open.key"), 0o644)
    k["open"] = (os.path.join(d, "open.key"), k["ec"][1])
    for name, text in (("empty.key", ""), ("garbage.key", "not a key\n")):
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
        os.chmod(os.path.join(d, name), 0o600)
    k["empty"] = (os.path.join(d, "empty.key"), k["ec"][1])
    k["garbage"] = (os.path.join(d, "garbage.key"), k["ec"][1])
    k["pass"] = os.path.join(d, "pass")
    k["wrongpass"] = os.path.join(d, "wrongpass")
    # An empty, root-owned directory to chroot keyd into.
    k["chroot"] = os.path.join(d, "empty")
    os.mkdir(k["chroot"], 0o755)
    return k


def run_client(keys, specs, *args, stdin=None):
    cmd = [CLIENT, "-C", keys["chroot"], "-u", KEYD_USER, "-T", "240"]
    for s in specs:
        cmd += ["-k", s]
    cmd += list(args) + [KEYD]
    return subprocess.Popen(cmd, stdin=stdin or subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish(p):
    out, err = p.communicate(timeout=TIMEOUT)
    sanlib.check(err, "keyd_client and moat-keyd", p.returncode)
    assert p.returncode == 0, (p.returncode, err[-4000:])
    lines = [json.loads(l) for l in out.splitlines() if l.strip()]
    assert len(lines) == 2, (out, err[-4000:])
    return lines[0], lines[1], err


@pytest.fixture(scope="module")
def served(keys):
    """keyd with ECDSA P-256, RSA-2048 (decrypt allowed) and Ed25519 keys,
    exercised by keyd_client, and kept running until the module is done.
    The ECDSA and RSA keys are loaded as a TLS 1.2 frontend's are (digests
    allowed: GnuTLS gives them nothing else under TLS 1.2)."""
    specs = ["0,%s,%s,digest" % keys["ec"],
             "1,%s,%s,decrypt,digest" % keys["rsa"],
             "2,%s,%s" % keys["ed"]]
    p = run_client(keys, specs, "-n", "100", "-t", "3", "-w",
                   stdin=subprocess.PIPE)
    first = p.stdout.readline()
    if not first:
        out, err = p.communicate(timeout=TIMEOUT)
        pytest.fail("keyd_client gave no result: rc=%s\n%s" %
                    (p.returncode, err[-4000:]))
    res = json.loads(first)
    yield res, p, keys
    if p.poll() is None:
        p.communicate(timeout=TIMEOUT)


def by_id(res, key_id):
    return next(k for k in res["keys"] if k["key_id"] == key_id)


def test_keys_load(served):
    res, _, _ = served
    assert res["key_list"] == 3
    for key_id, pk, bits in ((0, 4, 256), (1, 1, 2048), (2, 7, 256)):
        k = by_id(res, key_id)
        assert k["status"] == 0, k
        assert (k["pk_algo"], k["bits"]) == (pk, bits), k
    assert "ECDSA-SECP256R1-SHA256" in by_id(res, 0)["sign_algos"]
    assert "RSA-PSS-RSAE-SHA256" in by_id(res, 1)["sign_algos"]
    assert "RSA-SHA256" in by_id(res, 1)["sign_algos"]
    assert by_id(res, 2)["sign_algos"] == ["EdDSA-Ed25519"]


def test_hundred_in_flight_all_verified(served):
    res, _, _ = served
    # Per key: 100 TLS 1.3 CertificateVerify contents, then TLS 1.2
    # ServerKeyExchange contents and (not EdDSA) bare digests, all sent
    # before the first answer was read.
    assert res["max_in_flight"] >= 100
    assert res["errors"] == 0 and res["busy"] == 0
    for key_id in (0, 1, 2):
        k = by_id(res, key_id)
        assert k["sent"] >= 125, k
        assert k["verified"] == k["sent"], k
        assert k["failed"] == 0, k
    st = res["stats"]
    assert st["sign_ecdsa"] >= 150
    assert st["sign_rsa_pss"] >= 100
    assert st["sign_rsa_pkcs1"] >= 1
    assert st["sign_eddsa"] >= 125
    assert st["rate_limited"] == 0
    assert st["threads"] == 3 and st["keys"] == 3


def test_digests_as_gnutls_makes_them(served):
    """An import_ext4 key lets GnuTLS itself choose what reaches keyd
    (digest, DigestInfo, or content for EdDSA); keyd must sign them all."""
    res, _, _ = served
    for key_id in (0, 1, 2):
        k = by_id(res, key_id)
        assert k["ext4_total"] > 0, k
        assert k["ext4_verified"] == k["ext4_total"], k


def test_refusals(served):
    res, _, _ = served
    r = res["refusals"]
    for what in ("not_tls", "client_cv", "trailing_byte",
                 "ecdsa_sha1_sized_digest", "decrypt_ecdsa",
                 "rsa_raw_not_digestinfo", "pkcs1_in_tls13", "eddsa_digest"):
        assert r[what] == -EPERM, (what, r)
    assert r["unknown_key"] == -ENOENT, r
    assert r["wrong_algo"] == -EINVAL, r
    assert r["malformed_payload"] == -EBADMSG, r
    assert r["decrypt_rsa"] == 0, r
    # Every refusal the client saw is counted by keyd.
    assert res["refusals_seen"] >= 10
    assert res["stats"]["refused"] == res["refusals_seen"], res["stats"]
    # One round trip here, 201 in test_decrypt_no_padding_oracle.
    assert res["stats"]["decrypts"] == 1 + 201


def test_decrypt_no_padding_oracle(served):
    """RSA key exchange as RFC 5246 7.4.7.1 says: 100 ciphertexts with good
    padding and 101 without (random bytes, or a 47-byte secret) all get the
    same answer, status 0 and 48 bytes: the secret where the padding was
    good, fresh random bytes (never the secret, never the same twice) where
    it was not.  No error, so keyd counts no error and logs no line."""
    res, _, _ = served
    d = res["decrypt"]
    assert d == {"good": 100, "good_48": 100, "good_match": 100,
                 "bad": 101, "bad_48": 101, "bad_fresh": 101}, d
    # keyd's errors are the malformed payload of test_refusals and the four
    # channels of test_bad_channel_does_not_hurt_others, no decrypt.
    assert res["stats"]["errors"] == 5, res["stats"]


def test_digests_refused_without_flag(served):
    """The same ECDSA and RSA keys loaded as a TLS 1.3-only frontend's are
    (no IPC_KEY_F_ALLOW_DIGEST): keyd signs no digest for them, neither one
    built by hand nor the one GnuTLS makes for a TLS 1.2 signature through
    an ext4 key, and still signs (verifiable) CertificateVerify content."""
    res, _, _ = served
    for kind in ("ecdsa", "rsa"):
        k = res["content_only"][kind]
        assert k["digest"] == -EPERM, (kind, k)
        assert k["ext4_tls12_signed"] is False, (kind, k)
        assert k["cv"] == 0 and k["cv_verified"] is True, (kind, k)


def test_key_drop(served):
    """IPC_KEY_DROP forgets the slot: later requests and a second drop get
    -ENOENT, and keyd holds only the three keys it was left with."""
    res, _, _ = served
    for kind in ("ecdsa", "rsa"):
        k = res["content_only"][kind]
        assert k["drop"] == 0, (kind, k)
        assert k["after_drop"] == -ENOENT, (kind, k)
        assert k["drop_again"] == -ENOENT, (kind, k)
    assert res["stats"]["keys"] == 3


def test_dropped_key_wiped(keys):
    """KEY_DROP wipes the key once its jobs are done: after signatures with
    a second ECDSA key and its drop, keyd's memory holds the kept key's
    scalar (the positive control: the scan finds keys) and not the dropped
    one's, in either byte order."""
    specs = ["0,%s,%s,digest" % keys["ec"], "5,%s,%s,digest" % keys["ec2"]]
    p = run_client(keys, specs, "-n", "20", "-D", "5", "-w",
                   stdin=subprocess.PIPE)
    try:
        res = json.loads(p.stdout.readline())
        assert res["drop"] == 0, res
        assert res["stats"]["keys"] == 1, res["stats"]
        assert by_id(res, 5)["verified"] == by_id(res, 5)["sent"] > 0
        kept, _ = memscan.scan(res["keyd_pid"],
                               moatlib.key_secrets(keys["ec"][0]))
        gone, info = memscan.scan(res["keyd_pid"],
                                  moatlib.key_secrets(keys["ec2"][0]))
        assert kept, "the scan does not find the kept key: %r" % info
        assert not gone, "keyd still holds the dropped key: %r" % gone
    finally:
        out, err = p.communicate(timeout=TIMEOUT)
    assert p.returncode == 0, err[-4000:]


def test_bad_channel_does_not_hurt_others(served):
    res, _, _ = served
    assert res["bad_header_closed"] is True
    assert res["oversize_closed"] is True
    # A type only the master may send closes the worker's channel
    # (the permit check of ipc_msgs.h, before any payload is decoded).
    assert res["master_request_closed"] is True
    # A lingering TCP socket (full send buffer, SO_LINGER 3 s) attached to
    # a request: keyd closes it abortively (the peer sees a reset) and the
    # channel at once, instead of blocking its loop in close() for 3 s.
    assert res["lingering_fd_closed"] is True
    assert res["lingering_fd_ms"] < 1000, res["lingering_fd_ms"]
    assert res["lingering_fd_reset"] is True
    # After all that, a new channel and the first one still get signatures.
    assert res["other_channels_ok"] == 3


def proc_status(pid, tid=None):
    path = "/proc/%d/status" % pid if tid is None else \
        "/proc/%d/task/%d/status" % (pid, tid)
    with open(path) as f:
        return dict(l.rstrip("\n").split(":\t", 1) for l in f if ":\t" in l)


def test_sandbox_in_proc(served):
    res, p, keys = served
    pid = res["keyd_pid"]
    assert p.poll() is None, "keyd_client ended early"
    uid = pwd.getpwnam(KEYD_USER).pw_uid
    tids = [int(t) for t in os.listdir("/proc/%d/task" % pid)]
    assert len(tids) >= 4, tids     # main thread + 3 signers
    for tid in tids:
        st = proc_status(pid, tid)
        assert st["Uid"].split() == [str(uid)] * 4, (tid, st["Uid"])
        assert uid != 0
        assert st["Gid"].split()[0] != "0", (tid, st["Gid"])
        assert st["CapEff"] == "0000000000000000", (tid, st["CapEff"])
        assert st["CapPrm"] == "0000000000000000", (tid, st["CapPrm"])
        assert st["CapBnd"] == "0000000000000000", (tid, st["CapBnd"])
        assert st["NoNewPrivs"] == "1", (tid, st)
        assert st["Seccomp"] == "2", (tid, st)
    assert os.readlink("/proc/%d/root" % pid) == \
        os.path.realpath(keys["chroot"])
    # keyd holds no file: only its sockets, epoll/eventfd and stdio.
    for fd in os.listdir("/proc/%d/fd" % pid):
        target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        assert not target.endswith((".key", ".crt", "pass")), target


def test_exits_when_master_goes(served):
    res, p, _ = served
    out, err = p.communicate(timeout=TIMEOUT)  # closes stdin: "master" gone
    assert p.returncode == 0, err[-4000:]
    # Auto limits (keyd.c's header): each key was timed when it loaded;
    # its limit is its capacity C, the channels' the largest C so far (at
    # least 100/s), every burst 2 s of its rate.
    lines = re.findall(r"key (\d+): (\d+) operations/s with 3 signer "
                       r"threads; limit (\d+)/s \(burst (\d+)\) for the "
                       r"key, (\d+)/s \(burst (\d+)\) per channel", err)
    # keyd_client.c's SPARE_SLOT and the next: IPC_MAX_KEYS - 4 and - 3
    assert sorted({int(l[0]) for l in lines}) == [0, 1, 2, 508, 509], lines
    caps = {}
    for key_id, cap, rate, burst, crate, cburst in \
            [[int(x) for x in l] for l in lines]:
        caps[key_id] = cap
        if key_id == 509:
            del caps[508]       # dropped before 509 was loaded
        assert cap > 0 and rate == cap, (key_id, cap, rate)
        assert abs(burst - 2 * rate) <= 1, (key_id, rate, burst)
        assert abs(crate - max([100] + list(caps.values()))) <= 1, \
            (key_id, caps, crate)
        assert abs(cburst - 2 * crate) <= 1, (key_id, crate, cburst)
    end = json.loads(out.splitlines()[-1])
    assert end == {"keyd_exit": 0, "keyd_signal": 0, "killed": False}, \
        (end, err[-4000:])


def test_key_load_errors(keys):
    specs = [
        "0,%s,%s" % (keys["ec"][0], keys["rsa"][1]),      # mismatch
        "1,%s,%s" % keys["rsa1024"],                       # too small
        "2,%s,%s" % keys["empty"],
        "3,%s,%s" % keys["garbage"],
        "4,%s,%s" % keys["open"],                          # mode 0644
        "5,%s,%s,pass=%s" % (keys["enc"][0], keys["enc"][1], keys["pass"]),
        "6,%s,%s,pass=%s" % (keys["enc"][0], keys["enc"][1],
                             keys["wrongpass"]),
        "7,%s,%s" % keys["enc"],                           # no passphrase
        "8,%s,%s" % keys["ed"],                            # fine
    ]
    p = run_client(keys, specs, "-m", "load")
    res, end, err = finish(p)
    k = {x["key_id"]: x for x in res["keys"]}
    assert k[0]["status"] < 0
    assert "does not match certificate" in k[0]["msg"], k[0]
    assert keys["rsa"][1] in k[0]["msg"] and keys["ec"][0] in k[0]["msg"]
    assert k[1]["status"] < 0
    assert "unsupported key" in k[1]["msg"] and "RSA 1024 bits" in \
        k[1]["msg"], k[1]
    assert k[2]["status"] < 0 and "is empty" in k[2]["msg"], k[2]
    assert k[3]["status"] < 0 and "cannot parse private key" in \
        k[3]["msg"], k[3]
    assert k[4]["status"] == -EPERM and "group or others" in \
        k[4]["msg"], k[4]
    assert k[5]["status"] == 0, k[5]
    assert (k[5]["pk_algo"], k[5]["bits"]) == (4, 256)
    assert k[6]["status"] < 0 and "passphrase" in k[6]["msg"], k[6]
    assert k[7]["status"] < 0 and "passphrase" in k[7]["msg"], k[7]
    assert k[8]["status"] == 0, k[8]
    for i in (0, 1, 2, 3, 4, 6, 7):
        assert k[i]["sign_algos"] == [], k[i]
    assert res["stats"]["keys"] == 2
    # keyd logged each failure with its reason, and exited cleanly.
    assert "does not match certificate" in err
    assert end["keyd_exit"] == 0


def test_same_id_replaces_key(keys):
    """A key id loaded again replaces the old key (rotation)."""
    specs = ["0,%s,%s" % keys["ec"], "0,%s,%s" % keys["ed"]]
    p = run_client(keys, specs, "-n", "20")
    res, end, _ = finish(p)
    assert [x["msg"] for x in res["keys"]] == ["loaded", "replaced"]
    assert res["key_list"] == 1
    assert res["stats"]["keys"] == 1
    # Signatures now come from the Ed25519 key (and verify with its cert).
    ed = res["keys"][1]
    assert ed["sent"] > 0 and ed["verified"] == ed["sent"], ed
    assert res["stats"]["sign_eddsa"] >= ed["sent"]
    assert end["keyd_exit"] == 0


def rate_limit_lines(err, worker=0):
    return [l for l in err.splitlines()
            if "worker %d: " % worker in l and "rate limited since" in l]


def test_rate_limit(keys):
    """Over the per-channel rate, requests get -EBUSY and are counted; the
    KEY_LIST the client starts with counts against the same bucket."""
    p = run_client(keys, ["0,%s,%s" % keys["ec"]], "-m", "ratelimit",
                   "-n", "60", "-x", "--rate-limit", "-x", "1",
                   "-x", "--rate-burst", "-x", "10")
    res, end, err = finish(p)
    k = res["keys"][0]
    assert res["busy"] >= 1, res
    # The signatures refused, and the KEY_LIST and malformed request after.
    assert res["stats"]["rate_limited"] == res["busy"] + 2, res["stats"]
    # The burst of 10 always goes through: the KEY_LIST and 9 signatures.
    assert k["verified"] >= 9, k
    assert k["verified"] + res["busy"] == 60, (k, res["busy"])
    assert res["errors"] == 0
    # Every request type counts: after the flood, a KEY_LIST and a
    # malformed request are over the limit too.
    assert res["key_list_after"] == -EBUSY, res
    assert res["malformed_after"] == -EBUSY, res
    # One log line for the whole flood (at most one a minute per channel).
    lines = rate_limit_lines(err)
    assert len(lines) == 1, lines
    assert "1 request rate limited since the channel opened" in lines[0]
    assert "channel limit 1/s, burst 10" in lines[0]
    assert end["keyd_exit"] == 0


def test_key_rate_limit(keys):
    """--key-rate bounds one key across channels: with the channel's limit
    out of the way, 60 signatures at once get 10 through (2 s of 5/s) and
    the rest -EBUSY, counted as rate_limited and logged once."""
    p = run_client(keys, ["0,%s,%s" % keys["ec"]], "-m", "ratelimit",
                   "-n", "60", "-x", "--key-rate", "-x", "5",
                   "-x", "--rate-limit", "-x", "100000")
    res, end, err = finish(p)
    k = res["keys"][0]
    assert 10 <= k["verified"] <= 12, k
    assert k["verified"] + res["busy"] == 60, (k, res["busy"])
    assert res["stats"]["rate_limited"] == res["busy"], res["stats"]
    assert res["errors"] == 0
    # The key's limit is the key's: a KEY_LIST or a malformed request is
    # not a signature, and the channel's own limit is far away.
    assert res["key_list_after"] == 0, res
    assert res["malformed_after"] == -EBADMSG, res
    assert len(rate_limit_lines(err)) == 1, err[-4000:]
    assert "limit 5/s (burst 10) for the key" in err
    assert end["keyd_exit"] == 0


@pytest.mark.parametrize("call", ["open", "openat", "socket", "execve",
                                  "fork", "nodelay", "rcvbuf", "linger-len"])
def test_seccomp_bites(call):
    """keyd's real filter kills the process on a forbidden call; of the
    socket options only SO_LINGER, at its real size, is allowed (the
    control below sets it)."""
    p = bite(call)
    assert "sandboxed" in p.stdout, (p.stdout, p.stderr)
    if sanlib.refused_not_killed(call):
        assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
        assert sanlib.REFUSED in p.stdout, (p.stdout, p.stderr)
        return
    assert "NOT KILLED" not in p.stdout
    assert p.returncode == -SIGSYS, (p.returncode, p.stdout, p.stderr)


def test_seccomp_allows_keyd_calls():
    """Control: under the same filter, allowed calls do not kill."""
    p = bite("ok")
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    assert "still alive" in p.stdout


def bite(*args):
    """seccomp_bite under one filter; its scratch file removed after."""
    p = subprocess.run([BITE, *args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=60)
    for n in os.listdir("/tmp"):
        if n.startswith("seccomp-bite-"):
            os.unlink(os.path.join("/tmp", n))
    return p


# What keyd's filter still forbids with a PKCS#11 module (keyd_pkcs11.c):
# with read-only paths any write, create or truncation; with a writable
# one still unlink, exec, fork and sockets but the refused unix one.
PKCS11_FORBIDDEN = {
    "--pkcs11": ["openat-write", "openat-creat", "openat-trunc", "ftruncate",
                 "unlink", "socket", "execve", "fork", "nodelay"],
    "--pkcs11-write": ["unlink", "socket", "execve", "fork", "nodelay",
                       "rcvbuf"],
}


@pytest.mark.parametrize("mode,call", [(m, c) for m, calls in
                                       PKCS11_FORBIDDEN.items()
                                       for c in calls])
def test_seccomp_pkcs11_bites(mode, call):
    """keyd's filter for a PKCS#11 module adds what SoftHSM2 needs and
    nothing else: everything beyond it still kills."""
    p = bite(mode, call)
    assert "sandboxed" in p.stdout, (p.stdout, p.stderr)
    if sanlib.refused_not_killed(call):
        assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
        return
    assert "NOT KILLED" not in p.stdout
    assert p.returncode == -SIGSYS, (p.returncode, p.stdout, p.stderr)


@pytest.mark.parametrize("mode", ["--pkcs11", "--pkcs11-write"])
@pytest.mark.parametrize("call", ["ok", "unix-socket"])
def test_seccomp_pkcs11_allows_module_calls(mode, call):
    """Control: what SoftHSM2 does (read under a lock, stat, list; with a
    writable path rewrite a file) goes through, and syslog's unix socket
    is refused with EACCES without killing."""
    p = bite(mode, call)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    assert "still alive" in p.stdout
