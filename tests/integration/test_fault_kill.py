# SPDX-License-Identifier: GPL-2.0-or-later
"""SIGKILL of a moat process under load (issue 9, fault tests).

- keyd killed during a handshake storm (client threads doing full
  handshakes back to back): no worker dies, handshakes fail only in the
  gap between the kill and keyd's return (the master's "keyd (pid N)
  serving K keys, generation G" line), and every handshake begun 2 s after
  keyd is back succeeds.
- One of two workers killed while long-lived connections stream on both:
  the other worker's streams go on, every byte checked both ways (by the
  backend as it arrives, by the client in the echo), the victim's streams
  end without close_notify, and new connections are served.

One moatd (two workers) serves the file.
"""

import os
import re
import signal
import ssl
import threading
import time

import pytest

import moatlib
import streamlib

BACK_S = 2.0		# full service this long after keyd is back
THREADS = 4


@pytest.fixture(scope="module")
def echo():
    return streamlib.CheckingEcho()


@pytest.fixture(scope="module")
def moat(module_moat_factory, backends, certs, echo):
    cert, key = certs["ecdsa"]
    fes = {"fe": {"backend": backends.custom(echo).address, "cert": cert,
                  "key": key, "idle-timeout": "300s"},
           "plain": {"backend": backends.echo().address, "cert": cert,
                     "key": key}}
    return module_moat_factory(fes, workers=2)


def two_workers(m):
    return moatlib.wait_for(lambda: (lambda w: w if len(w) == 2 else None)(
        sorted(m.workers())), 20, 0.05, "two workers")


class Storm:
    """THREADS client threads, each doing full handshakes (alternately TLS
    1.2 and 1.3) and an echo, back to back; every attempt recorded as
    (start, end, error or None)."""

    def __init__(self, port):
        self.port = port
        self.attempts = []
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,),
                                         daemon=True) for i in range(THREADS)]
        for t in self.threads:
            t.start()

    def _run(self, i):
        n = 0
        while not self._stop.is_set():
            n += 1
            t0 = time.monotonic()
            err = None
            try:
                with moatlib.tls_connect(self.port, ("1.2", "1.3")[(i + n) % 2],
                                         timeout=20) as s:
                    moatlib.round_trip(s)
            except (OSError, EOFError, ssl.SSLError, AssertionError) as e:
                err = repr(e)
                time.sleep(0.01)	# no busy loop against a refusing port
            with self.lock:
                self.attempts.append((t0, time.monotonic(), err))

    def stop(self):
        self._stop.set()
        for t in self.threads:
            t.join(40)
        assert not any(t.is_alive() for t in self.threads), "a client hangs"
        return self.attempts


def watch_log(m, regex, start):
    """A thread that notes the moment the log (from `start`) first
    matches; returns (event, holder) with holder["t"], holder["m"]."""
    rx = re.compile(regex)
    seen = threading.Event()
    got = {}

    def run():
        end = time.monotonic() + 60
        while time.monotonic() < end:
            mo = rx.search(m.log_text()[start:])
            if mo:
                got["t"], got["m"] = time.monotonic(), mo
                seen.set()
                return
            time.sleep(0.02)
    threading.Thread(target=run, daemon=True).start()
    return seen, got


def test_keyd_killed_during_a_handshake_storm(moat):
    workers = two_workers(moat)
    keyd = moat.keyd_pids()
    assert keyd
    storm = Storm(moat.ports["plain"])
    try:
        time.sleep(3)		# the storm is under way
        log0 = moat.log_size()
        seen, back = watch_log(moat, r"keyd \(pid (\d+)\) serving \d+ keys, "
                               r"generation \d+", log0)
        t_kill = time.monotonic()
        for p in keyd:
            os.kill(p, signal.SIGKILL)
        assert seen.wait(30), "keyd did not come back\n" + moat.log()
        t_back = back["t"]
        assert int(back["m"].group(1)) not in keyd
        time.sleep(BACK_S + 4)	# full service, for a while
    finally:
        attempts = storm.stop()
    before = [a for a in attempts if a[1] < t_kill]
    gap = [a for a in attempts if a[1] >= t_kill and a[0] <= t_back + BACK_S]
    after = [a for a in attempts if a[0] > t_back + BACK_S]
    failed = [a for a in attempts if a[2] is not None]
    print("keyd back %.0f ms after the kill; %d attempts before, %d in the "
          "gap (%d failed, the last ending %.0f ms after keyd was back), "
          "%d after; first failure: %s"
          % ((t_back - t_kill) * 1000, len(before), len(gap), len(failed),
             (max(a[1] for a in failed) - t_back) * 1000 if failed else 0,
             len(after), failed[0][2] if failed else "-"))
    assert sorted(moat.workers()) == workers, "a worker died with keyd"
    ready = re.findall(r"\[worker (\d+)\].*kchan: keyd channel \d+ ready",
                       moat.log_text()[log0:])
    assert sorted(set(ready)) == ["0", "1"], \
        "not every worker took the new keyd's channel: %r" % ready
    outside = [a for a in failed if a not in gap]
    assert not outside, "handshakes failed outside the gap (kill at %.2f, " \
        "back at %.2f): %r" % (t_kill, t_back, outside[:5])
    assert len(before) >= THREADS, "the storm did not run: %r" % before
    # Full service: many handshakes after, none failed (checked above).
    assert len(after) >= 2 * THREADS, \
        "too few handshakes after keyd was back: %d" % len(after)


def streams_on_both(moat, streams, per_worker=2, rounds=10):
    """Open streams until each worker holds per_worker of them (bounded);
    returns (the two workers, {worker: [Stream]})."""
    workers = two_workers(moat)
    by = {w: [] for w in workers}
    for _ in range(rounds):
        for st in streams.open(moat.ports["fe"], 4):
            st.worker = moat.worker_of(st.sock)
            by.setdefault(st.worker, []).append(st)
        if all(len(by[w]) >= per_worker for w in workers):
            return workers, by
    pytest.fail("connections did not spread over both workers: %r"
                % {w: len(v) for w, v in by.items()})


def test_worker_killed_under_load(moat, echo):
    streams = streamlib.Streams(rate=128 * 1024)
    try:
        (victim, survivor), by = streams_on_both(moat, streams)
        time.sleep(2)
        assert all(st.ok for st in streams.streams), \
            [st.describe() for st in streams.streams if not st.ok]
        os.kill(victim, signal.SIGKILL)
        t_kill = time.monotonic()
        mark = {st.sid: st.received for st in by[survivor]}
        # The victim's streams end, without close_notify.
        moatlib.wait_for(lambda: all(st.end for st in by[victim]), 20, 0.05,
                         "the killed worker's streams to end")
        for st in by[victim]:
            assert st.end in ("unclean", "error"), st.describe()
            assert st.bad_at is None, st.describe()
        # The survivor's streams go on moving, untouched.
        time.sleep(3)
        for st in by[survivor]:
            assert st.ok, st.describe()
            assert st.received > mark[st.sid], \
                "stream %d stalled after the kill" % st.sid
        # New connections are served (by the survivor or the new worker).
        fresh = streams.open(moat.ports["fe"], 4)
        time.sleep(1)
        keep = by[survivor] + fresh
        streams.stop_sending(keep)
        streams.drain(keep)
        streams.close(keep)
        for st in keep:
            streamlib.assert_stream_whole(st, echo)
        sent = sum(st.sent for st in keep)
        print("worker %d killed; %d streams of worker %d and %d new ones "
              "moved %d bytes each way intact, %.1f s after the kill"
              % (victim, len(by[survivor]), survivor, len(fresh), sent,
                 time.monotonic() - t_kill))
    finally:
        streams.shutdown()
    assert moatlib.proc_alive(survivor), "the other worker died"
