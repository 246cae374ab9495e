#!/bin/sh
# run.sh - bounded runs of the libFuzzer targets, one after the other.
#
#   fuzz/run.sh [--build DIR] [--time SECONDS] [TARGET...]
#
# DIR is a build made with -DDS_FUZZ=ON (default: build-fuzz next to this
# directory's parent); SECONDS is each target's fuzzing time (default 10);
# TARGETs are names without the fuzz_ prefix (default: every fuzz_* built).
# For each target: every input under fuzz/regressions/<target>/ is run
# once (they are past findings and must pass), then the fuzzer runs for
# SECONDS from the seed corpus (fuzz/corpus/<target>, or one made by
# make-corpus.sh in DIR/fuzz-seeds when fuzz/corpus is absent), keeping
# what it finds new in DIR/fuzz-work/<target>. Crashes land in
# DIR/fuzz-artifacts/<target>/, logs in DIR/fuzz-logs/<target>.log.
# Prints one line per target with its executions, and exits non-zero if
# any target found something. stdin is /dev/null: no input may block on
# it. Only one fuzzer runs at a time.
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=$(dirname "$here")/build-fuzz
secs=10

while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$2; shift 2 ;;
	--time) secs=$2; shift 2 ;;
	-h|--help) sed -n '2,17p' "$0"; exit 0 ;;
	--) shift; break ;;
	-*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
build=$(cd "$build" && pwd) || exit 2
bindir=$build/fuzz

if [ $# -eq 0 ]; then
	set --
	for b in "$bindir"/fuzz_*; do
		[ -x "$b" ] && set -- "$@" "$(basename "$b" | sed 's/^fuzz_//')"
	done
fi
if [ $# -eq 0 ]; then
	echo "run.sh: no fuzz targets in $bindir (configure with CC=clang" \
	     "-DDS_FUZZ=ON)" >&2
	exit 2
fi

seeds=$here/corpus
if [ ! -d "$seeds" ]; then
	seeds=$build/fuzz-seeds
	# one maker at a time when ctest runs several targets
	if [ ! -d "$seeds" ] && mkdir "$build/fuzz-seeds.lock" 2>/dev/null; then
		DS_BIN=${DS_BIN:-$build/ds} sh "$here/make-corpus.sh" \
			"$seeds.tmp" >/dev/null &&
			mv "$seeds.tmp" "$seeds"
		rmdir "$build/fuzz-seeds.lock"
	fi
	while [ ! -d "$seeds" ] && [ -d "$build/fuzz-seeds.lock" ]; do
		sleep 1
	done
fi

mkdir -p "$build/fuzz-logs"
status=0
for t in "$@"; do
	bin=$bindir/fuzz_$t
	log=$build/fuzz-logs/$t.log
	art=$build/fuzz-artifacts/$t
	work=$build/fuzz-work/$t
	if [ ! -x "$bin" ]; then
		echo "$t: no binary $bin" >&2
		status=1
		continue
	fi
	mkdir -p "$art" "$work" "$seeds/$t"

	# past findings first: each must now pass
	reg=$here/regressions/$t
	if [ -d "$reg" ] && [ -n "$(ls "$reg")" ]; then
		if ! "$bin" -runs=1 "$reg"/* > "$log.regressions" 2>&1 \
			< /dev/null; then
			echo "$t: a regression input fails again (see" \
			     "$log.regressions)"
			status=1
			continue
		fi
	fi

	"$bin" -max_total_time="$secs" -timeout=30 -print_final_stats=1 \
		-artifact_prefix="$art/" "$work" "$seeds/$t" \
		> "$log" 2>&1 < /dev/null
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	cov=$(grep -E '^#[0-9]+' "$log" | tail -1 | sed -n 's/.*cov: \([0-9]*\).*corp: \([0-9]*\).*/cov \1, corpus \2/p')
	if [ "$rc" -ne 0 ]; then
		echo "$t: FAILED (exit $rc) after ${execs:-?} executions;" \
		     "see $log and $art/"
		grep -E 'INVARIANT|ERROR: |SUMMARY' "$log" | head -5 | sed 's/^/    /'
		status=1
	else
		echo "$t: ${execs:-?} executions in $secs s (${cov:-no stats})"
	fi
	# the figure for scripts/test.sh's summary (tests/README.md quotes it)
	mkdir -p "$build/fuzz-figures"
	if [ "$rc" -eq 0 ]; then
		echo "fuzz_$t: ${execs:-?} executions in $secs s (${cov:-no stats})"
	else
		echo "fuzz_$t: FAILED after ${execs:-?} executions"
	fi > "$build/fuzz-figures/$t.txt"
done
exit $status
