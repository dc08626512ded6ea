#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# tests/static/clang_tidy.sh SRCDIR BUILDDIR -- the static analyser over
# every C file of moat's processes (ipc/, common/, keyd/, daemon/) with the
# build's own flags (compile_commands.json) and the checks in .clang-tidy.
# Exit 0 only when there is no finding.
set -euo pipefail
src=$1
build=$2
command -v run-clang-tidy >/dev/null || { echo "run-clang-tidy not installed"; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
run-clang-tidy -quiet -p "$build" -j "$(nproc)" \
	"^$src/(ipc|common|keyd|daemon)/.*\.c$" >"$out" 2>&1 || status=$?
# One line per finding, then the verdict.
grep -E "(warning|error): " "$out" | sed -e 's/\x1b\[[0-9;]*m//g' | sort -u || true
if [ "$status" -ne 0 ] || grep -qE "(warning|error): " "$out"; then
	echo "clang-tidy: findings above"
	exit 1
fi
echo "clang-tidy: no findings in $(grep -c '"file"' "$build/compile_commands.json") compile commands"
