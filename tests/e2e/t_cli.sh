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

# the version is CMakeLists.txt's project() version, and the manual
# pages carry the same one
ver=$(sed -n 's/^project(dirstorage VERSION \([0-9.]*\) .*/\1/p' \
	"$DS_SOURCE_DIR/CMakeLists.txt")
[ -n "$ver" ] || fail "no project() version in CMakeLists.txt"
must_pass ds --version
grep -qx "ds (libdirstorage) $ver" "$LAST_STDOUT" ||
	fail "version line: $(cat "$LAST_STDOUT"), want $ver"
for page in "$DS_SOURCE_DIR"/man/*.1; do
	grep '^\.TH ' "$page" | grep -qF "\"ds $ver\"" ||
		fail "$page: not version $ver: $(grep '^\.TH ' "$page")"
done

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
