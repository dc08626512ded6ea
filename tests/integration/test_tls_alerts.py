# SPDX-License-Identifier: GPL-2.0-or-later
"""A fatal TLS error ends with the alert TLS requires (issue 9, point 7),
and a signature algorithm keyd refuses is never negotiated (point 8).

The test drives the wire itself (wirelib: Python's ssl over MemoryBIOs,
so each record passes through the test's hands) against moat and, for
the same inputs, against gnutls-serv on the same library, certificate and
priority string, which says what "the alert GnuTLS names" is:

- a record with one flipped ciphertext byte: bad_record_mac;
- a record longer than 2^14 + 256 bytes: record_overflow;
- a ChangeCipherSpec record after the handshake (an unexpected message):
  whatever gnutls-serv sends;
- ClientHellos with one illegal thing in them: whatever gnutls-serv sends.

None of them may get close_notify (a clean end would tell the client its
stream was whole), and each must close within a second, not at
handshake-timeout.

Under `priority = NORMAL` GnuTLS would sign TLS 1.2 with RSA-SHA1 for a
client that offers only rsa_pkcs1_sha1; keyd never signs SHA-1.  The
worker's key tells GnuTLS the algorithms keyd serves, so such a client
gets handshake_failure at once (or a handshake with an algorithm keyd
signs), never internal_error after a keyd round trip, and keyd logs no
refusal; `moatd -t` warns about the priority.
"""

import os
import subprocess
import time

import pytest

import moatlib
import wirelib

PRIORITY = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
VERSIONS = ("1.2", "1.3")
PROMPT = 1.0		# seconds within which a failed connection must close


@pytest.fixture(scope="module")
def moat(module_moat_factory, backends, certs):
    cert, key = certs["ecdsa"]
    echo = backends.echo().address
    fe = {"backend": echo, "cert": cert, "key": key,
          "priority": PRIORITY, "handshake-timeout": "20s",
          "rekey-interval": "0"}
    rsa_cert, rsa_key = certs["rsa"]
    rsa = {"backend": echo, "cert": rsa_cert, "key": rsa_key,
           "priority": "NORMAL", "rekey-interval": "0"}
    return module_moat_factory({"fe": fe, "rsa": rsa}, workers=1)


@pytest.fixture(scope="module")
def gnutls_serv(certs):
    """gnutls-serv on the same certificate, key and priority: the
    reference for what GnuTLS itself answers."""
    moatlib.need_tool("gnutls-serv")
    cert, key = certs["ecdsa"]
    port = moatlib.free_port()
    p = subprocess.Popen(
        ["gnutls-serv", "--port", str(port), "--echo", "--quiet",
         "--disable-client-cert", "--priority", PRIORITY,
         "--x509certfile", cert, "--x509keyfile", key],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)

    def up():
        try:
            wirelib.WireClient(port, "1.3", timeout=2).handshake().close()
            return True
        except OSError:
            return False
    try:
        moatlib.wait_for(up, 20, step=0.1, what="gnutls-serv up")
        yield port
    finally:
        p.kill()
        p.wait()


def port_of(m):
    return m.ports["fe"]


def flipped_record(port, version):
    c = wirelib.WireClient(port, version).handshake()
    try:
        rec = bytearray(c.record(b"A" * 200))
        rec[5 + 20] ^= 0x01		# a ciphertext byte, past the header
        c.send_raw(bytes(rec))
        return c.outcome()
    finally:
        c.close()


def oversized_record(port, version):
    c = wirelib.WireClient(port, version).handshake()
    try:
        n = wirelib.MAX_CIPHERTEXT + 1
        c.send_raw(bytes([wirelib.CT_APPDATA, 3, 3]) + n.to_bytes(2, "big")
                   + bytes(n))
        return c.outcome()
    finally:
        c.close()


def assert_failed_honestly(o, want, what):
    assert o.alert == want, "%s: wanted fatal %s, got %r" % (what, want, o)
    assert o.closed, "%s: the connection stayed open: %r" % (what, o)
    assert o.seconds < PROMPT, "%s: closed after %.2f s" % (what, o.seconds)


@pytest.mark.parametrize("version", VERSIONS)
def test_flipped_ciphertext_byte_gets_bad_record_mac(moat, gnutls_serv, version):
    ref = flipped_record(gnutls_serv, version)
    assert ref.alert == "bad_record_mac", "gnutls-serv: %r" % ref
    assert_failed_honestly(flipped_record(port_of(moat), version),
                           "bad_record_mac", "TLS %s flipped byte" % version)
    assert moat.wait_log(r"client error: .*(MAC|Decryption)", seconds=10)


@pytest.mark.parametrize("version", VERSIONS)
def test_oversized_record_gets_record_overflow(moat, gnutls_serv, version):
    ref = oversized_record(gnutls_serv, version)
    assert ref.alert == "record_overflow", "gnutls-serv: %r" % ref
    assert_failed_honestly(oversized_record(port_of(moat), version),
                           "record_overflow", "TLS %s oversized record" % version)


def stray_change_cipher_spec(port, version):
    """A plaintext ChangeCipherSpec once the session is established."""
    c = wirelib.WireClient(port, version).handshake()
    try:
        c.send_raw(bytes([wirelib.CT_CCS, 3, 3, 0, 1, 1]))
        return c.outcome()
    finally:
        c.close()


@pytest.mark.parametrize("version", VERSIONS)
def test_unexpected_message_gets_the_alert_gnutls_names(moat, gnutls_serv,
                                                        version):
    ref = stray_change_cipher_spec(gnutls_serv, version)
    assert ref.alert not in (None, "close_notify"), "gnutls-serv: %r" % ref
    assert_failed_honestly(stray_change_cipher_spec(port_of(moat), version),
                           ref.alert, "TLS %s stray ChangeCipherSpec" % version)


# ClientHellos with one thing wrong; gnutls-serv says which alert is right.
BAD_HELLOS = {
    "1.3 key_share of 31 bytes for x25519":
        lambda: wirelib.client_hello("1.3", key_share_len=31),
    "1.3 no null compression":
        lambda: wirelib.client_hello("1.3", compression=b"\x01"),
    "1.2 no null compression":
        lambda: wirelib.client_hello("1.2", compression=b"\x01"),
    "1.2 extension sent twice":
        lambda: wirelib.client_hello("1.2", extra_exts=wirelib.ext(0xff01, b"\x00")),
    "1.3 extension sent twice":
        lambda: wirelib.client_hello("1.3", extra_exts=wirelib.ext(0x000d, b"\x00\x02\x04\x03")),
    "1.2 no common signature algorithm":
        lambda: wirelib.client_hello("1.2", sigalgs=(0x0101,)),
}


def hello_outcome(port, hello):
    s = moatlib.socket.create_connection((moatlib.LOOPBACK, port), timeout=10)
    try:
        s.sendall(hello)
        return wirelib.read_plain_alert(s)
    finally:
        s.close()


@pytest.mark.parametrize("name", sorted(BAD_HELLOS))
def test_bad_client_hello_gets_the_alert_gnutls_names(moat, gnutls_serv, name):
    hello = BAD_HELLOS[name]()
    ref = hello_outcome(gnutls_serv, hello)
    assert ref.alert is not None and ref.alert != "close_notify", \
        "gnutls-serv sent no fatal alert for %s: %r" % (name, ref)
    got = hello_outcome(port_of(moat), hello)
    print("%s: gnutls-serv %r, moat %r" % (name, ref, got))
    assert_failed_honestly(got, ref.alert, name)


def test_no_failed_connection_was_logged_as_clean(moat):
    """Every failure above has its log line, none with notify=yes."""
    time.sleep(0.2)
    bad = [line for line in moat.log_text().splitlines()
           if ("client error" in line or "handshake failed" in line)
           and "notify=yes" in line]
    assert not bad, "failed connections ended with close_notify:\n" + "\n".join(bad)


# ---------------------------------------------------------------- point 8

SHA1_ONLY_GNUTLS = ("NORMAL:-VERS-ALL:+VERS-TLS1.2:-SIGN-ALL:+SIGN-RSA-SHA1:"
                    "%VERIFY_ALLOW_SIGN_WITH_SHA1")


def test_sha1_only_client_never_gets_internal_error(moat):
    moatlib.need_tool("gnutls-cli")
    moatlib.need_tool("openssl")
    start = moat.log_size()
    port = moat.ports["rsa"]
    g = subprocess.run(
        ["gnutls-cli", "--insecure", "--port", str(port),
         "--priority", SHA1_ONLY_GNUTLS, moatlib.LOOPBACK],
        input=b"ping\n", capture_output=True, timeout=30)
    gout = (g.stdout + g.stderr).decode(errors="replace")
    o = subprocess.run(
        ["openssl", "s_client", "-connect", "%s:%d" % (moatlib.LOOPBACK, port),
         "-tls1_2", "-sigalgs", "RSA+SHA1", "-cipher", "DEFAULT@SECLEVEL=0"],
        input=b"", capture_output=True, timeout=30)
    oout = (o.stdout + o.stderr).decode(errors="replace")
    for who, out in (("gnutls-cli", gout), ("openssl", oout)):
        assert "Internal error" not in out and "alert number 80" not in out \
            and "[80]" not in out, "%s got internal_error:\n%s" % (who, out)
    # Either an algorithm keyd signs was used, or handshake_failure came.
    assert "Handshake was completed" in gout or "[40]" in gout, gout
    assert "alert number 40" in oout or "Cipher is" in oout, oout
    time.sleep(0.3)
    log = moat.log_text()[start:]
    refusals = [ln for ln in log.splitlines()
                if "moat-keyd" in ln and "refus" in ln]
    assert not refusals, "keyd refused requests:\n" + "\n".join(refusals)
    assert "keyd refused" not in log, log


def check(conf_path):
    r = subprocess.run([moatlib.MOATD, "-c", conf_path, "-t"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return [ln for ln in r.stderr.splitlines() if "warning:" in ln]


def test_check_warns_about_algorithms_keyd_never_signs(moat, tmp_path):
    warn = check(moat.conf)
    rsa = [ln for ln in warn if "warning: frontend rsa:" in ln]
    fe = [ln for ln in warn if "warning: frontend fe:" in ln]
    assert len(warn) == 2, warn
    assert rsa and "enables RSA-SHA1 for its RSA key" in rsa[0] \
        and "handshake_failure" in rsa[0], warn
    assert fe and "enables ECDSA-SHA1 for its" in fe[0], warn
    # moat's default priority enables nothing keyd refuses.
    with open(moat.conf) as f:
        text = "".join(ln for ln in f if not ln.startswith("priority"))
    conf = tmp_path / "default.conf"
    conf.write_text(text)
    assert check(str(conf)) == []
