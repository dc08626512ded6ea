# SPDX-License-Identifier: GPL-2.0-or-later
"""The man pages: each renders with man(1) without a warning, and
moat.conf(5) documents exactly the keys the code accepts, section by
section (the key tables moat_keys[] and frontend_keys[] of
daemon/conf_keys.c, the only tables config_load() looks keys up in).
Each check is shown to bite on a copy."""
import glob
import os
import re
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("MOAT_SRC", os.path.join(HERE, "..", ".."))
TABLES = {"[moat]": "moat_keys", "[frontend NAME]": "frontend_keys"}


def man_warnings(path):
    """What man --warnings says about path (empty: none)."""
    if shutil.which("man") is None:
        pytest.skip("man is not installed (package man-db)")
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
    p = subprocess.run(["man", "--warnings", "-l", path],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True, env=env, timeout=60)
    return ("exit %d\n" % p.returncode if p.returncode else "") + p.stderr


def code_keys(src):
    """{section: set of keys} from the key tables of conf_keys.c."""
    with open(os.path.join(src, "daemon", "conf_keys.c")) as f:
        text = f.read()
    out = {}
    for section, table in TABLES.items():
        m = re.search(r"struct config_key %s\[\] = \{(.*?)\n\};" % table,
                      text, re.S)
        assert m, "no table %s in daemon/conf_keys.c" % table
        out[section] = set(re.findall(r'\{\s*"([a-z0-9-]+)"\s*,', m.group(1)))
        assert out[section], table
    return out


def doc_keys(src):
    """{section: set of keys}: each .TP item of moat.conf(5) whose tag is
    "KEY = ...", under the .SH heading of its section."""
    with open(os.path.join(src, "doc", "moat.conf.5")) as f:
        lines = f.read().splitlines()
    out = {s: set() for s in TABLES}
    section = None
    for i, line in enumerate(lines):
        if line.startswith(".SH "):
            section = line[4:].strip().strip('"')
            section = section if section in TABLES else None
        elif line == ".TP" and section and i + 1 < len(lines):
            tag = re.sub(r'^\.[BI]+R? ', "", lines[i + 1])
            tag = tag.replace('"', "").replace("\\-", "-")
            m = re.match(r"([a-z][a-z0-9-]*)\s*=", tag)
            if m:
                out[section].add(m.group(1))
    return out


def key_differences(src):
    code, doc = code_keys(src), doc_keys(src)
    diffs = []
    for s in TABLES:
        for k in sorted(code[s] - doc[s]):
            diffs.append("%s %s: accepted by the code, not in moat.conf(5)"
                         % (s, k))
        for k in sorted(doc[s] - code[s]):
            diffs.append("%s %s: in moat.conf(5), not accepted by the code"
                         % (s, k))
    return diffs


def pages(src):
    found = sorted(glob.glob(os.path.join(src, "doc", "*.[1-8]")))
    assert found, "no man pages in doc/"
    return found


@pytest.mark.parametrize("page", [os.path.basename(p) for p in pages(SRC)])
def test_man_page_renders_without_warnings(page):
    out = man_warnings(os.path.join(SRC, "doc", page))
    assert out == "", out


def test_every_key_documented_and_every_documented_key_exists():
    diffs = key_differences(SRC)
    assert not diffs, "\n".join(diffs)


@pytest.fixture
def tree(tmp_path):
    for d in ("daemon", "doc"):
        shutil.copytree(os.path.join(SRC, d), tmp_path / d)
    assert key_differences(str(tmp_path)) == []
    return tmp_path


def test_an_undocumented_key_is_found(tree):
    p = tree / "daemon" / "conf_keys.c"
    text = p.read_text().replace('\t{ "workers",',
                                 '\t{ "undocumented-key",\tset_workers },\n'
                                 '\t{ "workers",', 1)
    p.write_text(text)
    assert key_differences(str(tree)) == [
        "[moat] undocumented-key: accepted by the code, not in moat.conf(5)"]


def test_a_documented_key_the_code_lacks_is_found(tree):
    p = tree / "doc" / "moat.conf.5"
    text = p.read_text().replace(".TP\n.BI \"backend = \" ADDRESS",
                                 ".TP\n.BI \"no\\-such\\-key = \" N\n"
                                 "Nothing.\n.TP\n.BI \"backend = \" ADDRESS",
                                 1)
    p.write_text(text)
    assert key_differences(str(tree)) == [
        "[frontend NAME] no-such-key: in moat.conf(5), not accepted by the "
        "code"]


def test_a_man_warning_is_found(tree):
    p = tree / "doc" / "moatd.8"
    p.write_text(p.read_text() + ".XYZZY unknown request\n\\fBunclosed\n")
    assert man_warnings(str(p)) != ""
