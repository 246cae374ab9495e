#!/bin/bash
# The ds front end: --help, --version, help SUBCOMMAND, each subcommand's
# --help, and the usage exit code 2 for an unknown subcommand or option.
. "$(dirname "$0")/lib.sh" || exit 1

must_pass ds --help
for sub in mkds dump log; do
	grep -qE "^  $sub " "$LAST_STDOUT" || fail "ds --help does not list $sub"
done
assert_contains "$LAST_STDOUT" "usage: ds"
assert_contains "$LAST_STDOUT" "Exit codes"

must_pass ds --version
grep -Eq '^ds \(libdirstorage\) [0-9]+\.[0-9]+\.[0-9]+$' "$LAST_STDOUT" ||
	fail "version line: $(cat "$LAST_STDOUT")"

for sub in mkds dump log; do
	must_pass ds help $sub
	assert_contains "$LAST_STDOUT" "usage: ds $sub"
	must_pass ds $sub --help
	assert_contains "$LAST_STDOUT" "usage: ds $sub"
	must_pass ds $sub -h
	assert_contains "$LAST_STDOUT" "usage: ds $sub"
	must_fail 2 ds $sub --no-such-option
	assert_contains "$LAST_STDERR" "usage: ds $sub"
done

must_fail 2 ds
assert_contains "$LAST_STDERR" "usage: ds"
must_fail 2 ds frobnicate
assert_contains "$LAST_STDERR" "unknown subcommand 'frobnicate'"
must_fail 2 ds help frobnicate
assert_contains "$LAST_STDERR" "frobnicate"
