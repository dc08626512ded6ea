# SPDX-License-Identifier: GPL-2.0-or-later
"""moatlib -- helpers the integration tests share.

Certificates (openssl), small backends (echo over TCP or a Unix socket, an
HTTP reply server, a closed port, a stalling server), a config writer and a
`Moat` object that runs the real moatd from the build tree, waits until it
serves, finds its worker and keyd processes in /proc, reads `moatctl` and
stops it with SIGTERM.

Every wait here is bounded in time; nothing sends traffic beyond loopback.
Run by Debian's /usr/bin/python3 (see tests/integration/meson.build).
"""

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

import sanlib

BUILD = os.environ.get("MOAT_BUILD", "")
SRC = os.environ.get("MOAT_SRC", os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))
MOATD = os.path.join(BUILD, "daemon", "moatd")
MOATCTL = os.path.join(BUILD, "daemon", "moatctl")
KEYD = os.path.join(BUILD, "keyd", "moat-keyd")
CHROOT = "/var/lib/moat/empty"

LOOPBACK = "127.0.0.1"


def need_tool(name):
    """Skip (clearly) when a client tool is truly absent."""
    if shutil.which(name) is None:
        import pytest
        pytest.skip("%s is not installed (packaging/dev/setup installs it)" % name)


def wait_for(pred, seconds, step=0.02, what="condition"):
    """Poll pred() until it returns a true value; raise after `seconds`."""
    end = time.monotonic() + seconds
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= end:
            break
        time.sleep(step)
    raise TimeoutError("timed out after %.1f s waiting for %s" % (seconds, what))


def free_port():
    """A TCP port on loopback that was free a moment ago."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- certificates

def make_cert(directory, kind="ecdsa", cn="localhost", name=None,
              san="DNS:localhost,IP:127.0.0.1"):
    """Self-signed certificate and key made by openssl; returns (cert, key).

    kind: "ecdsa" (P-256), "rsa" (2048 bits) or "ed25519"; san: its
    subjectAltName (the names SNI picks it by).  The key is chmod 600.
    """
    name = name or kind
    cert = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    if kind == "ecdsa":
        newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    elif kind == "rsa":
        newkey = ["-newkey", "rsa:2048"]
    elif kind == "ed25519":
        newkey = ["-newkey", "ed25519"]
    else:
        raise ValueError(kind)
    old = os.umask(0o077)
    try:
        subprocess.run(["openssl", "req", "-x509", "-nodes", "-days", "30",
                        *newkey, "-keyout", key, "-out", cert,
                        "-subj", "/CN=" + cn,
                        "-addext", "subjectAltName=" + san],
                       check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=60)
    finally:
        os.umask(old)
    os.chmod(key, 0o600)
    os.chmod(cert, 0o644)
    return cert, key


def key_secrets(key_path):
    """The secret numbers of a PEM private key, as byte strings to search for.

    ECDSA: the private scalar; RSA: the primes p and q.  Each in big-endian
    (as DER holds them) and little-endian (as bignum limbs on x86-64 do).
    Returns {label: bytes}.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    with open(key_path, "rb") as f:
        k = serialization.load_pem_private_key(f.read(), password=None)
    nums = {}
    if isinstance(k, ec.EllipticCurvePrivateKey):
        nbytes = (k.curve.key_size + 7) // 8
        nums["ec-scalar"] = (k.private_numbers().private_value, nbytes)
    elif isinstance(k, rsa.RSAPrivateKey):
        pn = k.private_numbers()
        nbytes = (k.key_size // 2 + 7) // 8
        nums["rsa-p"] = (pn.p, nbytes)
        nums["rsa-q"] = (pn.q, nbytes)
    else:
        raise ValueError("unsupported key type in %s" % key_path)
    out = {}
    for label, (n, nb) in nums.items():
        nb = max(nb, (n.bit_length() + 7) // 8)
        out[label + "/be"] = n.to_bytes(nb, "big")
        out[label + "/le"] = n.to_bytes(nb, "little")
    return out


# -------------------------------------------------------------------- backends

class Backend:
    """A threaded server on loopback TCP (or a Unix socket) for tests.

    handler(conn) serves one accepted connection; it runs in its own thread.
    """

    def __init__(self, handler, unix_path=None):
        self.handler = handler
        self.unix_path = unix_path
        if unix_path:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(unix_path)
            os.chmod(unix_path, 0o666)
            self.address = "unix:" + unix_path
        else:
            self.sock = socket.socket()
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind((LOOPBACK, 0))
            self.port = self.sock.getsockname()[1]
            self.address = "%s:%d" % (LOOPBACK, self.port)
        self.sock.listen(512)
        self.sock.settimeout(0.2)
        self.accepted = 0
        self.conns = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            c.settimeout(None)
            with self._lock:
                self.accepted += 1
                self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            self.handler(c)
        except OSError:
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    def close(self):
        self._stop.set()
        self.sock.close()
        self.thread.join(5)
        with self._lock:
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                try:
                    c.close()
                except OSError:
                    pass
        if self.unix_path:
            try:
                os.unlink(self.unix_path)
            except OSError:
                pass


def echo_handler(c):
    """Send back everything; on EOF shut down our write side."""
    while True:
        b = c.recv(262144)
        if not b:
            break
        c.sendall(b)
    c.shutdown(socket.SHUT_WR)


HTTP_BODY = b"hello from the moat test backend\n"


def http_handler(c):
    """Read one request head, answer 200 with HTTP_BODY, close."""
    buf = b""
    c.settimeout(30)
    while b"\r\n\r\n" not in buf and b"\n\n" not in buf and len(buf) < 65536:
        b = c.recv(4096)
        if not b:
            break
        buf += b
    c.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n"
              b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
              % (len(HTTP_BODY), HTTP_BODY))
    c.shutdown(socket.SHUT_WR)


def drain_then_reply_handler(c):
    """Half-close backend: read to EOF, then answer the sha256 of what came
    in followed by 1 MiB of a known pattern, then close."""
    h = hashlib.sha256()
    n = 0
    while True:
        b = c.recv(65536)
        if not b:
            break
        h.update(b)
        n += len(b)
    c.sendall(("%d %s\n" % (n, h.hexdigest())).encode() + pattern(1 << 20))
    c.shutdown(socket.SHUT_WR)


def stall_handler(c):
    """Accept and never read nor answer; hold the socket until closed."""
    c.settimeout(None)
    try:
        while c.recv(1, socket.MSG_PEEK) != b"":
            time.sleep(0.5)
            # never consume: the peer's bytes stay in our receive queue
    except OSError:
        pass


def pattern(n, seed=0):
    """n deterministic bytes."""
    out = bytearray()
    i = seed
    while len(out) < n:
        out += hashlib.sha256(b"%d" % i).digest()
        i += 1
    return bytes(out[:n])


def echo_backend(unix_path=None):
    return Backend(echo_handler, unix_path)


def http_backend():
    return Backend(http_handler)


def stall_backend():
    return Backend(stall_handler)


def refusing_backend():
    """Address of a loopback port nobody listens on."""
    return "%s:%d" % (LOOPBACK, free_port())


# ------------------------------------------------------------------ TLS clients

def client_context(version=None):
    """A Python ssl client context that trusts anything (self-signed)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    # Debian's OpenSSL 3 context ignores a missing close_notify by default
    # (OP_IGNORE_UNEXPECTED_EOF): then a cut stream would read as a clean
    # end.  The tests must tell the two apart.
    ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
    if version == "1.2":
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    elif version == "1.3":
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    else:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def tls_connect(port, version=None, timeout=20, host=LOOPBACK, ctx=None):
    """Connected and handshaken ssl socket to moat on `port`.  An end
    without close_notify raises ssl.SSLEOFError instead of reading as a
    clean EOF: moat sends close_notify only when the stream is whole."""
    ctx = ctx or client_context(version)
    raw = socket.create_connection((host, port), timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname="localhost",
                               suppress_ragged_eofs=False)
    except BaseException:
        raw.close()
        raise


def recv_exact(s, n):
    out = bytearray()
    while len(out) < n:
        b = s.recv(n - len(out))
        if not b:
            raise EOFError("connection closed after %d of %d bytes" % (len(out), n))
        out += b
    return bytes(out)


class UncleanEnd(AssertionError):
    """The server ended the stream without close_notify; .data holds what
    came before."""

    def __init__(self, data):
        super().__init__("the stream ended without close_notify after %d "
                         "bytes" % len(data))
        self.data = data


def is_unclean_eof(e):
    """An ssl error that means "the stream ended without close_notify":
    SSLEOFError, or with OpenSSL 3 and OP_IGNORE_UNEXPECTED_EOF off (see
    client_context) an SSLError whose reason says so."""
    return isinstance(e, ssl.SSLEOFError) or \
        getattr(e, "reason", None) == "UNEXPECTED_EOF_WHILE_READING"


def recv_all(s, limit=1 << 26):
    """Everything until the server's close_notify; an end without it (a cut
    stream) raises UncleanEnd, so a truncated reply never passes as whole."""
    out = bytearray()
    while len(out) < limit:
        try:
            b = s.recv(65536)
        except ssl.SSLZeroReturnError:
            break
        except ssl.SSLError as e:
            if is_unclean_eof(e):
                raise UncleanEnd(bytes(out))
            raise
        if not b:
            break
        out += b
    return bytes(out)


def http_get(port, version=None, timeout=20):
    """GET / through moat with Python's ssl; returns (tls version, reply)."""
    with tls_connect(port, version, timeout) as s:
        s.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        v = s.version()
        return v, recv_all(s)


def round_trip(s, payload=b"ping" * 16):
    s.sendall(payload)
    got = recv_exact(s, len(payload))
    assert got == payload
    return got


# ---------------------------------------------------------------------- /proc

def echo_pump(port, payload, timeout=300, version="1.3", chunk=16384):
    """Send payload through moat to an echo backend while reading the echo
    back; returns (sha256 sent, sha256 received, bytes received)."""
    import hashlib
    import select
    payload = memoryview(payload)
    want = hashlib.sha256(payload).hexdigest()
    h = hashlib.sha256()
    s = tls_connect(port, version, timeout=30)
    s.setblocking(False)
    sent = got = 0
    end = time.monotonic() + timeout
    try:
        while got < len(payload):
            if time.monotonic() > end:
                raise TimeoutError("stuck at sent %d got %d" % (sent, got))
            progressed = False
            if sent < len(payload):
                try:
                    sent += s.send(payload[sent:sent + chunk])
                    progressed = True
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                    pass
            try:
                b = s.recv(262144)
                if not b:
                    break
                h.update(b)
                got += len(b)
                progressed = True
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass
            if not progressed:
                w = [s] if sent < len(payload) else []
                select.select([s], w, [], 1.0)
    finally:
        s.close()
    return want, h.hexdigest(), got


def proc_ppid(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return None
    # comm may hold spaces and parentheses: split after the last ')'
    return int(st[st.rindex(")") + 2:].split()[1])


def proc_children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        pp = proc_ppid(int(d))
        if pp is not None:
            kids.setdefault(pp, []).append(int(d))
    return kids


def proc_descendants(pid):
    kids = proc_children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return sorted(out)


def proc_exe(pid):
    try:
        return os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return ""


def proc_status(pid, tid=None):
    path = "/proc/%d/status" % pid if tid is None else \
        "/proc/%d/task/%d/status" % (pid, tid)
    out = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def proc_threads(pid):
    try:
        return sorted(int(t) for t in os.listdir("/proc/%d/task" % pid))
    except OSError:
        return []


def proc_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return False
    return st[st.rindex(")") + 2] != "Z"


def socket_inodes(pid):
    """Inodes of the sockets process pid holds."""
    out = set()
    d = "/proc/%d/fd" % pid
    try:
        names = os.listdir(d)
    except OSError:
        return out
    for fd in names:
        try:
            t = os.readlink(os.path.join(d, fd))
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]", t)
        if m:
            out.add(int(m.group(1)))
    return out


def tcp_inode(local_port, remote_port):
    """Inode of the IPv4 TCP socket local_port <-> remote_port on loopback."""
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            p = line.split()
            lp = int(p[1].split(":")[1], 16)
            rp = int(p[2].split(":")[1], 16)
            if lp == local_port and rp == remote_port:
                return int(p[9])
    return None


# ------------------------------------------------------------------------ moat

def render_config(moat, frontends):
    """INI text from {key: value} for [moat] and {name: {key: value}}.

    A frontend's "certs", a list of {"cert": ..., "key": ...[, "ocsp":
    ...]}, becomes its cert/key pairs in that order."""
    lines = ["[moat]"]
    for k, v in moat.items():
        if v is not None:
            lines.append("%s = %s" % (k, v))
    for name, opts in frontends.items():
        lines.append("")
        lines.append("[frontend %s]" % name)
        for k, v in opts.items():
            if k == "certs":
                for pair in v:
                    for pk in ("cert", "key", "ocsp"):
                        if pair.get(pk) is not None:
                            lines.append("%s = %s" % (pk, pair[pk]))
            elif v is not None:
                lines.append("%s = %s" % (k, v))
    return "\n".join(lines) + "\n"


class Moat:
    """moatd run from the build tree on a config written into `directory`.

    frontends: {name: {"backend": ..., "cert": ..., "key": ..., ...}};
    "listen" is filled in with a free loopback port when missing and the
    port kept in self.ports[name].  moat_opts are extra [moat] keys.
    """

    def __init__(self, directory, frontends, **moat_opts):
        self.dir = str(directory)
        self.control = os.path.join(self.dir, "control.sock")
        self.conf = os.path.join(self.dir, "moat.conf")
        self.log_path = os.path.join(self.dir, "moatd.log")
        self.ports = {}
        fes = {}
        for name, opts in frontends.items():
            opts = dict(opts)
            if "listen" not in opts:
                port = free_port()
                opts["listen"] = "%s:%d" % (LOOPBACK, port)
            self.ports[name] = int(opts["listen"].rsplit(":", 1)[1])
            fes[name] = opts
        moat = {
            "workers": 1,
            "user": "moat",
            "keyd-user": "moat-keyd",
            "control": self.control,
            "keyd": KEYD,
            "log-level": "info",
        }
        moat.update({k.replace("_", "-"): v for k, v in moat_opts.items()})
        with open(self.conf, "w") as f:
            f.write(render_config(moat, fes))
        self.proc = None
        self.log_file = None

    # -- life cycle

    def start(self, wait=30):
        self.log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen([MOATD, "-c", self.conf],
                                     stdin=subprocess.DEVNULL,
                                     stdout=self.log_file,
                                     stderr=subprocess.STDOUT)
        try:
            self.wait_ready(wait)
        except BaseException:
            self.kill()
            raise
        return self

    def wait_ready(self, seconds=30):
        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("moatd exited with %s before it was ready\n%s"
                                   % (self.proc.returncode, self.log()))
            for port in self.ports.values():
                try:
                    socket.create_connection((LOOPBACK, port), timeout=1).close()
                except OSError:
                    return False
            if not self.workers() or not self.keyd_pids():
                return False
            r = self.ctl("status", check=False, timeout=5)
            return r.returncode == 0
        try:
            wait_for(ready, seconds, 0.05, "moatd to be ready")
        except TimeoutError:
            raise TimeoutError("moatd not ready after %d s\n%s" % (seconds, self.log()))

    def stop(self, timeout=20):
        """SIGTERM, wait; returns the exit status (kill -9 after timeout)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError("moatd ignored SIGTERM for %d s\n%s"
                                     % (timeout, self.log()))
        rc = self.proc.returncode
        self._close_log()
        sanlib.check(self.log_text(), "moatd log %s" % self.log_path, rc)
        return rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            pids = proc_descendants(self.proc.pid)
            self.proc.kill()
            self.proc.wait(10)
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
        self._close_log()
        sanlib.check(self.log_text(), "moatd log %s" % self.log_path)

    def _close_log(self):
        if self.log_file:
            self.log_file.close()
            self.log_file = None

    # -- looking at it

    def log(self, tail=200):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "---- moatd log (%s, last %d lines) ----\n%s" % (
            self.log_path, tail, "\n".join(lines[-tail:]))

    def log_text(self):
        """The log, less the sanitizer runtime's warnings (sanlib.quiet)."""
        try:
            with open(self.log_path, "rb") as f:
                return sanlib.quiet(f.read().decode(errors="replace"))
        except OSError:
            return ""

    def wait_log(self, regex, seconds=10, start=0):
        """Wait until the log (from byte offset `start`) matches regex."""
        rx = re.compile(regex)

        def look():
            return rx.search(self.log_text()[start:])
        try:
            return wait_for(look, seconds, 0.05, "log line /%s/" % regex)
        except TimeoutError:
            raise AssertionError("no log line matching /%s/ within %d s\n%s"
                                 % (regex, seconds, self.log()))

    def log_size(self):
        return len(self.log_text())

    def ctl(self, *args, check=True, timeout=20):
        r = subprocess.run([MOATCTL, "-s", self.control, *args],
                           stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=timeout)
        sanlib.check(r.stderr, "moatctl %s" % " ".join(args), r.returncode)
        if check and r.returncode != 0:
            raise AssertionError("moatctl %s failed (%d): %s%s\n%s"
                                 % (" ".join(args), r.returncode, r.stdout,
                                    r.stderr, self.log()))
        return r

    def stats(self):
        return json.loads(self.ctl("stats", "--json").stdout)

    def status(self):
        return json.loads(self.ctl("status", "--json").stdout)

    def descendants(self):
        return proc_descendants(self.proc.pid)

    def keyd_pids(self):
        """Every moat-keyd process (moatd's descendants running moat-keyd)."""
        return [p for p in self.descendants()
                if os.path.basename(proc_exe(p)).startswith("moat-keyd")
                and proc_alive(p)]

    def workers(self):
        """Worker pids: moatd's children that run moatd itself.  Children
        only: in the sanitizer build a worker's leak check (just before its
        sandbox) runs a tracer task that shows as a moatd process below it."""
        return [p for p in self.descendants()
                if os.path.basename(proc_exe(p)).startswith("moatd")
                and proc_ppid(p) == self.proc.pid and proc_alive(p)]

    def worker_of(self, sock):
        """Pid of the worker that holds the server side of client `sock`."""
        lport = sock.getsockname()[1]
        rport = sock.getpeername()[1]
        ino = tcp_inode(rport, lport)
        if ino is None:
            return None
        for w in self.workers():
            if ino in socket_inodes(w):
                return w
        return None


# ------------------------------------------------- moatctl --json, read back

def stats_total(st):
    """The worker counters summed over the workers: `moatctl stats --json`
    reports them at the top level; this checks them against per_worker."""
    per = st.get("per_worker", [])
    for k, v in st.items():
        if isinstance(v, int) and not isinstance(v, bool) and per and \
                all(k in w for w in per) and k.startswith(
                    ("conns_", "handshakes_", "bytes_")):
            assert v == sum(w[k] for w in per), (k, st)
    return st


def stats_keyd(st):
    """keyd's own counters (it answered, or this raises)."""
    assert st.get("keyd_answered") is True, st
    return {"requests": st["keyd_served_requests"], "signs": st["keyd_signs"],
            "refused": st["keyd_refused"], "errors": st["keyd_errors"],
            "rate_limited": st["keyd_rate_limited"]}


def status_pids(st):
    """(worker pids, keyd pids) from `moatctl status --json`."""
    workers = [w["pid"] for w in st["workers"] if w.get("pid")]
    k = st["keyd"]
    keyd = [p["pid"] for p in k] if isinstance(k, list) else [k["pid"]]
    return workers, keyd


def status_master_pid(st):
    m = st.get("master")
    return m["pid"] if isinstance(m, dict) else st["pid"]
