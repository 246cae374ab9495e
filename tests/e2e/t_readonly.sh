#!/bin/bash
# Read-only commands (cat, history, log, check, dump, whatsnew) leave a
# storage byte for byte as it was, misc/ included (the lock files' pids
# too), whether they succeed or fail. ds check inspects journal/ and
# misc/ with the rules recovery applies at open, and reports what the
# engine would refuse: garbage or a stray file in journal/, a file in a
# committed transaction directory that is not a database name, a pending
# journal/replica.tar (alone or not), an unusable misc/ file.
. "$(dirname "$0")/lib.sh" || exit 1

S=$SCRATCH/s
must_pass ds mkds "$S"
printf 'one' >"$SCRATCH/p1"
printf 'two' >"$SCRATCH/p2"
must_pass ds commit "$S" new="$SCRATCH/p1"
T1=$(head -n1 "$LAST_STDOUT")
must_pass ds commit "$S" 0000000000000001="$SCRATCH/p2"
[ -f "$S/misc/snapshot" ] || fail "a closed storage is a snapshot"

# run CMD (expecting exit CODE), then compare the whole tree
unchanged() {
	local code=$1
	shift
	tree_md5 "$S" >"$SCRATCH/before"
	if [ "$code" = 0 ]; then
		must_pass "$@"
	else
		must_fail "$code" "$@"
	fi
	tree_md5 "$S" >"$SCRATCH/after"
	if ! cmp -s "$SCRATCH/before" "$SCRATCH/after"; then
		diff "$SCRATCH/before" "$SCRATCH/after" >&2 || true
		fail "changed the storage: $*"
	fi
}

readers_clean() {
	unchanged 0 ds cat "$S" 0000000000000001
	assert_eq two "$(cat "$LAST_STDOUT")" "cat"
	unchanged 1 ds cat "$S" 0000000000000009
	unchanged 0 ds cat "$S" 0000000000000001 --serial "$T1"
	unchanged 0 ds history "$S" 0000000000000001
	unchanged 0 ds log "$S"
	unchanged 0 ds check "$S"
	unchanged 0 ds dump "$S/A/x/serial"
	unchanged 0 ds whatsnew --storage "$S" "$T1"
}
readers_clean

# what the engine refuses: ds check reports it (exit 1, naming it), the
# engine's readers refuse it, nothing changes
refused() {
	local what=$1 also=${2:-}
	unchanged 1 ds check "$S"
	assert_contains "$LAST_STDERR" "$what"
	[ -z "$also" ] || assert_contains "$LAST_STDERR" "$also"
	unchanged 1 ds cat "$S" 0000000000000001
	assert_contains "$LAST_STDERR" "$what"
	unchanged 1 ds history "$S" 0000000000000001
	unchanged 0 ds log "$S"
}

mkdir "$S/journal/garbage"
refused "journal/garbage"
rmdir "$S/journal/garbage"

printf 'x' >"$S/journal/stray"
refused "journal/stray"
rm "$S/journal/stray"

# a _done directory named like a transaction but holding a stray file
D=$S/journal/working_${T1}_done
mkdir "$D"
printf 'x' >"$D/not-a-database-name"
refused "journal/working_${T1}_done/not-a-database-name"
rm -r "$D"

# a malformed increment committed into journal/replica.tar: check says
# so; readers refuse it and leave misc/snapshot in place
printf 'not a tar' >"$S/journal/replica.tar"
refused "journal/replica.tar" "not applied"
# ... with a transaction directory next to it
mkdir "$S/journal/working_${T1}_temp"
refused "journal/working_${T1}_temp"
rmdir "$S/journal/working_${T1}_temp"
# ... with files in B
printf 'x' >"$S/B/stray"
refused "B/stray"
rm "$S/B/stray" "$S/journal/replica.tar"

# misc/ files the engine cannot lock or rename
mkdir "$S/misc/replica.previous"
unchanged 1 ds check "$S"
assert_contains "$LAST_STDERR" "misc/replica.previous (not a regular file)"
rmdir "$S/misc/replica.previous"

readers_clean
