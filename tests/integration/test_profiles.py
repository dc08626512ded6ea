# SPDX-License-Identifier: GPL-2.0-or-later
"""Named profiles (issue 10): for each of modern, intermediate, compat and
fips, a client (openssl s_client) offering only a version, cipher or group
the profile excludes is refused, and one within it gets through with what
it asked for.  moatd -t and start-up report GnuTLS's FIPS mode and refuse
a fips frontend with an Ed25519 or short RSA key, with FILE:LINE."""

import os
import re
import subprocess

import pytest

import moatlib
import sanlib

PROFILES = ("modern", "intermediate", "compat", "fips")


@pytest.fixture(scope="module")
def env(module_moat_factory, backends, certs):
    moatlib.need_tool("openssl")
    cert, key = certs["ecdsa"]
    be = backends.echo()
    return module_moat_factory({
        p: {"cert": cert, "key": key, "backend": be.address, "profile": p}
        for p in PROFILES})


def s_client(port, *args):
    """(ok, output): one handshake and a line echoed back."""
    r = subprocess.run(
        ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
         "-brief", *args], input=b"", capture_output=True, timeout=30)
    out = (r.stdout + r.stderr).decode(errors="replace")
    return "CONNECTION ESTABLISHED" in out and r.returncode == 0, out


# (profile, s_client arguments, accepted?, what the output must say)
CASES = [
    ("modern", ["-tls1_3"], True, "Protocol version: TLSv1.3"),
    ("modern", ["-tls1_2"], False, None),
    ("intermediate", ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"],
     True, "Ciphersuite: ECDHE-ECDSA-AES128-GCM-SHA256"),
    ("intermediate", ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"],
     False, None),
    ("intermediate", ["-tls1_3", "-ciphersuites",
                      "TLS_CHACHA20_POLY1305_SHA256"],
     True, "Ciphersuite: TLS_CHACHA20_POLY1305_SHA256"),
    ("compat", ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"],
     True, "Ciphersuite: ECDHE-ECDSA-AES128-SHA"),
    ("compat", ["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"], False, None),
    ("compat", ["-tls1_3"], True, "Protocol version: TLSv1.3"),
    ("fips", ["-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"],
     True, "Ciphersuite: TLS_AES_128_GCM_SHA256"),
    ("fips", ["-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"],
     False, None),
    ("fips", ["-tls1_3", "-groups", "X25519"], False, None),
    ("fips", ["-tls1_3", "-groups", "P-384"], True,
     "Protocol version: TLSv1.3"),
    ("fips", ["-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"],
     False, None),
    ("fips", ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"],
     True, "Ciphersuite: ECDHE-ECDSA-AES256-GCM-SHA384"),
]


@pytest.mark.parametrize("profile,args,ok,says", CASES,
                         ids=["%s-%s" % (c[0], "-".join(c[1]).strip("-"))
                              for c in CASES])
def test_profile(env, profile, args, ok, says):
    got, out = s_client(env.ports[profile], *args)
    assert got == ok, out
    if says:
        assert says in out, out


def conf_text(cert, key, extra):
    return ("[moat]\nuser = moat\nkeyd-user = moat-keyd\n\n"
            "[frontend a]\nlisten = 127.0.0.1:%d\nbackend = 127.0.0.1:1\n"
            "cert = %s\nkey = %s\n%s" % (moatlib.free_port(), cert, key,
                                         extra))


def moatd_t(path):
    r = subprocess.run([moatlib.MOATD, "-c", str(path), "-t"],
                       capture_output=True, text=True, timeout=60)
    sanlib.check(r.stderr, "moatd -t", r.returncode)
    return r.returncode, r.stdout + r.stderr


def test_fips_mode_reported(tmp_path, certs):
    conf = tmp_path / "moat.conf"
    conf.write_text(conf_text(*certs["ecdsa"], "profile = fips\n"))
    rc, out = moatd_t(conf)
    assert rc == 0, out
    assert re.search(r"GnuTLS FIPS 140 mode: (on|off)", out), out


def test_fips_refuses_weak_keys(tmp_path):
    d = str(tmp_path)
    ed = moatlib.make_cert(d, "ed25519", name="ed")
    rsa = os.path.join(d, "rsa1024")
    subprocess.run(["openssl", "req", "-x509", "-nodes", "-days", "3",
                    "-newkey", "rsa:1024", "-keyout", rsa + ".key", "-out",
                    rsa + ".crt", "-subj", "/CN=short"], check=True,
                   capture_output=True, timeout=60)
    os.chmod(rsa + ".key", 0o600)
    conf = tmp_path / "ed.conf"
    conf.write_text(conf_text(*ed, "profile = fips\n"))
    rc, out = moatd_t(conf)
    assert rc == 1 and "%s:8: frontend a: profile fips: the certificate's " \
        "key is EdDSA (Ed25519)" % conf in out, out
    conf = tmp_path / "rsa.conf"
    conf.write_text(conf_text(rsa + ".crt", rsa + ".key", "profile = fips\n"))
    rc, out = moatd_t(conf)
    assert rc == 1 and "%s:8: frontend a: profile fips: cert %s.crt: its " \
        "RSA key has 1024 bits" % (conf, rsa) in out, out
    # start-up refuses it the same way
    r = subprocess.run([moatlib.MOATD, "-c", str(conf)], capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode != 0 and "RSA key has 1024 bits" in r.stderr + \
        r.stdout, r
