# SPDX-License-Identifier: GPL-2.0-or-later
"""moatd as systemd runs it: socket activation, sd_notify, the watchdog.

systemd-socket-activate (systemd's own tool) binds the listener, passes it
to moatd as LISTEN_FDS with a FileDescriptorName=, and execs moatd with
NOTIFY_SOCKET pointing at a datagram socket this test reads, and
WATCHDOG_USEC set.  The test sees READY=1, talks TLS through the passed
socket, sees RELOADING=1 then READY=1 on a reload, and WATCHDOG=1 pings;
then a worker that stops answering (SIGSTOP) costs the pings, and they
come back once it answers again.  A passed socket that no frontend claims,
or one named after a frontend that does not listen there, stops moatd at
start with the reason.

moatd runs here as packaging/moat.service runs it, where a test can apply
the unit's settings: as the user of User=, with exactly the unit's
AmbientCapabilities= and CapabilityBoundingSet=, NoNewPrivileges=yes
(setpriv plays systemd), the key owned by that user, WATCHDOG_USEC as
WatchdogSec= sets it.  What a test here cannot apply: the sandboxing
systemd itself sets up (ProtectSystem=, PrivateTmp=, PrivateDevices=,
SystemCallFilter=, RestrictAddressFamilies= ...) needs systemd as PID 1,
and this machine's tests run without it.
"""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest

import moatlib
import test_unit

WATCHDOG_S = 2.0


class Notify:
    """The NOTIFY_SOCKET end: every datagram moatd sends, in order."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.msgs = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            try:
                b = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.msgs.append((time.monotonic(), b.decode()))

    def lines(self):
        with self.lock:
            return [(t, line) for t, m in self.msgs for line in m.split("\n")]

    def index(self, word, after=-1):
        for i, (t, line) in enumerate(self.lines()):
            if i > after and line.split("=", 1)[0] == word:
                return i
        return None

    def wait(self, word, after=-1, seconds=30):
        moatlib.wait_for(lambda: self.index(word, after) is not None,
                         seconds, what=word + " on NOTIFY_SOCKET")
        return self.index(word, after)

    def close(self):
        self.stop.set()
        self.sock.close()
        self.thread.join(5)


def unit_wrap():
    """setpriv as moat.service's User=, capabilities and no_new_privs."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is not installed (package util-linux)")
    user = test_unit.unit_values(test_unit.UNIT, "User")[0]
    caps = ",".join("+" + c[4:].lower() for c in test_unit.unit_caps(
        "AmbientCapabilities"))
    bounding = ",".join("+" + c[4:].lower() for c in test_unit.unit_caps(
        "CapabilityBoundingSet"))
    return user, ["setpriv", "--reuid", user, "--regid", user,
                  "--clear-groups", "--no-new-privs", "--inh-caps",
                  "-all," + caps, "--ambient-caps", caps,
                  "--bounding-set", "-all," + bounding]


def activate(m, listen, names, notify_path, extra_env=(), wrap=()):
    """moatd under systemd-socket-activate, as m's process."""
    moatlib.need_tool("systemd-socket-activate")
    args = ["systemd-socket-activate"]
    for a in listen:
        args += ["-l", a]
    args += ["--fdname=" + ":".join(names),
             "-E", "NOTIFY_SOCKET=" + notify_path,
             "-E", "WATCHDOG_USEC=%d" % int(WATCHDOG_S * 1e6)]
    for e in extra_env:
        args += ["-E", e]
    args += list(wrap) + [moatlib.MOATD, "-c", m.conf]
    m.log_file = open(m.log_path, "ab")
    m.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                              stdout=m.log_file, stderr=subprocess.STDOUT)
    m.wait_log(r"Listening on .* as %d\." % (2 + len(listen)), 30)
    return m


@pytest.fixture
def notify(tmp_path):
    n = Notify(str(tmp_path / "notify"))
    yield n
    n.close()


@pytest.fixture
def unit_dir():
    """A directory User= can read (pytest's own are root's, mode 0700)."""
    d = tempfile.mkdtemp(prefix="moat-systemd-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_socket_activation_notify_and_watchdog(backends, unit_dir):
    user, wrap = unit_wrap()
    pw = pwd.getpwnam(user)
    cert, key = moatlib.make_cert(unit_dir)
    os.chown(key, pw.pw_uid, pw.pw_gid)     # the master opens it as User=
    notify = Notify(os.path.join(unit_dir, "notify"))
    os.chmod(notify.path, 0o777)
    be = backends.echo()
    port = moatlib.free_port()
    addr = "%s:%d" % (moatlib.LOOPBACK, port)
    os.mkdir(os.path.join(unit_dir, "moat"))
    m = moatlib.Moat(os.path.join(unit_dir, "moat"), {
        "web": {"listen": addr, "backend": be.address, "cert": cert,
                "key": key}}, workers=2)
    os.chown(m.dir, pw.pw_uid, pw.pw_gid)   # its control socket
    try:
        activate(m, [addr], ["web"], notify.path, wrap=wrap)
        run_activated(m, port, addr, pw, user, notify)
        assert m.stop() == 0, m.log()
    finally:
        if m.proc is not None and m.proc.poll() is None:
            m.kill()
        notify.close()


def run_activated(m, port, addr, pw, user, notify):
    # the first connection is what makes systemd-socket-activate exec moatd
    with moatlib.tls_connect(port, timeout=60) as s:
        assert moatlib.round_trip(s) is not None
    ready = notify.wait("READY")
    m.wait_ready(30)
    assert "listening on %s (from systemd)" % addr in m.log_text(), m.log()
    uid = int(moatlib.proc_status(m.proc.pid)["Uid"].split()[0])
    assert uid == pw.pw_uid, "the master is not running as " + user
    assert notify.index("MAINPID") is not None
    assert any(line.startswith("STATUS=2 of 2 workers running, keyd ready")
               for _, line in notify.lines()), notify.lines()

    # the listener is systemd's: moatd opened none of its own on that port
    for pid in [m.proc.pid] + m.workers():
        fds = os.listdir("/proc/%d/fd" % pid)
        assert "3" in fds

    # WATCHDOG=1 at about half the interval, while everyone answers
    first = notify.wait("WATCHDOG", ready)
    notify.wait("WATCHDOG", first, seconds=WATCHDOG_S * 3)

    # reload: RELOADING=1 then READY=1 (a rotation here: same settings)
    r = m.ctl("reload", timeout=60)
    assert "reloaded certificate" in r.stdout, r.stdout
    reloading = notify.wait("RELOADING")
    notify.wait("READY", reloading)
    _, line = notify.lines()[reloading + 1]
    assert line.startswith("MONOTONIC_USEC="), notify.lines()[reloading:]
    with moatlib.tls_connect(port) as s:
        moatlib.round_trip(s)

    # a worker that does not answer costs the pings...
    victim = m.workers()[0]
    os.kill(victim, 19)                         # SIGSTOP
    try:
        m.wait_log(r"watchdog: worker \d \(pid %d\).* did not answer" % victim,
                   seconds=WATCHDOG_S * 4)
        stalled = len(notify.lines())
        time.sleep(WATCHDOG_S * 1.5)
        pings = [line for _, line in notify.lines()[stalled:]
                 if line == "WATCHDOG=1"]
        assert pings == [], "pinged while a worker was stuck"
    finally:
        os.kill(victim, 18)                     # SIGCONT
    # ...and they come back once it answers again
    notify.wait("WATCHDOG", len(notify.lines()) - 1, seconds=WATCHDOG_S * 3)


@pytest.mark.parametrize("case", ["unclaimed", "misnamed"])
def test_a_passed_socket_nobody_claims_stops_moatd(moat_factory, backends,
                                                     certs, notify, case):
    cert, key = certs["ecdsa"]
    be = backends.echo()
    addr = "%s:%d" % (moatlib.LOOPBACK, moatlib.free_port())
    stray = "%s:%d" % (moatlib.LOOPBACK, moatlib.free_port())
    m = moat_factory({"web": {"listen": addr, "backend": be.address,
                              "cert": cert, "key": key},
                      "api": {"backend": be.address, "cert": cert,
                              "key": key}},
                     start=False)
    if case == "unclaimed":
        activate(m, [addr, stray], ["web", "stray"], notify.path)
        want = "the socket named stray (%s) is claimed by no frontend" % stray
    else:
        # named after frontend api, but api does not listen on that address
        activate(m, [addr, stray], ["web", "api"], notify.path)
        want = ("the socket named api (%s) matches no listen line of "
                "frontend api" % stray)
    try:
        socket.create_connection((moatlib.LOOPBACK, int(addr.rsplit(":")[1])),
                                 timeout=10).close()
    except OSError:
        pass
    rc = m.proc.wait(30)
    m._close_log()
    assert rc != 0
    assert want in m.log_text(), m.log()
    assert notify.index("READY") is None
    m.proc = None
