#!/bin/bash
# ds replica --init against a master that runs the original replica.py:
# the original's recorded answers (tests/fixtures/orig-init.json) replayed
# by tests/fixtures/replay-orig-ssh.sh standing in for ssh, the cat of the
# master's config files run for real; killed or failing with ENOSPC/EIO at
# each durable I/O call of the replica side (the empty storage made as
# REPLICA.init-PID, the master's config/identity and config/settings
# written over mkds's, the whole history spooled, committed and applied
# there, the rename into place). Afterwards:
#  - REPLICA does not exist, or it is complete: its A/ is exactly a clean
#    run's (tree_md5: paths, types, modes, md5s), `ds check` passes and
#    `ds check --compare MASTER REPLICA` too, with the master's identity
#    and settings;
#  - after an error injected once, no REPLICA.init-* working directory is
#    left (a kill may leave one: it never becomes REPLICA, and the next
#    --init uses its own);
#  - `ds replica --init` run again (when there is no replica) completes.
. "$(dirname "$0")/lib.sh"

CRASH_SUB=replica
CRASH_KIND_BUDGET=16
CRASH_ERROR_BUDGET=8
CRASH_STICKY_BUDGET=3
CRASH_POWERLOSS=1
CRASH_POWERLOSS_BUDGET=6
FX=$DS_MANIFEST_DIR
SSH="bash $FX/replay-orig-ssh.sh"
export ORIG_REPLAY_INDEX=$FX/orig-init.json
export ORIG_REPLAY_RESPONSES=$DS_FIXTURE_DIR/responses
mkdir -p "$SCRATCH/m"
M=$SCRATCH/m/bushy-replica-old
fixture_copy bushy-replica-old "$M"
tree_md5 "$M/A" >"$SCRATCH/A.master"
CRASH_DESC="ds replica -q --init -e '$SSH' -d /opt/ds h:$M \$RUN/r"

crash_setup() { :; }
crash_cmd() { "$DS_BIN" replica -q --init -e "$SSH" -d /opt/ds "h:$M" "$1/r"; }

# REPLICA is absent, or complete and equal to the master
absent_or_complete() {
	local r=$1/r
	if [ ! -e "$r" ]; then
		crash_outcome none
		return 0
	fi
	[ -e "$SCRATCH/A.new" ] || fail "no clean run's A/ to compare with"
	tree_md5 "$r/A" | cmp -s - "$SCRATCH/A.new" ||
		fail "$r exists but its A/ is not a clean run's"
	cmp -s "$M/config/identity" "$r/config/identity" || fail "identity differs"
	cmp -s "$M/config/settings" "$r/config/settings" || fail "settings differ"
	must_pass ds check -q "$r"
	must_pass ds check -q --compare "$M" "$r"
	crash_outcome made
}

crash_check_killed() { absent_or_complete "$1"; }

crash_check_failed() {
	absent_or_complete "$1"
	case $CRASH_KIND in
	*-sticky) ;;    # the cleanup's own unlinks fail too
	*)
		if ls -d "$1"/r.init-* >/dev/null 2>&1; then
			fail "an error left the working directory" \
			     "$(ls -d "$1"/r.init-*)"
		fi ;;
	esac
}

crash_check_done() {
	local r=$1/r
	[ -e "$SCRATCH/A.new" ] || tree_md5 "$r/A" >"$SCRATCH/A.new"
	absent_or_complete "$1"
	[ "$(cat "$CRASH_OUTCOME_FILE")" = made ] || fail "the clean run made no replica"
}

crash_rerun() {
	local r=$1/r
	[ -e "$r" ] ||
		must_pass "$DS_BIN" replica -q --init -e "$SSH" -d /opt/ds "h:$M" "$r"
	tree_md5 "$r/A" | cmp -s - "$SCRATCH/A.new" || fail "A/ after the rerun"
	must_pass ds check -q --compare "$M" "$r"
	tree_md5 "$M/A" | cmp -s - "$SCRATCH/A.master" || fail "the master's A/ changed"
}

crash_enumerate
