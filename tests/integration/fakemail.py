# SPDX-License-Identifier: GPL-2.0-or-later
"""fakemail -- a recording SMTP, IMAP or POP3 server of the test's own,
for the STARTTLS injection tests: it speaks just enough of each protocol
(maillib has the real servers) and keeps every line it receives."""

import re
import threading

import moatlib
import pplib
from maillib import DOMAIN
from moatlib import wait_for



class FakeMail:
    """A recording SMTP, IMAP or POP3 server (a thread per connection).

    It greets, answers EHLO/HELO, CAPABILITY or CAPA (listing STARTTLS or
    STLS when starttls), NOOP, RSET, QUIT/LOGOUT, MAIL/RCPT/DATA (SMTP),
    LOGIN (IMAP), USER/PASS (POP3), refuses STARTTLS/STLS itself, and
    records every line it receives, exactly, in self.lines (and per
    connection in self.sessions[i]["lines"], messages after DATA in
    ["messages"]).  inject: bytes sent unsolicited right after the first whole
    capability answer.  proxy: read a PROXY header first (pplib's parser)
    and keep it in ["proxy"].  inject_delay: send the injection that many
    seconds after the capability answer instead, as a second write.
    """

    def __init__(self, proto, starttls=True, inject=None, proxy=False,
                 name="fake." + DOMAIN, inject_delay=0.0):
        assert proto in ("smtp", "imap", "pop3"), proto
        self.proto, self.starttls, self.inject = proto, starttls, inject
        self.inject_delay = inject_delay
        self.proxy, self.name = proxy, name
        self.lines = []
        self.sessions = []
        self._lock = threading.Lock()
        self.backend = moatlib.Backend(self._serve)
        self.port = self.backend.port
        self.address = self.backend.address

    def close(self):
        self.backend.close()

    def wait_line(self, regex, seconds=10):
        """The first received line (decoded) that matches regex."""
        rx = re.compile(regex)

        def look():
            with self._lock:
                for ln in self.lines:
                    if rx.search(ln.decode("latin-1")):
                        return ln
            return None
        try:
            return wait_for(look, seconds, 0.02, "a line /%s/" % regex)
        except TimeoutError:
            raise AssertionError("%s fake got no line /%s/; it got %r"
                                 % (self.proto, regex, self.lines))

    # -- serving

    def _serve(self, c):
        c.settimeout(30)
        sess = {"lines": [], "messages": [], "proxy": None}
        with self._lock:
            self.sessions.append(sess)
        if self.proxy:
            try:
                sess["proxy"] = pplib.read_proxy_header(c)
            except (AssertionError, EOFError, UnicodeDecodeError) as e:
                sess["proxy"] = {"error": str(e)}
                return
        rd = _LineReader(c)
        c.sendall(GREETING[self.proto] % self.name.encode())
        while True:
            ln = rd.line()
            if ln is None:
                return
            with self._lock:
                self.lines.append(ln)
                sess["lines"].append(ln)
            if not self._answer(c, rd, ln, sess):
                return

    def _answer(self, c, rd, ln, sess):
        """Answer one command line; False once the client said goodbye."""
        words = ln.rstrip(b"\r\n").split(b" ")
        if self.proto == "imap":
            tag, verb = words[0], (words[1] if len(words) > 1 else b"")
        else:
            tag, verb = b"", words[0]
        verb = verb.upper()
        if verb in (b"EHLO", b"CAPABILITY", b"CAPA"):
            # the injection rides on the first capability answer, in the
            # same write: "right after" it, as a buffering backend would
            extra = self.inject if self.inject and not sess.get("injected") \
                else b""
            sess["injected"] = True
            if self.inject_delay and extra:
                # later: while the client upgrades, before it speaks in TLS
                c.sendall(self._capabilities(tag))
                threading.Timer(self.inject_delay, self._late,
                                (c, extra)).start()
            else:
                c.sendall(self._capabilities(tag) + extra)
        elif verb == b"DATA" and self.proto == "smtp":
            return self._data(c, rd, sess)
        else:
            table = REPLIES[self.proto]
            c.sendall(table.get(verb, table[None]) %
                      {b"tag": tag, b"name": self.name.encode()})
        return verb not in (b"QUIT", b"LOGOUT")

    @staticmethod
    def _late(c, extra):
        try:
            c.sendall(extra)
        except OSError:
            pass

    def _capabilities(self, tag):
        tls = self.starttls
        if self.proto == "smtp":
            caps = [self.name.encode(), b"PIPELINING", b"8BITMIME"] + \
                [b"STARTTLS"] * tls + [b"SIZE 10240000"]
            return b"".join(b"250-%s\r\n" % x for x in caps[:-1]) + \
                b"250 %s\r\n" % caps[-1]
        if self.proto == "imap":
            return (b"* CAPABILITY IMAP4rev1%s AUTH=PLAIN\r\n"
                    b"%s OK CAPABILITY completed\r\n"
                    % (b" STARTTLS" * tls, tag))
        return (b"+OK capability list follows\r\nUSER\r\nPIPELINING\r\n" +
                b"STLS\r\n" * tls + b".\r\n")

    def _data(self, c, rd, sess):
        """The message up to the lone dot, kept as it came (dot-stuffed)."""
        c.sendall(b"354 End data with <CR><LF>.<CR><LF>\r\n")
        body = []
        while True:
            d = rd.line()
            if d is None:
                return False
            if d in (b".\r\n", b".\n"):
                break
            body.append(d)
        with self._lock:
            sess["messages"].append(b"".join(body))
        c.sendall(b"250 2.0.0 Ok: queued\r\n")
        return True


GREETING = {"smtp": b"220 %s ESMTP fake\r\n",
            "imap": b"* OK %s IMAP fake ready\r\n",
            "pop3": b"+OK %s POP3 fake ready\r\n"}

# The canned answers: {protocol: {verb: reply}}, None for any other verb;
# %(tag)s is the IMAP command's tag.  STARTTLS and STLS are refused: moat
# answers them itself, so one reaching the fake is what a test looks for.
_OK250 = b"250 2.0.0 Ok\r\n"
REPLIES = {
    "smtp": {b"HELO": b"250 %(name)s\r\n", b"NOOP": _OK250, b"RSET": _OK250,
             b"MAIL": _OK250, b"RCPT": _OK250,
             b"STARTTLS": b"454 4.7.0 TLS not available (fake)\r\n",
             b"QUIT": b"221 2.0.0 Bye\r\n",
             None: b"502 5.5.2 Error: command not recognized\r\n"},
    "imap": {b"NOOP": b"%(tag)s OK NOOP completed\r\n",
             b"LOGIN": b"%(tag)s OK LOGIN completed\r\n",
             b"STARTTLS": b"%(tag)s NO TLS not available (fake)\r\n",
             b"LOGOUT": b"* BYE fake logging out\r\n"
                        b"%(tag)s OK LOGOUT completed\r\n",
             None: b"%(tag)s BAD unknown command\r\n"},
    "pop3": {b"USER": b"+OK\r\n", b"PASS": b"+OK\r\n", b"NOOP": b"+OK\r\n",
             b"RSET": b"+OK\r\n", b"STAT": b"+OK 0 0\r\n",
             b"STLS": b"-ERR TLS not available (fake)\r\n",
             b"QUIT": b"+OK bye\r\n",
             None: b"-ERR unknown command\r\n"},
}


class _LineReader:
    """Lines off a socket as they came (LF-terminated, CRLF kept)."""

    def __init__(self, c, limit=65536):
        self.c, self.buf, self.limit = c, b"", limit

    def line(self):
        while b"\n" not in self.buf:
            if len(self.buf) > self.limit:
                return None
            try:
                b = self.c.recv(4096)
            except OSError:
                return None
            if not b:
                return None
            self.buf += b
        ln, _, self.buf = self.buf.partition(b"\n")
        return ln + b"\n"
