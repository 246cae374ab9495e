#!/bin/bash
# ds pack killed, or failing with ENOSPC/EIO, at each of its durable I/O
# calls (x.packed, the chmod marks, the renames to *-deleted, the
# rewritten transaction files staged in misc/ and renamed into A, the
# syncfs barriers, and the open/close of
# the storage around them), on a copy of the original's bushy-master
# packed at R (372 files go, 5 back pointers are rewritten). Afterwards:
#  - `ds check` accepts the storage as it is (what the killed pack had not
#    removed yet is older than x.packed and unreferenced);
#  - the outcome is old (nothing removed, x.packed untouched), new (the
#    tree a clean pack leaves) or partial;
#  - the same `ds pack` run again completes and leaves exactly the tree of
#    a clean run (pack leftovers' times normalised), which `ds check`
#    accepts.
. "$(dirname "$0")/lib.sh"
. "$DS_SOURCE_DIR/tests/pack/lib-pack.sh"

CRASH_SUB=pack
THR=040D44B222699866
CRASH_DESC="ds pack --before $THR \$RUN/s"
CRASH_KIND_BUDGET=60
CRASH_ERROR_BUDGET=20
CRASH_STICKY_BUDGET=8
CRASH_POWERLOSS=1         # simulated power loss too (lib.sh)
CRASH_POWERLOSS_BUDGET=10

ORIG=$SCRATCH/orig
pack_prepare "$DS_FIXTURE_DIR/bushy-master" "$ORIG" 864000000 600 ||
	fail "cannot prepare $ORIG"
pack_tree "$ORIG" >"$SCRATCH/tree.old"

crash_setup() { cp -a "$ORIG" "$1/s"; }
crash_cmd() { "$DS_BIN" pack -q --before "$THR" "$1/s"; }

consistent() {
	local s=$1/s
	must_pass ds check -q "$s"
	pack_tree "$s" >"$SCRATCH/tree.now"
	if [ -e "$SCRATCH/tree.new" ] &&
	   cmp -s "$SCRATCH/tree.now" "$SCRATCH/tree.new"; then
		crash_outcome new
	elif [ -z "$(find "$s/A" -name '*-deleted' -print -quit)" ] &&
	     [ "$(od -An -tx1 "$s/A/x/packed" | tr -d ' \n')" = \
	       0000000000000000 ]; then
		crash_outcome old
	else
		crash_outcome partial
	fi
}

crash_check_killed() { consistent "$1"; }
crash_check_failed() { consistent "$1"; }

crash_check_done() {
	local s=$1/s
	must_pass ds check -q "$s"
	if [ ! -e "$SCRATCH/tree.new" ]; then
		pack_tree "$s" >"$SCRATCH/tree.new"
		[ "$(grep -c -- '-T-deleted' "$SCRATCH/tree.new")" = 372 ] ||
			fail "a clean pack left $(grep -c -- '-T-deleted' \
			     "$SCRATCH/tree.new") leftovers, not 372"
	fi
	consistent "$1"
	[ "$(cat "$CRASH_OUTCOME_FILE")" = new ] ||
		fail "a clean pack did not leave the packed tree"
}

crash_rerun() {
	local s=$1/s
	must_pass ds pack -q --before "$THR" "$s"
	must_pass ds check -q "$s"
	# the killed pack's staged transactions (misc/pack.tmp.N) are gone
	[ -z "$(find "$s/misc" -name 'pack.tmp*' -print -quit)" ] ||
		fail "the pack run again left $(find "$s/misc" -name 'pack.tmp*')"
	pack_tree "$s" >"$SCRATCH/tree.rerun"
	if ! cmp -s "$SCRATCH/tree.rerun" "$SCRATCH/tree.new"; then
		diff "$SCRATCH/tree.new" "$SCRATCH/tree.rerun" | head -20 >&2
		fail "the pack run again left another tree than a clean pack"
	fi
}

crash_enumerate
