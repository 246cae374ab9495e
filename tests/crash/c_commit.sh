#!/bin/bash
# ds commit (one transaction of three objects: two rewritten, one new)
# killed, or failing with ENOSPC/EIO, at each of its durable I/O calls:
# the journal write, its commit point, the flush into A/ and the snapshot
# entered at close. Afterwards:
#  - an injected error (once) was cleaned up by the abort: no
#    journal/working_*_temp left ("abort leaves nothing behind");
#  - before any recovery, `ds log` reads a transaction boundary (the old
#    newest transaction, or the committed one pending in the journal);
#  - the next writing open (`ds snapshot`) recovers: journal/ is empty;
#  - `ds check` passes;
#  - the storage holds the old state (newest transaction and both objects'
#    pickles unchanged) or the new one (exactly one more transaction, by
#    our user, with the new pickles); if the command printed a tid, it is
#    the new state with that tid; a command that failed but whose
#    transaction is there printed its tid (even with the fsync of
#    journal/ after the commit point failing);
#  - the same commit run again succeeds.
# The storage is a small one made by ds (mkds and two commits), so that
# every call index of every fault kind fits the suite's time.
. "$(dirname "$0")/lib.sh"

CRASH_SUB=commit
CRASH_KIND_BUDGET=100    # about 75 calls: every kill
CRASH_ERROR_BUDGET=15
CRASH_STICKY_BUDGET=6
CRASH_POWERLOSS=1          # simulated power loss too (lib.sh)
CRASH_POWERLOSS_BUDGET=15

P=$SCRATCH/pickles
mkdir -p "$P"
printf 'crash test pickle one\n' >"$P/1"
printf 'crash test pickle two, a little longer\n' >"$P/2"
head -c 5000 /dev/zero | tr '\0' 'z' >"$P/3"
O1=0000000000000001
O2=0000000000000002
O3=0000000000000003
CRASH_DESC="ds commit -u crash -m 'crash test' \$RUN/s $O1=$P/1 $O2=$P/2 new=$P/3"

# The state before the commit
must_pass ds mkds "$SCRATCH/orig"
must_pass ds new-oid "$SCRATCH/orig" 2
assert_eq "$O1 $O2" "$(tr '\n' ' ' <"$LAST_STDOUT" | sed 's/ $//')" "new oids"
printf 'first pickle of one' >"$SCRATCH/first.1"
printf 'first pickle of two' >"$SCRATCH/first.2"
must_pass ds commit -u setup "$SCRATCH/orig" "$O1=$SCRATCH/first.1" \
	"$O2=$SCRATCH/first.2"
printf 'second pickle of one' >"$SCRATCH/old.1"
cp "$SCRATCH/first.2" "$SCRATCH/old.2"
must_pass ds commit -u setup "$SCRATCH/orig" "$O1=$SCRATCH/old.1"
OLD_TOP=$(head -n 1 "$LAST_STDOUT")
must_pass ds check -q "$SCRATCH/orig"

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
	local s=$1/s printed pre top second
	printed=$(printed_tid)
	# before recovery: a reader sees a transaction boundary, the old
	# newest transaction or one more on top of it
	must_pass ds log -q -n 2 "$s"
	pre=$(sed -n 1p "$LAST_STDOUT" | cut -c1-16)
	second=$(sed -n 2p "$LAST_STDOUT" | cut -c1-16)
	if [ "$pre" != "$OLD_TOP" ] && [ "$second" != "$OLD_TOP" ]; then
		fail "before recovery ds log shows $pre, $second: not the old" \
		     "newest $OLD_TOP or one transaction on top of it"
	fi
	# the next writing open recovers (a reader, ds cat, reads the journal
	# in place and changes nothing)
	must_pass ds snapshot --storage "$s" true
	must_pass ds cat "$s" "$O2"
	cp "$LAST_STDOUT" "$SCRATCH/now.2"
	[ -z "$(ls -A "$s/journal")" ] ||
		fail "journal/ not empty after recovery: $(ls -A "$s/journal")"
	must_pass ds check -q "$s"
	must_pass ds log -q -n 2 "$s"
	top=$(sed -n 1p "$LAST_STDOUT" | cut -c1-16)
	second=$(sed -n 2p "$LAST_STDOUT" | cut -c1-16)
	if [ "$pre" != "$OLD_TOP" ] && [ "$pre" != "$top" ]; then
		fail "a reader saw $pre before recovery, the recovered storage" \
		     "has $top"
	fi
	if [ "$top" = "$OLD_TOP" ]; then
		[ -z "$printed" ] || fail "ds commit printed $printed, but the" \
			"storage's newest transaction is still $OLD_TOP"
		must_pass ds cat "$s" "$O1"
		same "$LAST_STDOUT" "$SCRATCH/old.1" "old state: $O1 changed"
		same "$SCRATCH/now.2" "$SCRATCH/old.2" "old state: $O2 changed"
		must_fail 1 ds cat "$s" "$O3"
		crash_outcome old
	elif [ "$second" = "$OLD_TOP" ]; then
		[ -z "$printed" ] || [ "$printed" = "$top" ] ||
			fail "ds commit printed $printed, the storage has $top"
		assert_contains "$LAST_STDOUT" '"crash" "crash test"'
		must_pass ds cat "$s" "$O1"
		same "$LAST_STDOUT" "$P/1" "new state $top: $O1"
		same "$SCRATCH/now.2" "$P/2" "new state $top: $O2"
		must_pass ds cat "$s" "$O3" --serial "$top"
		same "$LAST_STDOUT" "$P/3" "new state $top: $O3 --serial"
		crash_outcome new
	else
		fail "newest transactions $top, $second: not a boundary of" \
		     "the old newest $OLD_TOP"
	fi
	echo "$top" >"$SCRATCH/top"
}

crash_check_killed() { at_boundary "$1"; }
crash_check_failed() {
	case $CRASH_KIND in
	*-sticky) ;;    # every call fails: the abort cannot clean up
	*)	[ -z "$(ls "$1/s/journal" | grep '_temp$')" ] ||
			fail "the failed commit left journal/$(ls "$1/s/journal")" \
			     "(abort leaves nothing behind)" ;;
	esac
	at_boundary "$1"
	# a failed ds commit whose transaction is nevertheless committed
	# (the fsync of journal/ after the commit rename, or the flush at
	# close, failed) has printed its tid: a script must not commit the
	# same change again
	if [ "$(cat "$CRASH_OUTCOME_FILE")" = new ]; then
		[ -n "$(printed_tid)" ] || fail "ds commit failed, printed no" \
			"tid, but its transaction $(cat "$SCRATCH/top") is" \
			"committed: $(head -c 300 "$CRASH_ERR")"
	fi
}

crash_check_done() {
	local s=$1/s tid
	tid=$(printed_tid)
	[ -n "$tid" ] || fail "ds commit printed no tid: $(head -c 200 "$CRASH_OUT")"
	at_boundary "$1"
	[ "$(cat "$CRASH_OUTCOME_FILE")" = new ] || fail "commit $tid not there"
}

crash_rerun() {
	local s=$1/s top
	top=$(cat "$SCRATCH/top")
	must_pass ds commit -q -u crash -m 'crash test' "$s" "$O1=$P/1" \
		"$O2=$P/2" new="$P/3"
	[ -z "$(ls -A "$s/journal")" ] || fail "journal/ not empty after the rerun"
	must_pass ds log -q -n 2 "$s"
	[ "$(sed -n 2p "$LAST_STDOUT" | cut -c1-16)" = "$top" ] ||
		fail "the rerun's transaction does not follow $top"
	assert_contains "$LAST_STDOUT" '"crash" "crash test"'
}

crash_enumerate
