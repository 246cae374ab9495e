#!/bin/bash
# ds processes killed with SIGKILL at random moments (during commits,
# flushes, the snapshot entered at close): every time, the next opener
# recovers (journal empty afterwards), every tid that `ds commit` printed
# is in the history with its pickle, and ds check passes.
# DS_CRASH_CLI_RUNS (default 12) sets the number of kills.
. "$(dirname "$0")/lib.sh" || exit 1

runs=${DS_CRASH_CLI_RUNS:-12}
S=$SCRATCH/s
must_pass ds mkds "$S"
# small batches, so that flushes happen while we kill
sed -i 's/^flush_transaction_threshold: .*/flush_transaction_threshold: 2/' "$S/config/settings"
: >"$SCRATCH/committed"
# job control: each background writer in a process group of its own
set -m
pid=
trap 'rc=$?; if [ -n "$pid" ]; then kill -9 -- "-$pid" 2>/dev/null || true; fi; set +e; (exit $rc); e2e_exit' EXIT
for run in $(seq "$runs"); do
	# a writer: ds gen appending to the storage, or a loop of ds commit
	if [ $((run % 2)) -eq 0 ]; then
		"$DS_BIN" gen -q --objects 30 --transactions 100000 --per-txn 3 \
			--seed "$run" "$S" >/dev/null 2>&1 &
		pid=$!
	else
		(
			i=0
			while :; do
				i=$((i + 1))
				oid=$(printf '%016X' $(( (i % 9) + 100 )))
				printf 'run %s commit %s' "$run" "$i" >"$SCRATCH/p.$run"
				tid=$("$DS_BIN" commit -m "run $run" "$S" \
					"$oid=$SCRATCH/p.$run") || exit 1
				echo "$tid $oid run $run commit $i" >>"$SCRATCH/committed"
			done
		) &
		pid=$!
	fi
	sleep "0.$((RANDOM % 9 + 1))"
	# kill the writer's whole process group (set -m gave each job its
	# own, with the job's pid as its id): killing by pid missed a ds
	# that the loop's $(...) subshell was forking at that instant, and
	# that ds, still holding the lock, made the reopen fail with exit 3.
	# The kernel does not let a fork escape a signal sent to its group.
	kill -9 -- "-$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	n=0
	# (zombies do not count: they hold no lock, and an orphan's parent
	# here may be slow to reap it)
	while pgrep -g "$pid" -r D,R,S,T,t >/dev/null; do
		n=$((n + 1))
		[ "$n" -lt 200 ] || fail "run $run: processes of group $pid still alive after SIGKILL"
		sleep 0.05
	done
	pid=
	# reopen: recovery; the journal is empty afterwards
	must_pass ds new-oid -q "$S"
	assert_eq 0 "$(ls "$S/journal" | wc -l)" "run $run: journal empty"
	assert_eq 0 "$(ls "$S/B" | wc -l)" "run $run: B empty"
	if ds help check >/dev/null 2>&1; then
		must_pass ds check "$S"
	fi
done
# every commit that printed its tid is there, with its pickle
must_pass ds log "$S"
cp "$LAST_STDOUT" "$SCRATCH/log"
n=0
while read -r tid oid rest; do
	grep -q "^$tid " "$SCRATCH/log" || fail "committed $tid missing from the history"
	must_pass ds cat "$S" "$oid" --serial "$tid"
	assert_eq "$rest" "$(cat "$LAST_STDOUT")" "pickle of $oid at $tid"
	n=$((n + 1))
done <"$SCRATCH/committed"
echo "checked $n reported commits over $runs kills" >&2
