# SPDX-License-Identifier: GPL-2.0-or-later
"""Session resumption (issue 10): TLS 1.2 and TLS 1.3 tickets, on by
default, resume on whichever worker a client lands on, across a reload, and
across moatd instances that share a ticket-key-file; `tickets = no` turns
them off; a resumed handshake costs keyd nothing."""

import os
import re
import signal
import socket
import subprocess

import pytest

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

import memscan
import moatlib
import reneglib

RECONNECTS = 60		# after the first, full, handshake
MIN_RATIO = 0.95
LIFETIME_S = 300	# ticket-lifetime on the "on" frontend: 5m
VERSIONS = ("1.2", "1.3")


def secret_file(directory, name, data=None):
    """A ticket-key-file: 48 random bytes (or data), chmod 600."""
    path = os.path.join(str(directory), name)
    old = os.umask(0o077)
    try:
        with open(path, "wb") as f:
            f.write(os.urandom(48) if data is None else data)
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    return path


class Client:
    """One Python ssl context per TLS version (OpenSSL only resumes a
    session made by the same context)."""

    def __init__(self, version):
        self.version = version
        self.ctx = moatlib.client_context(version)

    def connect(self, m, port, session=None):
        """One connection: handshake, one echo round trip (a TLS 1.3 ticket
        arrives after the handshake, with the first data read), close.
        Returns (session, reused, worker pid)."""
        raw = socket.create_connection((moatlib.LOOPBACK, port), timeout=20)
        with self.ctx.wrap_socket(raw, server_hostname="localhost",
                                  session=session,
                                  suppress_ragged_eofs=False) as s:
            assert s.version() == "TLSv" + self.version, s.version()
            moatlib.round_trip(s, b"resume me" * 10)
            worker = m.worker_of(s) if m is not None else None
            return s.session, s.session_reused, worker


def counters(m):
    st = moatlib.stats_total(m.stats())
    return {"resumed": st["handshakes_resumed"],
            "ok": st["handshakes_ok_tls12"] + st["handshakes_ok_tls13"],
            "signs": moatlib.stats_keyd(st)["signs"]}


def settle(m, want_ok):
    """The stats once every finished handshake is counted."""
    return moatlib.wait_for(
        lambda: (lambda c: c if c["ok"] >= want_ok else None)(counters(m)),
        10, 0.1, "%d handshakes in the stats" % want_ok)


@pytest.fixture(scope="module")
def files(tmp_path_factory, certs):
    """A certificate of this module's own (the reload test replaces it)."""
    d = tmp_path_factory.mktemp("tickets")
    cert, key = moatlib.make_cert(str(d), "ecdsa", name="tix")
    return {"dir": d, "cert": cert, "key": key}


@pytest.fixture(scope="module")
def moat(module_moat_factory, backends, files, certs):
    """Two workers, a generated ticket key; "on" (the default, lifetime 5m),
    "off" (tickets = no) and "reneg" (clients may renegotiate)."""
    echo = backends.echo()
    return module_moat_factory({
        "on": {"backend": echo.address, "cert": files["cert"],
               "key": files["key"], "ticket-lifetime": "5m"},
        "off": {"backend": echo.address, "cert": certs["ecdsa"][0],
                "key": certs["ecdsa"][1], "tickets": "no"},
        "reneg": {"backend": echo.address, "cert": certs["ecdsa"][0],
                  "key": certs["ecdsa"][1], "client-renegotiation": "allow",
                  "ticket-lifetime": "5m"},
    }, workers=2)


@pytest.mark.parametrize("version", VERSIONS)
def test_resumes_on_every_worker(moat, version):
    """A ticket from the first connection resumes the next 60 whichever of
    the two workers takes them, with no signature by keyd for them."""
    c = Client(version)
    port = moat.ports["on"]
    before = settle(moat, 0)
    sess, reused, first_worker = c.connect(moat, port)
    assert not reused
    assert sess is not None and sess.has_ticket, "no ticket issued"
    assert sess.ticket_lifetime_hint == LIFETIME_S, sess.ticket_lifetime_hint
    base = settle(moat, before["ok"] + 1)
    assert base["signs"] > before["signs"], "a full handshake signs"
    workers = {first_worker}
    hits = 0
    for _ in range(RECONNECTS):
        _, reused, worker = c.connect(moat, port, session=sess)
        hits += bool(reused)
        workers.add(worker)
    after = settle(moat, base["ok"] + RECONNECTS)
    assert len(workers - {None}) == 2, \
        "connections did not reach both workers: %s" % workers
    ratio = hits / RECONNECTS
    assert ratio >= MIN_RATIO, "resumed %d of %d\n%s" % (
        hits, RECONNECTS, moat.log())
    assert after["resumed"] - base["resumed"] == hits, (base, after, hits)
    # every full handshake is one signature; a resumed one is none
    assert after["signs"] - base["signs"] == RECONNECTS - hits, \
        (base, after, hits)


def test_worker_restart_keeps_tickets(moat):
    """A worker killed and restarted by the master gets the same key: a
    ticket issued before resumes on the new worker."""
    c = Client("1.3")
    port = moat.ports["on"]
    sess, _, _ = c.connect(moat, port)
    old = set(moat.workers())
    victim = sorted(old)[0]
    os.kill(victim, signal.SIGKILL)
    moatlib.wait_for(lambda: len(set(moat.workers()) - old) == 1 and
                     len(moat.workers()) == 2, 30, 0.1, "a new worker")
    new = (set(moat.workers()) - old).pop()
    seen = []
    for _ in range(20):
        _, reused, worker = c.connect(moat, port, session=sess)
        assert reused, "not resumed on worker %s\n%s" % (worker, moat.log())
        seen.append(worker)
    assert new in seen, (new, seen)


def test_ticket_of_another_frontend(moat):
    """Each frontend has its own key: a ticket from one does not resume on
    another of the same moatd (with the same ticket-lifetime: another one
    would give other period keys anyway)."""
    c = Client("1.2")
    sess, _, _ = c.connect(moat, moat.ports["on"])
    _, reused, _ = c.connect(moat, moat.ports["reneg"], session=sess)
    assert not reused


def gnutls_cli_resume(port, priority):
    """gnutls-cli --resume: a handshake, then another offering its ticket;
    whether the second resumed."""
    moatlib.need_tool("gnutls-cli")
    r = subprocess.run(["gnutls-cli", "--insecure", "--resume",
                        "--pskusername", "u", "--pskkey",
                        "00112233445566778899aabbccddeeff",
                        "--priority", priority, "-p", str(port),
                        moatlib.LOOPBACK], input=b"", capture_output=True,
                       timeout=60)
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode == 0, out
    assert "trying to resume previous session" in out, out
    return "*** This is a resumed session" in out, out


def test_tls13_resumption_keeps_ecdhe(moat):
    """TLS 1.3: a client that offers psk_dhe_ke resumes; one that offers
    only psk_ke (plain PSK, no (EC)DHE) gets a full handshake instead."""
    tls13 = "NORMAL:-VERS-ALL:+VERS-TLS1.3"
    resumed, out = gnutls_cli_resume(moat.ports["on"], tls13)
    assert resumed, out
    resumed, out = gnutls_cli_resume(moat.ports["on"], tls13 +
                                     ":+PSK:-ECDHE-PSK:-DHE-PSK")
    assert not resumed, "resumed with psk_ke, without (EC)DHE\n" + out


def test_log_line_says_resumed(moat):
    """The per-connection line says resumed=yes or no."""
    c = Client("1.3")
    port = moat.ports["on"]
    start = moat.log_size()
    sess, _, _ = c.connect(moat, port)
    _, reused, _ = c.connect(moat, port, session=sess)
    assert reused
    moat.wait_log(r"conn client=\S+ frontend=on .*resumed=no .*\n"
                  r"(.*\n)*.*conn client=\S+ frontend=on .*resumed=yes ",
                  start=start)


@pytest.mark.parametrize("version", VERSIONS)
def test_tickets_no(moat, version):
    """tickets = no: no ticket is issued and none resumes."""
    c = Client(version)
    port = moat.ports["off"]
    sess, _, _ = c.connect(moat, port)
    assert not sess.has_ticket
    for _ in range(5):
        _, reused, _ = c.connect(moat, port, session=sess)
        assert not reused


def test_renegotiation_of_a_resumed_session(moat, tmp_path):
    """A TLS 1.2 session resumed from a ticket renegotiates (a full
    handshake, signed by keyd) and every byte still comes back."""
    port = moat.ports["reneg"]
    sfile = str(tmp_path / "session")
    first = reneglib.RenegClient(port, duration_ms=200, session_file=sfile)
    res = first.result()
    reneglib.assert_intact(res)
    assert not res["resumed"], res
    before = counters(moat)
    again = reneglib.RenegClient(port, duration_ms=1500, client_reneg_at=[500],
                                 session_file=sfile)
    res = again.result()
    reneglib.assert_intact(res)
    assert res["resumed"], res
    assert res["client_reneg_ok"] == 1, res
    after = settle(moat, before["ok"] + 1)
    assert after["resumed"] == before["resumed"] + 1, (before, after)
    # the resumption signed nothing, the renegotiation once
    assert after["signs"] - before["signs"] == 1, (before, after)


@pytest.fixture(scope="module")
def nodes(module_moat_factory, backends, certs, files):
    """Three more moatds: a and b share a ticket-key-file, c has another."""
    echo = backends.echo()
    shared = secret_file(files["dir"], "shared.key")
    other = secret_file(files["dir"], "other.key")

    def node(keyfile):
        return module_moat_factory({
            "fe": {"backend": echo.address, "cert": certs["ecdsa"][0],
                   "key": certs["ecdsa"][1]}}, ticket_key_file=keyfile)
    return node(shared), node(shared), node(other)


def ticket_key(secret, frontend):
    """The frontend's ticket key as master_tickets.c derives it, by an
    independent HKDF-SHA256 (RFC 5869)."""
    return HKDF(algorithm=hashes.SHA256(), length=64,
                salt=b"moat session ticket keys v1",
                info=b"moat frontend ticket key: " + frontend.encode()
                ).derive(secret)


def test_ticket_key_only_where_it_belongs(nodes):
    """The key derived from the ticket-key-file is in the worker (that is
    what resumes tickets) and the master (which hands it out), never in
    keyd; the file's secret itself is wiped after the derivation and is in
    no process."""
    a = nodes[0]
    with open(re.search(r"ticket-key-file = (\S+)", open(a.conf).read())
              .group(1), "rb") as f:
        secret = f.read()
    # the tails: free() writes its list pointers over a chunk's first bytes
    key = ticket_key(secret, "fe")
    needles = {"key": key, "key tail": key[16:], "secret": secret[16:]}
    where = {"master": [a.proc.pid], "worker": a.workers(),
             "keyd": a.keyd_pids()}
    found = {name: {} for name in where}
    for name, pids in where.items():
        assert pids, name
        for pid in pids:
            hits, info = memscan.scan(pid, needles)
            assert info["bytes"] > 0, (name, info)
            for label in hits:
                found[name][label] = hits[label]
    # the needle is right; and one copy, the frontend's: the one read from
    # the config memfd is wiped, and each session's with the session
    assert len(found["worker"].get("key", ())) == 1, found
    assert len(found["worker"].get("key tail", ())) == 1, found
    assert "key" in found["master"], found
    assert not found["keyd"], found
    assert "secret" not in found["master"], found
    assert "secret" not in found["worker"], found


@pytest.mark.parametrize("version", VERSIONS)
def test_shared_ticket_key_file(nodes, version):
    """a's tickets resume on b (same file) and not on c (another file)."""
    a, b, c_ = nodes
    cl = Client(version)
    sess, _, _ = cl.connect(None, a.ports["fe"])
    for _ in range(5):
        _, reused, _ = cl.connect(None, b.ports["fe"], session=sess)
        assert reused, "b did not resume a's ticket\n%s" % b.log()
        _, reused, _ = cl.connect(None, c_.ports["fe"], session=sess)
        assert not reused, "c resumed a ticket of another key"
    assert "session ticket keys derived from ticket-key-file" in a.log_text()


def test_ticket_key_file_checked(tmp_path, certs):
    """moatd -t refuses a ticket-key-file that is short or readable by
    others, and takes a good one."""
    cases = {
        "short": (secret_file(tmp_path, "short", b"x" * 31), 0o600,
                  r"must hold 32 to 4096 bytes"),
        "open": (secret_file(tmp_path, "open"), 0o644, r"readable by others"),
        "good": (secret_file(tmp_path, "good"), 0o600, None),
    }
    for name, (path, mode, want) in cases.items():
        os.chmod(path, mode)
        d = tmp_path / ("conf-" + name)
        d.mkdir()
        m = moatlib.Moat(str(d), {
            "fe": {"backend": "127.0.0.1:1", "cert": certs["ecdsa"][0],
                   "key": certs["ecdsa"][1]}}, ticket_key_file=path)
        r = subprocess.run([moatlib.MOATD, "-t", "-c", m.conf],
                           capture_output=True, text=True, timeout=60)
        if want is None:
            assert r.returncode == 0, (name, r.stdout, r.stderr)
        else:
            assert r.returncode != 0, (name, r.stdout, r.stderr)
            assert re.search(want, r.stdout + r.stderr), \
                (name, r.stdout, r.stderr)


@pytest.mark.parametrize("version", VERSIONS)
def test_reload_keeps_tickets(moat, files, version):
    """After a certificate rotation (moatctl reload) the tickets issued
    before it still resume, on both workers."""
    c = Client(version)
    port = moat.ports["on"]
    sess, _, _ = c.connect(moat, port)
    fp = reneglib.replace_cert(files["cert"], files["key"], "ecdsa")
    moat.ctl("reload", timeout=60)
    moatlib.wait_for(lambda: reneglib.peer_fp(port) == fp, 30, 0.2,
                     "the new certificate")
    hits, workers = 0, set()
    for _ in range(20):
        _, reused, worker = c.connect(moat, port, session=sess)
        hits += bool(reused)
        workers.add(worker)
    assert hits >= 19, "resumed %d of 20 after the reload\n%s" % (
        hits, moat.log())
    assert len(workers - {None}) == 2, workers
