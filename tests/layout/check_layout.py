#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""check_layout.py -- the dependency rules of HACKING.md, checked on the
source tree as it stands: every #include and every call of a function
another file defines.

    check_layout.py [SRCDIR]      exit 0 when the rules hold, 1 otherwise

Rules (HACKING.md, "Layout"):
 1. Each file may include and call only what its room may depend on:
      ipc/      -> ipc/
      common/   -> common/
      keyd/     -> keyd/ ipc/ common/
      daemon/master/ -> daemon/master/ daemon/ (conf) ipc/ common/
      daemon/worker/ -> daemon/worker/ daemon/ (conf) ipc/ common/
      daemon/conf*   -> daemon/ ipc/ common/
      daemon/moatctl.c -> ipc/ common/
      daemon/main.c  -> everything of daemon/ (it is moatd's entry)
    so ipc/ and common/ include nothing above them, keyd/ nothing of
    daemon/, and daemon/worker/ and daemon/master/ nothing of each other.
 2. No circle of includes or calls between two files of different
    concerns (a .c and its own .h are one concern).
 3. In daemon/worker/ only conn.c changes a connection's state, ends or
    frees it, or closes its descriptors.
 4. No file over MAX_LINES lines.
 5. Every function a file exports starts with that file's name or its
    folder's (conn_ in conn.c, ipc_ in ipc/), or is a dispatcher named
    <process>_dispatch_<peer>; no two processes export the same name.
 6. Every source file (code, build files, scripts, units, man pages)
    carries an SPDX licence line in its first three lines.

Header basenames are unique in the tree, so a quoted include names one
file.  Function definitions are found the KNF way: the name at column 0,
its return type on the line above.
"""
import os
import re
import subprocess
import sys

MAX_LINES = 800
DIRS = ("ipc", "common", "keyd", "daemon")

# Which rooms a room may depend on (includes and calls).
ALLOWED = {
    "ipc": {"ipc"},
    "common": {"common"},
    "keyd": {"keyd", "ipc", "common"},
    "daemon/master": {"daemon/master", "daemon/conf", "ipc", "common"},
    "daemon/worker": {"daemon/worker", "daemon/conf", "ipc", "common"},
    "daemon/conf": {"daemon/conf", "ipc", "common"},
    "daemon/moatctl": {"ipc", "common"},
    "daemon/main": {"daemon/main", "daemon/master", "daemon/worker",
                    "daemon/conf", "ipc", "common"},
}

# Which process each room's code runs in, for rule 5.
PROCESS = {
    "keyd": "keyd",
    "daemon/master": "master",
    "daemon/worker": "worker",
    "daemon/moatctl": "moatctl",
}

# Names a file may export although they carry no file or folder prefix.
EXPORT_OK = {"main", "fatal", "fatalx",
             # the sanitizer runtime's hooks, found by these names
             # (common/sanitize.c, the -Dsanitize=true build only)
             "__asan_default_options", "__lsan_default_options",
             "__ubsan_default_options"}

# A room whose functions are named after what they hold, not the file.
ROOM_PREFIX = {"daemon/conf": "config_"}

# Other sources held to the size rule (tests, helpers, scripts).
SIZE_ONLY = ("tests", "bench")

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
DEFINE = re.compile(r'^([a-z_][a-z0-9_]*)\(', re.M)
DISPATCH = re.compile(r'^[a-z]+_dispatch_[a-z]+$')


def room_of(path):
    """The room a source file belongs to (the unit of rule 1)."""
    parts = path.split("/")
    if parts[0] in ("ipc", "common", "keyd"):
        return parts[0]
    if parts[0] == "daemon":
        if len(parts) > 2:
            return "daemon/" + parts[1]
        base = os.path.splitext(parts[1])[0]
        if base.startswith("conf"):
            return "daemon/conf"
        return "daemon/" + base
    return None


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"),
                  text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r'"(\\.|[^"\\\n])*"', '""', text)


_LISTED = {}


def files_under(src, top):
    """The files below src/top, relative to src: those git tracks or would
    track (not ignored: no build output, caches or scratch files), or every
    file when src is not a git checkout (a release tarball)."""
    if src not in _LISTED:
        try:
            out = subprocess.run(
                ["git", "-C", src, "ls-files", "-z", "--cached", "--others",
                 "--exclude-standard"], capture_output=True, check=True,
                timeout=60).stdout.decode()
            _LISTED[src] = [f for f in out.split("\0")
                            if f and os.path.isfile(os.path.join(src, f))]
        except (OSError, subprocess.SubprocessError):
            _LISTED[src] = None
    listed = _LISTED[src]
    if listed is not None:
        prefix = top.rstrip("/") + "/"
        return [f for f in listed if f.startswith(prefix)]
    found = []
    for dirpath, _, names in os.walk(os.path.join(src, top)):
        for n in names:
            found.append(os.path.relpath(os.path.join(dirpath, n), src))
    return found


def concern(path):
    """A .c file and its .h are one concern."""
    return os.path.splitext(path)[0]


class Tree:
    def __init__(self, src):
        self.src = src
        self.files = []
        for top in DIRS:
            self.files += [f for f in files_under(src, top)
                           if f.endswith((".c", ".h"))]
        self.files.sort()
        self.text = {}
        self.code = {}
        for f in self.files:
            with open(os.path.join(src, f), encoding="utf-8") as fp:
                self.text[f] = fp.read()
            self.code[f] = strip_comments(self.text[f])
        self.by_base = {}
        for f in self.files:
            self.by_base.setdefault(os.path.basename(f), []).append(f)
        self.exported = {}	# name -> file defining it (not static)
        self.defs = {}		# file -> exported names
        for f in self.files:
            if not f.endswith(".c"):
                continue
            lines = self.code[f].split("\n")
            names = []
            for i, line in enumerate(lines):
                m = DEFINE.match(line)
                if m is None or i == 0:
                    continue
                prev = lines[i - 1]
                if not prev.strip() or prev.rstrip().endswith((";", "}")):
                    continue
                if re.search(r"\bstatic\b", prev) or line.rstrip().endswith(";"):
                    continue
                names.append(m.group(1))
            self.defs[f] = names
            for n in names:
                self.exported.setdefault(n, []).append(f)


def check(src):
    t = Tree(src)
    errors = []

    # Unique header names, so that a quoted include is unambiguous.
    for base, paths in t.by_base.items():
        if base.endswith(".h") and len(paths) > 1:
            errors.append("header name %s is not unique: %s" %
                          (base, ", ".join(paths)))

    edges = {}	# file -> set of files it depends on (includes, calls)

    def depend(f, g, what):
        if concern(f) == concern(g):
            return
        edges.setdefault(f, set()).add(g)
        rf, rg = room_of(f), room_of(g)
        if rf is None or rg is None:
            return
        if rg not in ALLOWED.get(rf, set()):
            errors.append("%s: %s %s (%s may not depend on %s)" %
                          (f, what, g, rf, rg))

    for f in t.files:
        for inc in INCLUDE.findall(t.text[f]):
            base = os.path.basename(inc)
            if base == "config.h":
                continue	# the build's configuration
            targets = t.by_base.get(base)
            if not targets:
                continue	# a header of the build or a library
            depend(f, targets[0], "includes")
        if not f.endswith(".c"):
            continue
        own = set(t.defs.get(f, []))
        for name, files in t.exported.items():
            if name in own or f in files:
                continue
            if re.search(r"\b%s\s*\(" % re.escape(name), t.code[f]):
                depend(f, files[0], "calls %s() of" % name)

    # Rule 2: no circle between files of different concerns.
    node = lambda f: concern(f)
    graph = {}
    for f, gs in edges.items():
        for g in gs:
            if node(f) != node(g):
                graph.setdefault(node(f), set()).add(node(g))
    seen, stack, onstack = set(), [], set()

    def visit(n):
        seen.add(n)
        stack.append(n)
        onstack.add(n)
        for m in sorted(graph.get(n, ())):
            if m in onstack:
                cyc = stack[stack.index(m):] + [m]
                errors.append("circle: " + " -> ".join(cyc))
            elif m not in seen:
                visit(m)
        stack.pop()
        onstack.discard(n)

    for n in sorted(graph):
        if n not in seen:
            visit(n)

    # Rule 3: only conn.c owns a connection's state and its end.
    owner = "daemon/worker/conn.c"
    forbidden = [
        (r"\bc->state\s*=[^=]", "changes a connection's state"),
        (r"\bfree\(\s*c\s*\)", "frees a connection"),
        (r"\bclose\(\s*c->[cb]fd\s*\)", "closes a connection's descriptor"),
        (r"\bgnutls_deinit\(\s*c->session\s*\)", "ends a connection's session"),
        (r"\bev_(io|timer)_(start|stop|again)\([^,]*,\s*&c->",
         "arms or stops a connection's watcher"),
    ]
    for f in t.files:
        if not f.startswith("daemon/worker/") or f == owner:
            continue
        for pat, what in forbidden:
            for m in re.finditer(pat, t.code[f]):
                line = t.code[f].count("\n", 0, m.start()) + 1
                errors.append("%s:%d: %s (only conn.c may)" % (f, line, what))

    # Rule 4: file sizes, tests and scripts included.
    sized = list(t.files)
    for top in SIZE_ONLY:
        sized += [f for f in files_under(src, top)
                  if f.endswith((".c", ".h", ".py"))]
    for f in sized:
        with open(os.path.join(src, f), encoding="utf-8") as fp:
            n = fp.read().count("\n")
        if n > MAX_LINES:
            errors.append("%s: %d lines (at most %d)" % (f, n, MAX_LINES))

    # Rule 5: names.
    by_process = {}
    for f, names in t.defs.items():
        base = os.path.splitext(os.path.basename(f))[0]
        folder = f.split("/")[-2]
        room_prefix = ROOM_PREFIX.get(room_of(f), base + "_")
        for n in names:
            if n in EXPORT_OK:
                continue
            if DISPATCH.match(n):
                pass
            elif not (n.startswith(base + "_") or n.startswith(folder + "_")
                      or n.startswith(room_prefix) or n == base):
                errors.append("%s: %s() is named after neither its file "
                              "nor its folder" % (f, n))
            proc = PROCESS.get(room_of(f))
            if proc is not None:
                by_process.setdefault(n, set()).add(proc)
    for n, procs in sorted(by_process.items()):
        if len(procs) > 1:
            errors.append("%s() is defined by several processes: %s" %
                          (n, ", ".join(sorted(procs))))
    return errors


# Rule 6: where an SPDX line belongs, and what is data, not source.
SPDX_TREES = ("ipc", "common", "keyd", "daemon", "tests", "bench",
              "packaging", "doc", ".ci")
SPDX_TOP = ("meson.build", "meson_options.txt", ".editorconfig",
            ".clang-tidy")
SPDX_SKIP = ("tests/fuzz/corpus/", "tests/unit/data/", "__pycache__",
             "packaging/debian/changelog", "packaging/debian/control",
             "packaging/debian/copyright", "packaging/debian/source/")


def spdx_missing(src):
    missing = []
    paths = [p for p in SPDX_TOP if os.path.exists(os.path.join(src, p))]
    for top in SPDX_TREES:
        paths += files_under(src, top)
    for p in sorted(paths):
        if any(s in p for s in SPDX_SKIP) or p.endswith((".md", ".pyc")):
            continue
        with open(os.path.join(src, p), encoding="utf-8",
                  errors="replace") as fp:
            head = "".join(fp.readline() for _ in range(3))
        if "SPDX-License-Identifier:" not in head:
            missing.append("%s: no SPDX licence line" % p)
    return missing


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else \
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    errors = check(os.path.abspath(src)) + spdx_missing(os.path.abspath(src))
    for e in errors:
        print(e)
    print("layout: %d problem(s)" % len(errors))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
