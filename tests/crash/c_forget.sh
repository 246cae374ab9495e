#!/bin/bash
# ds replica --forget NAME M (drop one replication slot of a master with
# two: "a" at an older tid, "b" at a newer one) killed, failing with
# ENOSPC/EIO, or cut by a simulated power loss at each of its durable I/O
# calls. Afterwards:
#  - `ds replica --slots M` lists either both slots as they were (old) or
#    "b" alone, unchanged (new): never a damaged or half-removed record,
#    and never "b" touched;
#  - a `ds pack` of the master (min_pack_time 0) is held back to "a"'s tid
#    while "a" is listed, to "b"'s once it is gone: a forgotten slot never
#    comes back to hold pack (after a clean run and after a power cut once
#    the command returned: the outcome must be new);
#  - the rerun (`--forget a` again while it is listed, else the refusal
#    "no replication slot named") leaves "b" alone.
. "$(dirname "$0")/lib.sh"

CRASH_SUB=replica
CRASH_DESC="ds replica --forget a \$RUN/m"
CRASH_KIND_BUDGET=100      # a handful of calls: every one
CRASH_POWERLOSS=1
CRASH_POWERLOSS_BUDGET=12

ORIG=$SCRATCH/orig
mkdir -p "$ORIG"
must_pass ds gen -q --graph --objects 40 --transactions 20 --per-txn 4 \
	--seed 3 "$ORIG/m"
sed -i 's/^min_pack_time: .*/min_pack_time: 0/' "$ORIG/m/config/settings"
must_pass ds replica -q --init "$ORIG/m" "$ORIG/ra"
must_pass ds replica -q --slot a "$ORIG/m" "$ORIG/ra"
must_pass ds gen -q --graph --objects 4 --transactions 2 --per-txn 2 \
	--seed 4 "$ORIG/m"
must_pass ds replica -q --init "$ORIG/m" "$ORIG/rb"
must_pass ds replica -q --slot b "$ORIG/m" "$ORIG/rb"
# the master moves on past both: a pack "now" is held back by either
must_pass ds gen -q --graph --objects 4 --transactions 2 --per-txn 2 \
	--seed 5 "$ORIG/m"
sleep 2    # ds gen's tids run ahead of the clock: "now" must pass them
TID_A=$(od -An -tx1 "$ORIG/ra/A/x/serial" | tr -d ' \n' | tr a-f A-F)
TID_B=$(od -An -tx1 "$ORIG/rb/A/x/serial" | tr -d ' \n' | tr a-f A-F)
[ "$TID_A" \< "$TID_B" ] || fail "setup: slot a ($TID_A) not older than b ($TID_B)"
# a listing without its "seen N ago" column, which moves with the clock
slots_of() {
	must_pass ds replica --slots "$1"
	awk '{print $1, $NF}' "$LAST_STDOUT"
}
slots_of "$ORIG/m" >"$SCRATCH/slots.both"
grep -q "$TID_A" "$SCRATCH/slots.both" && grep -q "$TID_B" "$SCRATCH/slots.both" ||
	fail "setup: both slots expected: $(cat "$SCRATCH/slots.both")"
grep -v "$TID_A" "$SCRATCH/slots.both" >"$SCRATCH/slots.b"
[ "$(wc -l <"$SCRATCH/slots.b")" = 1 ] || fail "setup: slot b's line"

crash_setup() { cp -a "$ORIG/m" "$1/m"; }
# -v: it says when it is done (what a power cut after the last call sees)
crash_cmd() { "$DS_BIN" replica -v --forget a "$1/m"; }

# the slots as listed: both as they were, or b alone as it was
slots_state() {
	local m=$1/m
	slots_of "$m" >"$1/slots.now"
	if cmp -s "$1/slots.now" "$SCRATCH/slots.both"; then
		echo old
	elif cmp -s "$1/slots.now" "$SCRATCH/slots.b"; then
		echo new
	else
		fail "slots neither both nor b alone: $(cat "$1/slots.now")"
		echo bad
	fi
}

# a pack "now" on a copy is held back to the oldest listed slot
pack_held() {
	local m=$1/m want=$2 c=$1/packcopy
	rm -rf "$c"
	cp -a "$m" "$c"
	must_pass ds pack "$c"
	assert_contains "$LAST_STDOUT" "held back"
	assert_contains "$LAST_STDOUT" "to $want"
	rm -rf "$c"
}

check_state() {
	local st
	st=$(slots_state "$1")
	case $st in
	old) crash_outcome old; pack_held "$1" "$TID_A" ;;
	new) crash_outcome new; pack_held "$1" "$TID_B" ;;
	esac
	must_pass ds check -q "$1/m"
}

crash_check_killed() { check_state "$1"; }
crash_check_failed() { check_state "$1"; }
crash_check_powerloss() {
	check_state "$1"
	# after the last call the command had returned: the removal lasts
	if grep -q "forgotten" "$CRASH_ERR"; then
		[ "$(cat "$CRASH_OUTCOME_FILE")" = new ] ||
			fail "a forgotten slot came back after a power cut"
	fi
}
crash_check_done() {
	check_state "$1"
	[ "$(cat "$CRASH_OUTCOME_FILE")" = new ] || fail "slot a not forgotten"
}

crash_rerun() {
	local m=$1/m
	if [ "$(slots_state "$1")" = old ]; then
		must_pass ds replica --forget a "$m"
	else
		must_fail 1 ds replica --forget a "$m"
		assert_contains "$LAST_STDERR" "no replication slot named 'a'"
	fi
	assert_eq new "$(slots_state "$1")" "slots after the rerun"
}

crash_enumerate
