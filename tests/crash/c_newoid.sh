#!/bin/bash
# ds new-oid DIR 5 (a durable allocation: x.oid is committed through the
# journal before the oids are printed) killed, or failing with ENOSPC/EIO,
# at each of its durable I/O calls, on a storage whose last oid is 2.
# Afterwards:
#  - the next allocation (`ds new-oid DIR`, which opens and recovers) gives
#    3 (the five were not allocated) or 8 (they were), never an oid that
#    the faulted command printed: no oid is handed out twice;
#  - an error (once) was cleaned up: no journal/working_*_temp left;
#  - journal/ is empty after recovery and `ds check` passes;
#  - `ds new-oid DIR 5` again prints the five oids that follow.
. "$(dirname "$0")/lib.sh"

CRASH_SUB=new-oid
CRASH_DESC="ds new-oid \$RUN/s 5"
CRASH_KIND_BUDGET=100     # about 30 calls: every one
CRASH_POWERLOSS=1          # simulated power loss too (lib.sh)
CRASH_POWERLOSS_BUDGET=12

ORIG=$SCRATCH/orig
must_pass ds mkds "$ORIG"
must_pass ds new-oid "$ORIG" 2
assert_eq 0000000000000002 "$(tail -n 1 "$LAST_STDOUT")" "setup: last oid"

crash_setup() { cp -a "$ORIG" "$1/s"; }
crash_cmd() { "$DS_BIN" new-oid "$1/s" 5; }

hex() { printf '%016X' "$1"; }

allocated() {
	local s=$1/s next line max=2
	# what the faulted command printed: consecutive oids from 3
	while IFS= read -r line; do
		[[ $line =~ ^[0-9A-F]{16}$ ]] ||
			fail "ds new-oid printed '$line'"
		[ "$line" = "$(hex $((max + 1)))" ] ||
			fail "printed $line after $(hex "$max")"
		max=$((16#$line))
	done <"$CRASH_OUT"
	must_pass ds new-oid "$s"
	next=$(cat "$LAST_STDOUT")
	[ -z "$(ls -A "$s/journal")" ] ||
		fail "journal/ not empty after recovery: $(ls -A "$s/journal")"
	[ $((16#$next)) -gt "$max" ] ||
		fail "oid $next handed out twice (the faulted command printed up to $(hex "$max"))"
	case $next in
	"$(hex 3)") crash_outcome old ;;
	"$(hex 8)") crash_outcome new ;;
	*) fail "next oid $next: neither 3 (none allocated) nor 8 (five)" ;;
	esac
	must_pass ds check -q "$s"
	echo "$next" >"$SCRATCH/next"
}

crash_check_killed() { allocated "$1"; }
crash_check_failed() {
	case $CRASH_KIND in
	*-sticky) ;;    # every call fails: the abort cannot clean up
	*)	[ -z "$(ls "$1/s/journal" | grep '_temp$')" ] ||
			fail "the failed allocation left journal/$(ls "$1/s/journal")" \
			     "(abort leaves nothing behind)" ;;
	esac
	allocated "$1"
}

crash_check_done() {
	assert_eq 5 "$(wc -l <"$CRASH_OUT")" "oids printed"
	allocated "$1"
	[ "$(cat "$CRASH_OUTCOME_FILE")" = new ] || fail "the five were not allocated"
}

crash_rerun() {
	local s=$1/s next
	next=$((16#$(cat "$SCRATCH/next")))
	must_pass ds new-oid "$s" 5
	assert_eq "$(hex $((next + 1)))" "$(head -n 1 "$LAST_STDOUT")" "first oid of the rerun"
	assert_eq "$(hex $((next + 5)))" "$(tail -n 1 "$LAST_STDOUT")" "last oid of the rerun"
}

crash_enumerate
