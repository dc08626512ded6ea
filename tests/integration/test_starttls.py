# SPDX-License-Identifier: GPL-2.0-or-later
"""STARTTLS (starttls = smtp|imap|pop3) with real clients, real servers.

One moatd for the file, in front of a private Postfix (SMTP) and Dovecot
(IMAP, POP3) from Debian, each reached through its PROXY-protocol port
(moat sends the v2 header with the SSL TLV before the dialogue), and in
front of recording fakes (fakemail) for the attacks:

- openssl s_client -starttls, curl --ssl-reqd and Python's smtplib,
  imaplib and poplib upgrade through moat, log in or send, and the message
  arrives in the backend's mailbox byte-exact (or comes back byte-exact);
- a client that pipelines a command after STARTTLS in the same segment is
  cut, and the backend never sees that command; a backend that sends an
  extra line after its capability answer does not get it to the client,
  in plaintext or in TLS;
- before the upgrade, MAIL FROM / LOGIN / USER get the protocol's
  "STARTTLS first" answer from moat and never reach the backend;
- over-long lines are refused;
- after 50 upgrades of each protocol no worker holds any key byte.
"""

import os
import re
import socket
import ssl
import subprocess
import tempfile
import time
import uuid

import pytest

import fakemail
import maillib
import memscan
import moatlib
import reneglib
from maillib import DOMAIN
from test_mail_backends import check_delivered, dovecot_auth_line, message

RCPT = "rcpt@" + DOMAIN
USERS = {"alice": "alice-secret"}


def ctx():
    return moatlib.client_context()


def smtp(port):
    c = maillib.smtp_client(port)
    c._host = "localhost"       # starttls() names it as the server
    return c


@pytest.fixture(scope="module")
def mail(module_moat_factory, tmp_path_factory, certs):
    dovecot = maillib.Dovecot(tmp_path_factory.mktemp("dovecot"), USERS)
    dovecot.start()
    postfix = maillib.Postfix(tmp_path_factory.mktemp("postfix"), (RCPT,))
    postfix.start()
    fakes = {p: fakemail.FakeMail(p, starttls=True) for p in
             ("smtp", "imap", "pop3")}
    liars = {p: fakemail.FakeMail(p, starttls=True, inject={
        "smtp": b"250 injected by the backend\r\n",
        "imap": b"* OK injected by the backend\r\n",
        "pop3": b"+OK injected by the backend\r\n"}[p]) for p in
        ("smtp", "imap", "pop3")}
    cert, key = certs["ecdsa"]
    fes = {}
    for proto, port in (("smtp", postfix.ports["smtp_haproxy"]),
                        ("imap", dovecot.ports["imap_haproxy"]),
                        ("pop3", dovecot.ports["pop3_haproxy"])):
        fes[proto] = {"backend": "127.0.0.1:%d" % port, "cert": cert,
                      "key": key, "starttls": proto,
                      "proxy-protocol": "v2"}
    for proto, f in fakes.items():
        fes["fake-" + proto] = {"backend": f.address, "cert": cert,
                                "key": key, "starttls": proto}
    for proto, f in liars.items():
        fes["liar-" + proto] = {"backend": f.address, "cert": cert,
                                "key": key, "starttls": proto}
    late = fakemail.FakeMail("smtp", starttls=True, inject=b"250 injected "
                             b"late by the backend\r\n", inject_delay=0.5)
    liars["late"] = late
    fes["liar-late"] = {"backend": late.address, "cert": cert, "key": key,
                        "starttls": "smtp"}
    cut = moatlib.Backend(cut_handler)
    liars["cut"] = cut
    fes["cut-smtp"] = {"backend": cut.address, "cert": cert, "key": key,
                       "starttls": "smtp"}
    m = module_moat_factory(fes, workers=1)
    yield {"m": m, "dovecot": dovecot, "postfix": postfix, "fakes": fakes,
           "liars": liars, "key": key}
    for f in list(fakes.values()) + list(liars.values()):
        f.close()
    postfix.stop()
    dovecot.stop()


def cut_handler(c):
    """A backend that says half a greeting and goes."""
    c.sendall(b"220 half a greet")
    c.close()


# ------------------------------------------------------------ real clients

def test_smtplib_sends_through_starttls(mail):
    m, postfix = mail["m"], mail["postfix"]
    mid, raw = message(uuid.uuid4().hex[:16], b"y" * 950 + b"\r\n")
    c = smtp(m.ports["smtp"])
    try:
        code, caps = c.ehlo("client.example.org")
        assert code == 250 and c.has_extn("starttls"), caps
        c.starttls(context=ctx())
        c.ehlo("client.example.org")
        assert not c.has_extn("starttls"), "STARTTLS offered inside TLS"
        assert c.sendmail("sender@example.org", [RCPT], raw) == {}
        c.quit()
    finally:
        c.close()
    check_delivered(postfix.wait_message(mid), raw)
    assert m.wait_log(r"frontend=smtp .*reason=\"[^\"]*\" .*starttls=smtp")


def test_imaplib_appends_and_fetches_through_starttls(mail):
    m, dovecot = mail["m"], mail["dovecot"]
    at = dovecot.log_size()
    mid, raw = message(uuid.uuid4().hex[:16])
    c = maillib.imap_client(m.ports["imap"])
    try:
        assert "STARTTLS" in c.capabilities, c.capabilities
        c.starttls(ssl_context=ctx())
        c.login("alice", USERS["alice"])
        typ, _ = c.append("INBOX", None, None, raw)
        assert typ == "OK"
        c.select("INBOX")
        typ, data = c.search(None, "HEADER", "Message-ID", mid.decode())
        num = data[0].split()[-1]
        typ, data = c.fetch(num, "(BODY.PEEK[])")
        assert data[0][1] == raw, "IMAP message differs"
        c.logout()
    finally:
        try:
            c.shutdown()
        except OSError:
            pass
    assert m.wait_log(r"frontend=imap .*starttls=imap")
    # moat's PROXY v2 header told Dovecot: the client used TLS
    auth = dovecot_auth_line(dovecot, at, "127.0.0.1")
    assert "\tsecured=tls\t" in auth, auth


def test_poplib_retrieves_through_stls(mail):
    m, dovecot = mail["m"], mail["dovecot"]
    mid, raw = message(uuid.uuid4().hex[:16])
    dovecot.deliver("alice", raw)
    c = maillib.pop3_client(m.ports["pop3"])
    try:
        assert "STLS" in c.capa(), c.capa()
        c.stls(context=ctx())
        c.user("alice")
        c.pass_(USERS["alice"])
        found = None
        for entry in c.list()[1]:
            n = int(entry.split()[0])
            lines = c.retr(n)[1]
            if mid in b"\r\n".join(lines):
                found = lines
        assert found is not None, "the message is not in the POP3 box"
        # poplib takes the dot-stuffing off again: the message as sent
        assert b"\r\n".join(found) + b"\r\n" == raw
        c.quit()
    finally:
        c.close()
    assert m.wait_log(r"frontend=pop3 .*starttls=pop3")


def s_client(port, proto, script):
    moatlib.need_tool("openssl")
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d"
                        % port, "-starttls", proto, "-quiet", "-ign_eof"],
                       input=script, capture_output=True, timeout=60)
    return r.stdout


def test_openssl_s_client_sends_smtp(mail):
    m, postfix = mail["m"], mail["postfix"]
    mid, raw = message(uuid.uuid4().hex[:16])
    stuffed = raw.replace(b"\r\n.", b"\r\n..")     # SMTP's dot-stuffing
    out = s_client(m.ports["smtp"], "smtp", b"EHLO c.example.org\r\n"
                   b"MAIL FROM:<sender@example.org>\r\nRCPT TO:<" +
                   RCPT.encode() + b">\r\nDATA\r\n" + stuffed +
                   b".\r\nQUIT\r\n")
    assert b"\n250 2.0.0 Ok: queued" in out, out
    assert b"STARTTLS" not in out, "STARTTLS offered inside TLS: %r" % out
    check_delivered(postfix.wait_message(mid), raw)


def test_openssl_s_client_logs_in_and_fetches_imap(mail):
    m = mail["m"]
    mid, raw = message(uuid.uuid4().hex[:16])
    out = s_client(m.ports["imap"], "imap", b"a1 LOGIN alice " +
                   USERS["alice"].encode() + b"\r\na2 APPEND INBOX {%d+}"
                   b"\r\n" % len(raw) + raw + b"\r\na3 SELECT INBOX\r\n"
                   b"a4 SEARCH HEADER Message-ID " + mid + b"\r\n"
                   b"a5 LOGOUT\r\n")
    assert b"a1 OK" in out and b"a2 OK" in out, out
    uid = re.search(rb"\* SEARCH( \d+)+", out).group(1).strip()
    out = s_client(m.ports["imap"], "imap", b"a1 LOGIN alice " +
                   USERS["alice"].encode() + b"\r\na2 SELECT INBOX\r\n"
                   b"a3 FETCH " + uid + b" BODY.PEEK[]\r\na4 LOGOUT\r\n")
    got = re.search(rb"BODY\[\] \{(\d+)\}\r\n", out)
    assert got, out
    n = int(got.group(1))
    assert out[got.end():got.end() + n] == raw, "IMAP fetch differs"


def test_openssl_s_client_retrieves_pop3(mail):
    m, dovecot = mail["m"], mail["dovecot"]
    mid, raw = message(uuid.uuid4().hex[:16])
    dovecot.deliver("alice", raw)
    out = s_client(m.ports["pop3"], "pop3", b"USER alice\r\nPASS " +
                   USERS["alice"].encode() + b"\r\nSTAT\r\nQUIT\r\n")
    count = int(re.search(rb"\+OK (\d+) \d+\r\n", out).group(1))
    out = s_client(m.ports["pop3"], "pop3", b"USER alice\r\nPASS " +
                   USERS["alice"].encode() + b"\r\nRETR %d\r\nQUIT\r\n"
                   % count)
    body = out.split(b"octets\r\n", 1)[1].split(b"\r\n.\r\n", 1)[0]
    assert body.replace(b"\r\n..", b"\r\n.") + b"\r\n" == raw, out


def test_curl_sends_and_fetches_with_ssl_reqd(mail, tmp_path):
    moatlib.need_tool("curl")
    m, postfix, dovecot = mail["m"], mail["postfix"], mail["dovecot"]
    mid, raw = message(uuid.uuid4().hex[:16])
    f = tmp_path / "msg.eml"
    f.write_bytes(raw)
    r = subprocess.run(["curl", "-sS", "--ssl-reqd", "-k", "--max-time",
                        "30", "smtp://127.0.0.1:%d" % m.ports["smtp"],
                        "--mail-from", "sender@example.org", "--mail-rcpt",
                        RCPT, "-T", str(f)], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    check_delivered(postfix.wait_message(mid), raw)

    mid2, raw2 = message(uuid.uuid4().hex[:16])
    dovecot.deliver("alice", raw2)
    auth = "alice:" + USERS["alice"]
    r = subprocess.run(["curl", "-sS", "--ssl-reqd", "-k", "--max-time",
                        "30", "-u", auth, "imap://127.0.0.1:%d/INBOX" %
                        m.ports["imap"], "-X", "SEARCH HEADER Message-ID %s"
                        % mid2.decode()], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    uid = r.stdout.split()[-1].decode()
    r = subprocess.run(["curl", "-sS", "--ssl-reqd", "-k", "--max-time",
                        "30", "-u", auth, "imap://127.0.0.1:%d/INBOX;MAILINDEX=%s"
                        % (m.ports["imap"], uid)], capture_output=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == raw2, "curl imap fetch differs"

    r = subprocess.run(["curl", "-sS", "--ssl-reqd", "-k", "--max-time",
                        "30", "-u", auth, "pop3://127.0.0.1:%d/" %
                        m.ports["pop3"]], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    last = r.stdout.split()[-2].decode()    # "N size" lines: the newest
    r = subprocess.run(["curl", "-sS", "--ssl-reqd", "-k", "--max-time",
                        "30", "-u", auth, "pop3://127.0.0.1:%d/%s" %
                        (m.ports["pop3"], last)], capture_output=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == raw2, "curl pop3 retrieve differs"


@pytest.mark.parametrize("version,counter", [("1.2", "renegotiations_completed"),
                                             ("1.3", "key_updates")])
def test_rekey_reaches_an_upgraded_session(mail, version, counter):
    """moatctl rekey renegotiates (TLS 1.2) or updates the keys (1.3) of a
    session that began in plaintext, as on any frontend; it goes on."""
    m = mail["m"]
    before = reneglib.counters(m)
    s, f = plain(m.ports["fake-smtp"])
    reply(f, "smtp")
    s.sendall(b"EHLO c.example.org\r\n")
    reply(f, "smtp")
    s.sendall(b"STARTTLS\r\n")
    assert f.readline().startswith(b"220 ")
    t = moatlib.client_context(version).wrap_socket(
        s, server_hostname="localhost")
    tf = t.makefile("rb")
    t.sendall(b"EHLO c.example.org\r\n")
    reply(tf, "smtp")
    assert reneglib.rekey(m, "fake-smtp") >= 1
    for _ in range(3):          # the client reads: the request is taken
        t.sendall(b"NOOP\r\n")
        assert reply(tf, "smtp")[-1].startswith(b"250 ")
    reneglib.wait_counters(m, before, {counter: 1})
    t.sendall(b"QUIT\r\n")
    reply(tf, "smtp")
    t.close()


# ---------------------------------------------------------------- attacks

def plain(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    return s, s.makefile("rb")


def reply(f, proto, tag=None):
    """One whole reply: SMTP's last NNN line, IMAP's tagged line, POP3's
    first line (or up to "." after CAPA)."""
    lines = []
    while True:
        ln = f.readline()
        if not ln:
            raise EOFError(b"".join(lines))
        lines.append(ln)
        if proto == "smtp" and len(ln) >= 4 and ln[3:4] == b" ":
            return lines
        if proto == "imap" and (tag is None or ln.startswith(tag + b" ")):
            return lines
        if proto == "pop3" and (tag is None or ln == b".\r\n"):
            return lines


def closed(s):
    s.settimeout(20)
    try:
        while s.recv(4096):
            pass
    except (ConnectionResetError, ssl.SSLError):
        pass
    return True


INJECT = {
    "smtp": (b"EHLO c.example.org\r\n", None, b"STARTTLS\r\nRSET\r\n", "RSET"),
    "imap": (b"a1 CAPABILITY\r\n", b"a1", b"a2 STARTTLS\r\na3 NOOP\r\n",
             "a3 NOOP"),
    "pop3": (b"CAPA\r\n", b".", b"STLS\r\nQUIT\r\n", "QUIT"),
}


@pytest.mark.parametrize("proto", ["smtp", "imap", "pop3"])
def test_a_command_after_starttls_is_never_executed(mail, proto):
    m, fake = mail["m"], mail["fakes"][proto]
    first, tag, attack, smuggled = INJECT[proto]
    at = m.log_size()
    before = len(fake.lines)
    s, f = plain(m.ports["fake-" + proto])
    reply(f, proto)                         # greeting
    s.sendall(first)
    reply(f, proto, tag if proto != "pop3" else b".")
    s.sendall(attack)                       # one segment
    got = f.read()                          # moat closes
    s.close()
    assert b"injected" not in got
    m.wait_log(r"STARTTLS injection attempt", 10, start=at)
    time.sleep(0.2)
    lines = [ln.decode("latin-1").rstrip("\r\n")
             for ln in fake.lines[before:]]
    assert not any(ln.upper().startswith(smuggled.upper()) for ln in lines), \
        lines
    assert not any("STARTTLS" in ln.upper() or ln.upper() == "STLS"
                   for ln in lines), "STARTTLS reached the backend: %r" % lines


UPGRADE = {
    "smtp": (b"EHLO c.example.org\r\n", b"STARTTLS\r\n",
             b"EHLO c.example.org\r\n"),
    "imap": (b"a1 CAPABILITY\r\n", b"a2 STARTTLS\r\n", b"a3 NOOP\r\n"),
    "pop3": (b"CAPA\r\n", b"STLS\r\n", b"CAPA\r\n"),
}


@pytest.mark.parametrize("proto", ["smtp", "imap", "pop3"])
def test_a_backend_line_after_its_capabilities_never_reaches_the_client(
        mail, proto):
    m = mail["m"]
    first, go, after = UPGRADE[proto]
    s, f = plain(m.ports["liar-" + proto])
    reply(f, proto)
    s.sendall(first)
    caps = reply(f, proto, b"a1" if proto == "imap" else
                 (b"." if proto == "pop3" else None))
    assert not any(b"injected" in ln for ln in caps)
    s.sendall(go)
    ok = f.readline()
    assert b"injected" not in ok, "the backend's line passed for moat's"
    assert ok.startswith({"smtp": b"220 ", "imap": b"a2 OK",
                          "pop3": b"+OK"}[proto]), ok
    t = ctx().wrap_socket(s, server_hostname="localhost")
    tf = t.makefile("rb")
    t.sendall(after)
    got = b"".join(reply(tf, proto, b"a3" if proto == "imap" else
                         (b"." if proto == "pop3" else None)))
    assert b"injected" not in got, "backend plaintext reached TLS: %r" % got
    t.close()


def test_backend_output_during_the_upgrade_never_reaches_tls(mail):
    """The backend's extra line comes half a second late: while the client
    upgrades, before its first command in TLS.  It is dropped (before the
    handshake, or muted after it), never read as that command's answer."""
    m = mail["m"]
    at = m.log_size()
    s, f = plain(m.ports["liar-late"])
    reply(f, "smtp")
    s.sendall(b"EHLO c.example.org\r\n")
    reply(f, "smtp")
    s.sendall(b"STARTTLS\r\n")
    assert f.readline().startswith(b"220 ")
    t = ctx().wrap_socket(s, server_hostname="localhost")
    m.wait_log(r"backend output .*dropped|byte\(s\) of backend output after "
               r"STARTTLS.* dropped", 10, start=at)
    tf = t.makefile("rb")
    t.sendall(b"EHLO c.example.org\r\n")
    got = b"".join(reply(tf, "smtp"))
    assert b"injected" not in got, got
    assert got.startswith(b"250-"), got
    t.close()


def test_a_backend_that_leaves_mid_line_ends_the_connection(mail):
    m = mail["m"]
    at = m.log_size()
    s, f = plain(m.ports["cut-smtp"])
    t0 = time.monotonic()
    assert f.read() == b"", "half a line reached the client"
    assert time.monotonic() - t0 < 15, "moat waited for the idle timeout"
    s.close()
    m.wait_log(r'frontend=cut-smtp .*reason="backend closed before STARTTLS"',
               10, start=at)


REQUIRED = {
    "smtp": (b"MAIL FROM:<a@example.org>\r\n", rb"^530 5\.7\.0 ", "MAIL"),
    "imap": (b"a1 LOGIN alice secret\r\n", rb"^a1 NO \[PRIVACYREQUIRED\]",
             "a1 LOGIN"),
    "pop3": (b"USER alice\r\n", rb"^-ERR ", "USER"),
}


@pytest.mark.parametrize("proto", ["smtp", "imap", "pop3"])
def test_credentials_and_mail_wait_for_starttls(mail, proto):
    m, fake = mail["m"], mail["fakes"][proto]
    cmd, want, verb = REQUIRED[proto]
    before = len(fake.lines)
    s, f = plain(m.ports["fake-" + proto])
    reply(f, proto)
    s.sendall(cmd)
    got = f.readline()
    assert re.search(want, got), got
    s.sendall(b"QUIT\r\n" if proto != "imap" else b"a2 LOGOUT\r\n")
    closed(s)
    s.close()
    time.sleep(0.2)
    lines = [ln.decode("latin-1") for ln in fake.lines[before:]]
    assert not any(ln.upper().startswith(verb) for ln in lines), lines


@pytest.mark.parametrize("proto,limit", [("smtp", 512), ("imap", 1024),
                                         ("pop3", 255)])
def test_over_long_lines_are_refused(mail, proto, limit):
    m, fake = mail["m"], mail["fakes"][proto]
    before = len(fake.lines)
    s, f = plain(m.ports["fake-" + proto])
    reply(f, proto)
    prefix = b"a1 NOOP " if proto == "imap" else b"NOOP "
    s.sendall(prefix + b"x" * (limit + 10 - len(prefix)) + b"\r\n")
    got = f.read()
    s.close()
    assert re.search(rb"(500 5\.5\.2|\* BYE|-ERR) Line too long", got), got
    assert len(fake.lines) == before, "the long line reached the backend"
    # a line at the limit passes
    s, f = plain(m.ports["fake-" + proto])
    reply(f, proto)
    line = b"NOOP\r\n" if proto != "imap" else b"a1 NOOP\r\n"
    s.sendall(line)
    assert reply(f, proto, b"a1" if proto == "imap" else None)
    s.close()


def test_no_key_byte_in_the_worker_after_many_upgrades(mail):
    m = mail["m"]
    for _ in range(50):
        c = smtp(m.ports["fake-smtp"])
        c.ehlo("c.example.org")
        c.starttls(context=ctx())
        c.ehlo("c.example.org")
        c.quit()
        c = maillib.imap_client(m.ports["fake-imap"])
        c.starttls(ssl_context=ctx())
        c.logout()
        c = maillib.pop3_client(m.ports["fake-pop3"])
        c.stls(context=ctx())
        c.quit()
    needles = memscan.key_needles(mail["key"])
    for w in m.workers():
        found, info = memscan.scan(w, needles)
        assert not found, "worker %d holds key bytes: %s" % (w, sorted(found))
