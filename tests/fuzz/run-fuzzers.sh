#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# run-fuzzers.sh -- build the fuzz targets with clang + libFuzzer and fuzz
# each for a while (CI: 60 s).  Exits non-zero if any target crashes; the
# crashing input is left in the work directory and printed.
#
# usage: tests/fuzz/run-fuzzers.sh [SECONDS] [BUILD-DIR]
set -eu

src=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-60}
build=${2:-$src/build-fuzz}
work=$build/fuzz-work
targets="ipc keyd_policy"

if [ ! -f "$build/build.ninja" ]; then
	CC=clang meson setup "$build" "$src" -Dfuzzing=true
fi
for t in $targets; do
	ninja -C "$build" "tests/fuzz/fuzz_$t"
done

status=0
for t in $targets; do
	mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
	echo "== fuzz_$t for ${secs}s"
	# New inputs go to the work corpus; the seeds in the tree stay as made.
	if ! "$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" \
	    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix="$work/$t/artifacts/" \
	    "$work/$t/corpus" "$src/tests/fuzz/corpus/$t"; then
		echo "fuzz_$t FAILED; reproducer(s):" >&2
		ls -l "$work/$t/artifacts/" >&2
		status=1
	fi
done
exit $status
