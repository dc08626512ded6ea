# SPDX-License-Identifier: GPL-2.0-or-later
"""maillib -- real and fake mail servers for the STARTTLS tests.

`Dovecot` (IMAP, POP3) and `Postfix` (SMTP) are Debian's own daemons run as
private instances from a config the test writes into its directory: their
own loopback ports, queue, state, logs and Maildirs, so two instances never
collide and the system's (never started: packaging/dev/setup) stays out of
it.  Each has a second listener that expects a PROXY header (Dovecot
`haproxy = yes`, Postfix `smtpd_upstream_proxy_protocol = haproxy`).
(The recording fakes for injection tests are in fakemail.py.)
`smtp_client`, `imap_client` and `pop3_client` are
Python's smtplib/imaplib/poplib clients that may send a PROXY header first.

Both daemons start as root and drop to their own users (postfix, dovecot,
dovenull); mail is written as MAIL_USER (moat).  Those users must reach
the test directory, so `traversable()` gives the directories above it
o+x (pytest makes its base 0700).  Every wait is bounded.
"""

import imaplib
import os
import poplib
import pwd
import re
import signal
import smtplib
import socket
import subprocess
import tempfile
import time
import uuid

import moatlib
import pplib
from moatlib import LOOPBACK, free_port, wait_for

DOVECOT = "/usr/sbin/dovecot"
POSTFIX = "/usr/sbin/postfix"
MAIL_USER = "moat"
DOMAIN = "moat.test"


def traversable(path):
    """Give every directory from the temp root down to path o+x, so that
    the daemons' users can reach what lies below (not list it)."""
    root = os.path.realpath(tempfile.gettempdir())
    path = os.path.realpath(path)
    while path.startswith(root + os.sep):
        mode = os.stat(path).st_mode
        if not mode & 0o001:
            os.chmod(path, (mode & 0o7777) | 0o001)
        path = os.path.dirname(path)


def mkdir_owned(path, user, mode=0o700):
    os.makedirs(path, mode, exist_ok=True)
    pw = pwd.getpwnam(user)
    os.chown(path, pw.pw_uid, pw.pw_gid)
    os.chmod(path, mode)


def maildir_messages(maildir):
    """Raw bytes of every message in a Maildir (new/ and cur/ of INBOX and
    of each .Folder), oldest first; Maildir file names start with the
    delivery time, so (mtime, name) orders them."""
    files = []
    if not os.path.isdir(maildir):
        return []
    roots = [maildir] + [os.path.join(maildir, d) for d in os.listdir(maildir)
                         if d.startswith(".") and d not in (".", "..")]
    for r in roots:
        for sub in ("new", "cur"):
            d = os.path.join(r, sub)
            if not os.path.isdir(d):
                continue
            for n in os.listdir(d):
                p = os.path.join(d, n)
                try:
                    files.append((os.stat(p).st_mtime, n, p))
                except OSError:
                    pass        # moved from new/ to cur/ meanwhile
    out = []
    for _, _, p in sorted(files):
        try:
            with open(p, "rb") as f:
                out.append(f.read())
        except FileNotFoundError:
            pass
    return out


def instance_pids(match):
    """Live pids whose /proc entry match(pid) accepts."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != os.getpid() and moatlib.proc_alive(int(d)):
            try:
                if match(int(d)):
                    out.append(int(d))
            except OSError:
                pass
    return out


def reap_instance(match, seconds, what):
    """Wait until no live process matches; SIGKILL the rest after `seconds`
    and raise, so a daemon that outlives its stop fails the test."""
    try:
        wait_for(lambda: not instance_pids(match), seconds, 0.1, what)
        return
    except TimeoutError:
        left = instance_pids(match)
    for p in left:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    raise AssertionError("%s: processes left after stop: %s" % (what, left))


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def _greets(port, prefix, timeout=2):
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout) as s:
            return s.recv(512).startswith(prefix)
    except OSError:
        return False


def _accepts(port):
    try:
        socket.create_connection((LOOPBACK, port), timeout=2).close()
        return True
    except OSError:
        return False


class _Daemon:
    """What the two share: a log file, waiting on it."""

    log_path = None

    def log_text(self):
        return _read(self.log_path)

    def log(self, tail=80):
        lines = self.log_text().splitlines()
        return "---- %s (last %d lines) ----\n%s" % (
            self.log_path, tail, "\n".join(lines[-tail:]))

    def wait_log(self, regex, seconds=10, start=0):
        """The first match of regex in the log past byte `start`."""
        rx = re.compile(regex)
        try:
            return wait_for(lambda: rx.search(self.log_text()[start:]),
                            seconds, 0.05, "log line /%s/" % regex)
        except TimeoutError:
            raise AssertionError("no line /%s/ within %d s\n%s"
                                 % (regex, seconds, self.log()))

    def log_size(self):
        return len(self.log_text())

    def instance_pids(self):
        """Live processes of this instance."""
        return instance_pids(self._mine)


# --------------------------------------------------------------------- Dovecot

class Dovecot(_Daemon):
    """`dovecot -F -c DIR/dovecot.conf`, IMAP and POP3 on loopback.

    self.ports: "imap", "pop3" (plain), "imap_haproxy", "pop3_haproxy"
    (a PROXY v1/v2 header first, from haproxy_trusted_networks 127.0.0.1).
    users: {name: password} in a passwd-file; every user's mail is the
    Maildir DIR/mail/<user>, owned by MAIL_USER.  debug: auth_debug and
    mail_debug (the auth lines say `secured=tls` when a PROXY header's SSL
    TLV said TLS).  trusted: login_trusted_networks (None: not set, so the
    log tells a plain connection from one a proxy vouched for).
    """

    def __init__(self, directory, users=None, debug=True, trusted=None,
                 mail_user=MAIL_USER, extra=""):
        self.dir = str(directory)
        os.makedirs(self.dir, exist_ok=True)
        traversable(self.dir)
        self.users = dict(users or {"alice": "alice-secret",
                                    "bob": "bob-secret"})
        self.mail_user = mail_user
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.log_path = os.path.join(self.dir, "dovecot.log")
        self.out_path = os.path.join(self.dir, "dovecot.out")
        self.mail_root = os.path.join(self.dir, "mail")
        # Process titles start with it: what stop() looks for.
        self.instance = "dovecot-" + uuid.uuid4().hex[:12]
        self.ports = {k: free_port() for k in
                      ("imap", "imap_haproxy", "pop3", "pop3_haproxy")}
        run = os.path.join(self.dir, "run")
        if len(run) > 60:       # unix socket paths (108 bytes) live below
            run = tempfile.mkdtemp(prefix="dovecot-run-")
        self.base_dir = run
        mkdir_owned(self.mail_root, mail_user, 0o755)
        pw = pwd.getpwnam(mail_user)
        passwd = os.path.join(self.dir, "passwd")
        with open(passwd, "w") as f:
            for u, p in self.users.items():
                f.write("%s:{PLAIN}%s::::::\n" % (u, p))
        os.chmod(passwd, 0o644)
        p = self.ports
        with open(self.conf, "w") as f:
            f.write(DOVECOT_CONF % dict(
                instance=self.instance, base=run,
                state=os.path.join(self.dir, "state"), log=self.log_path,
                debug="yes" if debug else "no",
                trusted=("login_trusted_networks = %s" % trusted)
                if trusted else "",
                uid=pw.pw_uid, user=mail_user, mail=self.mail_root,
                passwd=passwd, extra=extra, services="".join(
                    dovecot_login_service(x, p[x], p[x + "_haproxy"])
                    for x in ("imap", "pop3"))))
        self.proc = None
        self.started_in = None

    def start(self, wait=30):
        moatlib.need_tool(DOVECOT)
        t0 = time.monotonic()
        with open(self.out_path, "ab") as out:
            self.proc = subprocess.Popen([DOVECOT, "-F", "-c", self.conf],
                                         stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT)
        try:
            self.wait_ready(wait)
        except BaseException:
            self.stop(check=False)
            raise
        self.started_in = time.monotonic() - t0
        return self

    def wait_ready(self, seconds=30):
        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("dovecot exited with %s\n%s\n%s" % (
                    self.proc.returncode, _read(self.out_path), self.log()))
            p = self.ports
            return (_greets(p["imap"], b"* OK") and _greets(p["pop3"], b"+OK")
                    and _accepts(p["imap_haproxy"])
                    and _accepts(p["pop3_haproxy"]))
        try:
            wait_for(ready, seconds, 0.05, "dovecot to answer")
        except TimeoutError:
            raise TimeoutError("dovecot not ready after %d s\n%s\n%s" % (
                seconds, _read(self.out_path), self.log()))

    def _mine(self, pid):
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmd = f.read()
        return (cmd.startswith(self.instance.encode() + b"/") or
                self.conf.encode() + b"\0" in cmd)

    def stop(self, timeout=15, check=True):
        """SIGTERM the master (it stops its children), wait for it and for
        every process of this instance to be gone."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                if check:
                    raise AssertionError("dovecot ignored SIGTERM for %d s"
                                         % timeout)
        try:
            reap_instance(self._mine, timeout, "dovecot " + self.instance)
        except AssertionError:
            if check:
                raise
        return self.proc.returncode

    def maildir(self, user):
        return os.path.join(self.mail_root, user)

    def messages(self, user):
        """Raw bytes of every message in user's Maildir, oldest first.
        Dovecot stores lines ending in LF (IMAP shows them with CRLF)."""
        return maildir_messages(self.maildir(user))

    def deliver(self, user, raw):
        """Put raw into user's INBOX as an MTA would (tmp/, then new/),
        owned by the mail user; returns the file name."""
        md = self.maildir(user)
        mkdir_owned(md, self.mail_user)
        for sub in ("tmp", "new", "cur"):
            mkdir_owned(os.path.join(md, sub), self.mail_user)
        name = "%d.M%dP%d.moat-test" % (time.time(), time.monotonic_ns() // 1000,
                                        os.getpid())
        tmp = os.path.join(md, "tmp", name)
        with open(tmp, "wb") as f:
            f.write(raw)
        pw = pwd.getpwnam(self.mail_user)
        os.chown(tmp, pw.pw_uid, pw.pw_gid)
        os.chmod(tmp, 0o600)
        os.rename(tmp, os.path.join(md, "new", name))
        return name


def dovecot_login_service(proto, port, haproxy_port):
    """A <proto>-login service: the plain listener, the PROXY one, and the
    implicit-TLS one off (ssl = no)."""
    return """service %(p)s-login {
  inet_listener %(p)s {
    address = 127.0.0.1
    port = %(port)d
  }
  inet_listener %(p)ss {
    port = 0
  }
  inet_listener %(p)s_haproxy {
    address = 127.0.0.1
    port = %(hp)d
    haproxy = yes
  }
}
""" % {"p": proto, "port": port, "hp": haproxy_port}


DOVECOT_CONF = """\
# Written by maillib.Dovecot for one test; nothing from /etc/dovecot.
instance_name = %(instance)s
protocols = imap pop3
listen = 127.0.0.1
base_dir = %(base)s
state_dir = %(state)s
log_path = %(log)s
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
auth_verbose = yes
auth_debug = %(debug)s
mail_debug = %(debug)s
verbose_proctitle = yes
%(trusted)s
haproxy_trusted_networks = 127.0.0.1
haproxy_timeout = 5s
first_valid_uid = %(uid)d
last_valid_uid = %(uid)d
mail_uid = %(user)s
mail_gid = %(user)s
mail_location = maildir:%(mail)s/%%u
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%u %(passwd)s
}
userdb {
  driver = static
  args = uid=%(user)s gid=%(user)s home=%(mail)s/%%u
}
%(services)s
%(extra)s
"""


# --------------------------------------------------------------------- Postfix

class Postfix(_Daemon):
    """`postfix -c DIR/conf start`: smtpd on loopback, mail for the
    recipients delivered by virtual(8) into Maildirs DIR/vmail/<local part>
    (owned by MAIL_USER).

    self.ports: "smtp" (plain) and "smtp_haproxy" (a PROXY v1/v2 header
    first; Postfix uses its addresses, it ignores TLVs).  No TLS in Postfix,
    mynetworks 127.0.0.0/8, no DNS.  recipients: addresses in DOMAIN.
    """

    def __init__(self, directory, recipients=("rcpt@" + DOMAIN,),
                 mail_user=MAIL_USER, hostname="mail." + DOMAIN, extra=""):
        self.dir = str(directory)
        os.makedirs(self.dir, exist_ok=True)
        traversable(self.dir)
        self.recipients = list(recipients)
        self.confdir = os.path.join(self.dir, "conf")
        self.queue = os.path.join(self.dir, "queue")
        self.data = os.path.join(self.dir, "data")
        self.vmail = os.path.join(self.dir, "vmail")
        self.log_path = os.path.join(self.dir, "postfix.log")
        self.ports = {"smtp": free_port(), "smtp_haproxy": free_port()}
        os.makedirs(self.confdir, 0o755, exist_ok=True)
        os.makedirs(self.queue, 0o755, exist_ok=True)   # root's (postfix check)
        mkdir_owned(self.data, "postfix")
        mkdir_owned(self.vmail, mail_user, 0o755)
        pw = pwd.getpwnam(mail_user)
        boxes = ", ".join("%s=%s/" % (r, r.split("@")[0])
                          for r in self.recipients)
        with open(os.path.join(self.confdir, "main.cf"), "w") as f:
            f.write(POSTFIX_MAIN % dict(
                host=hostname, domain=DOMAIN, queue=self.queue, data=self.data,
                log=self.log_path, dir=self.dir, vmail=self.vmail, boxes=boxes,
                uid=pw.pw_uid, gid=pw.pw_gid, extra=extra))
        with open(os.path.join(self.confdir, "master.cf"), "w") as f:
            f.write(POSTFIX_MASTER % dict(
                smtp=self.ports["smtp"], smtp_hp=self.ports["smtp_haproxy"]))
        self.running = False
        self.started_in = None

    def _postfix(self, *args, timeout=60):
        return subprocess.run([POSTFIX, "-c", self.confdir, *args],
                              stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout)

    def start(self, wait=60):
        """Its own checks (postfix-script check-fatal, post-install) run at
        every start; `master -w` returns once the master is up."""
        moatlib.need_tool(POSTFIX)
        t0 = time.monotonic()
        r = self._postfix("start", timeout=wait)
        self.running = True
        if r.returncode != 0:
            self.stop(check=False)
            raise RuntimeError("postfix start failed (%d): %s%s\n%s" % (
                r.returncode, r.stdout, r.stderr, self.log()))
        try:
            wait_for(lambda: _greets(self.ports["smtp"], b"220 ")
                     and _accepts(self.ports["smtp_haproxy"]),
                     wait, 0.05, "postfix smtpd to answer")
        except TimeoutError:
            self.stop(check=False)
            raise TimeoutError("postfix not ready\n%s" % self.log())
        self.started_in = time.monotonic() - t0
        return self

    def _mine(self, pid):
        # import_environment passes MAIL_CONFIG to every Postfix process.
        with open("/proc/%d/environ" % pid, "rb") as f:
            return b"\0MAIL_CONFIG=%s\0" % self.confdir.encode() in \
                b"\0" + f.read()

    def stop(self, timeout=20, check=True):
        """`postfix stop` (the master's SIGTERM), then wait until no process
        of this instance is left; SIGKILL and fail after `timeout`."""
        if not self.running:
            return
        self.running = False
        r = self._postfix("stop", timeout=timeout)
        if check and r.returncode != 0 and "not running" not in r.stderr:
            raise AssertionError("postfix stop failed (%d): %s%s" % (
                r.returncode, r.stdout, r.stderr))
        try:
            reap_instance(self._mine, timeout, "postfix " + self.confdir)
        except AssertionError:
            if check:
                raise

    def maildir(self, recipient=None):
        return os.path.join(self.vmail,
                            (recipient or self.recipients[0]).split("@")[0])

    def messages(self, recipient=None):
        """Raw bytes delivered to recipient (the first one by default),
        oldest first, lines ending in LF as Postfix stores them."""
        return maildir_messages(self.maildir(recipient))

    def wait_message(self, needle, seconds=20, recipient=None):
        """The delivered message that contains needle (bytes); delivery is
        asynchronous (queue manager, then virtual)."""
        def look():
            for m in self.messages(recipient):
                if needle in m:
                    return m
            return None
        try:
            return wait_for(look, seconds, 0.05, "delivery of %r" % needle)
        except TimeoutError:
            raise AssertionError("no message with %r for %s within %d s\n%s"
                                 % (needle, recipient or self.recipients[0],
                                    seconds, self.log()))


POSTFIX_MAIN = """\
# Written by maillib.Postfix for one test; nothing from /etc/postfix.
compatibility_level = 3.6
myhostname = %(host)s
mydomain = %(domain)s
myorigin = %(domain)s
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
queue_directory = %(queue)s
data_directory = %(data)s
maillog_file = %(log)s
maillog_file_prefixes = %(dir)s
smtpd_tls_security_level = none
smtp_tls_security_level = none
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
smtpd_upstream_proxy_timeout = 5s
virtual_mailbox_domains = %(domain)s
virtual_mailbox_base = %(vmail)s
virtual_mailbox_maps = inline:{ %(boxes)s }
virtual_uid_maps = static:%(uid)d
virtual_gid_maps = static:%(gid)d
virtual_minimum_uid = 1
alias_maps =
alias_database =
biff = no
%(extra)s
"""

POSTFIX_MASTER = """\
# Written by maillib.Postfix: no chroot, only what delivery needs.
127.0.0.1:%(smtp)d inet n - n - - smtpd
127.0.0.1:%(smtp_hp)d inet n - n - - smtpd
  -o smtpd_upstream_proxy_protocol=haproxy
pickup    unix  n  -  n  60  1  pickup
cleanup   unix  n  -  n  -   0  cleanup
qmgr      unix  n  -  n  300 1  qmgr
rewrite   unix  -  -  n  -   -  trivial-rewrite
bounce    unix  -  -  n  -   0  bounce
defer     unix  -  -  n  -   0  bounce
trace     unix  -  -  n  -   0  bounce
verify    unix  -  -  n  -   1  verify
flush     unix  n  -  n  1000? 0 flush
proxymap  unix  -  -  n  -   -  proxymap
smtp      unix  -  -  n  -   -  smtp
relay     unix  -  -  n  -   -  smtp
showq     unix  n  -  n  -   -  showq
error     unix  -  -  n  -   -  error
retry     unix  -  -  n  -   -  error
discard   unix  -  -  n  -   -  discard
virtual   unix  -  n  n  -   -  virtual
anvil     unix  -  -  n  -   1  anvil
scache    unix  -  -  n  -   1  scache
postlog   unix-dgram n - n - 1  postlogd
"""


# ------------------------------------------------------------------- clients

def proxy_header(src="192.0.2.7", sport=40000, dst=LOOPBACK, dport=25,
                 tls=True, version=b"TLSv1.3"):
    """A PROXY v2 header as moat would send it: with tls, the SSL TLV with
    PP2_CLIENT_SSL and a version sub-TLV; without, no SSL TLV."""
    tlvs = pplib.ssl_tlv(version=version) if tls else b""
    return pplib.v2_header(src, sport, dst, dport, tlvs=tlvs)


def _proxied(cls, method):
    """A subclass of an smtplib/imaplib/poplib client whose socket sends
    self.proxy_hdr (when set) before the protocol starts."""
    def make(self, *a, **kw):
        s = getattr(cls, method)(self, *a, **kw)
        if self.proxy_hdr:
            s.sendall(self.proxy_hdr)
        return s
    return type("Proxied" + cls.__name__, (cls,),
                {method: make, "proxy_hdr": None})


_SMTP = _proxied(smtplib.SMTP, "_get_socket")
_IMAP = _proxied(imaplib.IMAP4, "_create_socket")
_POP3 = _proxied(poplib.POP3, "_create_socket")


def smtp_client(port, proxy=None, timeout=20):
    c = _SMTP(timeout=timeout)
    c.proxy_hdr = proxy
    c.connect(LOOPBACK, port)
    return c


def imap_client(port, proxy=None, timeout=20):
    # IMAP4.__init__ connects at once: set the header on the class first.
    cls = type("OneIMAP", (_IMAP,), {"proxy_hdr": proxy})
    return cls(LOOPBACK, port, timeout=timeout)


def pop3_client(port, proxy=None, timeout=20):
    cls = type("OnePOP3", (_POP3,), {"proxy_hdr": proxy})
    return cls(LOOPBACK, port, timeout=timeout)
