# SPDX-License-Identifier: GPL-2.0-or-later
"""reneglib -- helpers for the renegotiation tests (issue 4).

The C helpers from tests/helpers (reneg_client, reneg_swarm) run as
subprocesses; interactive stock clients (gnutls-cli, openssl s_client) are
driven through pipes with bounded waits; moat's renegotiation counters are
read back from `moatctl stats --json`.  A selectors-based echo backend
holds thousands of connections in one thread.  Every wait is bounded.
"""

import hashlib
import json
import os
import re
import selectors
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import moatlib

HELPERS = os.path.join(moatlib.BUILD, "tests", "helpers")
RENEG_CLIENT = os.path.join(HELPERS, "reneg_client")
RENEG_SWARM = os.path.join(HELPERS, "reneg_swarm")

# The counter names of the contract (issue 4), in `moatctl stats --json`.
RENEG_KEYS = ("renegotiations_requested", "renegotiations_completed",
              "renegotiations_refused", "renegotiations_ignored",
              "key_updates", "client_renegotiations_refused",
              "client_renegotiations_allowed")


def need_helper(path):
    if not os.access(path, os.X_OK):
        import pytest
        pytest.fail("%s is not built (MOAT_BUILD=%r)" % (path, moatlib.BUILD))


def frontend(backend, cert, key, **opts):
    """A [frontend] dict; keyword names use _ for - (on_refusal=...)."""
    fe = {"backend": backend, "cert": cert, "key": key}
    fe.update({k.replace("_", "-"): v for k, v in opts.items()})
    return fe


# ------------------------------------------------------------- counters

def counters(m):
    """The renegotiation counters plus the handshake and keyd counters
    (summed over the workers by moatd; the top-level JSON members)."""
    st = m.stats()
    missing = [k for k in RENEG_KEYS if k not in st]
    assert not missing, "moatctl stats --json lacks %s: %r" % (missing, st)
    out = {k: st[k] for k in RENEG_KEYS}
    out["handshakes_ok"] = st["handshakes_ok_tls12"] + st["handshakes_ok_tls13"]
    out["conns_open"] = st["conns_open"]
    out["conns_total"] = st["conns_total"]
    if st.get("keyd_answered") is True:
        out["keyd_signs"] = st["keyd_signs"]
    out["_raw"] = st
    return out


def delta(before, after):
    return {k: after[k] - before.get(k, 0) for k in after
            if not k.startswith("_") and k != "conns_open"
            and isinstance(after[k], int)}


def reneg_delta(m, before):
    """Counters now minus `before` (the renegotiation ones only)."""
    d = delta(before, counters(m))
    return {k: d[k] for k in RENEG_KEYS}


def wait_counters(m, before, want, seconds=30, what=None):
    """Wait until every counter k in want rose by at least want[k]
    since `before`; returns the delta.  Raises AssertionError with the
    last delta and moatd's log on time out."""
    last = {}

    def ok():
        nonlocal last
        last = delta(before, counters(m))
        return all(last.get(k, 0) >= v for k, v in want.items())
    try:
        moatlib.wait_for(ok, seconds, 0.1, what or "counters %r" % want)
    except TimeoutError:
        raise AssertionError("counters did not reach %r within %d s: %r\n%s"
                             % (want, seconds, last, m.log()))
    return last


def wait_quiet(m, seconds=15):
    """Counters once no connection is open (the harness's readiness probe
    is a connection too)."""
    def quiet():
        c = counters(m)
        return c if c["conns_open"] == 0 else None
    return moatlib.wait_for(quiet, seconds, 0.05, "no open connection")


def wait_established(m, before, n=1, seconds=30):
    """Wait until n more handshakes completed since `before` and at least
    n connections are open: then a rekey reaches them."""
    def ok():
        c = counters(m)
        return (c["handshakes_ok"] - before["handshakes_ok"] >= n
                and c["conns_open"] >= n)
    try:
        moatlib.wait_for(ok, seconds, 0.05, "%d established connection(s)" % n)
    except TimeoutError:
        raise AssertionError("%d connection(s) not established within %d s: "
                             "%r\n%s" % (n, seconds, counters(m), m.log()))


REKEY_RE = re.compile(r"(\d+) connections? asked to renegotiate")


def rekey(m, frontend_name=None, timeout=60):
    """`moatctl rekey [FRONTEND]`; returns how many connections it asked."""
    args = ["rekey"] + ([frontend_name] if frontend_name else [])
    r = m.ctl(*args, timeout=timeout)
    mo = REKEY_RE.search(r.stdout)
    assert mo, "unexpected answer to moatctl rekey: %r" % r.stdout
    return int(mo.group(1))


def keyd_keys(m):
    """How many keys keyd holds (moatctl stats: keyd_keys)."""
    st = m.stats()
    assert st.get("keyd_answered") is True, st
    return st["keyd_keys"]


def wait_keyd_keys(m, n, seconds=30):
    moatlib.wait_for(lambda: keyd_keys(m) == n, seconds, 0.1,
                     "keyd to hold %d key(s)" % n)


def reload(m):
    """Certificate rotation: SIGHUP to moatd (what `moatctl reload` and
    systemd's ExecReload do)."""
    import signal
    m.proc.send_signal(signal.SIGHUP)


# ------------------------------------------------------------- log lines

CONN_LINE_RE = re.compile(r'conn client=(\S+) frontend=(\S+) .*?'
                          r'handshake_ms=(\S+) .*?reason="([^"]*)"')


def conn_lines(m, frontend_name=None, established=True):
    """moatd's per-connection close lines: [(client, frontend, reason, line)].
    established: only connections whose handshake completed (this leaves
    out the harness's readiness probe)."""
    out = []
    for line in m.log_text().splitlines():
        mo = CONN_LINE_RE.search(line)
        if not mo:
            continue
        if frontend_name and mo.group(2) != frontend_name:
            continue
        if established and mo.group(3) == "-":
            continue
        out.append((mo.group(1), mo.group(2), mo.group(4), line))
    return out


def wait_conn_line(m, frontend_name, n=1, seconds=20):
    try:
        return moatlib.wait_for(
            lambda: (lambda ls: ls if len(ls) >= n else None)(
                conn_lines(m, frontend_name)),
            seconds, 0.05, "a conn line of frontend %s" % frontend_name)
    except TimeoutError:
        raise AssertionError("no close line for frontend %s within %d s\n%s"
                             % (frontend_name, seconds, m.log()))


# ---------------------------------------------------------- reneg_client

class RenegClient:
    """tests/helpers/reneg_client as a subprocess.

    mode: accept|refuse|ignore; version: "1.2"|"1.3"; duration_ms: how long
    it streams; per_tick: bytes per 10 ms tick; client_reneg_at: list of
    ms after which the client itself renegotiates (TLS 1.2);
    allow_id_change: accept a new server certificate in a renegotiation;
    unsafe: do not offer RFC 5746 safe renegotiation; session_file:
    resume the session saved there, and save the session there at the end.
    """

    def __init__(self, port, mode="accept", version="1.2", duration_ms=3000,
                 per_tick=2048, timeout_ms=60000, client_reneg_at=(),
                 allow_id_change=False, unsafe=False, session_file=None):
        need_helper(RENEG_CLIENT)
        self.args = [RENEG_CLIENT, "-p", str(port), "-m", mode, "-v", version,
                     "-d", str(duration_ms), "-r", str(per_tick),
                     "-t", str(timeout_ms)]
        for t in client_reneg_at:
            self.args += ["-c", str(t)]
        if allow_id_change:
            self.args.append("-i")
        if unsafe:
            self.args.append("-u")
        if session_file:
            self.args += ["-s", session_file]
        self.timeout_s = timeout_ms / 1000.0
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self._out = []
        self._err = []
        self._ready = threading.Event()
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout,
                                                      self._out, None),
                             daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr,
                                                      self._err, self._ready),
                             daemon=True)]
        for t in self._threads:
            t.start()

    @staticmethod
    def _pump(f, sink, ready):
        for line in iter(f.readline, b""):
            line = line.decode(errors="replace")
            sink.append(line)
            if ready is not None and line.strip() == "ready":
                ready.set()
        f.close()

    def wait_ready(self, seconds=30):
        """Until its first handshake is done (it says "ready")."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self._ready.wait(0.1):
                return
            if self.proc.poll() is not None:
                break
        self.proc.poll()
        raise AssertionError("reneg_client not ready (rc %s): %s %s"
                             % (self.proc.returncode, "".join(self._out),
                                "".join(self._err)))

    def result(self, seconds=None):
        """Wait for it to exit; its JSON line as a dict."""
        seconds = seconds or self.timeout_s + 30
        try:
            self.proc.wait(seconds)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("reneg_client did not finish in %d s" % seconds)
        for t in self._threads:
            t.join(5)
        lines = [line for line in self._out if line.startswith("{")]
        assert lines, "reneg_client printed no result (rc %s): %s %s" % (
            self.proc.returncode, "".join(self._out), "".join(self._err))
        return json.loads(lines[-1])

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def assert_intact(res):
    """The connection lived to its end and every byte came back in order."""
    assert res["end"] == "done", res
    assert res["prefix_ok"] is True, res
    assert res["complete"] is True, res
    assert res["sent"] > 0 and res["sent"] == res["received"], res
    assert res["sha_sent"] == res["sha_received"], res


def assert_ended_honestly(res):
    """moat ended the connection, and the end says whether the stream is
    whole: what came back is a prefix of what was sent (nothing lost in
    the middle, duplicated or reordered); a clean end (close_notify,
    "server_closed") only with every byte back; a connection that lost
    bytes ended uncleanly (no close_notify, "server_unclean")."""
    assert res["end"] in ("server_closed", "server_unclean"), res
    assert res["prefix_ok"] is True, res
    assert res["received"] <= res["sent"], res
    if res["end"] == "server_closed":
        assert res["received"] == res["sent"], \
            "a clean end, but %d of %d bytes came back: %r" % (
                res["received"], res["sent"], res)
    if res["received"] < res["sent"]:
        assert res["end"] == "server_unclean", res


# ------------------------------------------------- interactive clients

class Interactive:
    """A line-oriented client (gnutls-cli, openssl s_client) on pipes;
    stdout and stderr merged into one text buffer read by a thread."""

    def __init__(self, args):
        self.args = args
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self._buf = bytearray()
        self._lock = threading.Lock()
        self._t = threading.Thread(target=self._pump, daemon=True)
        self._t.start()

    def _pump(self):
        while True:
            b = self.proc.stdout.read1(65536)
            if not b:
                return
            with self._lock:
                self._buf += b

    def text(self):
        with self._lock:
            return self._buf.decode(errors="replace")

    def mark(self):
        return len(self.text())

    def expect(self, regex, seconds=30, start=0):
        """Wait until the output from offset `start` matches regex."""
        rx = re.compile(regex)
        end = time.monotonic() + seconds
        while True:
            mo = rx.search(self.text(), start)
            if mo:
                return mo
            if time.monotonic() >= end:
                break
            if self.proc.poll() is not None:
                time.sleep(0.2)		# let the reader drain it
                mo = rx.search(self.text(), start)
                if mo:
                    return mo
                break
            time.sleep(0.02)
        raise AssertionError("%s: no /%s/ within %d s (rc %s); output:\n%s"
                             % (os.path.basename(self.args[0]), regex, seconds,
                                self.proc.poll(), self.text()[-6000:]))

    def send(self, data):
        """Write to its stdin; False if it has gone (closed its stdin)."""
        if isinstance(data, str):
            data = data.encode()
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            return False
        return True

    def exchange(self, line, seconds=30):
        """Send one line and wait for its echo after the current output."""
        start = self.mark()
        assert self.send(line + "\n"), "%s has exited:\n%s" % (
            os.path.basename(self.args[0]), self.text()[-6000:])
        return self.expect(re.escape(line), seconds, start)

    def close(self):
        try:
            self.proc.stdin.close()
        except (OSError, ValueError):
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self._t.join(5)


def gnutls_cli(port, version="1.2"):
    moatlib.need_tool("gnutls-cli")
    prio = "NORMAL:-VERS-ALL:+VERS-TLS" + version
    return Interactive(["gnutls-cli", "--insecure", "--priority", prio,
                        "-p", str(port), moatlib.LOOPBACK])


def s_client(port, version="1.2", extra=()):
    moatlib.need_tool("openssl")
    return Interactive(["openssl", "s_client", "-connect",
                        "%s:%d" % (moatlib.LOOPBACK, port),
                        "-tls1_2" if version == "1.2" else "-tls1_3",
                        "-servername", "localhost", *extra])


# ------------------------------------------------------- certificates

def cert_fp(cert_path):
    """SHA-256 of the DER of the first certificate in a PEM file (what
    reneg_client reports in "certs")."""
    with open(cert_path) as f:
        pem = f.read()
    first = pem[:pem.index("-----END CERTIFICATE-----") + 25]
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(first)).hexdigest()


def peer_fp(port, version="1.2"):
    """SHA-256 of the certificate moat shows a new connection."""
    with moatlib.tls_connect(port, version) as s:
        return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()


def replace_cert(cert_path, key_path, kind="ecdsa", cn="localhost"):
    """Overwrite cert_path and key_path with a NEW key and certificate
    (each file replaced in one rename; the key stays chmod 600).
    Returns the new certificate's fingerprint."""
    d = tempfile.mkdtemp(prefix="newcert.", dir=os.path.dirname(cert_path))
    try:
        c, k = moatlib.make_cert(d, kind, cn=cn, name="new")
        tmpk = key_path + ".new"
        tmpc = cert_path + ".new"
        shutil.copyfile(k, tmpk)
        os.chmod(tmpk, 0o600)
        shutil.copyfile(c, tmpc)
        os.chmod(tmpc, 0o644)
        os.replace(tmpk, key_path)
        os.replace(tmpc, cert_path)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return cert_fp(cert_path)


def private_cert(directory, kind="ecdsa", name="fe"):
    """A certificate and key of the test's own (it is going to replace them)."""
    return moatlib.make_cert(str(directory), kind, name=name)


# ------------------------------------------------- many-connection echo

class EchoServer:
    """An echo backend for thousands of connections: one thread, one
    epoll selector, non-blocking sockets with per-connection buffers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((moatlib.LOOPBACK, 0))
        self.sock.listen(4096)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.address = "%s:%d" % (moatlib.LOOPBACK, self.port)
        self.accepted = 0
        self.open = 0
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.sock, selectors.EVENT_READ, None)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop.is_set():
            for key, ev in self.sel.select(0.2):
                if key.data is None:
                    self._accept()
                else:
                    self._serve(key.fileobj, key.data, ev)

    def _accept(self):
        for _ in range(256):
            try:
                c, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            c.setblocking(False)
            self.accepted += 1
            self.open += 1
            self.sel.register(c, selectors.EVENT_READ, {"out": bytearray(),
                                                        "eof": False})

    def _close(self, c):
        try:
            self.sel.unregister(c)
        except (KeyError, ValueError):
            pass
        c.close()
        self.open -= 1

    def _serve(self, c, st, ev):
        if ev & selectors.EVENT_READ and not st["eof"]:
            try:
                b = c.recv(65536)
            except (BlockingIOError, InterruptedError):
                b = None
            except OSError:
                self._close(c)
                return
            if b == b"":
                st["eof"] = True
            elif b:
                st["out"] += b
        if st["out"]:
            try:
                n = c.send(st["out"])
                del st["out"][:n]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                self._close(c)
                return
        if st["eof"] and not st["out"]:
            try:
                c.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            self._close(c)
            return
        want = (0 if st["eof"] else selectors.EVENT_READ) | \
            (selectors.EVENT_WRITE if st["out"] else 0)
        self.sel.modify(c, want, st)

    def close(self):
        self._stop.set()
        self.thread.join(5)
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()
        self.sel.close()


def raise_nofile():
    """Soft RLIMIT_NOFILE up to the hard limit (children inherit it)."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
