# SPDX-License-Identifier: GPL-2.0-or-later
"""sanlib -- the sanitizer build (meson -Dsanitize=true) as the tests see it.

`ACTIVE`: the build under test (MOAT_BUILD) is the sanitizer build; its
config.h defines MOAT_SANITIZE, so this holds whoever runs pytest.

`reports(text)` finds sanitizer reports in a log or a captured stderr:
ASan, LeakSanitizer and UBSan each start theirs with a fixed line, a
finding ends the process with EXITCODE (common/sanitize.c), and moatd's
master logs a child that ended so.  `check(text, what)` raises an
AssertionError carrying the reports, so a test fails when a sanitizer
spoke, even if what it tested passed.

`rss_slack_kib()` is what ASan's allocator adds to an RSS bound;
`quiet(text)` drops the runtime's one-time warnings from a log;
`refused_not_killed(call)` names the sandbox bites that are refused
rather than killed in this build.
"""

import os
import re

BUILD = os.environ.get("MOAT_BUILD", "")

# Also written in common/sanitize.c (SANITIZE_EXITCODE): keep them equal.
EXITCODE = 86

# The first line of each report, and the master's line for a child that
# ended with EXITCODE (daemon/master/child.c).
PATTERNS = (
    r"ERROR: AddressSanitizer",
    r"ERROR: LeakSanitizer",
    r"AddressSanitizer: CHECK failed",
    r"LeakSanitizer has encountered a fatal error",
    r"runtime error: ",
    r"exited with status %d\b" % EXITCODE,
)
REPORT = re.compile("|".join("(?:%s)" % p for p in PATTERNS))

# Lines of a report kept in a failure message (its stack is in them).
CONTEXT = 40

# ASan keeps freed blocks out of use (its quarantine, 256 MiB by default on
# 64-bit) to catch a use after free, and those pages count in the RSS.  A
# test that bounds a process's RSS growth allows that much more here: the
# bound stays a bound, and the mapping counts beside it are unchanged.
RSS_SLACK_KIB = 256 * 1024

# What the runtime says that is not a finding, once per process, at a
# moment that depends on the traffic: ASan's interceptor of swapcontext()
# warns when a worker first switches to a coroutine (coro.c).  Tests that
# compare log lines must not see it (quiet()); moatd's log file keeps it.
NOISE = re.compile(r"^==\d+==WARNING: ASan doesn't fully support "
                   r"makecontext/swapcontext functions.*\n?", re.M)


def _active():
    if os.environ.get("MOAT_SANITIZE") == "1":
        return True
    try:
        with open(os.path.join(BUILD, "config.h")) as f:
            return re.search(r"^#define MOAT_SANITIZE\b", f.read(),
                             re.M) is not None
    except OSError:
        return False


ACTIVE = _active()


def reports(text):
    """Each sanitizer report in text, with the lines that follow it."""
    lines = text.splitlines()
    found = []
    i = 0
    while i < len(lines):
        if REPORT.search(lines[i]):
            found.append("\n".join(lines[max(0, i - 2):i + CONTEXT]))
            i += CONTEXT
        else:
            i += 1
    return found


def check(text, what, rc=None):
    """Fail if text holds a sanitizer report or rc is EXITCODE."""
    found = reports(text)
    if rc == EXITCODE and not found:
        found = ["exit status %d (a sanitizer's) without a report in the "
                 "log" % EXITCODE]
    if found:
        raise AssertionError("sanitizer report(s) in %s:\n%s" % (
            what, "\n----\n".join(found)))


def quiet(text):
    """text without the runtime's NOISE lines (sanitizer build only)."""
    return NOISE.sub("", text) if ACTIVE else text


def rss_slack_kib():
    """KiB of RSS growth the sanitizer runtime adds (0 in the normal build)."""
    return RSS_SLACK_KIB if ACTIVE else 0


# The calls the sanitizer build's sandboxes refuse with EACCES instead of
# killing (common/sanitize.c: the runtime looks for symbol files while it
# writes a report), and what the bite helpers print for such a refusal.
REFUSED_CALLS = ("open", "openat")
REFUSED = "NOT KILLED: returned -1 (Permission denied)"


def refused_not_killed(call):
    """In the sanitizer build, a bite on call is refused, not killed: the
    test checks the refusal (the file stays closed) instead of SIGSYS."""
    return ACTIVE and call in REFUSED_CALLS


# ASan's shadow memory on x86_64 (LowShadow, ShadowGap, HighShadow: from
# the fixed offset 0x7fff8000 to 0x10007fff8000).  It holds one byte of
# poison state per 8 bytes of the process's memory and never a byte of its
# data, and it is terabytes of mostly untouched pages, so a memory scan
# leaves it out (memscan.py) and still reads every byte the process holds.
SHADOW = (0x00007fff8000, 0x10007fff8000)


def is_shadow(start, end):
    """The mapping [start, end) is ASan's shadow (sanitizer build only)."""
    if not ACTIVE or os.uname().machine != "x86_64":
        return False
    return SHADOW[0] <= start and end <= SHADOW[1]


def skip_reason(why):
    """The reason string of a test skipped in the sanitizer build."""
    return "sanitizer build: " + why
