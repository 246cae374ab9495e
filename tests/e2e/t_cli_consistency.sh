#!/bin/bash
# The ds command line behaves the same way in every subcommand: getopt's
# own errors carry the "ds SUBCOMMAND:" prefix, options are accepted after
# the operands as GNU tools accept them, no message repeats its prefix, and
# the same option means the same thing everywhere (-n 0 in log and history).
. "$(dirname "$0")/lib.sh" || exit 1

# every subcommand `ds --help` lists
must_pass ds --help
subs=$(sed -n '/^Subcommands:/,/^$/p' "$LAST_STDOUT" | awk 'NF > 1 { print $1 }')
[ "$(echo "$subs" | wc -w)" -ge 14 ] || fail "ds --help lists too few: $subs"

# getopt's messages (unknown option, missing argument) name the subcommand
# as every other message does: "ds SUB: ..."
for sub in $subs; do
	must_fail 2 ds "$sub" --no-such-option
	first=$(head -n 1 "$LAST_STDERR")
	case $first in
	"ds $sub: "*"no-such-option"*) ;;
	*) fail "ds $sub --no-such-option: first line '$first'" ;;
	esac
	must_fail 2 ds "$sub" -Z
	first=$(head -n 1 "$LAST_STDERR")
	case $first in
	"ds $sub: "*"'Z'"*) ;;
	*) fail "ds $sub -Z: first line '$first'" ;;
	esac
done
must_fail 2 ds log -n
assert_contains "$LAST_STDERR" "ds log: option requires an argument -- 'n'"
