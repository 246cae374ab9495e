#!/bin/bash
# ds snapshot --storage S -- true killed, or failing with ENOSPC/EIO, at
# each of its durable I/O calls, on a storage that is not in snapshot mode
# and has a committed transaction T still in its journal (closed with
# [filesystem] quick_shutdown 1, which neither flushes nor enters snapshot
# mode at close). Taking the snapshot opens the storage (recovery rolls T
# forward into A/), enters snapshot mode, closes, locks, runs the command
# and unlocks. Afterwards:
#  - before recovery, `ds log` reads a transaction boundary: T, or the
#    transaction before it when T is not flushed yet;
#  - the next writing open (`ds snapshot` again) recovers: T's pickle is read back, journal/
#    is empty, and A/ is byte-for-byte the A/ of a clean run;
#  - `ds check` passes; no lock or snapshot hold is left behind: the same
#    `ds snapshot` run again succeeds and leaves misc/snapshot "shutdown".
. "$(dirname "$0")/lib.sh"

CRASH_SUB=snapshot
CRASH_DESC="ds snapshot --storage \$RUN/s -- true"
CRASH_KIND_BUDGET=50      # about 100 calls: every other kill, then bisection
CRASH_ERROR_BUDGET=15
CRASH_STICKY_BUDGET=6
CRASH_POWERLOSS=1          # simulated power loss too (lib.sh)
CRASH_POWERLOSS_BUDGET=12
O1=0000000000000001

ORIG=$SCRATCH/orig
# DS_CRASH_FORMAT: the layout (c_snapshot_flat.sh runs the flat one)
must_pass ds mkds "$ORIG" Full "${DS_CRASH_FORMAT:-bushy}"
sed -i 's/^quick_shutdown: 0$/quick_shutdown: 1/' "$ORIG/config/settings"
grep -q '^quick_shutdown: 1$' "$ORIG/config/settings" ||
	fail "cannot set quick_shutdown in $ORIG/config/settings"
printf 'before T' >"$SCRATCH/p0"
printf 'written by T' >"$SCRATCH/pT"
must_pass ds commit "$ORIG" new="$SCRATCH/p0"
PREV=$(head -n 1 "$LAST_STDOUT")
must_pass ds commit "$ORIG" "$O1=$SCRATCH/pT"
T=$(head -n 1 "$LAST_STDOUT")
[ -n "$(ls "$ORIG/journal" | grep "^working_${T}_done\$")" ] ||
	fail "setup: T $T is not pending in journal/: $(ls "$ORIG/journal")"
[ ! -e "$ORIG/misc/snapshot" ] || fail "setup: $ORIG is in snapshot mode"

crash_setup() { cp -a "$ORIG" "$1/s"; }
crash_cmd() { "$DS_BIN" snapshot --storage "$1/s" -- true; }

recovered() {
	local s=$1/s pre
	if [ -e "$s/misc/snapshot" ]; then
		crash_outcome snapshot
	else
		crash_outcome open
	fi
	must_pass ds log -q -n 1 "$s"
	pre=$(cut -c1-16 "$LAST_STDOUT")
	[ "$pre" = "$T" ] || [ "$pre" = "$PREV" ] ||
		fail "before recovery ds log shows $pre: neither T $T nor $PREV"
	must_pass ds snapshot --storage "$s" true
	must_pass ds cat "$s" "$O1"
	cmp -s "$LAST_STDOUT" "$SCRATCH/pT" || fail "T's pickle of $O1 is lost"
	[ -z "$(ls -A "$s/journal")" ] ||
		fail "journal/ not empty after recovery: $(ls -A "$s/journal")"
	tree_md5 "$s/A" | cmp -s - "$SCRATCH/A.ref" || {
		tree_md5 "$s/A" | diff "$SCRATCH/A.ref" - >&2
		fail "A/ after recovery differs from a clean run's"; }
	must_pass ds check -q "$s"
	must_pass ds log -q -n 1 "$s"
	[ "$(cut -c1-16 "$LAST_STDOUT")" = "$T" ] ||
		fail "newest transaction $(cut -c1-16 "$LAST_STDOUT"), not T $T"
}

crash_check_killed() { recovered "$1"; }
crash_check_failed() { recovered "$1"; }

crash_check_done() {
	local s=$1/s
	assert_eq shutdown "$(cat "$s/misc/snapshot")" "misc/snapshot"
	[ -z "$(ls -A "$s/journal")" ] || fail "journal/ not empty after ds snapshot"
	if [ ! -e "$SCRATCH/A.ref" ]; then
		tree_md5 "$s/A" >"$SCRATCH/A.ref"
	fi
	recovered "$1"
}

crash_rerun() {
	local s=$1/s
	must_pass ds snapshot -q --storage "$s" -- true
	assert_eq shutdown "$(cat "$s/misc/snapshot")" "misc/snapshot after the rerun"
	tree_md5 "$s/A" | cmp -s - "$SCRATCH/A.ref" || fail "A/ after the rerun"
}

crash_enumerate
