#!/bin/bash
# --deadline: a master that sends one byte now and then is never silent
# for --timeout, so only an overall deadline stops it from holding the
# replica's lock for ever. The master side here is an -e wrapper script
# that leaves the work to children of its own: one dribbles the recorded
# increment a byte at a time, another ignores SIGTERM. When the deadline
# fires: exit 3 (try again later), the replica exactly as it was, no
# spool left, and no process of the wrapper's survives (its whole process
# group is stopped; checked by pid file). Time bounds are generous. And,
# under a terminal (script), a master side that stops to prompt is
# reported at once (exit 1) and does not survive; and a master side whose
# ds replica is killed with -9 is stopped by the kernel.
. "$(dirname "$0")/lib.sh"

state() {
	tree_md5 "$1" | grep -v -e ' \./misc/lock ' -e ' \./misc/sublock ' -e ' \./misc/replica\.state '
}
# alive PID: running (a zombie waiting for its parent counts as dead)
alive() {
	local st
	st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

R=$SCRATCH/replica
fixture_copy bushy-replica-old "$R"
state "$R" >"$SCRATCH/before"
RESP=$DS_FIXTURE_DIR/responses/bushy-basic.tar

cat >"$SCRATCH/wrapper.sh" <<EOF
#!/bin/bash
# stands in for ssh: its children do the talking, it only waits
cat >/dev/null
(
	echo \$BASHPID >"$SCRATCH/dribbler.pid"
	i=0
	while :; do
		tail -c +\$((i + 1)) "$RESP" | head -c 1
		i=\$((i + 1))
		sleep 0.2
	done
) &
(
	trap '' TERM
	echo \$BASHPID >"$SCRATCH/stubborn.pid"
	while :; do sleep 0.2; done
) &
wait
EOF

start=$(date +%s)
must_fail 3 ds replica --timeout 60 --deadline 3 \
	-e "bash $SCRATCH/wrapper.sh" "master:/srv/m" "$R"
took=$(( $(date +%s) - start ))
assert_contains "$LAST_STDERR" "did not finish within 3 s (--deadline)"
assert_contains "$LAST_STDERR" "try again later"
# it did stop: far sooner than --timeout could have (generous bound)
[ "$took" -lt 50 ] || fail "the deadline did not stop it ($took s)"
state "$R" >"$SCRATCH/after"
diff "$SCRATCH/before" "$SCRATCH/after" >&2 || fail "the replica changed"
[ ! -e "$R/misc/.replica.incoming" ] || fail "spool left behind"
[ ! -e "$R/journal/replica.tar" ] || fail "increment committed"
for who in dribbler stubborn; do
	[ -s "$SCRATCH/$who.pid" ] || fail "the $who never started"
	pid=$(cat "$SCRATCH/$who.pid")
	if alive "$pid"; then
		kill -9 "$pid" 2>/dev/null || true
		fail "the wrapper's $who (pid $pid) survived"
	fi
done
# the replica is not locked any more: a good master works at once
fixture_copy bushy-master "$SCRATCH/master"
must_pass ds replica -q --deadline 600 "$SCRATCH/master" "$R"

# bad values are usage errors; 0 (no deadline) is accepted
must_fail 2 ds replica --deadline soon "$SCRATCH/master" "$R"
must_fail 2 ds replica --deadline -1 "$SCRATCH/master" "$R"
must_pass ds replica -q --deadline 0 "$SCRATCH/master" "$R"
must_pass ds replica --help
assert_contains "$LAST_STDOUT" "--deadline SECONDS"
assert_contains "$LAST_STDOUT" "14400, 4 hours"

# With a terminal: the master side is not in the terminal's foreground
# group, so an ssh that prompts (password, unknown host key) is stopped by
# the kernel; that is said at once (exit 1: ssh must log in without
# asking), not after --timeout, and the prompting process is gone.
# script(1) gives ds a terminal.
cat >"$SCRATCH/prompt.sh" <<EOF
#!/bin/bash
cat >/dev/null
echo \$\$ >"$SCRATCH/prompt.pid"
printf 'password: ' >/dev/tty
read -r pw </dev/tty
EOF
state "$R" >"$SCRATCH/before"
must_fail 1 script -qec "'$DS_BIN' replica --timeout 60 -e 'bash $SCRATCH/prompt.sh' h:/x '$R' 2>'$SCRATCH/prompt.err'" /dev/null
assert_contains "$SCRATCH/prompt.err" "stopped to ask something on the terminal"
state "$R" >"$SCRATCH/after"
diff "$SCRATCH/before" "$SCRATCH/after" >&2 || fail "the replica changed"
pid=$(cat "$SCRATCH/prompt.pid")
if alive "$pid"; then
	kill -9 "$pid" 2>/dev/null || true
	fail "the prompting master side (pid $pid) survived"
fi

# ds killed outright (kill -9, nothing of ours runs): the kernel tells the
# master side (SIGTERM on its parent's death), which is in a group of its
# own and would otherwise go on.
cat >"$SCRATCH/orphan.sh" <<EOF
#!/bin/bash
cat >/dev/null
echo \$\$ >"$SCRATCH/orphan.pid"
while :; do sleep 0.2; done
EOF
"$DS_BIN" replica -q --timeout 60 -e "bash $SCRATCH/orphan.sh" h:/x "$R" \
	2>/dev/null &
dspid=$!
for i in $(seq 300); do [ -s "$SCRATCH/orphan.pid" ] && break; sleep 0.1; done
[ -s "$SCRATCH/orphan.pid" ] || fail "the master side never started"
kill -9 "$dspid"
wait "$dspid" 2>/dev/null || true
pid=$(cat "$SCRATCH/orphan.pid")
for i in $(seq 300); do alive "$pid" || break; sleep 0.1; done
if alive "$pid"; then
	kill -9 "$pid" 2>/dev/null || true
	fail "the master side (pid $pid) outlived a killed ds replica"
fi
