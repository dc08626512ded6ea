# SPDX-License-Identifier: GPL-2.0-or-later
"""No worker holds a private key (issue 2, last line; DESIGN.md's promise).

With moatd serving an ECDSA P-256 and an RSA-2048 frontend, 50 handshakes
of each kind (TLS 1.2 and 1.3, per key) are done; then every worker's
readable memory is searched for the keys' secret numbers (the ECDSA scalar,
the RSA primes; big- and little-endian): none may be there.  The same scan
finds them in keyd's memory: the positive control that shows the scan works.
"""

import pytest

import memscan
import moatlib

HANDSHAKES = 50


@pytest.fixture(scope="module")
def served(module_moat_factory, backends, certs):
    echo = backends.echo()
    m = module_moat_factory({
        kind: {"backend": echo.address, "cert": certs[kind][0],
               "key": certs[kind][1]} for kind in ("ecdsa", "rsa")},
        workers=2)
    before = m.stats()
    for kind in ("ecdsa", "rsa"):
        for version in ("1.2", "1.3"):
            for _ in range(HANDSHAKES):
                with moatlib.tls_connect(m.ports[kind], version) as s:
                    assert s.version() == "TLSv" + version
                    moatlib.round_trip(s)
    return m, before


@pytest.fixture(scope="module")
def secrets(certs):
    out = {}
    for kind in ("ecdsa", "rsa"):
        for label, b in moatlib.key_secrets(certs[kind][1]).items():
            out["%s:%s" % (kind, label)] = b
    return out


def number_of(label):
    """"rsa:rsa-p/le" -> "rsa:rsa-p": one secret number, either byte order."""
    return label.rsplit("/", 1)[0]


def test_handshakes_went_through_keyd(served):
    m, before = served
    after = m.stats()
    # Each full handshake needs one signature from keyd.
    n = 4 * HANDSHAKES
    kb, ka = moatlib.stats_keyd(before), moatlib.stats_keyd(after)
    assert ka["requests"] - kb["requests"] >= n, (kb, ka)
    assert ka["signs"] - kb["signs"] >= n, (kb, ka)


def test_workers_hold_no_key_bytes(served, secrets):
    m, _ = served
    workers = m.workers()
    assert len(workers) == 2
    report = []
    for w in workers:
        found, info = memscan.scan(w, secrets)
        assert info["bytes"] > 1 << 20, "read too little of worker %d: %r" % (w, info)
        for label, hits in found.items():
            report.append("worker %d holds %s at %s" % (
                w, label, ", ".join("%#x (%s)" % h for h in hits[:4])))
        print("worker %d: %r" % (w, info))
    assert not report, "\n".join(report)


def test_master_holds_no_key_bytes(served, secrets):
    """Workers are forked from the master: it must not hold keys either."""
    m, _ = served
    found, info = memscan.scan(m.proc.pid, secrets)
    assert not found, "master holds %s" % sorted(found)


def test_keyd_holds_the_keys(served, secrets):
    """Positive control: the very same scan finds every secret in keyd."""
    m, _ = served
    seen = set()
    for k in m.keyd_pids():
        found, info = memscan.scan(k, secrets)
        print("keyd %d: %r found %s" % (k, info, sorted(found)))
        seen |= {number_of(label) for label in found}
    want = {number_of(label) for label in secrets}
    assert seen == want, "not found in keyd: %s" % sorted(want - seen)
