#!/bin/bash
# test.sh - build and run every test, in three configurations:
#   build/       release build (-Werror, as every build is)
#   build-asan/  AddressSanitizer + UndefinedBehaviorSanitizer, leaks checked
#   build-fault/ the fault-injection hooks compiled in (-DDS_FAULT_INJECTION):
#                only the crash-point and error-injection scenarios
#                (ctest -R '^crash/', tests/crash/, see tests/README.md)
#   build-fuzz/  clang, libFuzzer + ASan + UBSan (-DDS_FUZZ=ON): only the
#                bounded fuzzing runs (ctest -L fuzz: each target's past
#                findings, then DS_FUZZ_TIME seconds from the seed corpus,
#                default 10; see fuzz/README.md)
# Runs ctest (unit tests and end-to-end scenarios) in each, prints ctest's
# summaries at the end (and the crash scenarios' figures), and exits
# non-zero if anything failed to configure, build or pass.
#
# Environment: DS_JOBS (parallel build and test jobs, default 2);
# DS_FUZZ_TIME (seconds per fuzz target, default 10);
# DS_BUILD_DIR (default build; the sanitizer build goes to $DS_BUILD_DIR-asan).
set -uo pipefail

cd "$(dirname "$0")/.."
# a newcomer may run this first on a fresh machine: install what the build
# and the tests need (a quick no-op when everything is there)
bash scripts/setup-deps.sh </dev/null || exit 1
JOBS=${DS_JOBS:-2}
BUILD=${DS_BUILD_DIR:-build}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

status=0
summary=()

# run_config NAME DIR CMAKE_ARGS...   ($CTEST_ARGS: more ctest arguments;
# $NINJA_TARGETS: build only these, default everything)
run_config() {
	local name=$1 dir=$2 log
	shift 2
	log=$dir/ctest.log
	echo "=== $name: configure and build $dir"
	if ! cmake -S . -B "$dir" -G Ninja "$@" ||
	   ! ninja -C "$dir" -j "$JOBS" ${NINJA_TARGETS:-}; then
		summary+=("$name: BUILD FAILED")
		status=1
		return
	fi
	echo "=== $name: ctest"
	rm -rf "$dir/crash-figures" "$dir/fuzz-figures"
	# shellcheck disable=SC2086  # CTEST_ARGS is a list of words
	ctest --test-dir "$dir" --output-on-failure -j "$JOBS" ${CTEST_ARGS:-} \
		2>&1 | tee "$log"
	if [ $? -ne 0 ]; then           # pipefail: ctest's status
		status=1
	fi
	# ctest's own summary: "N% tests passed, M tests failed out of K"
	# plus the names of the failed tests, if any
	summary+=("$name: $(grep -E '^[0-9]+% tests passed' "$log" || echo 'no ctest summary')")
	while IFS= read -r line; do
		summary+=("    $line")
	done < <(sed -n '/^The following tests FAILED:/,$p' "$log" |
	         grep -E '^\s+[0-9]+ - ' || true)
	# the crash scenarios' figures ("c_x: crash points: N, kills: K, ...",
	# one file per scenario, written by tests/crash/lib.sh)
	if [ -d "$dir/crash-figures" ]; then
		while IFS= read -r line; do
			summary+=("    $line")
		done < <(cat "$dir"/crash-figures/*.txt 2>/dev/null || true)
	fi
	# the fuzz targets' figures ("fuzz_x: N executions in S s ...",
	# written by fuzz/run.sh)
	if [ -d "$dir/fuzz-figures" ]; then
		while IFS= read -r line; do
			summary+=("    $line")
		done < <(cat "$dir"/fuzz-figures/*.txt 2>/dev/null || true)
	fi
}

run_config release "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDS_SANITIZE=OFF -DDS_REQUIRE_ALL=ON
run_config asan "$BUILD-asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDS_SANITIZE=ON -DDS_REQUIRE_ALL=ON
CTEST_ARGS="-R ^crash/" run_config fault "$BUILD-fault" \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo -DDS_SANITIZE=OFF -DDS_FAULT_INJECTION=ON -DDS_REQUIRE_ALL=ON
# (only the fuzz targets and ds: the unit tests are not run here)
CTEST_ARGS="-L fuzz" NINJA_TARGETS="ds $(ls fuzz/fuzz_*.c | sed 's|.*/||; s|\.c$||' | tr '\n' ' ')" run_config fuzz "$BUILD-fuzz" \
	-DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DDS_SANITIZE=ON -DDS_FUZZ=ON -DDS_FUZZ_TIME="${DS_FUZZ_TIME:-10}" -DDS_REQUIRE_ALL=ON

echo
echo "=== summary"
for line in "${summary[@]}"; do
	echo "$line"
done
if [ "$status" -eq 0 ]; then
	echo "ALL TESTS PASSED"
else
	echo "SOME TESTS FAILED"
fi
exit "$status"
