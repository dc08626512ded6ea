# SPDX-License-Identifier: GPL-2.0-or-later
"""memscan -- search a live process's readable memory for byte strings.

Reads /proc/PID/maps, then every readable region through /proc/PID/mem (as
root).  Regions that cannot be read (guard pages, [vvar], a region that went
away) are skipped and counted.  Used to show that no network-facing process
holds a private key: the key tests and, later, the renegotiation tests.
"""

import re

CHUNK = 1 << 22
MAPS_RE = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+\s*(.*)$")


def regions(pid):
    """(start, end, perms, name) of each mapping of pid."""
    out = []
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            m = MAPS_RE.match(line.rstrip("\n"))
            if m:
                out.append((int(m.group(1), 16), int(m.group(2), 16),
                            m.group(3), m.group(4)))
    return out


def scan(pid, needles):
    """Search pid's readable memory for each of needles ({label: bytes}).

    Returns (found, info): found maps label -> [(address, region name)];
    info has the bytes read and the regions read and skipped.
    """
    found = {}
    info = {"bytes": 0, "regions": 0, "skipped": 0}
    overlap = max(len(n) for n in needles.values()) - 1
    with open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
        for start, end, perms, name in regions(pid):
            if perms[0] != "r" or name in ("[vvar]", "[vsyscall]"):
                continue
            try:
                tail = b""
                base = start
                pos = start
                while pos < end:
                    n = min(CHUNK, end - pos)
                    mem.seek(pos)
                    data = mem.read(n)
                    if not data:
                        break
                    buf = tail + data
                    for label, needle in needles.items():
                        i = buf.find(needle)
                        while i >= 0:
                            found.setdefault(label, []).append((base + i, name))
                            i = buf.find(needle, i + 1)
                    info["bytes"] += len(data)
                    pos += len(data)
                    tail = buf[-overlap:] if overlap else b""
                    base = pos - len(tail)
                info["regions"] += 1
            except (OSError, ValueError, OverflowError):
                info["skipped"] += 1
    # A match that lay across two chunks may have been seen twice.
    return {k: sorted(set(v)) for k, v in found.items()}, info
