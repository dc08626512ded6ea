# SPDX-License-Identifier: GPL-2.0-or-later
"""SNI and several certificates per frontend (issue 10).

One moatd, two workers, one frontend with four cert/key pairs, each key
in keyd:

  0  ECDSA  default.test   the default
  1  ECDSA  a.test
  2  RSA    b.test         the same name twice: GnuTLS picks by the
  3  ECDSA  b.test         client's signature algorithms

gnutls-cli and openssl s_client with two different names get two different
certificates (SHA-256 of the DER); without SNI, or with a name no
certificate has, the default; for b.test a client offering only ECDSA
signature algorithms gets the ECDSA certificate and one offering only
RSA-PSS the RSA one, in TLS 1.2 and 1.3.  The connection's log line says
which certificate it was shown.  Last, a rotation (`moatctl reload` with
new files for every pair) moves every name to its new certificate, keyd
drops the four old keys once no worker holds them, and the worker memory
scan (memscan.py, as test_keymem.py) finds no key bytes of any pair of
either generation in the workers or the master, while it does find the
live keys in keyd (the scan's positive control).
"""

import os
import re
import shutil
import ssl
import subprocess
import tempfile
import hashlib

import pytest

import memscan
import moatlib
import reneglib

PAIRS = [("ecdsa", "default.test"), ("ecdsa", "a.test"),
         ("rsa", "b.test"), ("ecdsa", "b.test")]


def make_pair(directory, i, name="pair"):
    kind, dns = PAIRS[i]
    return moatlib.make_cert(directory, kind, cn=dns,
                             name="%s%d" % (name, i), san="DNS:" + dns)


def pem_fp(text):
    """SHA-256 of the first PEM certificate in text."""
    m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----",
                  text, re.S)
    assert m, text[-2000:]
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(m.group(0))).hexdigest()


def openssl_fp(port, servername=None, version="1.3", sigalgs=None):
    moatlib.need_tool("openssl")
    args = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
            "-tls1_3" if version == "1.3" else "-tls1_2"]
    args += ["-servername", servername] if servername else ["-noservername"]
    if sigalgs:
        args += ["-sigalgs", sigalgs]
    r = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=30)
    assert "BEGIN CERTIFICATE" in r.stdout, (r.stdout[-2000:], r.stderr)
    return pem_fp(r.stdout)


def gnutls_fp(port, servername, tmp):
    moatlib.need_tool("gnutls-cli")
    out = os.path.join(tmp, "peer-%s.pem" % servername)
    r = subprocess.run(["gnutls-cli", "--insecure", "-p", str(port),
                        "--sni-hostname", servername, "--save-cert", out,
                        "127.0.0.1"], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=30)
    assert os.path.exists(out), (r.stdout[-2000:], r.stderr[-2000:])
    with open(out) as f:
        return pem_fp(f.read())


class Run:
    def __init__(self, m, d, files):
        self.m = m
        self.dir = d
        self.files = files                      # the live paths
        self.gens = [[] for _ in PAIRS]         # copies of every key
        self.keep()

    def port(self):
        return self.m.ports["multi"]

    def fps(self):
        return [reneglib.cert_fp(c) for c, _ in self.files]

    def keep(self):
        for i, (_, key) in enumerate(self.files):
            copy = os.path.join(self.dir, "key%d-gen%d" % (i, len(self.gens[i])))
            shutil.copyfile(key, copy)
            self.gens[i].append(copy)


@pytest.fixture(scope="module")
def run(module_moat_factory, backends, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("sni"))
    files = [make_pair(d, i) for i in range(len(PAIRS))]
    echo = backends.echo()
    m = module_moat_factory({"multi": {
        "backend": echo.address,
        "certs": [{"cert": c, "key": k} for c, k in files]}}, workers=2)
    return Run(m, d, files)


def test_four_distinct_certificates(run):
    assert len(set(run.fps())) == len(PAIRS)
    assert run.m.stats()["keyd_keys"] == len(PAIRS)


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_openssl_two_names_two_certificates(run, version):
    fps = run.fps()
    assert openssl_fp(run.port(), "a.test", version) == fps[1]
    assert openssl_fp(run.port(), "default.test", version) == fps[0]


def test_gnutls_cli_two_names_two_certificates(run, tmp_path):
    fps = run.fps()
    assert gnutls_fp(run.port(), "a.test", str(tmp_path)) == fps[1]
    assert gnutls_fp(run.port(), "default.test", str(tmp_path)) == fps[0]


def test_no_sni_or_unknown_name_gets_the_default(run, tmp_path):
    fps = run.fps()
    assert openssl_fp(run.port(), None) == fps[0]
    assert openssl_fp(run.port(), "nobody.test") == fps[0]
    assert gnutls_fp(run.port(), "nobody.test", str(tmp_path)) == fps[0]
    # Python's ssl sends no SNI to an IP address
    assert reneglib.peer_fp(run.port()) == fps[0]


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_signature_algorithms_pick_rsa_or_ecdsa(run, version):
    fps = run.fps()
    assert openssl_fp(run.port(), "b.test", version,
                      sigalgs="ECDSA+SHA256") == fps[3]
    assert openssl_fp(run.port(), "b.test", version,
                      sigalgs="rsa_pss_rsae_sha256") == fps[2]


def test_log_line_names_the_certificate(run):
    start = run.m.log_size()
    openssl_fp(run.port(), "a.test")
    run.m.wait_log(r"conn client=\S+ frontend=multi sni=a\.test .* cert=1\b",
                   start=start)
    start = run.m.log_size()
    openssl_fp(run.port(), "b.test", sigalgs="ECDSA+SHA256")
    run.m.wait_log(r"conn client=\S+ frontend=multi sni=b\.test .* cert=3\b",
                   start=start)


def scan_report(pid, needles, what):
    found, info = memscan.scan(pid, needles)
    assert info["bytes"] > 1 << 20, (what, pid, info)
    return ["%s %d holds %s" % (what, pid, label) for label in sorted(found)]


def test_rotation_of_every_pair(run):
    m = run.m
    d = tempfile.mkdtemp(prefix="new.", dir=run.dir)
    for i, (cert, key) in enumerate(run.files):
        c, k = make_pair(d, i, name="new")
        shutil.copyfile(k, key + ".new")
        os.chmod(key + ".new", 0o600)
        shutil.copyfile(c, cert + ".new")
        os.replace(key + ".new", key)
        os.replace(cert + ".new", cert)
    run.keep()
    fps = run.fps()
    start = m.log_size()
    r = m.ctl("reload", timeout=60)
    assert "reloaded 4 certificates and keys (generation 1)" in r.stdout, \
        r.stdout
    assert openssl_fp(run.port(), "a.test") == fps[1]
    assert openssl_fp(run.port(), None) == fps[0]
    assert openssl_fp(run.port(), "b.test", sigalgs="ECDSA+SHA256") == fps[3]
    assert openssl_fp(run.port(), "b.test",
                      sigalgs="rsa_pss_rsae_sha256") == fps[2]
    # no session holds generation 0: its four keys leave keyd
    m.wait_log(r"frontend multi: no session uses certificate generation 0 "
               r"any more; keyd dropped its 4 keys", start=start)
    moatlib.wait_for(lambda: m.stats()["keyd_keys"] == len(PAIRS), 10,
                     what="keyd to hold the four new keys only")
    shutil.rmtree(d, ignore_errors=True)

    needles = {}
    for i, gens in enumerate(run.gens):
        for g, path in enumerate(gens):
            needles.update(memscan.key_needles(path, "pair%d-gen%d:" % (i, g)))
    workers = m.workers()
    assert len(workers) == 2, workers
    held = scan_report(m.proc.pid, needles, "master")
    for w in workers:
        held += scan_report(w, needles, "worker")
    assert held == [], held
    # positive control: keyd holds every live key's secret numbers
    live = {}
    for i, gens in enumerate(run.gens):
        live.update({label: b for label, b in memscan.key_needles(
            gens[-1], "pair%d:" % i).items()
            if memscan.encoding_of(label) != "pem"})
    seen = set()
    for k in m.keyd_pids():
        found, _ = memscan.scan(k, live)
        seen |= {memscan.part_of(label) for label in found}
    assert seen == {memscan.part_of(label) for label in live}, \
        sorted({memscan.part_of(label) for label in live} - seen)
