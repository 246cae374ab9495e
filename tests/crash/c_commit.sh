#!/bin/bash
# ds commit (one transaction of three objects: two rewritten, one new, on a
# copy of the original's bushy-master) killed, or failing with ENOSPC/EIO,
# at each of its durable I/O calls: the journal write, its commit point,
# the flush into A/ and the snapshot entered at close. Afterwards:
#  - before any recovery, `ds log` reads a transaction boundary (the old
#    newest transaction, or the new one);
#  - the next open recovers (`ds check`, which opens the storage, passes)
#    and journal/ is empty;
#  - the storage holds the old state (newest transaction and both objects'
#    pickles unchanged) or the new one (exactly one more transaction, by
#    our user, with the new pickles); if the command printed a tid, it is
#    the new state with that tid;
#  - the same commit run again succeeds.
. "$(dirname "$0")/lib.sh"

CRASH_SUB=commit
CRASH_KIND_BUDGET=100    # about 80 calls: every one

P=$SCRATCH/pickles
mkdir -p "$P"
printf 'crash test pickle one\n' >"$P/1"
printf 'crash test pickle two, a little longer\n' >"$P/2"
head -c 5000 /dev/zero | tr '\0' 'z' >"$P/3"
O1=0000000000000001
O2=0000000000000002
CRASH_DESC="ds commit -u crash -m 'crash test' \$RUN/s $O1=$P/1 $O2=$P/2 new=$P/3"

# The fixture's state before the commit
fixture_copy bushy-master "$SCRATCH/orig"
must_pass ds log -q -n 1 "$SCRATCH/orig"
OLD_TOP=$(cut -c1-16 "$LAST_STDOUT")
must_pass ds cat "$SCRATCH/orig" "$O1"
cp "$LAST_STDOUT" "$SCRATCH/old.1"
must_pass ds cat "$SCRATCH/orig" "$O2"
cp "$LAST_STDOUT" "$SCRATCH/old.2"
cmp -s "$SCRATCH/old.1" "$P/1" && fail "test pickle equals the old one"

crash_setup() { cp -a "$SCRATCH/orig" "$1/s"; }
crash_cmd() {
	"$DS_BIN" commit -u crash -m 'crash test' "$1/s" "$O1=$P/1" \
		"$O2=$P/2" new="$P/3"
}

# tid printed by the command under test (empty if none)
printed_tid() {
	head -n 1 "$CRASH_OUT" | grep -E '^[0-9A-F]{16}$' || true
}

same() {   # FILE EXPECTED WHAT
	cmp -s "$1" "$2" || fail "$3: $(head -c 80 "$1" | od -c | head -3)"
}

# The invariants after a kill or a failure.
at_boundary() {
	local s=$1/s printed top second pending
	printed=$(printed_tid)
	pending=$(ls "$s/journal" | sed -n 's/^working_\([0-9A-F]\{16\}\)_done$/\1/p')
	# before recovery: a reader sees a transaction boundary
	must_pass ds log -q -n 1 "$s"
	top=$(cut -c1-16 "$LAST_STDOUT")
	if [ "$top" != "$OLD_TOP" ] && [ "$top" != "$pending" ] &&
	   [ "$top" != "$printed" ]; then
		fail "before recovery ds log shows $top: neither the old" \
		     "$OLD_TOP nor the pending ${pending:-(none)}"
	fi
	# the next open recovers; the storage checks clean
	must_pass ds check -q "$s"
	[ -z "$(ls -A "$s/journal")" ] ||
		fail "journal/ not empty after recovery: $(ls -A "$s/journal")"
	[ -z "$(find "$s" -name '*_temp*')" ] ||
		fail "temp files left: $(find "$s" -name '*_temp*')"
	must_pass ds log -q -n 2 "$s"
	top=$(sed -n 1p "$LAST_STDOUT" | cut -c1-16)
	second=$(sed -n 2p "$LAST_STDOUT" | cut -c1-16)
	if [ "$top" = "$OLD_TOP" ]; then
		[ -z "$printed" ] || fail "ds commit printed $printed, but the" \
			"storage's newest transaction is still $OLD_TOP"
		must_pass ds cat "$s" "$O1"
		same "$LAST_STDOUT" "$SCRATCH/old.1" "old state: $O1 changed"
		must_pass ds cat "$s" "$O2"
		same "$LAST_STDOUT" "$SCRATCH/old.2" "old state: $O2 changed"
		crash_outcome old
	elif [ "$second" = "$OLD_TOP" ]; then
		[ -z "$printed" ] || [ "$printed" = "$top" ] ||
			fail "ds commit printed $printed, the storage has $top"
		assert_contains "$LAST_STDOUT" '"crash" "crash test"'
		must_pass ds cat "$s" "$O1"
		same "$LAST_STDOUT" "$P/1" "new state $top: $O1"
		must_pass ds cat "$s" "$O2"
		same "$LAST_STDOUT" "$P/2" "new state $top: $O2"
		must_pass ds cat "$s" "$O1" --serial "$top"
		same "$LAST_STDOUT" "$P/1" "new state $top: $O1 --serial"
		crash_outcome new
	else
		fail "newest transactions $top, $second: not a boundary of" \
		     "the old newest $OLD_TOP"
	fi
}

crash_check_killed() { at_boundary "$1"; }
crash_check_failed() { at_boundary "$1"; }

crash_check_done() {
	local s=$1/s tid
	tid=$(printed_tid)
	[ -n "$tid" ] || fail "ds commit printed no tid: $(head -c 200 "$CRASH_OUT")"
	at_boundary "$1"
	[ "$(cat "$CRASH_OUTCOME_FILE")" = new ] || fail "commit $tid not there"
}

crash_rerun() {
	local s=$1/s top
	must_pass ds log -q -n 1 "$s"
	top=$(cut -c1-16 "$LAST_STDOUT")
	must_pass ds commit -q -u crash -m 'crash test' "$s" "$O1=$P/1" \
		"$O2=$P/2" new="$P/3"
	must_pass ds log -q -n 2 "$s"
	[ "$(sed -n 2p "$LAST_STDOUT" | cut -c1-16)" = "$top" ] ||
		fail "the rerun's transaction does not follow $top"
	must_pass ds cat "$s" "$O2"
	same "$LAST_STDOUT" "$P/2" "after the rerun: $O2"
	must_pass ds check -q "$s"
	[ -z "$(ls -A "$s/journal")" ] || fail "journal/ not empty after the rerun"
}

crash_enumerate
