# SPDX-License-Identifier: GPL-2.0-or-later
"""The systemd units as built (packaging/moat.service.in, moat.socket):

- `systemd-analyze security --offline=true` gives an exposure of at most
  2.0 (the items still open are printed when it does not);
- `systemd-analyze verify` passes, in a root directory that holds the
  host's system units and the built moatd at the unit's paths;
- moatd works with what the unit gives it: started as the user moatd with
  only the unit's capabilities (ambient and bounding), no_new_privs, it
  starts keyd and a worker and serves a handshake signed by keyd;
- the unit's capabilities are the ones moatd checks for (privdrop.c), and
  moat.socket names a frontend of moat.conf.example by its addresses.
"""
import os
import pwd
import re
import shutil
import subprocess
import tempfile

import pytest

import moatlib

UNIT = os.path.join(moatlib.BUILD, "packaging", "moat.service")
SOCKET = os.path.join(moatlib.SRC, "packaging", "moat.socket")
EXAMPLE = os.path.join(moatlib.SRC, "packaging", "moat.conf.example")
PRIVDROP = os.path.join(moatlib.SRC, "common", "privdrop.c")
MAX_EXPOSURE = 2.0


def analyze():
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.skip("systemd-analyze is not installed (package systemd)")
    return exe


def unit_values(path, key):
    """Every value of key= in a unit file, in order."""
    with open(path) as f:
        return [l.split("=", 1)[1].strip() for l in f
                if l.startswith(key + "=")]


def test_exposure_at_most_2():
    p = subprocess.run([analyze(), "security", "--offline=true",
                        "--no-pager", UNIT], capture_output=True, text=True,
                       timeout=60, cwd="/")
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d)", p.stdout)
    assert m, p.stdout + p.stderr
    open_items = "\n".join(l for l in p.stdout.splitlines()
                           if l.startswith("\u2717"))
    assert float(m.group(1)) <= MAX_EXPOSURE, \
        "exposure %s > %.1f; open items:\n%s" % (m.group(1), MAX_EXPOSURE,
                                                 open_items)


def test_verify(tmp_path):
    """verify needs every command of the unit to exist at its path, and
    the units it depends on: a root directory with both."""
    exe = analyze()
    root = tmp_path / "root"
    shutil.copytree("/lib/systemd/system", root / "lib/systemd/system",
                    symlinks=True)
    units = root / "etc/systemd/system"
    units.mkdir(parents=True)
    shutil.copy(UNIT, units)
    shutil.copy(SOCKET, units)
    for cmd in unit_values(UNIT, "ExecStart") + unit_values(
            UNIT, "ExecStartPre") + unit_values(UNIT, "ExecReload"):
        path = cmd.split()[0].lstrip("-@:+!")
        assert path.startswith("/"), "%s: not an absolute path" % cmd
        dest = root / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        src = moatlib.MOATD if os.path.basename(path) == "moatd" else path
        shutil.copy(src, dest)
    p = subprocess.run([exe, "verify", "--man=no", "--root", str(root),
                        "/etc/systemd/system/moat.service",
                        "/etc/systemd/system/moat.socket"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stderr.strip() == "", p.stderr


def unit_caps(key):
    caps = " ".join(unit_values(UNIT, key)).split()
    assert caps and all(c.startswith("CAP_") for c in caps), caps
    return caps


def test_unit_caps_are_what_moatd_checks():
    with open(PRIVDROP) as f:
        needed = set(re.findall(r'"(CAP_[A-Z_]+)" \}', f.read()))
    assert needed, "no capability table in privdrop.c"
    assert set(unit_caps("AmbientCapabilities")) == needed
    assert set(unit_caps("CapabilityBoundingSet")) == needed


def test_socket_names_a_frontend():
    with open(EXAMPLE) as f:
        text = f.read()
    frontends = {}
    for name, body in re.findall(r"^\[frontend (\S+)\]\n(.*?)(?=^\[|\Z)",
                                 text, re.M | re.S):
        m = re.search(r"^listen\s*=\s*([^;\n]*)", body, re.M)
        frontends[name] = {a.strip() for a in m.group(1).split(",")}
    names = unit_values(SOCKET, "FileDescriptorName")
    assert len(names) == 1 and names[0] in frontends, (names, frontends)
    assert set(unit_values(SOCKET, "ListenStream")) == frontends[names[0]]


def test_moatd_runs_as_the_unit_runs_it():
    """User=moatd, AmbientCapabilities= and CapabilityBoundingSet= of the
    unit, NoNewPrivileges=yes: setpriv plays systemd."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is not installed (package util-linux)")
    users = unit_values(UNIT, "User")
    assert users == ["moatd"], users
    try:
        pw = pwd.getpwnam("moatd")
    except KeyError:
        pytest.fail("no user moatd: run packaging/dev/setup")
    caps = ",".join("+" + c[4:].lower() for c in unit_caps(
        "AmbientCapabilities"))
    d = tempfile.mkdtemp(prefix="moat-unit-")
    try:
        os.chmod(d, 0o755)
        cert, key = moatlib.make_cert(d)
        os.chown(key, pw.pw_uid, pw.pw_gid)   # moatd opens the key files
        m = moatlib.Moat(d, {"www": {"backend": "127.0.0.1:9",
                                     "cert": cert, "key": key}})
        os.chown(d, pw.pw_uid, pw.pw_gid)     # its control socket
        wrap = ["setpriv", "--reuid", "moatd", "--regid", "moatd",
                "--clear-groups", "--no-new-privs",
                "--inh-caps", "-all," + caps, "--ambient-caps", caps,
                "--bounding-set", "-all," + caps]
        m.log_file = open(m.log_path, "ab")
        m.proc = subprocess.Popen(wrap + [moatlib.MOATD, "-c", m.conf],
                                  stdin=subprocess.DEVNULL,
                                  stdout=m.log_file, stderr=subprocess.STDOUT)
        try:
            m.wait_ready(30)
            st = moatlib.proc_status(m.proc.pid)
            assert int(st["Uid"].split()[0]) == pw.pw_uid, st["Uid"]
            s = moatlib.tls_connect(m.ports["www"])
            s.close()
            total = moatlib.stats_total(m.stats())
            assert total["handshakes_ok_tls13"] >= 1, total
        finally:
            rc = m.stop()
        assert rc == 0, m.log()
        assert not re.search(r"\]: (error|warning|fatal)", m.log_text()), \
            m.log()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_moatd_says_which_capability_is_missing(tmp_path):
    """Without CAP_KILL (say) the master refuses to start, and says so."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is not installed (package util-linux)")
    caps = ",".join("+" + c[4:].lower() for c in unit_caps(
        "AmbientCapabilities") if c != "CAP_KILL")
    d = tempfile.mkdtemp(prefix="moat-unit-")
    try:
        os.chmod(d, 0o755)
        cert, key = moatlib.make_cert(d)
        os.chown(key, pwd.getpwnam("moatd").pw_uid, -1)
        m = moatlib.Moat(d, {"www": {"backend": "127.0.0.1:9",
                                     "cert": cert, "key": key}})
        p = subprocess.run(["setpriv", "--reuid", "moatd", "--regid",
                            "moatd", "--clear-groups", "--inh-caps",
                            "-all," + caps, "--ambient-caps", caps,
                            moatlib.MOATD, "-c", m.conf],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 1, p.stdout + p.stderr
        assert "needs CAP_KILL" in p.stderr, p.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)
