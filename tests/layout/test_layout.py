# SPDX-License-Identifier: GPL-2.0-or-later
"""The layout rules (check_layout.py, HACKING.md) hold on the tree, and
the check bites: on a copy of the tree, each kind of violation is made
once and must be reported."""
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("MOAT_SRC", os.path.join(HERE, "..", ".."))
CHECK = os.path.join(HERE, "check_layout.py")


def run_check(src):
    p = subprocess.run([sys.executable, CHECK, src], capture_output=True,
                       text=True, timeout=120)
    return p.returncode, p.stdout


def test_tree_follows_the_rules():
    rc, out = run_check(SRC)
    assert rc == 0, out


@pytest.fixture
def tree(tmp_path):
    """A copy of the sources the check reads."""
    for d in ("ipc", "common", "keyd", "daemon", "tests", "bench",
              "packaging", "doc", ".ci"):
        if os.path.isdir(os.path.join(SRC, d)):
            shutil.copytree(os.path.join(SRC, d), tmp_path / d,
                            ignore=shutil.ignore_patterns("__pycache__",
                                                          ".pytest_cache"))
    rc, out = run_check(str(tmp_path))
    assert rc == 0, out
    return tmp_path


def append(path, text):
    with open(path, "a") as f:
        f.write(text)


def insert_after_includes(path, text):
    with open(path) as f:
        lines = f.readlines()
    last = max(i for i, l in enumerate(lines) if l.startswith("#include"))
    lines.insert(last + 1, text)
    with open(path, "w") as f:
        f.writelines(lines)


def master_header(tree):
    names = sorted(n for n in os.listdir(tree / "daemon" / "master")
                   if n.endswith(".h"))
    assert names
    return names[0]


def test_worker_including_the_master_is_caught(tree):
    h = master_header(tree)
    insert_after_includes(tree / "daemon/worker/proxy.c",
                          '#include "%s"\n' % h)
    rc, out = run_check(str(tree))
    assert rc == 1
    assert "daemon/worker/proxy.c: includes daemon/master/%s" % h in out


def test_master_including_the_worker_is_caught(tree):
    first = sorted(n for n in os.listdir(tree / "daemon" / "master")
                   if n.endswith(".c"))[0]
    insert_after_includes(tree / "daemon/master" / first,
                          '#include "conn.h"\n')
    rc, out = run_check(str(tree))
    assert rc == 1
    assert "includes daemon/worker/conn.h" in out


def test_ipc_including_above_is_caught(tree):
    insert_after_includes(tree / "ipc/ipc.c", '#include "log.h"\n')
    rc, out = run_check(str(tree))
    assert rc == 1
    assert "ipc/ipc.c: includes common/log.h (ipc may not depend on common)" \
        in out


def test_keyd_calling_the_daemon_is_caught(tree):
    append(tree / "keyd/keyd.c",
           "\nvoid\nkeyd_layout_probe(void)\n{\n\t(void)config_load(0, 0, 0, 0);\n}\n")
    rc, out = run_check(str(tree))
    assert rc == 1
    assert "keyd/keyd.c: calls config_load() of daemon/conf" in out


def test_a_leaf_ending_a_connection_is_caught(tree):
    append(tree / "daemon/worker/proxy.c",
           "\nvoid\nproxy_layout_probe(struct conn *c)\n{\n"
           "\tc->state = CONN_CLOSED;\n\tfree(c);\n}\n")
    rc, out = run_check(str(tree))
    assert rc == 1
    assert "changes a connection's state (only conn.c may)" in out
    assert "frees a connection (only conn.c may)" in out


def test_a_circle_is_caught(tree):
    # tls.c (below conn.c) calling back up into conn.c by name
    append(tree / "daemon/worker/tls.c",
           "\nvoid\ntls_layout_probe(struct worker *w)\n{\n"
           "\t(void)conn_ask(w->conns, \"x\");\n}\n")
    rc, out = run_check(str(tree))
    assert rc == 1
    assert "circle:" in out and "daemon/worker/tls" in out


def test_a_long_file_and_a_stray_name_are_caught(tree):
    append(tree / "daemon/worker/reason.c", "\n" * 900)
    append(tree / "daemon/worker/reason.c",
           "\nint\nsomething_else(void)\n{\n\treturn 0;\n}\n")
    rc, out = run_check(str(tree))
    assert rc == 1
    assert "daemon/worker/reason.c:" in out and "lines (at most 800)" in out
    assert "something_else() is named after neither" in out


def test_a_file_without_spdx_is_caught(tree):
    with open(tree / "daemon/worker/reason.h") as f:
        text = f.read()
    with open(tree / "daemon/worker/reason.h", "w") as f:
        f.write(text.replace("SPDX-License-Identifier", "Licence"))
    rc, out = run_check(str(tree))
    assert rc == 1
    assert "daemon/worker/reason.h: no SPDX licence line" in out
