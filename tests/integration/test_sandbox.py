# SPDX-License-Identifier: GPL-2.0-or-later
"""Every worker and every keyd process (and each of their threads) runs
sandboxed: not root, no capabilities, no_new_privs, a seccomp filter, and
chrooted to the empty directory (issue 3, DESIGN.md "Processes")."""

import os

import pytest

import moatlib


@pytest.fixture(scope="module")
def moat(module_moat_factory, backends, certs):
    echo = backends.echo()
    m = module_moat_factory({
        kind: {"backend": echo.address, "cert": certs[kind][0],
               "key": certs[kind][1]} for kind in ("ecdsa", "rsa")},
        workers=2)
    # Exercise both: a handshake per key makes keyd start serving.
    for kind in ("ecdsa", "rsa"):
        with moatlib.tls_connect(m.ports[kind]) as s:
            moatlib.round_trip(s)
    return m


def sandboxed_tasks(m):
    procs = [("worker", p) for p in m.workers()] + \
        [("keyd", p) for p in m.keyd_pids()]
    tasks = []
    for role, pid in procs:
        for tid in moatlib.proc_threads(pid):
            tasks.append((role, pid, tid))
    return procs, tasks


def test_found_the_processes(moat):
    procs, tasks = sandboxed_tasks(moat)
    roles = [r for r, _ in procs]
    assert roles.count("worker") == 2, procs
    assert roles.count("keyd") >= 1, procs


def test_credentials_and_capabilities(moat):
    _, tasks = sandboxed_tasks(moat)
    bad = []
    for role, pid, tid in tasks:
        st = moatlib.proc_status(pid, tid)
        where = "%s pid %d tid %d" % (role, pid, tid)
        uids = [int(x) for x in st["Uid"].split()]
        gids = [int(x) for x in st["Gid"].split()]
        groups = [int(x) for x in st.get("Groups", "").split()]
        if len(uids) != 4 or 0 in uids:
            bad.append("%s: Uid %s" % (where, st["Uid"]))
        if len(gids) != 4 or 0 in gids:
            bad.append("%s: Gid %s" % (where, st["Gid"]))
        if 0 in groups:
            bad.append("%s: Groups %s" % (where, st["Groups"]))
        for cap in ("CapEff", "CapPrm", "CapInh", "CapAmb", "CapBnd"):
            if cap in st and int(st[cap], 16) != 0:
                bad.append("%s: %s %s" % (where, cap, st[cap]))
        if st.get("NoNewPrivs") != "1":
            bad.append("%s: NoNewPrivs %s" % (where, st.get("NoNewPrivs")))
        if st.get("Seccomp") != "2":
            bad.append("%s: Seccomp %s" % (where, st.get("Seccomp")))
    assert not bad, "\n".join(bad)


def test_user_names(moat):
    """Workers run as the configured user, keyd as its own."""
    import pwd
    procs, _ = sandboxed_tasks(moat)
    for role, pid in procs:
        uid = int(moatlib.proc_status(pid)["Uid"].split()[0])
        want = "moat" if role == "worker" else "moat-keyd"
        assert pwd.getpwuid(uid).pw_name == want, (role, pid, uid)


def test_chrooted(moat):
    _, tasks = sandboxed_tasks(moat)
    bad = []
    for role, pid, tid in tasks:
        root = os.readlink("/proc/%d/task/%d/root" % (pid, tid))
        if os.path.realpath(root) != os.path.realpath(moatlib.CHROOT):
            bad.append("%s pid %d tid %d: root is %s" % (role, pid, tid, root))
        # The chroot must be empty: nothing to read or exec there.
    assert os.listdir(moatlib.CHROOT) == []
    assert not bad, "\n".join(bad)


def test_not_dumpable(moat):
    """PR_SET_DUMPABLE 0 makes /proc/PID/* owned by root, not the user."""
    procs, _ = sandboxed_tasks(moat)
    for role, pid in procs:
        st = os.stat("/proc/%d/mem" % pid)
        assert st.st_uid == 0, "%s pid %d is dumpable (mem owned by uid %d)" % (
            role, pid, st.st_uid)


def test_control_socket_refuses_other_users(moat_factory, backends, certs):
    """The control socket is root's, mode 0600; even if someone opened it up,
    moatd checks SO_PEERCRED and serves only root (STYLE.md point 5)."""
    import shutil
    import subprocess
    import tempfile
    d = tempfile.mkdtemp(prefix="moat-ctl-", dir="/tmp")
    try:
        os.chmod(d, 0o755)
        sock = os.path.join(d, "control.sock")
        m = moat_factory({"www": {"backend": backends.echo().address,
                                  "cert": certs["ecdsa"][0],
                                  "key": certs["ecdsa"][1]}},
                         start=False, control=sock)
        m.control = sock
        m.start()
        assert (os.stat(sock).st_mode & 0o777) == 0o600
        os.chmod(sock, 0o666)	# what a careless operator might do
        # A copy the moat user can reach, wherever the build tree lives
        # (a checkout under a 0700 directory, say).
        ctl = os.path.join(d, "moatctl")
        shutil.copy(moatlib.MOATCTL, ctl)
        os.chmod(ctl, 0o755)
        r = subprocess.run(["runuser", "-u", "moat", "--", ctl,
                            "-s", sock, "status"], capture_output=True,
                           text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert r.returncode != 0 and "moatd" not in r.stdout, (r.stdout,
                                                               r.stderr)
        moatlib.wait_for(lambda: "control: refusing pid" in m.log(), 10,
                         0.1, "the refusal in moatd's log")
        assert m.ctl("status").returncode == 0	# root still gets in
    finally:
        shutil.rmtree(d, ignore_errors=True)
