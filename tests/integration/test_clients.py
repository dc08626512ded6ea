# SPDX-License-Identifier: GPL-2.0-or-later
"""Real clients get the backend's reply through moat (issue 3, first line).

4 clients (curl, openssl s_client, gnutls-cli, Python's ssl) x TLS 1.2 and
1.3 x an ECDSA P-256 and an RSA-2048 certificate; each checks the reply and
that the negotiated version is the one it asked for.
"""

import re
import ssl
import subprocess
import threading

import pytest

import moatlib
from moatlib import need_tool

REQUEST = b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n"


@pytest.fixture(scope="module")
def moat(module_moat_factory, backends, certs):
    http = backends.http()
    return module_moat_factory({
        kind: {"backend": http.address, "cert": certs[kind][0],
               "key": certs[kind][1]}
        for kind in ("ecdsa", "rsa")
    }, workers=2)


def run_client(cmd, timeout=30):
    """Run a client that reads the request on stdin; keep stdin open until
    it exits by itself (moat closes after the backend's reply), so the
    client cannot quit before the reply arrives."""
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    out, err = [], []
    readers = [threading.Thread(target=lambda f, acc: acc.append(f.read()),
                                args=(p.stdout, out)),
               threading.Thread(target=lambda f, acc: acc.append(f.read()),
                                args=(p.stderr, err))]
    for t in readers:
        t.start()
    p.stdin.write(REQUEST)
    p.stdin.flush()
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise AssertionError("%s did not finish in %d s" % (cmd[0], timeout))
    finally:
        try:
            p.stdin.close()
        except OSError:
            pass
        for t in readers:
            t.join(10)
    return p.returncode, b"".join(out), b"".join(err)


def curl(port, version):
    need_tool("curl")
    rc, out, err = run_client(
        ["curl", "-sS", "-k", "-v", "--http1.1", "--tlsv" + version,
         "--tls-max", version, "https://127.0.0.1:%d/" % port])
    assert rc == 0, err.decode(errors="replace")
    m = re.search(rb"SSL connection using TLSv(1\.[0-3])", err)
    return (m.group(1).decode() if m else None), out


def s_client(port, version):
    need_tool("openssl")
    rc, out, err = run_client(
        ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
         "-servername", "localhost", "-tls" + version.replace(".", "_")])
    assert rc == 0, (out + err).decode(errors="replace")
    m = re.search(rb"New, TLSv(1\.[0-3]), Cipher is", out)
    return (m.group(1).decode() if m else None), out


def gnutls_cli(port, version):
    need_tool("gnutls-cli")
    rc, out, err = run_client(
        ["gnutls-cli", "--insecure", "-p", str(port),
         "--priority", "NORMAL:-VERS-ALL:+VERS-TLS" + version, "127.0.0.1"])
    assert rc == 0, (out + err).decode(errors="replace")
    m = re.search(rb"Description: \(TLS(1\.[0-3])[-)]", out + err)
    return (m.group(1).decode() if m else None), out


def python_ssl(port, version):
    v, reply = moatlib.http_get(port, version)
    return v.replace("TLSv", ""), reply


CLIENTS = {"curl": curl, "s_client": s_client, "gnutls-cli": gnutls_cli,
           "python-ssl": python_ssl}


@pytest.mark.parametrize("kind", ["ecdsa", "rsa"])
@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_client_gets_reply(moat, client, version, kind):
    got_version, out = CLIENTS[client](moat.ports[kind], version)
    assert moatlib.HTTP_BODY in out, \
        "%s got no backend reply: %r\n%s" % (client, out[-500:], moat.log())
    assert got_version == version, \
        "%s asked for TLS %s, negotiated %s" % (client, version, got_version)


@pytest.mark.parametrize("kind", ["ecdsa", "rsa"])
def test_served_certificate_is_the_frontends(moat, certs, kind):
    """Each frontend presents its own certificate."""
    with open(certs[kind][0]) as f:
        want = ssl.PEM_cert_to_DER_cert(f.read())
    with moatlib.tls_connect(moat.ports[kind]) as s:
        assert s.getpeercert(binary_form=True) == want
