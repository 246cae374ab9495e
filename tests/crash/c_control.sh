#!/bin/bash
# `ds snapshot --storage S -- true` against a live storage: a holder
# process (ds-test-holder) keeps S open with its control socket and commits
# every 20 ms, so the snapshot goes through misc/control. ds snapshot is
# killed, or fails with ENOSPC/EIO, at each of its own durable I/O calls
# (locking misc/sublock after the storage entered snapshot mode for it,
# unlocking it before leaving). Afterwards:
#  - a killed client never leaves the live storage frozen: the storage
#    leaves snapshot mode once the dead client's connection and lock are
#    gone, so the next `ds snapshot` gets through the socket;
#  - an injected error is reported (the driver checks the message) and the
#    storage was told to leave: the next `ds snapshot` gets through too;
#  - the holder never noticed: it goes on committing and closes cleanly,
#    misc/control goes with it, and `ds check` passes.
. "$(dirname "$0")/lib.sh"
: "${DS_HOLDER:?DS_HOLDER must name ds-test-holder (ctest sets it)}"

CRASH_SUB=snapshot
CRASH_DESC="ds snapshot --storage \$RUN/s -- true (a holder keeps \$RUN/s open)"
CRASH_KIND_BUDGET=20

ORIG=$SCRATCH/orig
must_pass ds mkds "$ORIG" Full bushy

# Holders are started detached (reparented away from this shell, so the
# checks, which run in subshells, can stop them); their pids are listed
# in $SCRATCH/holders for the cleanup.
holder_stop_all() {
	local pid
	[ -f "$SCRATCH/holders" ] || return 0
	while read -r pid; do
		kill -9 "$pid" 2>/dev/null || true
	done <"$SCRATCH/holders"
	: >"$SCRATCH/holders"
}
trap 'rc=$?; holder_stop_all; set +e; (exit $rc); e2e_exit' EXIT

crash_setup() {
	holder_stop_all
	cp -a "$ORIG" "$1/s"
	( "$DS_HOLDER" -i 20 -r "$1/ready" "$1/s" >"$1/holder.out" \
		2>"$1/holder.err" </dev/null & echo $! >"$1/holder.pid" )
	cat "$1/holder.pid" >>"$SCRATCH/holders"
	for _ in $(seq 6000); do
		[ -s "$1/ready" ] && return 0
		[ -s "$1/holder.err" ] && break
		sleep 0.01
	done
	cat "$1/holder.err" >&2
	return 1
}
crash_cmd() { "$DS_BIN" snapshot --storage "$1/s" -- true; }

# The live storage lets the next client in (retrying while a dead
# client's snapshot is still being left).
gets_through() {
	local s=$1/s
	[ -S "$s/misc/control" ] || fail "misc/control is gone"
	must_pass ds snapshot -t 120 -s 1 --storage "$s" -- true
	assert_contains "$LAST_STDERR" "Entered snapshot using $s/misc/control"
	assert_contains "$LAST_STDERR" "Left snapshot mode"
}

crash_check_killed() { gets_through "$1"; }
crash_check_failed() { gets_through "$1"; }
crash_check_done() { gets_through "$1"; }

crash_rerun() {
	local s=$1/s
	must_pass ds snapshot -q --storage "$s" -- true
	# stop the holder: a clean close, nothing lost
	kill -TERM "$(cat "$1/holder.pid")"
	for _ in $(seq 6000); do
		grep -q '^last ' "$1/holder.out" && break
		sleep 0.01
	done
	grep -q '^last ' "$1/holder.out" ||
		fail "the holder did not close cleanly: $(cat "$1/holder.err")"
	[ ! -s "$1/holder.err" ] || fail "holder: $(cat "$1/holder.err")"
	for _ in $(seq 6000); do
		[ -e "$s/misc/control" ] || break
		sleep 0.01
	done
	[ ! -e "$s/misc/control" ] || fail "misc/control left after close"
	must_pass ds check -q "$s"
	must_pass ds log -q -n 1 "$s"
	[ "$(cut -c1-16 "$LAST_STDOUT")" = "$(sed -n 's/^last //p' "$1/holder.out")" ] ||
		fail "the newest transaction is not the holder's last"
}

crash_enumerate
