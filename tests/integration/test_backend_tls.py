# SPDX-License-Identifier: GPL-2.0-or-later
"""TLS to the backend (issue 10): backend-tls, backend-ca, backend-name.

The backends are Python ssl servers with certificates made here with
python3-cryptography: one CA signs the good backend's certificate (for
backend.test) and one for another name; a second CA, which moat does not
trust, signs a certificate for the right name.  Checked:
- a good backend carries 4 MiB byte-exact both ways, and gets backend-name
  as SNI;
- a backend whose certificate the CA did not sign, or made for another
  name, is refused: the connection's log line says why, and the client's
  stream ends without close_notify;
- with no backend-name, the backend's address is verified against the
  certificate's IP address and not sent as SNI;
- the backend's close_notify after its reply ends the client's stream
  cleanly, with every byte; a backend that closes TCP without close_notify
  leaves the client's end unclean, after every byte it did send;
- moatd -t refuses backend-tls without backend-ca, and a backend-ca file
  that holds a private key.
One moatd serves the module.
"""

import datetime
import os
import socket
import ssl
import subprocess
import threading

import pytest

import moatlib

NAME = "backend.test"
REPLY = 1024 * 1024 + 123	# what the replying backends send
MIB4 = 4 * 1024 * 1024


def _pem_files(directory, stem, key, cert):
    from cryptography.hazmat.primitives import serialization
    kp = os.path.join(directory, stem + ".key")
    cp = os.path.join(directory, stem + ".crt")
    with open(kp, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(kp, 0o600)
    with open(cp, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return cp, kp


def _cert(subject_cn, issuer_cn, issuer_key, key, ca, san=None):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                     subject_cn)]))
         .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                    issuer_cn)]))
         .public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(hours=1))
         .not_valid_after(now + datetime.timedelta(days=2))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None),
                        critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True,
            content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
    if san is not None:
        import ipaddress
        try:
            gn = x509.IPAddress(ipaddress.ip_address(san))
        except ValueError:
            gn = x509.DNSName(san)
        b = b.add_extension(x509.SubjectAlternativeName([gn]),
                            critical=False)
    return b.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """{"ca": path, "good"/"other_ca"/"wrong_name": (cert, key)}."""
    from cryptography.hazmat.primitives.asymmetric import ec
    d = str(tmp_path_factory.mktemp("pki"))
    out = {}
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("moat test CA", "moat test CA", ca_key, ca_key, True)
    out["ca"], _ = _pem_files(d, "ca", ca_key, ca)
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    rogue = _cert("rogue CA", "rogue CA", rogue_key, rogue_key, True)
    for stem, issuer, ikey, san in (("good", "moat test CA", ca_key, NAME),
                                    ("other_ca", "rogue CA", rogue_key, NAME),
                                    ("wrong_name", "moat test CA", ca_key,
                                     "other.test"),
                                    ("ip", "moat test CA", ca_key,
                                     moatlib.LOOPBACK)):
        k = ec.generate_private_key(ec.SECP256R1())
        out[stem] = _pem_files(d, stem, k, _cert(san, issuer, ikey, k, False,
                                                 san))
    out["dir"] = d
    out["rogue_ca"] = _pem_files(d, "rogue_ca", rogue_key, rogue)[0]
    return out


class TLSBackend:
    """A threaded TLS server on loopback; mode says what each connection
    does: "echo" (until the client's close_notify, then its own), "reply"
    (reads one line, sends REPLY bytes, then close_notify) or "cut" (the
    same reply, then a TCP close without close_notify)."""

    def __init__(self, cert, key, mode):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
        self.sni = []
        self.ctx.sni_callback = lambda s, name, c: self.sni.append(name)
        self.mode = mode
        self.errors = []
        self.sock = socket.socket()
        self.sock.bind((moatlib.LOOPBACK, 0))
        self.sock.listen(16)
        self.address = "%s:%d" % self.sock.getsockname()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,),
                             daemon=True).start()

    def _serve(self, raw):
        raw.settimeout(60)
        try:
            s = self.ctx.wrap_socket(raw, server_side=True,
                                     suppress_ragged_eofs=False)
        except (ssl.SSLError, OSError) as e:
            self.errors.append(repr(e))	# moat refused our certificate
            raw.close()
            return
        try:
            if self.mode == "echo":
                while True:
                    try:
                        b = s.recv(65536)
                    except ssl.SSLZeroReturnError:
                        b = b""
                    if not b:
                        break
                    s.sendall(b)
                s.unwrap()
            else:
                line = b""
                while not line.endswith(b"\n"):
                    b = s.recv(1)
                    if not b:
                        return
                    line += b
                s.sendall(moatlib.pattern(REPLY, 7))
                if self.mode == "reply":
                    s.unwrap()
        except (ssl.SSLError, OSError) as e:
            self.errors.append(repr(e))
        finally:
            try:
                s.close()
            except OSError:
                pass

    def close(self):
        self.sock.close()


@pytest.fixture(scope="module")
def tls_backends(pki):
    made = {
        "good": TLSBackend(*pki["good"], "echo"),
        "other_ca": TLSBackend(*pki["other_ca"], "echo"),
        "wrong_name": TLSBackend(*pki["wrong_name"], "echo"),
        "reply": TLSBackend(*pki["good"], "reply"),
        "cut": TLSBackend(*pki["good"], "cut"),
        "ip": TLSBackend(*pki["ip"], "reply"),
    }
    yield made
    for b in made.values():
        b.close()


@pytest.fixture(scope="module")
def moat(module_moat_factory, certs, pki, tls_backends):
    cert, key = certs["ecdsa"]
    fes = {}
    for name, b in tls_backends.items():
        fes[name] = {"backend": b.address, "cert": cert, "key": key,
                     "backend-tls": "yes", "backend-ca": pki["ca"],
                     "backend-name": NAME, "rekey-interval": "0",
                     "idle-timeout": "60s"}
    fes["ip"]["backend-name"] = None	# the default: the backend's address
    return module_moat_factory(fes, workers=1)


def test_good_backend_carries_4mib_both_ways(moat, tls_backends):
    payload = moatlib.pattern(MIB4, 3)
    sent, got, n = moatlib.echo_pump(moat.ports["good"], payload)
    assert n == MIB4 and got == sent, "echo through the TLS backend differs"
    assert NAME in tls_backends["good"].sni, tls_backends["good"].sni


@pytest.mark.parametrize("which,why", [
    ("other_ca", "certificate not trusted: issuer unknown"),
    ("wrong_name", "certificate not trusted: not for " + NAME),
])
def test_unverified_backend_is_refused(moat, tls_backends, which, why):
    start = moat.log_size()
    with moatlib.tls_connect(moat.ports[which]) as s:
        s.sendall(b"hello\n")
        with pytest.raises(moatlib.UncleanEnd) as e:
            moatlib.recv_all(s)
        assert e.value.data == b""
    moat.wait_log(r"frontend=%s .*notify=no reason=\"backend error: TLS "
                  r"handshake: %s" % (which, why), start=start)
    # the backend's thread sees the refusal in its own time
    moatlib.wait_for(lambda: tls_backends[which].errors, 10,
                     what="the backend's failed handshake")


def test_close_notify_after_reply_ends_cleanly(moat):
    with moatlib.tls_connect(moat.ports["reply"]) as s:
        s.sendall(b"GET\n")
        got = moatlib.recv_all(s)	# UncleanEnd if no close_notify
    assert got == moatlib.pattern(REPLY, 7)


def test_default_name_is_the_backends_address(moat, tls_backends):
    with moatlib.tls_connect(moat.ports["ip"]) as s:
        s.sendall(b"GET\n")
        assert moatlib.recv_all(s) == moatlib.pattern(REPLY, 7)
    assert tls_backends["ip"].sni == [None], "an address went out as SNI"


def test_backend_cut_without_close_notify_is_unclean(moat):
    start = moat.log_size()
    with moatlib.tls_connect(moat.ports["cut"]) as s:
        s.sendall(b"GET\n")
        with pytest.raises(moatlib.UncleanEnd) as e:
            moatlib.recv_all(s)
    assert e.value.data == moatlib.pattern(REPLY, 7)
    moat.wait_log(r"frontend=cut .*notify=no reason=\"backend error: "
                  r"closed without close_notify", start=start)


def _check(tmp_path, certs, extra):
    cert, key = certs["ecdsa"]
    text = moatlib.render_config(
        {"control": str(tmp_path / "c.sock"), "keyd": moatlib.KEYD},
        {"f": dict({"listen": "127.0.0.1:%d" % moatlib.free_port(),
                    "backend": "127.0.0.1:9", "cert": cert, "key": key,
                    "backend-tls": "yes"}, **extra)})
    path = tmp_path / "moat.conf"
    path.write_text(text)
    return subprocess.run([moatlib.MOATD, "-c", str(path), "-t"],
                          capture_output=True, text=True, timeout=60)


def test_config_check(tmp_path, certs, pki):
    r = _check(tmp_path, certs, {})
    assert r.returncode != 0 and "backend-tls needs backend-ca" in r.stderr, \
        r.stderr
    bad = tmp_path / "with-key.pem"
    with open(pki["ca"]) as a, open(pki["good"][1]) as k:
        bad.write_text(a.read() + k.read())
    r = _check(tmp_path, certs, {"backend-ca": str(bad)})
    assert r.returncode != 0 and "holds a private key" in r.stderr, r.stderr
    r = _check(tmp_path, certs, {"backend-ca": pki["ca"],
                                 "backend-name": NAME})
    assert r.returncode == 0, r.stderr
