# SPDX-License-Identifier: GPL-2.0-or-later
"""The mail harness on its own, no moat: maillib's private Postfix and
Dovecot take real clients' mail byte-exact (smtplib into a Maildir,
imaplib APPEND then FETCH, poplib RETR of a message put into the
Maildir); their PROXY ports take a hand-built v2 header with an SSL TLV
and log its client address (Dovecot also that the proxy said TLS); a
second instance of each runs beside the first and leaves no process when
stopped; and the fake recording servers answer and record as the
injection tests will need them to."""

import re
import socket
import uuid

import pytest

import fakemail
import maillib
from maillib import DOMAIN

RCPT = "rcpt@" + DOMAIN
OTHER = "other@" + DOMAIN
USERS = {"alice": "alice-secret", "bob": "bob-secret", "carol": "carol-secret"}


@pytest.fixture(scope="module")
def dovecot(tmp_path_factory):
    d = maillib.Dovecot(tmp_path_factory.mktemp("dovecot"), USERS)
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def postfix(tmp_path_factory):
    p = maillib.Postfix(tmp_path_factory.mktemp("postfix"), (RCPT, OTHER))
    p.start()
    yield p
    p.stop()


def message(tag, extra_body=b""):
    """A message with CRLF line ends, a unique Message-ID, a line that
    starts with a dot (SMTP and POP3 dot-stuff it) and trailing spaces."""
    mid = b"<%s@test.%s>" % (tag.encode(), DOMAIN.encode())
    return mid, (b"From: Sender <sender@example.org>\r\n"
                 b"To: " + RCPT.encode() + b"\r\n"
                 b"Subject: maillib " + tag.encode() + b"\r\n"
                 b"Message-ID: " + mid + b"\r\n"
                 b"Date: Wed, 02 Dec 2026 12:00:00 +0000\r\n"
                 b"MIME-Version: 1.0\r\n"
                 b"Content-Type: text/plain; charset=us-ascii\r\n"
                 b"\r\n"
                 b"first line\r\n"
                 b".a line that starts with a dot\r\n"
                 b"..two dots\r\n"
                 b"trailing spaces   \r\n"
                 b"\r\n" + extra_body +
                 b"last line\r\n")


def lf(raw):
    return raw.replace(b"\r\n", b"\n")


def tag():
    return uuid.uuid4().hex[:16]


def until_dropped(port, send, seconds=15):
    """Send, then read until the server closes or resets; what it sent.
    A server still holding the connection after `seconds` fails."""
    got = b""
    with socket.create_connection(("127.0.0.1", port), timeout=seconds) as s:
        s.sendall(send)
        try:
            while True:
                b = s.recv(512)
                if not b:
                    break
                got += b
        except ConnectionResetError:
            pass
        except socket.timeout:
            pytest.fail("port %d kept a header-less connection open" % port)
    return got


# ------------------------------------------------------------------ Postfix

POSTFIX_ADDS = re.compile(
    rb"\A(?:(?:Return-Path|X-Original-To|Delivered-To): [^\n]*\n"
    rb"|Received: [^\n]*\n(?:[ \t][^\n]*\n)*)+\Z")


def check_delivered(got, sent, envelope_from="sender@example.org",
                    rcpt=RCPT):
    """got is what we sent (in LF form, every header and body byte) after
    only the trace headers Postfix prepends."""
    want = lf(sent)
    assert got.endswith(want), "delivered message differs:\n%r\nsent:\n%r" \
        % (got, want)
    added = got[:-len(want)]
    assert POSTFIX_ADDS.match(added), "unexpected headers added: %r" % added
    assert b"Return-Path: <%s>\n" % envelope_from.encode() in added
    assert b"Delivered-To: %s\n" % rcpt.encode() in added
    return added


def test_smtp_delivers_byte_exact(postfix):
    mid, raw = message(tag(), b"x" * 900 + b"\r\n")
    with maillib.smtp_client(postfix.ports["smtp"]) as c:
        c.ehlo("client.example.org")
        assert not c.has_extn("starttls"), "Postfix here must not offer TLS"
        refused = c.sendmail("sender@example.org", [RCPT], raw)
        assert refused == {}
    got = postfix.wait_message(mid)
    added = check_delivered(got, raw)
    assert b"by mail.%s (Postfix) with ESMTP" % DOMAIN.encode() in added
    assert b"(localhost [127.0.0.1])" in added or b"[127.0.0.1]" in added
    assert postfix.messages().count(got) == 1


def test_smtp_two_recipients_two_mailboxes(postfix):
    mid, raw = message(tag())
    with maillib.smtp_client(postfix.ports["smtp"]) as c:
        assert c.sendmail("sender@example.org", [RCPT, OTHER], raw) == {}
    check_delivered(postfix.wait_message(mid), raw)
    check_delivered(postfix.wait_message(mid, recipient=OTHER), raw,
                    rcpt=OTHER)


def test_smtp_unknown_recipient_refused(postfix):
    with maillib.smtp_client(postfix.ports["smtp"]) as c:
        c.ehlo("client.example.org")
        c.mail("sender@example.org")
        code, text = c.rcpt("nobody@" + DOMAIN)
        assert code == 550, (code, text)


def test_smtp_proxy_port_uses_header_address(postfix):
    mid, raw = message(tag())
    hdr = maillib.proxy_header("192.0.2.25", 41025, dport=25)
    start = postfix.log_size()
    with maillib.smtp_client(postfix.ports["smtp_haproxy"], proxy=hdr) as c:
        assert c.sendmail("sender@example.org", [RCPT], raw) == {}
    added = check_delivered(postfix.wait_message(mid), raw)
    assert b"[192.0.2.25]" in added, added
    postfix.wait_log(r"smtpd\[\d+\]: connect from unknown\[192\.0\.2\.25\]",
                     start=start)


def test_smtp_proxy_port_refuses_no_header(postfix):
    """Without a header the PROXY port never greets: it waits for one and
    drops the connection (smtpd_upstream_proxy_timeout 5 s)."""
    got = until_dropped(postfix.ports["smtp_haproxy"],
                        b"EHLO client.example.org\r\n")
    assert not got.startswith(b"220"), got


# ------------------------------------------------------------------ Dovecot

def test_imap_append_fetch_byte_exact(dovecot):
    mid, raw = message(tag())
    c = maillib.imap_client(dovecot.ports["imap"])
    try:
        typ, _ = c.login("alice", USERS["alice"])
        assert typ == "OK"
        typ, d = c.append("INBOX", None, None, raw)
        assert typ == "OK", d
        typ, d = c.select("INBOX")
        assert typ == "OK", d
        typ, hits = c.search(None, "HEADER", "Message-ID", mid.decode())
        assert typ == "OK" and len(hits[0].split()) == 1, hits
        typ, d = c.fetch(hits[0], "(BODY.PEEK[])")
        assert typ == "OK", d
        assert d[0][1] == raw
    finally:
        c.logout()
    # On disk as Dovecot keeps it: LF line ends.
    assert lf(raw) in dovecot.messages("alice")


def test_imap_wrong_password_refused(dovecot):
    """From an address of its own (a PROXY header): Dovecot's anvil then
    delays that address's next logins (2, 4, 8... s), not 127.0.0.1's."""
    hdr = maillib.proxy_header("192.0.2.66", 41066, dport=143, tls=False)
    c = maillib.imap_client(dovecot.ports["imap_haproxy"], proxy=hdr)
    try:
        with pytest.raises(maillib.imaplib.IMAP4.error):
            c.login("alice", "not-the-password")
    finally:
        c.shutdown()


def test_pop3_list_retr_byte_exact(dovecot):
    mid, raw = message(tag())
    dovecot.deliver("bob", raw)
    c = maillib.pop3_client(dovecot.ports["pop3"])
    try:
        c.user("bob")
        c.pass_(USERS["bob"])
        resp, listing, _ = c.list()
        assert resp.startswith(b"+OK"), resp
        sizes = dict(x.split() for x in listing)
        assert len(sizes) == 1, listing
        n = next(iter(sizes))
        # POP3 sizes count CRLF line ends.
        assert int(sizes[n]) == len(raw), (sizes, len(raw))
        resp, lines, octets = c.retr(int(n))
        # poplib strips CRLF and undoes the dot-stuffing.
        assert b"\r\n".join(lines) + b"\r\n" == raw
    finally:
        c.quit()
    assert dovecot.messages("bob") == [raw]


def dovecot_login_line(dovecot, user, start, rip):
    m = dovecot.wait_log(r"(imap|pop3)-login: Info: Login: user=<%s>, [^\n]*"
                         r"rip=%s, [^\n]*" % (user, re.escape(rip)),
                         start=start)
    return m.group(0)


def dovecot_auth_line(dovecot, start, rip):
    return dovecot.wait_log(r"auth: Debug: client in: AUTH\t[^\n]*"
                            r"\trip=%s\t[^\n]*" % re.escape(rip),
                            start=start).group(0)


def test_imap_proxy_v2_ssl_tlv(dovecot):
    """The haproxy port takes the header's address as the client's and its
    SSL TLV as "the client used TLS": secured=tls in the auth request."""
    start = dovecot.log_size()
    hdr = maillib.proxy_header("192.0.2.143", 41143, dport=143)
    c = maillib.imap_client(dovecot.ports["imap_haproxy"], proxy=hdr)
    try:
        assert c.login("carol", USERS["carol"])[0] == "OK"
        assert c.select("INBOX")[0] == "OK"
    finally:
        c.logout()
    line = dovecot_login_line(dovecot, "carol", start, "192.0.2.143")
    assert "lip=127.0.0.1" in line, line
    auth = dovecot_auth_line(dovecot, start, "192.0.2.143")
    assert "\tsecured=tls\t" in auth, auth
    assert "\trport=41143\t" in auth and "\tlport=143\t" in auth, auth


def test_imap_proxy_v2_without_ssl_not_secured(dovecot):
    """The control: the same header without the SSL TLV is neither TLS nor
    secured (login_trusted_networks is not set)."""
    start = dovecot.log_size()
    hdr = maillib.proxy_header("192.0.2.144", 41144, dport=143, tls=False)
    c = maillib.imap_client(dovecot.ports["imap_haproxy"], proxy=hdr)
    try:
        assert c.login("carol", USERS["carol"])[0] == "OK"
    finally:
        c.logout()
    line = dovecot_login_line(dovecot, "carol", start, "192.0.2.144")
    assert "secured" not in line and "TLS" not in line, line
    auth = dovecot_auth_line(dovecot, start, "192.0.2.144")
    assert "secured" not in auth, auth


def test_pop3_proxy_v2_ssl_tlv(dovecot):
    start = dovecot.log_size()
    mid, raw = message(tag())
    dovecot.deliver("carol", raw)
    hdr = maillib.proxy_header("192.0.2.110", 41110, dport=110)
    c = maillib.pop3_client(dovecot.ports["pop3_haproxy"], proxy=hdr)
    try:
        c.user("carol")
        c.pass_(USERS["carol"])
        count, _ = c.stat()
        got = [b"\r\n".join(c.retr(i)[1]) + b"\r\n"
               for i in range(1, count + 1)]
        assert raw in got
    finally:
        c.quit()
    dovecot_login_line(dovecot, "carol", start, "192.0.2.110")
    auth = dovecot_auth_line(dovecot, start, "192.0.2.110")
    assert "\tservice=pop3\t" in auth and "\tsecured=tls\t" in auth, auth


def test_imap_proxy_port_refuses_no_header(dovecot):
    """A client that skips the header gets no greeting and is dropped."""
    got = until_dropped(dovecot.ports["imap_haproxy"], b"a1 CAPABILITY\r\n")
    assert b"* OK" not in got, got


# --------------------------------------------------- two instances, clean stop

def test_second_instances_beside_first_and_clean_stop(tmp_path, dovecot,
                                                      postfix):
    d2 = maillib.Dovecot(tmp_path / "dovecot2", {"dave": "dave-secret"})
    p2 = maillib.Postfix(tmp_path / "postfix2")
    try:
        d2.start()
        p2.start()
        c = maillib.imap_client(d2.ports["imap"])
        assert c.login("dave", "dave-secret")[0] == "OK"
        c.logout()
        mid, raw = message(tag())
        with maillib.smtp_client(p2.ports["smtp"]) as c:
            assert c.sendmail("sender@example.org", [RCPT], raw) == {}
        check_delivered(p2.wait_message(mid), raw)
        assert all(mid not in m for m in postfix.messages()), \
            "the second Postfix delivered into the first one's Maildir"
        assert d2.instance_pids() and p2.instance_pids()
    finally:
        d2.stop()
        p2.stop()
    assert not d2.instance_pids() and not p2.instance_pids()
    # The first ones still serve.
    c = maillib.imap_client(dovecot.ports["imap"])
    assert c.login("alice", USERS["alice"])[0] == "OK"
    c.logout()
    assert postfix.instance_pids()
    print("start times: dovecot %.2f s, postfix %.2f s" % (d2.started_in,
                                                           p2.started_in))


# --------------------------------------------------------------- fakes

@pytest.mark.parametrize("starttls", [True, False])
def test_fake_smtp_records(starttls):
    f = fakemail.FakeMail("smtp", starttls=starttls)
    try:
        with maillib.smtp_client(f.port) as c:
            c.ehlo("client.example.org")
            assert c.has_extn("starttls") == starttls
            assert c.noop()[0] == 250
            assert c.rset()[0] == 250
            c.sendmail("a@example.org", ["b@example.org"],
                       b"Subject: x\r\n\r\n.dot\r\nend\r\n")
        f.wait_line(r"^QUIT\r\n$")
        assert f.lines[0] == b"ehlo client.example.org\r\n"
        verbs = [x.split(b" ")[0].rstrip(b"\r\n").upper() for x in f.lines]
        assert verbs == [b"EHLO", b"NOOP", b"RSET", b"MAIL", b"RCPT", b"DATA",
                         b"QUIT"], f.lines
        # What DATA carried, dot-stuffing and all, as it came off the wire.
        assert f.sessions[0]["messages"] == [b"Subject: x\r\n\r\n..dot\r\nend\r\n"]
    finally:
        f.close()


def raw_dialogue(port, steps, timeout=10):
    """steps: [(line to send or None, what the answer ends with)]; returns
    each answer as it came, read until it ends so (bounded by timeout)."""
    out = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        for send, until in steps:
            if send is not None:
                s.sendall(send)
            got = b""
            while not got.endswith(until):
                b = s.recv(4096)
                if not b:
                    break
                got += b
            out.append(got)
    return out


INJECT = {"smtp": b"250 injected after the capabilities\r\n",
          "imap": b"* OK injected after the capabilities\r\n",
          "pop3": b"+OK injected after the capabilities\r\n"}


def test_fake_smtp_inject_after_ehlo():
    f = fakemail.FakeMail("smtp", inject=INJECT["smtp"])
    try:
        greet, ehlo, quit_ = raw_dialogue(f.port, [
            (None, b"\r\n"), (b"EHLO x\r\n", INJECT["smtp"]),
            (b"QUIT\r\n", b"\r\n")])
        assert greet.startswith(b"220 ")
        assert ehlo.endswith(b"250 SIZE 10240000\r\n" + INJECT["smtp"]), ehlo
        assert b"250-STARTTLS\r\n" in ehlo
        assert quit_.startswith(b"221 ")
    finally:
        f.close()


def test_fake_imap_with_imaplib():
    f = fakemail.FakeMail("imap")
    try:
        c = maillib.imap_client(f.port)
        assert "STARTTLS" in c.capabilities
        assert c.login("u", "p")[0] == "OK"
        c.logout()
        f.wait_line(r"LOGOUT")
    finally:
        f.close()


# What a client sends to a fake and the whole answer it must get back;
# the first line asks for the capabilities (checked on their own).
FAKE_SCRIPTS = {
    "imap": [(b"a1 CAPABILITY\r\n", b"a1 OK CAPABILITY completed\r\n"),
             (b"a2 NOOP\r\n", b"a2 OK NOOP completed\r\n"),
             (b"a3 LOGIN u p\r\n", b"a3 OK LOGIN completed\r\n"),
             (b"a4 STARTTLS\r\n", b"a4 NO TLS not available (fake)\r\n"),
             (b"a5 LOGOUT\r\n",
              b"* BYE fake logging out\r\na5 OK LOGOUT completed\r\n")],
    "pop3": [(b"CAPA\r\n", b"\r\n.\r\n"),
             (b"USER u\r\n", b"+OK\r\n"), (b"PASS p\r\n", b"+OK\r\n"),
             (b"NOOP\r\n", b"+OK\r\n"), (b"RSET\r\n", b"+OK\r\n"),
             (b"STLS\r\n", b"-ERR TLS not available (fake)\r\n"),
             (b"QUIT\r\n", b"+OK bye\r\n")],
}
TLS_CAP = {"imap": b" STARTTLS ", "pop3": b"\r\nSTLS\r\n"}
GREETS = {"imap": b"* OK ", "pop3": b"+OK "}


@pytest.mark.parametrize("proto", ["imap", "pop3"])
@pytest.mark.parametrize("starttls", [True, False])
def test_fake_imap_pop3(proto, starttls):
    """Every answer whole, the injected line right after the capability
    list, and every line the client sent recorded as sent."""
    script = FAKE_SCRIPTS[proto]
    f = fakemail.FakeMail(proto, starttls=starttls, inject=INJECT[proto])
    try:
        got = raw_dialogue(f.port, [(None, b"\r\n"),
                                    (script[0][0], INJECT[proto])] +
                           [(send, want) for send, want in script[1:]])
        assert got[0].startswith(GREETS[proto]), got[0]
        caps = got[1]
        assert caps.endswith(script[0][1] + INJECT[proto]), caps
        assert (TLS_CAP[proto] in caps) == starttls, caps
        assert got[2:] == [want for _, want in script[1:]]
        assert f.lines == [send for send, _ in script]
    finally:
        f.close()


def test_fake_reads_proxy_header():
    f = fakemail.FakeMail("pop3", proxy=True)
    try:
        hdr = maillib.proxy_header("192.0.2.9", 40009, dport=110)
        c = maillib.pop3_client(f.port, proxy=hdr)
        c.user("u")
        c.quit()
        f.wait_line(r"^QUIT")
        h = f.sessions[0]["proxy"]
        assert h["src"] == "192.0.2.9" and h["sport"] == 40009, h
        assert h["ssl_client"] == 0x01 and h["ssl"][0x21] == b"TLSv1.3", h
    finally:
        f.close()
