# SPDX-License-Identifier: GPL-2.0-or-later
"""Keys on a PKCS#11 token (issue 10): a SoftHSM2 token made here holds an
ECDSA P-256 and an RSA-2048 key; moatd serves one frontend with both
(`key = pkcs11:...`, key-pin-file), keyd signs through the token.

- real clients (Python's ssl, gnutls-cli, openssl s_client) complete
  handshakes whose signatures keyd makes through the token, ECDSA and
  RSA-PSS, TLS 1.2 and 1.3, every byte echoed back;
- the memory of the workers and of the master holds no byte of either key
  (the keys' PEM files the token was filled from give the needles), and
  keyd's does (the control: the module runs inside keyd);
- keyd's root is its own: only the token directory, no other file, and a
  root that cannot be written; the chroot directory outside stays empty;
- reload and a killed keyd log in to the token again;
- a wrong PIN, a PIN in the URI, a token key without pkcs11-module, RSA
  key exchange with a token key are refused with the reason.
"""

import os
import signal
import subprocess

import pytest

import memscan
import moatlib

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "4711-moat"
HANDSHAKES = 50
KINDS = ("ecdsa", "rsa")
IDS = {"ecdsa": "01", "rsa": "02"}


def softhsm(env, *args):
    moatlib.need_tool("softhsm2-util")
    r = subprocess.run(["softhsm2-util", *args], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r.stdout


def chown_tree(top, user):
    import pwd
    pw = pwd.getpwnam(user)
    os.chown(top, pw.pw_uid, pw.pw_gid)
    for root, dirs, files in os.walk(top):
        for n in dirs + files:
            os.chown(os.path.join(root, n), pw.pw_uid, pw.pw_gid)


class Token:
    """A SoftHSM2 token in directory d, with one key of each kind; the
    PEM key files it was filled from stay here for the memory scan."""

    def __init__(self, d):
        if not os.path.exists(MODULE):
            pytest.skip("%s is missing (packaging/dev/setup installs "
                        "softhsm2)" % MODULE)
        self.dir = d
        self.tokens = os.path.join(d, "tokens")
        os.mkdir(self.tokens)
        self.conf = os.path.join(d, "softhsm2.conf")
        with open(self.conf, "w") as f:
            f.write("directories.tokendir = %s\nobjectstore.backend = file\n"
                    "log.level = ERROR\nslots.removable = false\n"
                    % self.tokens)
        self.env = dict(os.environ, SOFTHSM2_CONF=self.conf)
        softhsm(self.env, "--init-token", "--free", "--label", "moat",
                "--pin", PIN, "--so-pin", "0815-so")
        self.files = {}
        for kind in KINDS:
            cert, key = moatlib.make_cert(d, kind, name="tok-" + kind)
            pkcs8 = key + ".p8"
            subprocess.run(["openssl", "pkcs8", "-topk8", "-nocrypt", "-in",
                            key, "-out", pkcs8], check=True, timeout=60)
            softhsm(self.env, "--import", pkcs8, "--token", "moat",
                    "--label", "moat-" + kind, "--id", IDS[kind],
                    "--pin", PIN)
            os.unlink(pkcs8)
            self.files[kind] = (cert, key)
        # keyd runs as moat-keyd and logs in (SoftHSM2 writes then)
        chown_tree(self.tokens, "moat-keyd")
        self.pin = self.secret("pin", PIN + "\n")

    def secret(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o600)
        return path

    def uri(self, kind):
        return "pkcs11:token=moat;id=%%%s;type=private" % IDS[kind]

    def frontend(self, backend, pin=None):
        return {"backend": backend,
                "certs": [{"cert": self.files[k][0], "key": self.uri(k)}
                          for k in KINDS],
                "key-pin-file": pin or self.pin}

    def moat_opts(self):
        return {"pkcs11_module": MODULE, "pkcs11_allow_write": self.tokens}


@pytest.fixture(scope="module")
def token(tmp_path_factory):
    t = Token(str(tmp_path_factory.mktemp("pkcs11")))
    # moatd passes its environment to keyd, whose module reads it
    old = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = t.conf
    yield t
    if old is None:
        del os.environ["SOFTHSM2_CONF"]
    else:
        os.environ["SOFTHSM2_CONF"] = old


@pytest.fixture(scope="module")
def m(token, module_moat_factory, backends):
    echo = backends.echo()
    return module_moat_factory({"hsm": token.frontend(echo.address)},
                               workers=2, **token.moat_opts())


def keyd_signs(m):
    return moatlib.stats_keyd(m.stats())["signs"]


def openssl_handshake(port, version, sigalgs):
    moatlib.need_tool("openssl")
    r = subprocess.run(["openssl", "s_client", "-connect",
                        "127.0.0.1:%d" % port, "-tls" + version.replace(
                            ".", "_"), "-sigalgs", sigalgs, "-servername",
                        "localhost"],
                       input="", capture_output=True, text=True, timeout=30)
    return r.stdout + r.stderr


def test_keyd_states_its_sandbox(m, token):
    """keyd says at start what the module may do, and that is what it
    has: a root with the token directory and nothing else, which nobody
    can write, and the filter in force."""
    text = m.log_text()
    assert "pkcs11: module %s loaded before the sandbox; keyd's root holds " \
           "only %s (writable) and nothing else" % (MODULE, token.tokens) \
        in text, text[-3000:]
    # PKCS#11 allows one operation at a time on a session: the automatic
    # rate limit counts one signer for a token key, not every thread
    assert text.count("(a token key: one operation at a time)") >= 2, \
        text[-3000:]
    (keyd,) = m.keyd_pids()
    root = "/proc/%d/root" % keyd
    seen = []
    for top, dirs, files in os.walk(root):
        for n in dirs + files:
            seen.append(os.path.join(top, n)[len(root):])
    parents = set()
    p = token.tokens
    while p != "/":
        parents.add(p)
        p = os.path.dirname(p)
    stray = [s for s in seen if s not in parents and
             not s.startswith(token.tokens + "/")]
    assert stray == [], stray
    assert any(s.endswith(".object") for s in seen), seen
    # the tmpfs root is read-only, for root too; the host's chroot is empty
    with pytest.raises(OSError) as e:
        open(os.path.join(root, "planted"), "w").close()
    assert e.value.errno == 30, e.value            # EROFS
    assert os.listdir("/var/lib/moat/empty") == []
    st = moatlib.proc_status(keyd)
    assert st["Seccomp"] == "2", st
    assert st["CapEff"] == "0000000000000000", st
    assert st["NoNewPrivs"] == "1", st


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_handshakes_sign_through_the_token(m, version):
    """50 handshakes per key (TLS 1.2: the cipher suite picks the key) or
    50 in all (TLS 1.3), each echoing its 4 KiB both ways; keyd signs
    every one of them, through the token: it holds no key file."""
    before = keyd_signs(m)
    suites = {"1.2": ["ECDHE-ECDSA-AES128-GCM-SHA256",
                      "ECDHE-RSA-AES128-GCM-SHA256"], "1.3": [None]}[version]
    for suite in suites:
        ctx = moatlib.client_context(version)
        if suite:
            ctx.set_ciphers(suite)
        for i in range(HANDSHAKES):
            with moatlib.tls_connect(m.ports["hsm"], version, ctx=ctx) as s:
                assert s.version() == "TLSv" + version
                payload = moatlib.pattern(4096, seed=i)
                s.sendall(payload)
                assert moatlib.recv_exact(s, len(payload)) == payload
    assert keyd_signs(m) - before == HANDSHAKES * len(suites)


@pytest.mark.parametrize("version,sigalgs,expect", [
    ("1.3", "ECDSA+SHA256", "ECDSA"),
    ("1.3", "rsa_pss_rsae_sha256", "RSA-PSS"),
    ("1.2", "ECDSA+SHA256", "ECDSA"),
    ("1.2", "rsa_pss_rsae_sha256", "RSA-PSS"),
])
def test_openssl_each_key(m, version, sigalgs, expect):
    """openssl s_client offering only one kind of signature gets that key's
    certificate and a valid signature made by the token."""
    before = keyd_signs(m)
    out = openssl_handshake(m.ports["hsm"], version, sigalgs)
    assert "Peer signature type: %s" % expect in out, out[-3000:]
    assert "Verification" in out or "Verify return code" in out, out[-3000:]
    assert keyd_signs(m) == before + 1


def test_gnutls_cli(m):
    moatlib.need_tool("gnutls-cli")
    before = keyd_signs(m)
    r = subprocess.run(["gnutls-cli", "--insecure", "-p", str(m.ports["hsm"]),
                        "127.0.0.1"], input="hello token\n",
                       capture_output=True, text=True, timeout=30)
    assert "Handshake was completed" in r.stdout, (r.stdout, r.stderr)
    assert "hello token" in r.stdout, r.stdout
    assert keyd_signs(m) == before + 1


def test_no_key_bytes_in_workers_or_master(m, token):
    """After the handshakes above: nothing of either key in the workers or
    the master; keyd's memory (the module runs there) shows the scan
    works."""
    needles = {}
    for kind in KINDS:
        needles.update(memscan.key_needles(token.files[kind][1], kind + ":"))
    workers = m.workers()
    assert len(workers) == 2, workers
    found = []
    for pid, what in [(m.proc.pid, "master")] + [(w, "worker") for w in
                                                 workers]:
        hits, info = memscan.scan(pid, needles)
        assert info["bytes"] > 1 << 20, (what, info)
        found += ["%s %d holds %s" % (what, pid, label) for label in hits]
    assert found == [], found
    # The control: a process that holds both keys (parsed by OpenSSL, as
    # the tests' own library does) shows every secret number to the same
    # scan.  keyd's own memory is not the control here: SoftHSM2 keeps a
    # token's keys encrypted and decrypts one only for an operation.
    numbers = {label: b for label, b in needles.items()
               if memscan.encoding_of(label) != "pem"}
    holder = subprocess.Popen(
        ["/usr/bin/python3", "-c", HOLDER] + [token.files[k][1] for k in KINDS],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        hits, _ = memscan.scan(holder.pid, numbers)
    finally:
        holder.kill()
        holder.wait(10)
    missing = {memscan.part_of(label) for label in numbers} - \
        {memscan.part_of(label) for label in hits}
    assert missing == set(), missing
    for k in m.keyd_pids():
        in_keyd, _ = memscan.scan(k, numbers)
        print("keyd %d holds in the clear: %s" % (k, sorted(in_keyd)))


HOLDER = """
import sys
from cryptography.hazmat.primitives import serialization
keys = [serialization.load_pem_private_key(open(p, "rb").read(), None)
        for p in sys.argv[1:]]
nums = [k.private_numbers() for k in keys]
print("holding", flush=True)
sys.stdin.read()
"""


def test_reload_and_keyd_restart_log_in_again(m):
    """A reload loads both keys again (a new login on the token), and so
    does the keyd the master starts after one is killed."""
    r = m.ctl("reload")
    assert "reloaded 2 certificates and keys" in r.stdout, (r.stdout,
                                                          r.stderr)
    (old,) = m.keyd_pids()
    os.kill(old, signal.SIGKILL)
    moatlib.wait_for(lambda: m.keyd_pids() and m.keyd_pids() != [old] and
                     m.stats().get("keyd_keys") == 2, 30,
                     what="a new keyd holding both keys")
    before = keyd_signs(m)
    with moatlib.tls_connect(m.ports["hsm"], "1.3") as s:
        assert moatlib.round_trip(s)
    assert keyd_signs(m) == before + 1


def test_wrong_pin_refuses_start(token, moat_factory, backends):
    """keyd tries the PIN once (a retry would only spend the token's
    counter), and moatd does not start, saying why."""
    bad = token.secret("bad-pin", "0000\n")
    mo = moat_factory({"hsm": token.frontend(backends.echo().address,
                                             pin=bad)},
                      start=False, **token.moat_opts())
    r = subprocess.run([moatlib.MOATD, "-c", mo.conf], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode != 0, r.stderr[-3000:]
    assert "the token refused the PIN from the PIN file" in r.stderr, \
        r.stderr[-3000:]


def check(path):
    r = subprocess.run([moatlib.MOATD, "-c", path, "-t"], capture_output=True,
                       text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


@pytest.mark.parametrize("case,needle", [
    ("pin-value", "the URI carries pin-value; give the token's PIN with "
                  "key-pin-file instead"),
    ("no-module", "a key on a PKCS#11 token needs pkcs11-module = in [moat]"),
    ("allow-only", "pkcs11-allow or pkcs11-allow-write without "
                   "pkcs11-module"),
    ("rsa-kx", "allow-rsa-kx cannot be used with a key on a PKCS#11 token"),
    ("dotdot", "write the path without '.', '..' or '//'"),
])
def test_config_refusals(token, tmp_path, case, needle):
    fe = token.frontend("127.0.0.1:9")
    moat = {"control": str(tmp_path / "c.sock"), "keyd": moatlib.KEYD,
            "pkcs11-module": MODULE, "pkcs11-allow-write": token.tokens}
    if case == "pin-value":
        fe["certs"][0]["key"] = token.uri("ecdsa") + "?pin-value=" + PIN
    elif case == "no-module":
        del moat["pkcs11-module"], moat["pkcs11-allow-write"]
    elif case == "allow-only":
        del moat["pkcs11-module"]
        fe["certs"] = [{"cert": token.files["ecdsa"][0],
                        "key": token.files["ecdsa"][1]}]
        del fe["key-pin-file"]
    elif case == "rsa-kx":
        fe["allow-rsa-kx"] = "yes"
    elif case == "dotdot":
        moat["pkcs11-allow-write"] = token.tokens + "/../tokens"
    fe["listen"] = "127.0.0.1:%d" % moatlib.free_port()
    path = tmp_path / "moat.conf"
    path.write_text(moatlib.render_config(moat, {"hsm": fe}))
    rc, out = check(str(path))
    assert rc != 0, out
    assert needle in out, out
    assert str(path) + ":" in out, out     # FILE:LINE


def test_config_check_notes_token_keys(token, tmp_path):
    fe = token.frontend("127.0.0.1:9")
    fe["listen"] = "127.0.0.1:%d" % moatlib.free_port()
    moat = {"control": str(tmp_path / "c.sock"), "keyd": moatlib.KEYD,
            "pkcs11-module": MODULE, "pkcs11-allow-write": token.tokens}
    path = tmp_path / "moat.conf"
    path.write_text(moatlib.render_config(moat, {"hsm": fe}))
    rc, out = check(str(path))
    assert rc == 0, out
    assert "is on a PKCS#11 token; keyd checks it against certificate" in out
