#!/bin/bash
# ds replica --watch and the --before-apply/--after-apply hooks, locally:
# the watch picks up the first increment and later commits (polled with a
# generous bound, no timing asserted), the hooks' environment describes
# each increment exactly, SIGTERM while an increment is in progress lets
# it finish (exit 0, replica checks and equals the master's history),
# SIGTERM while idle exits 0, a failing before-hook leaves the replica
# byte for byte as it was (one-shot and --watch: exit 1, stops), a
# before-hook's exit 3 is retried, a permanent error (another storage's
# identity) stops the watch with exit 1, and a hot standby: a process
# holding the replica's lock is stopped by the before-hook and started
# again by the after-hook (without hooks the same run is refused: in use).
. "$(dirname "$0")/lib.sh"

M=$SCRATCH/master
R=$SCRATCH/replica
fixture_copy bushy-master "$M"
fixture_copy bushy-replica-old "$R"
echo "a pickle" >"$SCRATCH/p"

# the replica's tid, read without its lock
rtid() { "$DS_BIN" status --json "$1" 2>/dev/null | jq -r .tid; }
mtid() { "$DS_BIN" log -n 1 "$1" | awk 'NR==1 {print $1}'; }
# wait_for WHAT CMD...: poll CMD until it succeeds (at most 240 s)
wait_for() {
	local what=$1 i
	shift
	for i in $(seq 1 1200); do
		"$@" && return 0
		sleep 0.2
	done
	fail "waited 240 s for: $what"
}
at_tid() { [ "$(rtid "$1")" = "$2" ]; }
# the replica without lock files and run record, and no spool left
state() {
	tree_md5 "$1" | grep -v -e ' \./misc/lock ' -e ' \./misc/sublock ' \
		-e ' \./misc/replica\.state '
}
commit() {
	"$DS_BIN" commit -m "$2" "$1" new="$SCRATCH/p" |
		grep -o '[0-9A-F]\{16\}' | head -1
}
# every before-hook line: BASE FIRST LAST N; FIRST must follow BASE in
# the master's history, LAST be N transactions later
check_hook_lines() {
	"$DS_BIN" log "$M" | awk '{print $1}' | tac >"$SCRATCH/chain"
	while read -r base first last n; do
		b=$(grep -n -x "$base" "$SCRATCH/chain" | cut -d: -f1)
		f=$(sed -n "$((b + 1))p" "$SCRATCH/chain")
		l=$(sed -n "$((b + n))p" "$SCRATCH/chain")
		assert_eq "$f" "$first" "DS_FIRST_TID after $base"
		assert_eq "$l" "$last" "DS_LAST_TID of $n transactions after $base"
	done <"$1"
}

# ---- the watch follows the master; hooks see each increment ----
H=$SCRATCH/hooks
mkdir "$H"
"$DS_BIN" replica --watch 1 \
	--before-apply 'echo "$DS_BASE_TID $DS_FIRST_TID $DS_LAST_TID $DS_TRANSACTIONS" >>'"$H/before"'; [ "$DS_REPLICA" = "'"$R"'" ] && [ "$DS_MASTER" = "'"$M"'" ]' \
	--after-apply 'echo "$DS_RESULT $DS_LAST_TID" >>'"$H/after" \
	"$M" "$R" 2>"$SCRATCH/w1.err" &
W=$!
MT=$(mtid "$M")
wait_for "the first increment" at_tid "$R" "$MT"
T1=$(commit "$M" one)
T2=$(commit "$M" two)
wait_for "the two commits" at_tid "$R" "$T2"
T3=$(commit "$M" three)
wait_for "the third commit" at_tid "$R" "$T3"
kill -TERM "$W"
rc=0
wait "$W" || rc=$?
assert_eq 0 "$rc" "--watch stopped by SIGTERM while idle"
assert_contains "$SCRATCH/w1.err" "stopped by a signal"
check_hook_lines "$H/before"
assert_eq "$T3" "$(tail -1 "$H/before" | cut -d' ' -f3)" "last hooked increment"
assert_eq "$(wc -l <"$H/before")" "$(grep -c '^applied ' "$H/after")" \
	"after-hooks with DS_RESULT=applied"
# nothing new: no hook (an idle poll does not stop a standby)
grep -q " 0$" "$H/before" && fail "a hook ran for an empty increment"
must_pass ds check "$R"
must_pass ds check --compare "$M" "$R"
[ ! -e "$R/misc/.replica.watch" ] || fail "spool left"
assert_contains "$R/misc/replica.state" "tid $T3"

# ---- SIGTERM during an increment: it finishes, exit 0 ----
T4=$(commit "$M" four)
"$DS_BIN" replica --watch 1 \
	--before-apply "touch '$H/in-hook'; sleep 3" \
	"$M" "$R" 2>"$SCRATCH/w2.err" &
W=$!
wait_for "the before-hook" test -e "$H/in-hook"
kill -TERM "$W"
rc=0
wait "$W" || rc=$?
assert_eq 0 "$rc" "--watch stopped by SIGTERM during an increment"
assert_eq "$T4" "$(rtid "$R")" "the increment in progress was finished"
assert_eq 0 "$(ls -A "$R/journal" | wc -l)" "entries in journal/"
must_pass ds check "$R"
must_pass ds check --compare "$M" "$R"

# ---- a failing before-hook: the replica untouched ----
T5=$(commit "$M" five)
before=$(state "$R")
must_fail 1 ds replica -q --before-apply 'exit 7' "$M" "$R"
assert_contains "$LAST_STDERR" "the --before-apply hook failed (exit 7)"
assert_contains "$LAST_STDERR" "abandoned, the replica is untouched"
assert_eq "$before" "$(state "$R")" "replica after a failing before-hook"
assert_contains "$R/misc/replica.state" "failure_exit 1"
must_fail 1 ds replica --watch 1 --before-apply 'exit 7' \
	--after-apply "touch '$H/after-ran'" "$M" "$R"
assert_contains "$LAST_STDERR" "--watch: stopped (exit 1"
assert_eq "$before" "$(state "$R")" "replica after a failing before-hook (--watch)"
[ ! -e "$H/after-ran" ] || fail "after-hook ran although before-hook failed"
# exit 3 from the hook: try again later (one-shot exit 3; --watch retries)
must_fail 3 ds replica -q --before-apply 'exit 3' "$M" "$R"
assert_eq "$before" "$(state "$R")" "replica after a before-hook's exit 3"
echo 0 >"$H/count"
"$DS_BIN" replica --watch 1 --backoff-max 2 \
	--before-apply "n=\$(cat '$H/count'); echo \$((n + 1)) >'$H/count'; [ \$n -ge 2 ] || exit 3" \
	"$M" "$R" 2>"$SCRATCH/w3.err" &
W=$!
wait_for "the increment after two refusals" at_tid "$R" "$T5"
kill -TERM "$W"
rc=0
wait "$W" || rc=$?
assert_eq 0 "$rc" "--watch exit after hook retries"
assert_contains "$SCRATCH/w3.err" "asked to try again later (exit 3)"
assert_contains "$SCRATCH/w3.err" "retrying in"
assert_contains "$SCRATCH/w3.err" "(failure 2 in a row)"
must_pass ds check --compare "$M" "$R"

# ---- a permanent error stops the watch ----
O=$SCRATCH/other
fixture_copy bushy-foreign-replica "$O"
before=$(state "$R")
must_fail 1 ds replica --watch 1 "$O" "$R"
assert_contains "$LAST_STDERR" "different identity"
assert_contains "$LAST_STDERR" "--watch: stopped (exit 1"
assert_eq "$before" "$(state "$R")" "replica after a refused watch"

# ---- a hot standby: a server holds the replica's lock ----
command -v flock >/dev/null || fail "flock(1) is needed"
# a stand-in for a read-only server: holds misc/lock (its output away
# from ours, so that a failure does not leave ctest waiting on it)
cat >"$H/serve" <<EOF
#!/bin/sh
flock -x -n "$R/misc/lock" -c 'echo \$\$ >"$H/server.pid"; exec sleep 300' \\
	</dev/null >/dev/null 2>&1 &
for i in \$(seq 1 100); do [ -s "$H/server.pid" ] && exit 0; sleep 0.1; done
exit 1
EOF
cat >"$H/unserve" <<EOF
#!/bin/sh
kill "\$(cat "$H/server.pid")" 2>/dev/null
rm -f "$H/server.pid"
# the lock goes with the process
for i in \$(seq 1 100); do
	flock -x -n "$R/misc/lock" true && exit 0
	sleep 0.1
done
exit 1
EOF
chmod +x "$H/serve" "$H/unserve"
sh "$H/serve"
T6=$(commit "$M" six)
must_fail 3 ds replica -q "$M" "$R"
assert_contains "$LAST_STDERR" "in use"
must_pass ds replica -q --before-apply "$H/unserve" --after-apply "$H/serve" "$M" "$R"
assert_eq "$T6" "$(rtid "$R")" "hot standby replica after the hooks"
[ -s "$H/server.pid" ] || fail "the after-hook did not start the server again"
flock -x -n "$R/misc/lock" true && fail "the server does not hold the lock again"
sh "$H/unserve"
must_pass ds check --compare "$M" "$R"
