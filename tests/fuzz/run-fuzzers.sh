#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# run-fuzzers.sh -- build the fuzz targets with clang + libFuzzer and fuzz
# each for a while (CI: 60 s).  Exits non-zero if any target crashes; the
# crashing input is left in the work directory and printed.
#
# Targets run MOAT_FUZZ_JOBS at a time (default 2, one per core of the CI
# machine).  Each logs to its own file, and the logs are printed whole, in
# the order of $targets, once its batch is done: one block per target,
# starting with "== fuzz_T for Ns" and, if it crashed, "fuzz_T FAILED",
# as .ci/run reads them.
#
# usage: tests/fuzz/run-fuzzers.sh [SECONDS] [BUILD-DIR]
set -eu

src=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-60}
build=${2:-$src/build-fuzz}
work=$build/fuzz-work
targets="ipc keyd_policy conf transcript reneg proxyproto mailproto"
jobs=${MOAT_FUZZ_JOBS:-2}

if [ ! -f "$build/build.ninja" ]; then
	CC=clang meson setup "$build" "$src" -Dfuzzing=true
fi
for t in $targets; do
	ninja -C "$build" "tests/fuzz/fuzz_$t"
done

# One target, its whole output in $work/$t/log; $work/$t/failed if it crashed.
fuzz_one() {
	t=$1
	mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
	rm -f "$work/$t/failed"
	# A target may have a dictionary of the words its input is made of.
	dict=
	if [ -f "$src/tests/fuzz/$t.dict" ]; then
		dict=-dict=$src/tests/fuzz/$t.dict
	fi
	{
		echo "== fuzz_$t for ${secs}s"
		# New inputs go to the work corpus; the seeds in the tree stay
		# as made.
		if ! "$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" \
		    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		    -artifact_prefix="$work/$t/artifacts/" $dict \
		    "$work/$t/corpus" "$src/tests/fuzz/corpus/$t"; then
			echo "fuzz_$t FAILED; reproducer(s):"
			ls -l "$work/$t/artifacts/"
			: >"$work/$t/failed"
		fi
	} >"$work/$t/log" 2>&1
}

status=0
set -- $targets
while [ $# -gt 0 ]; do
	batch=
	pids=
	while [ $# -gt 0 ] && [ "$(echo $batch | wc -w)" -lt "$jobs" ]; do
		mkdir -p "$work/$1"
		fuzz_one "$1" &
		pids="$pids $!"
		batch="$batch $1"
		shift
	done
	for p in $pids; do
		wait "$p" || true
	done
	for t in $batch; do
		cat "$work/$t/log"
		if [ -e "$work/$t/failed" ]; then
			status=1
		fi
	done
done
exit $status
