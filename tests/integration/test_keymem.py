# SPDX-License-Identifier: GPL-2.0-or-later
"""No worker, and not the master, holds a private key (issue 2, last line;
issue 8; DESIGN.md's promise).

moatd serves an ECDSA P-256 and an RSA-2048 frontend with two workers.
Three times the readable memory of the master and of every worker is
searched for everything of the private keys (memscan.key_needles): the
secret numbers (ECDSA scalar; RSA d, p, q, dP, dQ, qInv; big- and
little-endian), their DER (the EC private key OCTET STRING, the RSA
private INTEGERs; not the whole DER, whose public part is in every
worker's certificate) and the key file's PEM body lines:

1. after 50 handshakes of each kind (TLS 1.2 and 1.3, per key);
2. after 100 renegotiations (moatctl rekey of live TLS 1.2 connections);
3. after two certificate rotations (new key and certificate files, then
   moatctl reload, each time), the keys of every generation searched.

None may be found.  The same scan finds every secret number in keyd's
memory (the keys it holds now): the positive control that shows the scan
works.
"""

import os
import shutil

import pytest

import memscan
import moatlib
import reneglib

HANDSHAKES = 50
RENEGOTIATIONS = 100
CLIENTS_PER_KIND = 5
ROTATIONS = 2
KINDS = ("ecdsa", "rsa")


class Run:
    """The one moatd of this file, and the keys it has had."""

    def __init__(self, m, keydir, files):
        self.m = m
        self.keydir = keydir
        self.files = files              # kind -> (cert, key), the live paths
        self.generations = {k: [] for k in KINDS}   # copies of every key
        for kind in KINDS:
            self.keep(kind)
        self.before = m.stats()

    def keep(self, kind):
        n = len(self.generations[kind])
        copy = os.path.join(self.keydir, "%s-gen%d.key" % (kind, n))
        shutil.copyfile(self.files[kind][1], copy)
        self.generations[kind].append(copy)

    def needles(self, current_only=False):
        out = {}
        for kind in KINDS:
            gens = self.generations[kind]
            for g, path in enumerate(gens[-1:] if current_only else gens):
                if current_only:
                    g = len(gens) - 1
                out.update(memscan.key_needles(
                    path, "%s-gen%d:" % (kind, g)))
        return out

    def scan(self):
        """Search the master, the workers and keyd now: {"master": [...],
        "workers": [...] (what each holds), "keyd_missing": [...] (secret
        numbers of the live keys keyd's memory does not show)}."""
        needles = self.needles()
        workers = self.m.workers()
        assert len(workers) == 2, workers
        out = {"master": scan_report(self.m.proc.pid, needles, "master"),
               "workers": []}
        for w in workers:
            out["workers"] += scan_report(w, needles, "worker")
        numbers = {label: b for label, b in
                   self.needles(current_only=True).items()
                   if memscan.encoding_of(label) != "pem"}
        seen = set()
        for k in self.m.keyd_pids():
            found, info = memscan.scan(k, numbers)
            print("keyd %d: %r found %s" % (k, info, sorted(found)))
            seen |= {memscan.part_of(label) for label in found}
        out["keyd_missing"] = sorted(
            {memscan.part_of(label) for label in numbers} - seen)
        return out

    def handshakes(self, n):
        for kind in KINDS:
            for version in ("1.2", "1.3"):
                for _ in range(n):
                    with moatlib.tls_connect(self.m.ports[kind], version) as s:
                        assert s.version() == "TLSv" + version
                        moatlib.round_trip(s)


def scan_report(pid, needles, what):
    found, info = memscan.scan(pid, needles)
    assert info["bytes"] > 1 << 20, "read too little of %s %d: %r" % (
        what, pid, info)
    print("%s %d: %r" % (what, pid, info))
    return ["%s %d holds %s at %s" % (
        what, pid, label, ", ".join("%#x (%s)" % h for h in hits[:4]))
        for label, hits in sorted(found.items())]


@pytest.fixture(scope="module")
def run(module_moat_factory, backends, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("keymem"))
    files = {kind: reneglib.private_cert(d, kind, name=kind)
             for kind in KINDS}
    echo = backends.echo()
    m = module_moat_factory({
        kind: {"backend": echo.address, "cert": files[kind][0],
               "key": files[kind][1]} for kind in KINDS}, workers=2)
    return Run(m, d, files)


@pytest.fixture(scope="module")
def after_handshakes(run):
    run.handshakes(HANDSHAKES)
    run.after = run.m.stats()
    return run.scan()


@pytest.fixture(scope="module")
def after_renegotiations(run, after_handshakes):
    m = run.m
    base = reneglib.counters(m)
    # Several per kind: a connection rekeys at most once a second
    # (reneg.c), so the hundred take rounds of ten, not fifty of two.
    clients = [reneglib.RenegClient(m.ports[kind], mode="accept",
                                    version="1.2", duration_ms=600000,
                                    per_tick=256, timeout_ms=600000)
               for kind in KINDS for _ in range(CLIENTS_PER_KIND)]
    try:
        for c in clients:
            c.wait_ready()
        done = 0
        for _ in range(RENEGOTIATIONS):     # bounded; 10 per round normally
            if done >= RENEGOTIATIONS:
                break
            asked = reneglib.rekey(m)
            assert asked >= 1, "moatctl rekey asked no connection"
            want = done + asked
            reneglib.wait_counters(
                m, base, {"renegotiations_completed": want}, seconds=30,
                what="renegotiation %d" % want)
            done = reneglib.counters(m)["renegotiations_completed"] - \
                base["renegotiations_completed"]
        assert done >= RENEGOTIATIONS, done
    finally:
        for c in clients:
            c.kill()
    return run.scan()


@pytest.fixture(scope="module")
def after_rotations(run, after_renegotiations):
    m = run.m
    for _ in range(ROTATIONS):
        fps = {}
        for kind in KINDS:
            cert, key = run.files[kind]
            fps[kind] = reneglib.replace_cert(cert, key, kind)
            run.keep(kind)
        m.ctl("reload", timeout=60)
        for kind in KINDS:
            moatlib.wait_for(
                lambda: reneglib.peer_fp(m.ports[kind]) == fps[kind], 30,
                0.2, "frontend %s to serve its new certificate" % kind)
        run.handshakes(5)
    return run.scan()


PHASES = ("after_handshakes", "after_renegotiations", "after_rotations")


@pytest.fixture(params=PHASES)
def phase(request):
    return request.getfixturevalue(request.param)


def test_needles_are_the_keys(run):
    """The search strings are right: each DER part and PEM line is in the
    key file, each number is what its DER holds."""
    for kind in KINDS:
        path = run.generations[kind][0]
        der = memscan.pem_der(path)
        with open(path, "rb") as f:
            raw = f.read()
        for label, b in memscan.key_needles(path).items():
            enc = memscan.encoding_of(label)
            if enc in ("der", "be"):
                assert b in der, label
            elif enc == "pem":
                assert b in raw, label


def test_handshakes_went_through_keyd(run, after_handshakes):
    # Each full handshake needs one signature from keyd.
    n = 4 * HANDSHAKES
    kb, ka = moatlib.stats_keyd(run.before), moatlib.stats_keyd(run.after)
    assert ka["requests"] - kb["requests"] >= n, (kb, ka)
    assert ka["signs"] - kb["signs"] >= n, (kb, ka)


def test_workers_hold_no_key_bytes(phase):
    assert not phase["workers"], "\n".join(phase["workers"])


def test_master_holds_no_key_bytes(phase):
    """The master opens the key files for keyd, never reads them."""
    assert not phase["master"], "\n".join(phase["master"])


def test_keyd_holds_the_keys(phase):
    """Positive control: the very same scan finds every secret number of
    the keys keyd holds now in keyd's memory."""
    assert not phase["keyd_missing"], \
        "not found in keyd: %s" % phase["keyd_missing"]
