# SPDX-License-Identifier: GPL-2.0-or-later
"""Client certificates (issue 10): verify = required refuses a client
without a certificate (alert certificate_required) and optional lets it
through; a good certificate's CN reaches the backend in the PROXY v2
SSL_CN TLV (client flags and verify 0 in the SSL TLV) and the log line's
cn=; a revoked one (CRL made here) and one of another CA are refused
under both, with their alerts and log reasons; a TLS 1.2 renegotiation
keeps the identity (the same certificate passes, another is refused).
Clients: Python's ssl
(load_cert_chain), openssl s_client -cert and gnutls-cli
--x509certfile.  Certificates are made here with python3-cryptography."""

import datetime
import os
import re
import socket
import ssl
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import moatlib
import reneglib
import sanlib
from pplib import PPBackend

PP2_CLIENT_SSL, PP2_CLIENT_CERT_CONN, PP2_CLIENT_CERT_SESS = 1, 2, 4
SSL_CN = 0x22


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path, data, mode=0o644):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    return path


class PKI:
    """Two CAs; clients signed by them; a CRL of the first revoking one."""

    def __init__(self, d):
        self.d = d
        now = datetime.datetime.now(datetime.timezone.utc)
        self.now = now
        self.ca_key, self.ca = self._ca("moat test CA")
        self.other_key, self.other = self._ca("another CA")
        self.ca_file = _write(os.path.join(d, "ca.pem"), self._pem(self.ca))
        self.good = self.client("alice.client", self.ca_key, self.ca, "good")
        self.bob = self.client("bob.client", self.ca_key, self.ca, "bob")
        self.revoked = self.client("mallory", self.ca_key, self.ca, "revoked")
        self.foreign = self.client("eve", self.other_key, self.other,
                                   "foreign")
        serial = x509.load_pem_x509_certificate(
            open(self.revoked[0], "rb").read()).serial_number
        crl = (x509.CertificateRevocationListBuilder()
               .issuer_name(self.ca.subject)
               .last_update(now - datetime.timedelta(minutes=5))
               .next_update(now + datetime.timedelta(days=7))
               .add_revoked_certificate(
                   x509.RevokedCertificateBuilder().serial_number(serial)
                   .revocation_date(now - datetime.timedelta(minutes=1))
                   .build())
               .sign(self.ca_key, hashes.SHA256()))
        self.crl_file = _write(os.path.join(d, "crl.pem"),
                               crl.public_bytes(serialization.Encoding.PEM))
        crl = (x509.CertificateRevocationListBuilder()
               .issuer_name(self.other.subject)
               .last_update(now - datetime.timedelta(minutes=5))
               .next_update(now + datetime.timedelta(days=7))
               .sign(self.other_key, hashes.SHA256()))
        self.foreign_crl = _write(os.path.join(d, "foreign-crl.pem"),
                                  crl.public_bytes(serialization.Encoding.PEM))

    @staticmethod
    def _pem(cert):
        return cert.public_bytes(serialization.Encoding.PEM)

    def _ca(self, cn):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(_name(cn))
                .issuer_name(_name(cn)).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(self.now - datetime.timedelta(hours=1))
                .not_valid_after(self.now + datetime.timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0),
                               critical=True)
                .add_extension(x509.KeyUsage(
                    digital_signature=True, key_cert_sign=True, crl_sign=True,
                    content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False,
                    encipher_only=False, decipher_only=False), critical=True)
                .sign(key, hashes.SHA256()))
        return key, cert

    def client(self, cn, ca_key, ca, name):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(_name(cn))
                .issuer_name(ca.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(self.now - datetime.timedelta(hours=1))
                .not_valid_after(self.now + datetime.timedelta(days=30))
                .add_extension(x509.ExtendedKeyUsage(
                    [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]),
                    critical=False)
                .sign(ca_key, hashes.SHA256()))
        c = _write(os.path.join(self.d, name + ".crt"), self._pem(cert))
        k = _write(os.path.join(self.d, name + ".key"), key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()), 0o600)
        return c, k


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return PKI(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture(scope="module")
def env(module_moat_factory, backends, certs, pki):
    cert, key = certs["ecdsa"]
    be = {n: PPBackend(backends) for n in ("req", "opt")}
    fe = {"cert": cert, "key": key, "ca-file": pki.ca_file,
          "crl-file": pki.crl_file, "proxy-protocol": "v2"}
    m = module_moat_factory({
        "req": dict(fe, backend=be["req"].address, verify="required"),
        "opt": dict(fe, backend=be["opt"].address, verify="optional"),
    })
    return m, be


def ctx_with(cert=None, version=None):
    ctx = moatlib.client_context(version)
    if cert is not None:
        ctx.load_cert_chain(*cert)
    return ctx


def echo(s, n=64 * 1024):
    data = os.urandom(n)
    s.sendall(data)
    assert moatlib.recv_exact(s, n) == data
    s.close()


def refused(port, ctx):
    """The handshake, then a read: the server's alert (in TLS 1.3 it
    follows the client's Finished), as OpenSSL names it."""
    try:
        s = moatlib.tls_connect(port, ctx=ctx, timeout=10)
        s.sendall(b"x")
        got = s.recv(1)
    except (ssl.SSLError, ConnectionResetError) as e:
        return str(e)
    pytest.fail("not refused (read %r)" % got)


def conn_line(m, regex, start):
    return m.wait_log(r"(?m)conn client=\S+ " + regex, start=start)


@pytest.mark.parametrize("version", ["1.3", "1.2"])
def test_required_good_cert_cn_to_backend(env, pki, version):
    m, be = env
    start = m.log_size()
    s = moatlib.tls_connect(m.ports["req"], ctx=ctx_with(pki.good, version))
    echo(s)
    h = be["req"].header()
    assert h["ssl_client"] == (PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN |
                               PP2_CLIENT_CERT_SESS), h
    assert h["ssl_verify"] == 0, h
    assert h["ssl"].get(SSL_CN) == b"alice.client", h
    conn_line(m, r"frontend=req .*tls=TLS.* cn=alice\.client\b",
              start)


def test_required_no_cert_refused(env):
    m, be = env
    start = m.log_size()
    err = refused(m.ports["req"], ctx_with(None, "1.3"))
    assert "CERTIFICATE_REQUIRED" in err, err
    conn_line(m, r"frontend=req .*reason=\"handshake failed: no client "
              r"certificate \(verify = required\); alert Certificate is "
              r"required\".* cn=-", start)
    assert be["req"].q.empty(), "the backend was reached"


def test_required_no_cert_refused_tls12(env):
    m, be = env
    start = m.log_size()
    err = refused(m.ports["req"], ctx_with(None, "1.2"))
    assert "HANDSHAKE_FAILURE" in err, err
    conn_line(m, r"frontend=req .*reason=\"handshake failed: no client "
              r"certificate", start)


def test_optional_no_cert_passes(env):
    m, be = env
    start = m.log_size()
    s = moatlib.tls_connect(m.ports["opt"], ctx=ctx_with(None))
    echo(s)
    h = be["opt"].header()
    assert h["ssl_client"] == PP2_CLIENT_SSL, h
    assert h["ssl_verify"] != 0, h
    assert SSL_CN not in h["ssl"], h
    conn_line(m, r"frontend=opt .*tls=TLS.* cn=- ", start)


def test_optional_good_cert(env, pki):
    m, be = env
    s = moatlib.tls_connect(m.ports["opt"], ctx=ctx_with(pki.good))
    echo(s)
    h = be["opt"].header()
    assert h["ssl_verify"] == 0 and h["ssl"].get(SSL_CN) == b"alice.client"


@pytest.mark.parametrize("fe", ["req", "opt"])
def test_revoked_refused(env, pki, fe):
    m, be = env
    start = m.log_size()
    err = refused(m.ports[fe], ctx_with(pki.revoked, "1.3"))
    assert "CERTIFICATE_REVOKED" in err, err
    conn_line(m, r"frontend=%s .*reason=\"handshake failed: client "
              r"certificate refused: .*revoked.*alert Certificate was "
              r"revoked\"" % fe, start)
    assert be[fe].q.empty(), "the backend was reached"


@pytest.mark.parametrize("fe", ["req", "opt"])
def test_other_ca_refused(env, pki, fe):
    m, be = env
    start = m.log_size()
    err = refused(m.ports[fe], ctx_with(pki.foreign, "1.2"))
    assert "UNKNOWN_CA" in err, err
    conn_line(m, r"frontend=%s .*reason=\"handshake failed: client "
              r"certificate refused: .*issuer is unknown.*alert CA is unknown\"" % fe,
              start)


def test_openssl_s_client_cert(env, pki):
    m, be = env
    moatlib.need_tool("openssl")
    p = subprocess.Popen(
        ["openssl", "s_client", "-connect", "127.0.0.1:%d" % m.ports["req"],
         "-cert", pki.good[0], "-key", pki.good[1], "-quiet"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    try:
        p.stdin.write(b"hello\n")
        p.stdin.flush()
        h = be["req"].header(timeout=20)
        assert p.stdout.readline() == b"hello\n"
    finally:
        p.kill()
        p.communicate(timeout=10)
    assert h["ssl"].get(SSL_CN) == b"alice.client", h


def test_gnutls_cli_revoked(env, pki):
    m, be = env
    moatlib.need_tool("gnutls-cli")
    r = subprocess.run(
        ["gnutls-cli", "--insecure", "--port", str(m.ports["req"]),
         "--x509certfile", pki.revoked[0], "--x509keyfile", pki.revoked[1],
         "127.0.0.1"], input=b"hello\n", capture_output=True, timeout=30)
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode != 0 and "revoked" in out.lower(), out
    assert be["req"].q.empty()


def _reneg_round(m, s, before, n):
    """moatctl rekey req, then traffic until the renegotiation is done."""
    assert reneglib.rekey(m, "req") == 1
    for _ in range(50):
        s.sendall(b"r" * 64)
        assert moatlib.recv_exact(s, 64) == b"r" * 64
        d = reneglib.delta(before, reneglib.counters(m))
        if d["renegotiations_completed"] >= n:
            return
    pytest.fail("no renegotiation: %r" % d)


def test_renegotiation_same_identity(env, pki):
    """A TLS 1.2 renegotiation asks for the certificate again; the same
    one passes and the connection, and its CN, carry on."""
    m, be = env
    start = m.log_size()
    before = reneglib.counters(m)
    s = moatlib.tls_connect(m.ports["req"], ctx=ctx_with(pki.good, "1.2"))
    assert be["req"].header()["ssl"].get(SSL_CN) == b"alice.client"
    _reneg_round(m, s, before, 1)
    echo(s)
    conn_line(m, r"frontend=req .*tls=TLS1\.2 .* cn=alice\.client\b", start)


def test_renegotiation_other_identity_refused(env, pki):
    """Another identity in the renegotiation (bob, same CA) is refused
    (GnuTLS: GNUTLS_E_SESSION_USER_ID_CHANGED) and ends the connection
    instead of silently changing who the backend was told it is."""
    m, be = env
    start = m.log_size()
    s = moatlib.tls_connect(m.ports["req"], ctx=ctx_with(pki.good, "1.2"))
    assert be["req"].header()["ssl"].get(SSL_CN) == b"alice.client"
    s.context = ctx_with(pki.bob, "1.2")	# OpenSSL: the cert sent next
    assert reneglib.rekey(m, "req") == 1
    with pytest.raises((ssl.SSLError, ConnectionResetError, EOFError,
                        moatlib.UncleanEnd)):
        for _ in range(50):
            s.sendall(b"q" * 64)
            if moatlib.recv_exact(s, 64) != b"q" * 64:
                break
    s.close()
    conn_line(m, r"frontend=req .*reason=\"renegotiation failed: .*"
              r"cn=alice\.client\b", start)


def test_verify_needs_ca_file(tmp_path, certs):
    cert, key = certs["ecdsa"]
    conf = tmp_path / "moat.conf"
    conf.write_text("[moat]\nuser = moat\nkeyd-user = moat-keyd\n\n"
                    "[frontend a]\nlisten = 127.0.0.1:%d\n"
                    "backend = 127.0.0.1:1\ncert = %s\nkey = %s\n"
                    "verify = required\n" % (moatlib.free_port(), cert, key))
    r = subprocess.run([moatlib.MOATD, "-c", str(conf), "-t"],
                       capture_output=True, text=True, timeout=30)
    sanlib.check(r.stderr, "moatd -t", r.returncode)
    assert r.returncode == 1
    assert "%s:10: frontend a: verify = required needs ca-file" % conf \
        in r.stderr, r.stderr


def test_crl_of_another_ca_refused(tmp_path, certs, pki):
    """A CRL GnuTLS would ignore (not signed by a CA of ca-file) is an
    error at moatd -t, at its line, not a silent no-op."""
    cert, key = certs["ecdsa"]
    conf = tmp_path / "moat.conf"
    conf.write_text("[moat]\nuser = moat\nkeyd-user = moat-keyd\n\n"
                    "[frontend a]\nlisten = 127.0.0.1:%d\n"
                    "backend = 127.0.0.1:1\ncert = %s\nkey = %s\n"
                    "verify = required\nca-file = %s\ncrl-file = %s\n"
                    % (moatlib.free_port(), cert, key, pki.ca_file,
                       pki.foreign_crl))
    r = subprocess.run([moatlib.MOATD, "-c", str(conf), "-t"],
                       capture_output=True, text=True, timeout=30)
    sanlib.check(r.stderr, "moatd -t", r.returncode)
    assert r.returncode == 1
    assert "%s:12: frontend a: crl-file %s: CRL 1 is not signed by a CA " \
        "of ca-file" % (conf, pki.foreign_crl) in r.stderr, r.stderr
