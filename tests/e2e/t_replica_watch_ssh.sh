#!/bin/bash
# ds replica --watch over a real sshd on 127.0.0.1: the watch follows
# commits on the master; with sshd stopped it keeps retrying (exit-3
# class: "retrying in", failures counted, ds status shows the failure),
# and once the same sshd is back it picks up the commits made meanwhile;
# SIGTERM then exits 0 and the replica equals the master's history. All
# waits are polls with a generous bound; no timing is asserted.
. "$(dirname "$0")/lib.sh"

DSDIR=$(dirname "$DS_BIN")
M=$SCRATCH/master
R=$SCRATCH/replica
fixture_copy bushy-master "$M"
fixture_copy bushy-replica-old "$R"
echo "a pickle" >"$SCRATCH/p"
rtid() { "$DS_BIN" status --json "$1" 2>/dev/null | jq -r .tid; }
at_tid() { [ "$(rtid "$1")" = "$2" ]; }
commit() {
	"$DS_BIN" commit -m "$2" "$1" new="$SCRATCH/p" |
		grep -o '[0-9A-F]\{16\}' | head -1
}
wait_for() {
	local what=$1 i
	shift
	for i in $(seq 1 1200); do
		"$@" && return 0
		sleep 0.2
	done
	fail "waited 240 s for: $what"
}
retries() { [ "$(grep -c 'retrying in' "$SCRATCH/w.err")" -ge "$1" ]; }
# the same sshd again (same port, keys and config)
restart_sshd() {
	/usr/sbin/sshd -D -e -f "$SSHD_DIR/sshd_config" \
		2>>"$SSHD_DIR/sshd.log" </dev/null &
	SSHD_PID=$!
	LOOPBACK_SSHD_PID=$SSHD_PID
}

start_sshd
"$DS_BIN" replica --watch 1 --backoff-max 3 -e "$SSH_CMD" -d "$DSDIR" \
	"dshost:$M" "$R" 2>"$SCRATCH/w.err" &
W=$!
T1=$(commit "$M" one)
wait_for "the first increments over ssh" at_tid "$R" "$T1"

# the master unreachable: retried, not given up
stop_sshd
T2=$(commit "$M" two)
wait_for "three failed tries" retries 3
kill -0 "$W" || fail "--watch gave up on an unreachable master"
assert_contains "$SCRATCH/w.err" "connection to the master failed"
assert_contains "$SCRATCH/w.err" "(failure 3 in a row)"
assert_eq "$T1" "$(rtid "$R")" "replica while the master is unreachable"
must_pass ds status --json "$R"
[ "$(jq -r .consecutive_failures "$LAST_STDOUT")" -ge 1 ] ||
	fail "ds status does not show the failures"
assert_eq 3 "$(jq -r .last_failure.exit "$LAST_STDOUT")" "last failure's exit"

# back: the commits made meanwhile arrive
restart_sshd
wait_for "the increment after sshd came back" at_tid "$R" "$T2"
assert_contains "$SCRATCH/w.err" "working again after"
kill -TERM "$W"
rc=0
wait "$W" || rc=$?
assert_eq 0 "$rc" "--watch stopped by SIGTERM"
must_pass ds check --compare "$M" "$R"
must_pass ds status --json -e "$SSH_CMD" -d "$DSDIR" "$R" "dshost:$M"
assert_eq 0 "$(jq -r .lag_transactions "$LAST_STDOUT")" "lag at the end"
assert_eq 0 "$(jq -r .consecutive_failures "$LAST_STDOUT")" "failures at the end"
