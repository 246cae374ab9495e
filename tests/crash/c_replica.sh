#!/bin/bash
# ds replica, the replica side: bushy-master -> bushy-replica-old (21
# transactions, 297 files), killed or failing with ENOSPC/EIO at its
# durable I/O calls (spooling the increment, its commit point
# journal/replica.tar, applying it, misc/replica.previous, the snapshot
# entered at close). The master side runs as in local mode, as a child
# `ds replica + DIR`, but through a fake ssh (crash_fake_ssh) that keeps
# the faults away from it: they hit the replica side only. Afterwards:
#  - before recovery, `ds log` reads a transaction boundary (the replica's
#    old newest transaction or the master's);
#  - the next writing open (`ds snapshot`) recovers: journal/ is empty;
#  - A/ is exactly the old replica's A/ or exactly the A/ of a clean run
#    (tree_md5: every path, type, mode and md5), and `ds check` passes;
#  - `ds replica` run again completes: A/ is the new A/, and
#    `ds check --compare MASTER REPLICA` passes.
# About 3900 calls: a sample by default (every k-th call plus the first
# and last three, then bisection where the outcome changes from old to
# new); DS_CRASH_ALL=1 for all.
. "$(dirname "$0")/lib.sh"

CRASH_SUB=replica
CRASH_KIND_BUDGET=20
CRASH_ERROR_BUDGET=8
CRASH_STICKY_BUDGET=3
CRASH_POWERLOSS=1          # simulated power loss too (lib.sh)
CRASH_POWERLOSS_BUDGET=6
DSDIR=$(dirname "$DS_BIN")
SSH=$(crash_fake_ssh)
M=$SCRATCH/master
fixture_copy bushy-master "$M"
tree_md5 "$DS_FIXTURE_DIR/bushy-replica-old/A" >"$SCRATCH/A.old"
tree_md5 "$M/A" >"$SCRATCH/A.master"
OLD_TOP=$(manifest bushy-replica-old '.["x.serial"]')
NEW_TOP=$(manifest bushy-master '.["x.serial"]')
[ -n "$OLD_TOP" ] && [ -n "$NEW_TOP" ] || fail "no x.serial in the manifests"
CRASH_DESC="ds replica -q -e $SSH -d $DSDIR h:$M \$RUN/r"

# The master is shared by every run: wait until no master side of an
# earlier (killed) run still holds it.
master_free() {
	local i
	for i in $(seq 1 100); do
		if flock -n "$M/misc/lock" true && flock -n "$M/misc/sublock" true; then
			return 0
		fi
		sleep 0.1
	done
	fail "the master $M is still held 10 s after the run"
}

crash_setup() {
	cp -a "$DS_FIXTURE_DIR/bushy-replica-old" "$1/r"
	master_free
}
crash_cmd() { "$DS_BIN" replica -q -e "$SSH" -d "$DSDIR" "h:$M" "$1/r"; }

at_boundary() {
	local r=$1/r pre top
	must_pass ds log -q -n 1 "$r"
	pre=$(cut -c1-16 "$LAST_STDOUT")
	[ "$pre" = "$OLD_TOP" ] || [ "$pre" = "$NEW_TOP" ] ||
		fail "before recovery ds log shows $pre: neither $OLD_TOP nor $NEW_TOP"
	must_pass ds snapshot --storage "$r" true
	must_pass ds cat "$r" 0000000000000001
	[ -z "$(ls -A "$r/journal")" ] ||
		fail "journal/ not empty after recovery: $(ls -A "$r/journal")"
	tree_md5 "$r/A" >"$SCRATCH/A.now"
	if cmp -s "$SCRATCH/A.now" "$SCRATCH/A.old"; then
		top=$OLD_TOP
		crash_outcome old
	elif cmp -s "$SCRATCH/A.now" "$SCRATCH/A.new"; then
		top=$NEW_TOP
		crash_outcome new
	else
		diff "$SCRATCH/A.old" "$SCRATCH/A.now" | head -20 >&2
		fail "A/ is neither the old replica's nor the new one" \
		     "(diff with the old above)"
	fi
	[ "$pre" = "$OLD_TOP" ] || [ "$top" = "$NEW_TOP" ] ||
		fail "a reader saw $pre before recovery, then $top"
	must_pass ds log -q -n 1 "$r"
	assert_eq "$top" "$(cut -c1-16 "$LAST_STDOUT")" "newest transaction"
	must_pass ds check -q "$r"
}

crash_check_killed() { at_boundary "$1"; }
crash_check_failed() { at_boundary "$1"; }

crash_check_done() {
	local r=$1/r
	if [ ! -e "$SCRATCH/A.new" ]; then
		tree_md5 "$r/A" >"$SCRATCH/A.new"
		cmp -s "$SCRATCH/A.new" "$SCRATCH/A.old" &&
			fail "the clean run did not change the replica"
		must_pass ds check -q --compare "$M" "$r"
	fi
	at_boundary "$1"
	[ "$(cat "$CRASH_OUTCOME_FILE")" = new ] || fail "the clean run left the old state"
}

crash_rerun() {
	local r=$1/r
	master_free
	must_pass ds replica -q -e "$SSH" -d "$DSDIR" "h:$M" "$r"
	tree_md5 "$r/A" | cmp -s - "$SCRATCH/A.new" || fail "A/ after the rerun"
	[ -z "$(ls -A "$r/journal")" ] || fail "journal/ not empty after the rerun"
	[ ! -e "$r/misc/.replica.incoming" ] || fail "spool left after the rerun"
	tree_md5 "$M/A" | cmp -s - "$SCRATCH/A.master" || fail "the master's A/ changed"
}

crash_enumerate
