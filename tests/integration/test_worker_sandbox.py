# SPDX-License-Identifier: GPL-2.0-or-later
"""A compromised worker stays in its box.

tests/helpers/worker_bite sandboxes itself exactly as a worker is (the
moat user, the empty chroot, then the worker's real seccomp filter) and
makes one forbidden call: it must die by SIGSYS.  It then tries to reach a
unix socket outside, as a worker would have to, and must fail.  A running
worker holds no descriptor of the file system, and unix: backends, now
connected by the master, still carry every byte.
"""
import os
import socket
import stat
import subprocess
import tempfile

import pytest

import moatlib
import sanlib

BITE = os.path.join(moatlib.BUILD, "tests", "helpers", "worker_bite")
SIGSYS = 31
CHROOT = "/var/lib/moat/empty"

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root (privdrop)")


def bite(*args):
    """worker_bite sandboxed as a real worker is: moat user, empty chroot."""
    return subprocess.run([BITE, "-u", "moat", "-C", CHROOT, *args],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_worker_calls_survive_the_filter():
    """Control: what a worker does is not killed."""
    p = bite("ok")
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    assert "still alive" in p.stdout


@pytest.mark.parametrize("call", [
    "so_linger",        # would make a close() block (keyd's and its own)
    "so_sndbuf",        # any other socket option
    "f_setsig",         # signalling siblings that share its uid
    "f_setown",
    "f_setfl_async",
    "dgram",            # only TCP: no UDP ...
    "raw",              # ... no raw sockets ...
    "unix",             # ... and no unix sockets at all
    "chdir",
    "fchdir",
    "open",
    "openat",
])
def test_forbidden_call_is_killed(call):
    p = bite(call)
    assert "sandboxed" in p.stdout, (p.stdout, p.stderr)
    if sanlib.refused_not_killed(call):
        assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
        assert sanlib.REFUSED in p.stdout, (p.stdout, p.stderr)
        return
    assert "NOT KILLED" not in p.stdout
    assert p.returncode == -SIGSYS, (p.returncode, p.stdout, p.stderr)


@pytest.fixture
def outside_socket():
    """A unix socket outside the chroot that anyone may connect to."""
    d = tempfile.mkdtemp(prefix="moat-outside-")
    os.chmod(d, 0o755)
    path = os.path.join(d, "open.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    os.chmod(path, 0o777)
    srv.listen(8)
    srv.setblocking(False)
    yield path, srv
    srv.close()
    os.unlink(path)
    os.rmdir(d)


def test_unix_socket_outside_is_unreachable(outside_socket):
    path, srv = outside_socket
    p = bite("unix-reach", path)
    assert "REACHED" not in p.stdout, p.stdout
    # the INET socket's connect is refused by the kernel, the unix socket
    # by the filter
    assert "inet socket:" in p.stdout, p.stdout
    assert p.returncode == -SIGSYS, (p.returncode, p.stdout, p.stderr)
    with pytest.raises(BlockingIOError):
        srv.accept()


def test_system_bus_is_unreachable():
    bus = "/run/dbus/system_bus_socket"
    target = bus if os.path.exists(bus) else "../../run/dbus/system_bus_socket"
    p = bite("unix-reach", target)
    assert "REACHED" not in p.stdout, p.stdout
    assert p.returncode == -SIGSYS, (p.returncode, p.stdout, p.stderr)


@pytest.fixture(scope="module")
def unix_moat(module_moat_factory, backends, certs):
    """The master connects the backend with the workers' credentials, so
    the path must be one the moat user may reach (pytest's own tmp dirs
    are private to root)."""
    d = tempfile.mkdtemp(prefix="moat-unixbe-")
    os.chmod(d, 0o755)
    echo = backends.echo(unix_path=os.path.join(d, "echo.sock"))
    yield module_moat_factory({"u": {"backend": echo.address,
                                     "cert": certs["ecdsa"][0],
                                     "key": certs["ecdsa"][1]}},
                              workers=2)
    import shutil
    shutil.rmtree(d, ignore_errors=True)


def test_unix_backend_carries_every_byte(unix_moat):
    payload = os.urandom(3 * 1024 * 1024 + 17)
    for version in ("1.2", "1.3", "1.3"):
        want, got, n = moatlib.echo_pump(unix_moat.ports["u"], payload, 120,
                                         version)
        assert n == len(payload) and got == want


def test_worker_holds_nothing_of_the_file_system(unix_moat):
    """Every descriptor of a running worker is a socket, its epoll or
    eventfd: no directory, no file, no O_PATH handle outside the chroot."""
    s = moatlib.tls_connect(unix_moat.ports["u"])
    moatlib.round_trip(s)
    for pid in unix_moat.workers():
        fddir = "/proc/%d/fd" % pid
        for fd in os.listdir(fddir):
            target = os.readlink(os.path.join(fddir, fd))
            if int(fd) <= 2:
                continue	# stdio: the master's log
            assert target.startswith(("socket:", "anon_inode:")), \
                "worker %d fd %s is %s" % (pid, fd, target)
    s.close()


def test_unix_backend_with_a_full_backlog_is_retried(module_moat_factory,
                                                     certs):
    """A unix: backend whose listen queue is full answers connect() with
    EAGAIN: moat tries again until backend-connect-timeout instead of
    failing the client (issue 9, point 6), and the connection made once the
    backend accepts carries every byte."""
    import shutil
    import socket
    import threading
    import time
    d = tempfile.mkdtemp(prefix="moat-unixfull-")
    os.chmod(d, 0o755)
    path = os.path.join(d, "full.sock")
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(path)
    os.chmod(path, 0o666)
    lsock.listen(0)
    fillers = []
    try:
        # Fill the queue: with backlog 0 the kernel still takes one.
        for _ in range(8):
            f = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            f.setblocking(False)
            try:
                f.connect(path)
            except (BlockingIOError, InterruptedError):
                f.close()
                break
            fillers.append(f)
        m = module_moat_factory({"full": {
            "backend": "unix:" + path, "cert": certs["ecdsa"][0],
            "key": certs["ecdsa"][1], "backend-connect-timeout": "10s"}},
            workers=1)
        log0 = m.log_size()

        def serve_later():
            time.sleep(1.0)		# moat's connect meets EAGAIN meanwhile
            for _ in fillers:
                lsock.accept()[0].close()
            c, _ = lsock.accept()	# the one moat made
            with c:
                while True:
                    b = c.recv(65536)
                    if not b:
                        break
                    c.sendall(b)
        t = threading.Thread(target=serve_later, daemon=True)
        t.start()
        with moatlib.tls_connect(m.ports["full"], timeout=30) as s:
            payload = moatlib.pattern(200000, seed=5)
            s.sendall(payload)
            assert moatlib.recv_exact(s, len(payload)) == payload
        t.join(10)
        assert "backend connect failed" not in m.log_text()[log0:]
    finally:
        for f in fillers:
            f.close()
        lsock.close()
        shutil.rmtree(d, ignore_errors=True)
