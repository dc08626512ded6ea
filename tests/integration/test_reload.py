# SPDX-License-Identifier: GPL-2.0-or-later
"""A reload of the whole configuration, under traffic.

One moatd for the file.  Twenty TLS connections stream through it, every
byte checked both ways, while it reloads twice: once with a new
certificate behind the same paths (a rotation: the live connections
renegotiate onto it), once with a changed backend and a new frontend (a
hand-over: a new keyd and new workers take the listeners, the old workers
drain).  A client connects in a loop all along and must never be refused.
Then configs that must be refused: one that does not parse (FILE:LINE), one
whose key does not match its certificate (keyd's reason), one that changes
what only a restart can (control); each leaves the running generation
serving exactly as before.  SIGHUP does what `moatctl reload` does.
"""

import os
import re
import shutil
import signal
import socket
import ssl
import threading
import time

import pytest

import moatlib

STREAMS = 20
CHUNK = 8192
TAG = b"backend-2:"


def tagging_handler(c):
    """The second backend: TAG first, then an echo."""
    c.sendall(TAG)
    moatlib.echo_handler(c)


def der_of(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def peer_der(s):
    return s.getpeercert(binary_form=True)


class Stream(threading.Thread):
    """One connection: chunk after chunk out, each read back and compared,
    until told to stop and at least `floor` bytes went each way; then a
    clean close_notify end, checked."""

    def __init__(self, port, seed, floor):
        super().__init__(daemon=True)
        self.port, self.seed, self.floor = port, seed, floor
        self.stop = threading.Event()
        self.sent = self.echoed = 0
        self.error = None

    def run(self):
        try:
            s = moatlib.tls_connect(self.port, version="1.2", timeout=60)
            i = 0
            while not (self.stop.is_set() and self.sent >= self.floor):
                out = moatlib.pattern(CHUNK, self.seed * 100003 + i)
                s.sendall(out)
                self.sent += len(out)
                back = moatlib.recv_exact(s, len(out))
                if back != out:
                    raise AssertionError("stream %d: chunk %d differs"
                                         % (self.seed, i))
                self.echoed += len(back)
                i += 1
                time.sleep(0.01)
            s = s.unwrap()          # close_notify both ways
            s.shutdown(socket.SHUT_WR)
            if s.recv(1) != b"":
                raise AssertionError("stream %d: bytes after the end"
                                     % self.seed)
            s.close()
        except BaseException as e:  # reported by the test
            self.error = e


class Knocker(threading.Thread):
    """Connects over and over; counts handshakes done and refusals."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.done = 0
        self.refused = []

    def run(self):
        while not self.stop.is_set():
            try:
                s = moatlib.tls_connect(self.port, timeout=30)
                s.sendall(b"knock")
                got = moatlib.recv_exact(s, 5)
                if got.startswith(TAG[:5]):
                    # the new backend: its tag first, then the echo
                    moatlib.recv_exact(s, len(TAG))
                s.close()
                self.done += 1
            except ConnectionRefusedError as e:
                self.refused.append(repr(e))
            except (OSError, ssl.SSLError, EOFError) as e:
                self.refused.append("after connect: " + repr(e))
            time.sleep(0.005)


def write_conf(m, text):
    tmp = m.conf + ".new"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, m.conf)


@pytest.fixture(scope="module")
def setup(module_moat_factory, backends, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("reload-certs"))
    cert, key = moatlib.make_cert(d, "ecdsa", name="live")
    one = backends.echo()
    two = backends.custom(tagging_handler)
    m = module_moat_factory({"web": {"backend": one.address, "cert": cert,
                                     "key": key}},
                            workers=2, drain_timeout="120s")
    return {"m": m, "dir": d, "cert": cert, "key": key, "one": one,
            "two": two}


def test_reloads_under_traffic_lose_no_byte(setup):
    m, d, cert, key = setup["m"], setup["dir"], setup["cert"], setup["key"]
    port = m.ports["web"]
    der1 = der_of(cert)
    old_workers = set(m.workers())
    old_keyd = set(m.keyd_pids())

    knock = Knocker(port)
    knock.start()
    streams = [Stream(port, i, 256 * 1024) for i in range(STREAMS)]
    for s in streams:
        s.start()
    moatlib.wait_for(lambda: all(s.echoed > 0 for s in streams), 60,
                     what="every stream to carry data")

    # 1: a new certificate behind the same paths: a rotation
    shutil.copy(cert, cert + ".1")
    moatlib.make_cert(d, "ecdsa", name="next")
    os.replace(os.path.join(d, "next.crt"), cert)
    os.replace(os.path.join(d, "next.key"), key)
    der2 = der_of(cert)
    assert der2 != der1
    r = m.ctl("reload", timeout=60)
    assert "reloaded certificate" in r.stdout, r.stdout
    with moatlib.tls_connect(port) as s:
        assert peer_der(s) == der2, "a new connection sees the old cert"
    assert set(m.workers()) == old_workers, "a rotation restarts nobody"

    # 2: another backend and a new frontend: a hand-over
    port2 = moatlib.free_port()
    with open(m.conf) as f:
        text = f.read()
    text = text.replace("backend = " + setup["one"].address,
                        "backend = " + setup["two"].address)
    text += ("\n[frontend api]\nlisten = %s:%d\nbackend = %s\ncert = %s\n"
             "key = %s\n" % (moatlib.LOOPBACK, port2, setup["one"].address,
                             cert, key))
    write_conf(m, text)
    r = m.ctl("reload", timeout=60)
    assert re.search(r"taken: 2 frontends, 2 workers", r.stdout), r.stdout
    # new connections: new backend on the old port, the new frontend too
    with moatlib.tls_connect(port) as s:
        assert peer_der(s) == der2
        s.sendall(b"after")
        assert moatlib.recv_exact(s, len(TAG) + 5) == TAG + b"after"
    with moatlib.tls_connect(port2) as s:
        assert peer_der(s) == der2
        s.sendall(b"api")
        assert moatlib.recv_exact(s, 3) == b"api"
    new_workers = set(m.workers()) - old_workers
    assert len(new_workers) >= 2, "no new workers after the hand-over"
    assert set(m.keyd_pids()) - old_keyd, "no new keyd after the hand-over"
    # the old workers still serve the streams
    assert old_workers & set(m.workers()), "the old workers did not drain"

    time.sleep(1.0)     # the streams carry on across the hand-over
    for s in streams:
        s.stop.set()
    for s in streams:
        s.join(120)
    knock.stop.set()
    knock.join(60)
    for s in streams:
        assert not s.is_alive(), "stream %d hung" % s.seed
        assert s.error is None, "stream %d: %r\n%s" % (s.seed, s.error,
                                                         m.log())
        assert s.sent == s.echoed >= s.floor
    assert knock.refused == [], "refused during the reloads: %s" % \
        knock.refused[:5]
    assert knock.done > 10, "the knocking client barely ran"

    # the old generation goes once its connections have: workers, then keyd
    moatlib.wait_for(lambda: not (old_workers & set(m.workers())), 60,
                     what="the old workers to exit")
    moatlib.wait_for(lambda: not (old_keyd & set(m.keyd_pids())), 30,
                     what="the old keyd to exit")
    m.wait_log(r"reload: the generation of .* is gone", 30)


def serving(m, port, tag):
    with moatlib.tls_connect(port) as s:
        s.sendall(b"x")
        want = (TAG if tag else b"") + b"x"
        assert moatlib.recv_exact(s, len(want)) == want


def test_a_broken_config_is_refused_and_the_old_one_serves(setup):
    m = setup["m"]
    port = m.ports["web"]
    with open(m.conf) as f:
        good = f.read()
    workers, keyd = set(m.workers()), set(m.keyd_pids())
    try:
        # does not parse: FILE:LINE, non-zero exit
        write_conf(m, good + "\n[frontend broken]\nlisten = nowhere\n")
        r = m.ctl("reload", check=False, timeout=60)
        assert r.returncode != 0
        assert re.search(re.escape(m.conf) + r":\d+: ", r.stdout + r.stderr), \
            r.stdout + r.stderr
        serving(m, port, tag=True)

        # parses, but the key is not the certificate's: keyd says so
        other_cert, other_key = moatlib.make_cert(setup["dir"], "ecdsa",
                                                  name="other")
        bad = good.replace("key = " + setup["key"], "key = " + other_key, 1)
        assert bad != good
        write_conf(m, bad)
        r = m.ctl("reload", check=False, timeout=60)
        assert r.returncode != 0
        out = r.stdout + r.stderr
        assert "reload refused" in out and other_key in out, out
        serving(m, port, tag=True)

        # what only a restart can change
        write_conf(m, good.replace("log-level = info", "log-level = info\n"
                                   "chroot = /var/lib/moat", 1))
        r = m.ctl("reload", check=False, timeout=60)
        assert r.returncode != 0
        out = r.stdout + r.stderr
        assert "chroot changed" in out and "restart" in out, out
        serving(m, port, tag=True)
        assert set(m.workers()) == workers, "a refused reload touched workers"
        moatlib.wait_for(lambda: set(m.keyd_pids()) == keyd, 30,
                         what="the refused reload's keyd to go")
    finally:
        write_conf(m, good)


def test_sighup_reloads_a_changed_config(setup):
    m = setup["m"]
    with open(m.conf) as f:
        good = f.read()
    back = good.replace("backend = " + setup["two"].address,
                        "backend = " + setup["one"].address, 1)
    assert back != good
    write_conf(m, back)
    at = m.log_size()
    m.proc.send_signal(signal.SIGHUP)
    m.wait_log(r"reload: .* taken: 2 frontends", 60, start=at)
    serving(m, m.ports["web"], tag=False)


def test_a_frontend_removed_by_a_reload_stops_listening(setup):
    m = setup["m"]
    with open(m.conf) as f:
        good = f.read()
    head, sep, api = good.partition("\n[frontend api]\n")
    assert sep, good
    port2 = int(api.split("listen = ", 1)[1].split("\n", 1)[0].rsplit(":")[1])
    serving_api = moatlib.tls_connect(port2)
    serving_api.close()
    at = m.log_size()
    write_conf(m, head + "\n")
    r = m.ctl("reload", timeout=60)
    assert "taken: 1 frontends" in r.stdout, r.stdout
    m.wait_log(r"frontend api: no longer listening on", 10, start=at)

    def refused():
        try:
            socket.create_connection((moatlib.LOOPBACK, port2), 1).close()
        except ConnectionRefusedError:
            return True
        return False
    # the old workers close their copies as they stop accepting
    moatlib.wait_for(refused, 30, what="the removed frontend's port to close")
    serving(m, m.ports["web"], tag=False)
    write_conf(m, good)
    assert "taken: 2 frontends" in m.ctl("reload", timeout=60).stdout


def slow_keyd(directory, seconds):
    """A keyd that takes `seconds` before it even starts: a slow token."""
    path = os.path.join(directory, "slow-keyd-%d" % seconds)
    with open(path, "w") as f:
        f.write("#!/bin/sh\nsleep %d\nexec %s \"$@\"\n" % (seconds,
                                                         moatlib.KEYD))
    os.chmod(path, 0o755)
    return path


def test_the_master_never_waits_for_a_new_keyd(setup):
    """A reload whose keyd is slow to start: moatctl and the running
    generation are served meanwhile; one that never says hello within the
    deadline is refused, and nothing running changed."""
    m, d = setup["m"], setup["dir"]
    with open(m.conf) as f:
        good = f.read()
    assert "keyd = " + moatlib.KEYD in good
    try:
        for seconds, ok in ((3, True), (15, False)):
            write_conf(m, good.replace("keyd = " + moatlib.KEYD, "keyd = " +
                                       slow_keyd(d, seconds), 1))
            result = {}
            at = m.log_size()
            t = threading.Thread(target=lambda: result.update(
                r=m.ctl("reload", check=False, timeout=60)), daemon=True)
            t.start()
            time.sleep(0.3)
            # while that keyd sleeps: the master answers, the old one serves
            for _ in range(4):
                assert t.is_alive(), "the reload did not wait for its keyd"
                t0 = time.monotonic()
                m.ctl("status", timeout=5)
                assert time.monotonic() - t0 < 1.5, "moatctl waited for keyd"
                serving(m, m.ports["web"], tag=False)
                time.sleep(0.3)
            m.wait_log(r"a new keyd \(pid \d+\) loads its keys", 10,
                       start=at)
            t.join(40)
            assert not t.is_alive()
            out = result["r"].stdout + result["r"].stderr
            if ok:
                assert result["r"].returncode == 0, out
                assert "taken" in out, out
            else:
                assert result["r"].returncode != 0, out
                assert "did not load its keys within 10000 ms" in out, out
            serving(m, m.ports["web"], tag=False)
    finally:
        write_conf(m, good)
        m.ctl("reload", timeout=60)
