# SPDX-License-Identifier: GPL-2.0-or-later
"""OCSP stapling (issue 10): `ocsp = FILE` after a `cert =` line.

A CA (openssl), a server certificate per frontend it signed, and OCSP
responses made in the test: by `openssl ocsp` acting as the responder
(-index index.txt -rsigner ca), and, for validities already over or about
to be, by python3-cryptography's OCSP builder signed by the same CA.  One
moatd (ocsp-check-interval = 1s) with five frontends:

  good      a good response: `openssl s_client -status` shows it stapled
  expired   nextUpdate already past: not stapled, logged
  other     a response about another certificate: not stapled, logged
  later     no file at the start (not stapled, logged); the file written
            while moatd runs is stapled within a few checks; replaced by
            an expired one, it is not stapled any more
  soon      valid for a few seconds: stapled, then, once nextUpdate passed,
            not stapled any more, logged
  reload    rewritten in place with the same size and mtime (the periodic
            check sees no change): `moatctl reload` reads it again
"""

import datetime
import os
import subprocess
import time

import pytest

import moatlib

FRONTENDS = ("good", "expired", "other", "later", "soon", "reload")


def run(*args, **kw):
    return subprocess.run(list(args), check=True, capture_output=True,
                          timeout=60, **kw)


class CA:
    def __init__(self, d):
        self.d = d
        self.key = os.path.join(d, "ca.key")
        self.crt = os.path.join(d, "ca.crt")
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
            "-keyout", self.key, "-out", self.crt, "-days", "30",
            "-subj", "/CN=moat test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature")
        self.index = os.path.join(d, "index.txt")
        open(self.index, "w").close()
        self.serial = 0x1000

    def issue(self, name):
        """A P-256 server certificate signed by the CA, in index.txt."""
        self.serial += 1
        key = os.path.join(self.d, name + ".key")
        csr = os.path.join(self.d, name + ".csr")
        crt = os.path.join(self.d, name + ".crt")
        ext = os.path.join(self.d, name + ".ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        old = os.umask(0o077)
        try:
            run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                "-out", csr, "-subj", "/CN=" + name)
        finally:
            os.umask(old)
        run("openssl", "x509", "-req", "-in", csr, "-CA", self.crt,
            "-CAkey", self.key, "-set_serial", str(self.serial),
            "-days", "30", "-extfile", ext, "-out", crt)
        os.chmod(crt, 0o644)
        expiry = (datetime.datetime.utcnow() + datetime.timedelta(days=30))
        with open(self.index, "a") as f:
            f.write("V\t%s\t\t%X\tunknown\t/CN=%s\n" % (
                expiry.strftime("%y%m%d%H%M%SZ"), self.serial, name))
        return crt, key

    def openssl_response(self, crt, out, ndays=1):
        """openssl ocsp as the responder, from index.txt."""
        req = out + ".req"
        run("openssl", "ocsp", "-issuer", self.crt, "-cert", crt,
            "-no_nonce", "-reqout", req)
        run("openssl", "ocsp", "-index", self.index, "-rsigner", self.crt,
            "-rkey", self.key, "-CA", self.crt, "-reqin", req,
            "-respout", out, "-ndays", str(ndays))
        return out

    def built_response(self, crt, out, this_update, next_update):
        """A response with the validity asked for (python3-cryptography)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.x509 import ocsp
        with open(crt, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        with open(self.crt, "rb") as f:
            ca = x509.load_pem_x509_certificate(f.read())
        with open(self.key, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), None)
        b = ocsp.OCSPResponseBuilder().add_response(
            cert=cert, issuer=ca, algorithm=hashes.SHA1(),
            cert_status=ocsp.OCSPCertStatus.GOOD, this_update=this_update,
            next_update=next_update, revocation_time=None,
            revocation_reason=None).responder_id(
            ocsp.OCSPResponderEncoding.HASH, ca)
        resp = b.sign(key, hashes.SHA256())
        with open(out, "wb") as f:
            f.write(resp.public_bytes(serialization.Encoding.DER))
        return out


def now():
    return datetime.datetime.utcnow()


def status(port):
    """What `openssl s_client -status` says of the stapled response."""
    moatlib.need_tool("openssl")
    r = subprocess.run(["openssl", "s_client", "-connect",
                        "127.0.0.1:%d" % port, "-status", "-tls1_3"],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=30)
    assert "BEGIN CERTIFICATE" in r.stdout, (r.stdout[-2000:], r.stderr)
    return r.stdout


def stapled(port):
    out = status(port)
    if "OCSP Response Status: successful" in out:
        return True
    assert "OCSP response: no response sent" in out, out[-3000:]
    return False


@pytest.fixture(scope="module")
def env(module_moat_factory, backends, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("ocsp"))
    ca = CA(d)
    certs = {name: ca.issue(name) for name in FRONTENDS + ("stranger",)}
    ocsp = {name: os.path.join(d, name + ".der") for name in FRONTENDS}
    ca.openssl_response(certs["good"][0], ocsp["good"])
    ca.built_response(certs["expired"][0], ocsp["expired"],
                      now() - datetime.timedelta(hours=2),
                      now() - datetime.timedelta(hours=1))
    ca.openssl_response(certs["stranger"][0], ocsp["other"])
    ca.built_response(certs["soon"][0], ocsp["soon"],
                      now() - datetime.timedelta(minutes=1),
                      now() + datetime.timedelta(seconds=6))
    ca.openssl_response(certs["reload"][0], ocsp["reload"], ndays=1)
    echo = backends.echo()
    m = module_moat_factory({
        name: {"backend": echo.address,
               "certs": [{"cert": certs[name][0], "key": certs[name][1],
                          "ocsp": ocsp[name]}]} for name in FRONTENDS},
        ocsp_check_interval="1s")
    return m, ca, certs, ocsp


def test_good_response_is_stapled(env):
    m, _, _, _ = env
    out = status(m.ports["good"])
    assert "OCSP Response Status: successful" in out, out[-3000:]
    assert "Cert Status: good" in out, out[-3000:]


def test_expired_response_is_not_stapled_and_logged(env):
    m, _, _, ocsp = env
    assert not stapled(m.ports["expired"])
    m.wait_log(r"frontend expired: ocsp %s \(line \d+\): not stapled: it "
               r"expired" % ocsp["expired"])


def test_response_for_another_certificate_is_not_stapled(env):
    m, _, _, ocsp = env
    assert not stapled(m.ports["other"])
    m.wait_log(r"frontend other: ocsp %s \(line \d+\): not stapled: it is "
               r"not about this certificate" % ocsp["other"])


def test_file_written_later_then_expired(env):
    m, ca, certs, ocsp = env
    m.wait_log(r"frontend later: ocsp %s \(line \d+\): not stapled: No "
               r"such file" % ocsp["later"])
    assert not stapled(m.ports["later"])
    ca.openssl_response(certs["later"][0], ocsp["later"] + ".tmp")
    os.replace(ocsp["later"] + ".tmp", ocsp["later"])
    moatlib.wait_for(lambda: stapled(m.ports["later"]), 15, 0.3,
                     "the new response to be stapled")
    start = m.log_size()
    ca.built_response(certs["later"][0], ocsp["later"] + ".tmp",
                      now() - datetime.timedelta(hours=2),
                      now() - datetime.timedelta(hours=1))
    os.replace(ocsp["later"] + ".tmp", ocsp["later"])
    m.wait_log(r"frontend later: ocsp \S+ \(line \d+\): not stapled: it "
               r"expired", start=start)
    moatlib.wait_for(lambda: not stapled(m.ports["later"]), 15, 0.3,
                     "the expired response to be dropped")


def test_response_that_expires_in_use_stops_being_stapled(env):
    m, _, _, _ = env
    # made valid for 6 s when the module started: stapled at first, unless
    # the machine was slow; either way, not once nextUpdate is past
    start = m.log_size()
    moatlib.wait_for(lambda: not stapled(m.ports["soon"]), 30, 0.5,
                     "the response to expire")
    m.wait_log(r"frontend soon: ocsp \S+ \(line \d+\): not stapled: it "
               r"expired", seconds=15)
    assert m.log_text().count("frontend soon: ocsp") >= 2, m.log()


def test_reload_reads_it_again(env):
    m, ca, certs, ocsp = env
    path = ocsp["reload"]
    before = status(m.ports["reload"])
    assert "OCSP Response Status: successful" in before
    st = os.stat(path)
    fresh = ca.openssl_response(certs["reload"][0], path + ".new", ndays=2)
    with open(fresh, "rb") as f:
        data = f.read()
    assert len(data) == st.st_size      # RSA CA: the same size
    with open(path, "r+b") as f:        # same inode, size and mtime
        f.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    time.sleep(2.5)                     # two periodic checks: no change seen
    assert status(m.ports["reload"]).split("Next Update:")[1][:30] == \
        before.split("Next Update:")[1][:30]
    m.ctl("reload", timeout=60)
    after = status(m.ports["reload"])
    assert "OCSP Response Status: successful" in after
    assert after.split("Next Update:")[1][:30] != \
        before.split("Next Update:")[1][:30], after[-3000:]
