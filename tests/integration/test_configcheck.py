# SPDX-License-Identifier: GPL-2.0-or-later
"""`moatd -c FILE -t` checks a config (issue 3, DESIGN.md "User-facing
contract"): a broken one prints "FILE:LINE: reason" and exits 1; a good one
prints OK and exits 0."""

import os
import re
import shutil
import subprocess

import pytest

import moatlib
import sanlib


def check(path):
    r = subprocess.run([moatlib.MOATD, "-c", path, "-t"], capture_output=True,
                       text=True, timeout=30, stdin=subprocess.DEVNULL)
    sanlib.check(r.stderr, "moatd -t -c %s" % path, r.returncode)
    return r.returncode, r.stdout + r.stderr


@pytest.fixture(scope="module")
def files(certs, tmp_path_factory):
    """Key and cert files in every state the cases below need."""
    d = tmp_path_factory.mktemp("cfgfiles")
    out = {}
    for kind in ("ecdsa", "rsa"):
        cert, key = certs[kind]
        out[kind + "_cert"], out[kind + "_key"] = cert, key
    shared = str(d / "shared.key")
    shutil.copy(certs["ecdsa"][1], shared)
    os.chmod(shared, 0o644)
    out["shared_key"] = shared
    keydir = str(d / "key-is-a-directory")
    os.mkdir(keydir, 0o700)
    out["dir_key"] = keydir
    out["missing"] = str(d / "no-such-file")
    # HAProxy-style: the chain and its key in one file (issue 8).
    combined = str(d / "combined.pem")
    with open(combined, "w") as f:
        for part in certs["ecdsa"]:
            with open(part) as src:
                f.write(src.read())
    os.chmod(combined, 0o600)
    out["combined"] = combined
    out["keyd"] = moatlib.KEYD
    out["dir"] = str(d)
    return out


def good_text(f, **over):
    p = {"port1": moatlib.free_port(), "port2": moatlib.free_port()}
    p.update(f)
    p.update(over)
    return """\
; a good config for moatd -t
[moat]
workers = 2
user = moat
keyd-user = moat-keyd
control = {dir}/control.sock
keyd = {keyd}

[frontend www]
listen = 127.0.0.1:{port1}
backend = 127.0.0.1:8080
cert = {ecdsa_cert}
key = {ecdsa_key}

[frontend mail]
listen = 127.0.0.1:{port2}
backend = unix:/run/app.sock
cert = {rsa_cert}
key = {rsa_key}
""".format(**p)


def edit(text, old, new):
    assert old in text, old
    return text.replace(old, new, 1)


# Each case: (name, function of (good text, files) -> broken text, the
# substring that identifies the offending line, a substring of the reason).
CASES = [
    ("unknown-key",
     lambda t, f: edit(t, "workers = 2\n", "workers = 2\nwrokers = 3\n"),
     "wrokers = 3", "unknown key 'wrokers'"),
    ("unknown-frontend-key",
     lambda t, f: edit(t, "backend = 127.0.0.1:8080\n",
                       "backend = 127.0.0.1:8080\ncertificate = /x\n"),
     "certificate = /x", "unknown key 'certificate'"),
    ("bad-port",
     lambda t, f: re.sub(r"listen = 127\.0\.0\.1:\d+\n(?=backend = 127)",
                         "listen = 127.0.0.1:70000\n", t, 1),
     "listen = 127.0.0.1:70000", "bad port"),
    ("missing-cert",
     lambda t, f: edit(t, "cert = %s\n" % f["ecdsa_cert"],
                       "cert = %s\n" % f["missing"]),
     "cert = " + "{missing}", "No such file"),
    ("key-cert-mismatch",
     lambda t, f: edit(t, "key = %s\n" % f["ecdsa_key"],
                       "key = %s\n" % f["rsa_key"]),
     "key = {rsa_key}\n\n[frontend mail]", "does not match"),
    ("duplicate-listen",
     lambda t, f: re.sub(r"(listen = 127\.0\.0\.1:)\d+\n(?=backend = unix)",
                         lambda m: m.group(1) + re.search(
                             r"listen = 127\.0\.0\.1:(\d+)", t).group(1) + "\n",
                         t, 1),
     "listen = 127.0.0.1:{port1}\nbackend = unix", "duplicate listen address"),
    ("missing-key",
     lambda t, f: edit(t, "key = %s\n" % f["ecdsa_key"],
                       "key = %s\n" % f["missing"]),
     "key = {missing}", "No such file"),
    ("unreadable-key",
     lambda t, f: edit(t, "key = %s\n" % f["ecdsa_key"],
                       "key = %s\n" % f["dir_key"]),
     "key = {dir_key}", "not a regular file"),
    ("key-readable-by-others",
     lambda t, f: edit(t, "key = %s\n" % f["ecdsa_key"],
                       "key = %s\n" % f["shared_key"]),
     "key = {shared_key}", "readable by others"),
    ("unknown-section",
     lambda t, f: edit(t, "[frontend mail]", "[backend mail]"),
     "[backend mail]", "unknown section"),
    ("bad-backend",
     lambda t, f: edit(t, "backend = 127.0.0.1:8080", "backend = nonsense"),
     "backend = nonsense", "bad backend"),
    ("bad-unix-backend",
     lambda t, f: edit(t, "backend = unix:/run/app.sock",
                       "backend = unix:relative.sock"),
     "backend = unix:relative.sock", "bad backend"),
    ("bad-priority",
     lambda t, f: edit(t, "backend = 127.0.0.1:8080\n",
                       "backend = 127.0.0.1:8080\npriority = NORMAL:+NO-SUCH-THING\n"),
     "priority = NORMAL:+NO-SUCH-THING", "bad priority"),
    ("no-frontend",
     lambda t, f: t[:t.index("[frontend www]")],
     "[moat]", "no [frontend"),
    ("unknown-user",
     lambda t, f: edit(t, "user = moat\n", "user = no-such-moat-user\n"),
     "user = no-such-moat-user", "unknown user"),
    ("root-user",
     lambda t, f: edit(t, "keyd-user = moat-keyd\n", "keyd-user = root\n"),
     "keyd-user = root", "root"),
    ("same-user",
     lambda t, f: edit(t, "user = moat\n", "user = moat-keyd\n"),
     "keyd-user = moat-keyd", "same uid"),
    ("combined-cert",
     lambda t, f: edit(t, "cert = %s\n" % f["ecdsa_cert"],
                       "cert = %s\n" % f["combined"]),
     "cert = {combined}", "holds a private key"),
    ("content-only-with-tls12",
     lambda t, f: edit(t, "key = %s\n" % f["ecdsa_key"],
                       "key = %s\nkeyd-sign = content-only\n" % f["ecdsa_key"]),
     "keyd-sign = content-only", "content-only forbids"),
    ("bad-keyd-rate",
     lambda t, f: edit(t, "workers = 2\n", "workers = 2\nkeyd-rate = fast\n"),
     "keyd-rate = fast", "bad number"),
    ("bad-workers",
     lambda t, f: edit(t, "workers = 2", "workers = many"),
     "workers = many", "bad number"),
    ("missing-backend",
     lambda t, f: edit(t, "backend = 127.0.0.1:8080\n", ""),
     "[frontend www]", "missing required key 'backend'"),
    ("duplicate-key",
     lambda t, f: edit(t, "backend = 127.0.0.1:8080\n",
                       "backend = 127.0.0.1:8080\nbackend = 127.0.0.1:8081\n"),
     "backend = 127.0.0.1:8081", "duplicate key"),
    ("bad-duration",
     lambda t, f: edit(t, "backend = 127.0.0.1:8080\n",
                       "backend = 127.0.0.1:8080\nidle-timeout = soon\n"),
     "idle-timeout = soon", "bad duration"),
    ("relative-cert",
     lambda t, f: edit(t, "cert = %s\n" % f["ecdsa_cert"], "cert = www.crt\n"),
     "cert = www.crt", "absolute path"),
    ("duplicate-frontend",
     lambda t, f: edit(t, "[frontend mail]", "[frontend www]"),
     "[frontend www]\nlisten = 127.0.0.1:{port2}", "duplicate frontend"),
]


def line_of(text, needle):
    """1-based line number where needle (maybe spanning lines) starts."""
    i = text.find(needle)
    assert text.count(needle) == 1, "case is broken: %r not once in config" % needle
    return text.count("\n", 0, i) + 1


@pytest.mark.parametrize("name,make,needle,reason", CASES,
                         ids=[c[0] for c in CASES])
def test_broken_config(files, tmp_path, name, make, needle, reason):
    port1, port2 = moatlib.free_port(), moatlib.free_port()
    good = good_text(files, port1=port1, port2=port2)
    text = make(good, files)
    assert text != good
    path = str(tmp_path / (name + ".conf"))
    with open(path, "w") as f:
        f.write(text)
    needle = needle.format(port1=port1, port2=port2, **files)
    want_line = line_of(text, needle)
    rc, out = check(path)
    assert rc == 1, "exit %d for %s:\n%s\n%s" % (rc, name, out, text)
    m = re.search(r"(?:^|\s)" + re.escape(path) + r":(\d+): (.*)$", out, re.M)
    assert m, "no %s:LINE: reason in:\n%s" % (path, out)
    assert int(m.group(1)) == want_line, "line %s, want %d:\n%s\n%s" % (
        m.group(1), want_line, out, text)
    assert reason.lower() in m.group(2).lower(), out


def test_good_config(files, tmp_path):
    path = str(tmp_path / "good.conf")
    with open(path, "w") as f:
        f.write(good_text(files))
    rc, out = check(path)
    assert rc == 0, out
    assert re.search(r"\bOK\b", out), out


def test_content_only_with_tls13_only_priority(files, tmp_path):
    """keyd-sign = content-only is consistent with a TLS 1.3-only
    priority, and with an Ed25519 key under any; keyd-rate takes a number
    or auto."""
    text = edit(good_text(files), "key = %s\n" % files["ecdsa_key"],
                "key = %s\nkeyd-sign = content-only\n"
                "priority = NORMAL:-VERS-ALL:+VERS-TLS1.3\n"
                % files["ecdsa_key"])
    text = edit(text, "workers = 2\n",
                "workers = 2\nkeyd-rate = 500\nkeyd-key-rate = auto\n")
    path = str(tmp_path / "content-only.conf")
    with open(path, "w") as f:
        f.write(text)
    rc, out = check(path)
    assert rc == 0, out


def test_missing_file(tmp_path):
    path = str(tmp_path / "absent.conf")
    rc, out = check(path)
    assert rc == 1
    assert path in out and "No such file" in out, out


def test_nothing_is_started(files, tmp_path):
    """-t checks only: no listener is bound, no control socket made."""
    port = moatlib.free_port()
    path = str(tmp_path / "good.conf")
    with open(path, "w") as f:
        f.write(good_text(files, port1=port))
    rc, out = check(path)
    assert rc == 0, out
    assert not os.path.exists(os.path.join(files["dir"], "control.sock"))
    with __import__("socket").socket() as s:
        s.bind((moatlib.LOOPBACK, port))	# still free


def start(path, seconds=60):
    """A real start (no -t): moatd either serves or exits; we want the exit."""
    r = subprocess.run([moatlib.MOATD, "-c", path], capture_output=True,
                       text=True, timeout=seconds, stdin=subprocess.DEVNULL)
    sanlib.check(r.stderr, "moatd -c %s" % path, r.returncode)
    return r.returncode, r.stdout + r.stderr


def test_start_fails_on_key_that_does_not_match(files, tmp_path):
    """At start-up the master never reads a key: keyd finds the mismatch,
    and moatd exits 1 naming the frontend, the key file and the reason,
    with nothing left running."""
    text = good_text(files).replace(files["ecdsa_key"], files["rsa_key"], 1)
    path = str(tmp_path / "mismatch.conf")
    with open(path, "w") as f:
        f.write(text)
    rc, out = start(path)
    assert rc == 1, out
    assert re.search(r"frontend www: .*" + re.escape(files["rsa_key"]) +
                     r".*does not match", out), out
    assert not os.path.exists(os.path.join(files["dir"], "control.sock")), out


def test_start_fails_on_key_readable_by_others(files, tmp_path):
    text = good_text(files).replace(files["ecdsa_key"], files["shared_key"], 1)
    path = str(tmp_path / "shared.conf")
    with open(path, "w") as f:
        f.write(text)
    rc, out = start(path)
    assert rc == 1, out
    want = "%s:%d: " % (path, line_of(text, files["shared_key"]))
    assert want in out and files["shared_key"] in out and \
        "readable by others" in out, out


def test_start_fails_on_cert_that_holds_a_key(files, tmp_path):
    """A combined key+cert file is refused at start-up too, before any
    process has read it: the file, its line and the reason."""
    text = good_text(files).replace(files["ecdsa_cert"], files["combined"], 1)
    path = str(tmp_path / "combined.conf")
    with open(path, "w") as f:
        f.write(text)
    rc, out = start(path)
    assert rc == 1, out
    assert files["combined"] in out and "holds a private key" in out, out
    assert not os.path.exists(os.path.join(files["dir"], "control.sock")), out
