#!/bin/bash
# ds replica, the master side (`ds replica + DIR`, what ssh runs on the
# master): bushy-master serving bushy-replica-old, killed or failing with
# ENOSPC/EIO at each of its durable I/O calls (its locks, entering and
# leaving snapshot mode, the replica's slot record in misc/slots/). The fake ssh (crash_fake_ssh) passes the faults
# (DS_MASTER_FAULT_*) to the master side only. Afterwards:
#  - the replica is untouched (A/ exactly the old replica's) or, when the
#    master failed only after sending the whole increment, exactly the new
#    one; `ds check` passes on it;
#  - the master is not left held: `ds snapshot` on it works at once, its
#    A/ is unchanged, `ds check` passes;
#  - a failure says so: exit non-zero with a "ds replica: " message (the
#    master's own message, naming the operation and path, is relayed);
#  - `ds replica` run again completes.
# And a simulated power loss of the master machine at each of those calls
# (lib.sh, CRASH_POWERLOSS): the master then opens, checks clean, is not
# held, and serves the replica again.
. "$(dirname "$0")/lib.sh"

CRASH_SUB=replica
CRASH_ENV_PREFIX=DS_MASTER_
CRASH_KILL_CHILD=1
CRASH_KIND_BUDGET=20
CRASH_ERROR_BUDGET=6
CRASH_STICKY_BUDGET=3
CRASH_POWERLOSS=1          # simulated power loss too (lib.sh)
CRASH_POWERLOSS_BUDGET=12
DSDIR=$(dirname "$DS_BIN")
SSH=$(crash_fake_ssh)
tree_md5 "$DS_FIXTURE_DIR/bushy-replica-old/A" >"$SCRATCH/A.old"
tree_md5 "$DS_FIXTURE_DIR/bushy-master/A" >"$SCRATCH/A.master"
OLD_TID=$(od -An -tx1 "$DS_FIXTURE_DIR/bushy-replica-old/A/x/serial" |
	tr -d ' \n' | tr a-f A-F)
CRASH_DESC="ds replica -q --slot crash -e $SSH -d $DSDIR h:\$RUN/m \$RUN/r"

crash_setup() {
	cp -a "$DS_FIXTURE_DIR/bushy-master" "$1/m"
	cp -a "$DS_FIXTURE_DIR/bushy-replica-old" "$1/r"
}
crash_cmd() { "$DS_BIN" replica -q --slot crash -e "$SSH" -d "$DSDIR" "h:$1/m" "$1/r"; }

# (the replica side may still be finishing when a killed master's
# orphans exit; wait for its locks)
wait_free() {
	local i
	for i in $(seq 1 100); do
		if flock -n "$1/misc/lock" true && flock -n "$1/misc/sublock" true; then
			return 0
		fi
		sleep 0.1
	done
	fail "$1 is still held 10 s after the run"
}

consistent() {
	local m=$1/m r=$1/r
	wait_free "$m"
	must_pass ds snapshot --storage "$r" true
	must_pass ds cat "$r" 0000000000000001
	[ -z "$(ls -A "$r/journal")" ] ||
		fail "replica journal/ not empty after recovery: $(ls -A "$r/journal")"
	tree_md5 "$r/A" >"$SCRATCH/A.now"
	if cmp -s "$SCRATCH/A.now" "$SCRATCH/A.old"; then
		crash_outcome old
	elif [ -e "$SCRATCH/A.new" ] && cmp -s "$SCRATCH/A.now" "$SCRATCH/A.new"; then
		crash_outcome new
	else
		diff "$SCRATCH/A.old" "$SCRATCH/A.now" | head -20 >&2
		fail "the replica's A/ is neither old nor new (diff with the old above)"
	fi
	must_pass ds check -q "$r"
	# the master: not held, unchanged, clean
	must_pass ds snapshot -q --storage "$m" -- true
	tree_md5 "$m/A" | cmp -s - "$SCRATCH/A.master" || fail "the master's A/ changed"
	must_pass ds check -q "$m"
	# the replica's slot (misc/slots/, written once the request is
	# admitted): absent, or a whole record of the tid the replica held
	must_pass ds replica --slots "$m"
	if [ -s "$LAST_STDOUT" ]; then
		[ "$(wc -l <"$LAST_STDOUT")" = 1 ] || fail "more than one slot"
		assert_contains "$LAST_STDOUT" "$OLD_TID  "
		assert_contains "$LAST_STDOUT" "  crash"
	fi
}

crash_check_killed() {
	# the replica side reports the lost master
	grep -q '^ds replica: ' "$CRASH_ERR" ||
		fail "the master was killed but ds replica said nothing"
	consistent "$1"
}
crash_check_failed() { consistent "$1"; }

# Simulated power loss of the master machine (the trace is the master
# side's): the master storage must open, check clean and serve again. The
# replica is on another machine: it is whatever the traced full run made.
crash_powerloss_prepare() {
	rm -rf "$1/r"
	cp -a "$CRASH_PL_REC/r" "$1/r"
}
crash_check_powerloss() { consistent "$1"; }

crash_check_done() {
	if [ ! -e "$SCRATCH/A.new" ]; then
		tree_md5 "$1/r/A" >"$SCRATCH/A.new"
		cmp -s "$SCRATCH/A.new" "$SCRATCH/A.old" &&
			fail "the clean run did not change the replica"
		must_pass ds check -q --compare "$1/m" "$1/r"
	fi
	consistent "$1"
	[ "$(cat "$CRASH_OUTCOME_FILE")" = new ] || fail "the replica was not updated"
}

crash_rerun() {
	must_pass ds replica -q --slot crash -e "$SSH" -d "$DSDIR" "h:$1/m" "$1/r"
	tree_md5 "$1/r/A" | cmp -s - "$SCRATCH/A.new" || fail "A/ after the rerun"
	# the rerun's request proved the replica holds the new tid (or the
	# old one, when the killed run did not get to apply)
	must_pass ds replica --slots "$1/m"
	[ "$(wc -l <"$LAST_STDOUT")" = 1 ] || fail "no slot after the rerun"
}

crash_enumerate
