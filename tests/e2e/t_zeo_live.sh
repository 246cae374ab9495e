#!/bin/bash
# A storage served by a real ZEO server, backed up and replicated live.
# `runzeo` with the dirstorage ZConfig component (<dirstorage>, control
# socket on by default) serves a master on 127.0.0.1 while two ZEO client
# processes commit without pause. Meanwhile: `ds replica --init` and then
# several increments keep two replicas up to date, one locally and one
# over the loopback sshd; after each, the replica passes `ds check` and
# its content equals the master's at the replica's last transaction
# (tests/e2e/zeo_live.py compare: transaction by transaction and object
# by object, through ZEO), and `ds check --compare` proves the same from
# the files. A ZEO client packs the master through ZODB (DB.pack, back to
# the replicas' last transaction) while the writers commit: the live
# master passes `ds check` and the replicas go on. `ds snapshot` tars
# config/ and A/ of the served master (the original's raw backup): the
# archive restores to a storage `ds check` accepts, equal to the master
# at its last transaction. At the end the writers stop, the server stops,
# master and replicas are equal (ds check --compare, zeo_live.py equal)
# and hold every commit of both writers.
# Registered only in builds that run the Python suite (CMakeLists.txt):
# it needs the project's virtualenv (ZODB, ZEO) and that build's
# dirstorage extension (DS_PYTHON, DS_PYTHON_LIB).
. "$(dirname "$0")/lib.sh" || exit 1
: "${DS_PYTHON:?DS_PYTHON must name the virtualenv python (ctest sets it)}"
: "${DS_PYTHON_LIB:?DS_PYTHON_LIB must name the built dirstorage package}"

HERE=$(cd "$(dirname "$0")" && pwd)
DSDIR=$(dirname "$DS_BIN")
VENV_BIN=$(dirname "$DS_PYTHON")
M=$SCRATCH/master
R=$SCRATCH/replica
R2=$SCRATCH/replica-ssh
STOP=$SCRATCH/stop
SERVER=
WRITERS=()
cleanup() {
	touch "$STOP"
	for p in "${WRITERS[@]}"; do kill "$p" 2>/dev/null || true; done
	[ -z "$SERVER" ] || kill -9 "$SERVER" 2>/dev/null || true
}
trap 'rc=$?; cleanup; set +e; (exit $rc); e2e_exit' EXIT

# python with that build's dirstorage first, libasan preloaded in the
# sanitizer build (only into Python: ssh and sshd run without it)
# (an array, not a function: `"${PY[@]}" ... &` makes $! the python
# process itself, so that it can be signalled)
PY=(env PYTHONPATH="$DS_PYTHON_LIB")
if [ -n "${DS_PYTHON_PRELOAD:-}" ]; then
	PY+=(LD_PRELOAD="$DS_PYTHON_PRELOAD"
	     ASAN_OPTIONS=detect_leaks=0:abort_on_error=1)
fi
py() {
	"${PY[@]}" "$@"
}
zl() {
	py "$DS_PYTHON" "$HERE/zeo_live.py" "$@" >"$LAST_STDOUT" 2>"$LAST_STDERR" || {
		cat "$LAST_STDOUT" "$LAST_STDERR" >&2
		fail "zeo_live.py $1 failed"
	}
	cat "$LAST_STDOUT" >&2
}
progress() {
	local n=0 f
	for f in "$SCRATCH"/progress-*; do
		[ -f "$f" ] && n=$((n + $(cat "$f")))
	done
	echo "$n"
}
# wait_commits N: until the writers have committed N more transactions
wait_commits() {
	local want=$(( $(progress) + $1 )) p
	for _ in $(seq 12000); do
		[ "$(progress)" -ge "$want" ] && return 0
		for p in "${WRITERS[@]}"; do
			kill -0 "$p" 2>/dev/null ||
				{ cat "$SCRATCH"/writer-*.err >&2; fail "a writer died"; }
		done
		sleep 0.05
	done
	fail "the writers stopped committing"
}
tid_of() {
	od -An -tx1 "$1/A/x/serial" | tr -d ' \n'
}

# the master: min_pack_time 0 so that the pack through ZODB below
# removes what it may (the default keeps ten minutes)
must_pass ds mkds "$M" Full bushy
sed -i 's/^min_pack_time: 600$/min_pack_time: 0/' "$M/config/settings"
grep -q '^min_pack_time: 0$' "$M/config/settings" || fail "settings not edited"

# runzeo on a free port (another test may take the port first: retry)
for attempt in 1 2 3 4 5; do
	PORT=$(py "$DS_PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	cat >"$SCRATCH/zeo.conf" <<-CONF
	%import dirstorage
	<zeo>
	  address 127.0.0.1:$PORT
	</zeo>
	<dirstorage 1>
	  path $M
	</dirstorage>
	<eventlog>
	  <logfile>
	    path $SCRATCH/zeo.log
	    level INFO
	  </logfile>
	</eventlog>
	CONF
	: >"$SCRATCH/zeo.log"
	"${PY[@]}" "$VENV_BIN/runzeo" -C "$SCRATCH/zeo.conf" >"$SCRATCH/runzeo.err" 2>&1 &
	SERVER=$!
	for _ in $(seq 1200); do
		grep -q "listening on ('127.0.0.1', $PORT)" "$SCRATCH/zeo.log" && break
		kill -0 "$SERVER" 2>/dev/null || break
		sleep 0.1
	done
	grep -q "listening on ('127.0.0.1', $PORT)" "$SCRATCH/zeo.log" && break
	kill -9 "$SERVER" 2>/dev/null || true
	wait "$SERVER" 2>/dev/null || true
	SERVER=
	grep -q "in use" "$SCRATCH/runzeo.err" "$SCRATCH/zeo.log" || break
done
[ -n "$SERVER" ] || { cat "$SCRATCH/runzeo.err" "$SCRATCH/zeo.log" >&2; fail "runzeo did not start"; }
[ -S "$M/misc/control" ] || fail "the served storage has no control socket"
# the server holds it: nothing opens it directly
printf 'x' >"$SCRATCH/pickle"
must_fail 3 ds commit "$M" new="$SCRATCH/pickle"

zl init "$PORT"
for w in a b; do
	"${PY[@]}" "$DS_PYTHON" "$HERE/zeo_live.py" writer "$PORT" "$w" "$STOP" \
		"$SCRATCH/progress-$w" >"$SCRATCH/writer-$w.out" \
		2>"$SCRATCH/writer-$w.err" &
	WRITERS+=($!)
done
wait_commits 6

# first copies, while the writers commit
must_pass ds replica --init "$M" "$R"
start_sshd
must_pass ds replica --init -e "$SSH_CMD" -d "$DSDIR" "dshost:$M" "$R2"

# check_copy COPY: ds check, then equal to the live master at its tid
check_copy() {
	must_pass ds check "$1"
	assert_contains "$LAST_STDOUT" " 0 problems"
	zl compare "$PORT" "$M" "$1"
	must_pass ds check --compare "$M" "$1"
}

check_copy "$R"
check_copy "$R2"
for i in 1 2 3; do
	wait_commits 8
	before=$(tid_of "$R")
	must_pass ds replica -v "$M" "$R"
	assert_contains "$LAST_STDERR" "Replica complete"
	must_pass ds replica -v -e "$SSH_CMD" -d "$DSDIR" "dshost:$M" "$R2"
	assert_contains "$LAST_STDERR" "Replica complete"
	[ "$(tid_of "$R")" != "$before" ] || fail "increment $i brought nothing"
	check_copy "$R"
	check_copy "$R2"
done

# pack through ZODB (a ZEO client's DB.pack) while the writers commit,
# keeping history back to the older replica's last transaction
older=$(printf '%s\n%s\n' "$(tid_of "$R")" "$(tid_of "$R2")" | sort | head -1)
wait_commits 6
zl pack "$PORT" "$older"
packed=$(od -An -tx1 "$M/A/x/packed" | tr -d ' \n')
[ "$packed" != "0000000000000000" ] || fail "the pack did not record x.packed"
[[ "$packed" < "$older" ]] || fail "packed $packed not before $older"
must_pass ds check "$M"
assert_contains "$LAST_STDOUT" " 0 problems"
leftovers=$(find "$M/A" -name '*-deleted' | wc -l)
[ "$leftovers" -gt 0 ] || fail "the pack removed nothing"
echo "pack: x.packed $packed, $leftovers files renamed *-deleted" >&2

for i in 4 5; do
	wait_commits 8
	must_pass ds replica "$M" "$R"
	must_pass ds replica -e "$SSH_CMD" -d "$DSDIR" "dshost:$M" "$R2"
	check_copy "$R"
	check_copy "$R2"
done

# a raw backup of the served master (doc/rawbackup.txt of the original:
# config/ and A/ while in snapshot mode): tar must not see A change
wait_commits 6
must_pass ds snapshot --storage "$M" sh -c \
	'tar -C "$SNAPSHOT_DIRECTORY" -cf "$0" config A' "$SCRATCH/backup.tar"
assert_contains "$LAST_STDERR" "Entered snapshot using"
mkdir "$SCRATCH/restored"
tar -C "$SCRATCH/restored" -xf "$SCRATCH/backup.tar"
mkdir "$SCRATCH/restored/B" "$SCRATCH/restored/journal" "$SCRATCH/restored/misc"
check_copy "$SCRATCH/restored"

# the end: writers stop, one more increment each, the server stops
touch "$STOP"
for p in "${WRITERS[@]}"; do
	wait "$p" || { cat "$SCRATCH"/writer-*.err >&2; fail "a writer failed"; }
done
WRITERS=()
must_pass ds replica "$M" "$R"
must_pass ds replica -e "$SSH_CMD" -d "$DSDIR" "dshost:$M" "$R2"
check_copy "$R"
kill -TERM "$SERVER"
# runzeo's status after SIGTERM is not ours to judge; the storage's
# close is: a clean one leaves the "shutdown" snapshot
wait "$SERVER" || true
SERVER=
assert_eq shutdown "$(cat "$M/misc/snapshot")" "closed cleanly"
must_pass ds check "$M"
for c in "$R" "$R2"; do
	assert_eq "$(tid_of "$M")" "$(tid_of "$c")" "replica at the master's tid"
	must_pass ds check --compare "$M" "$c"
	zl equal "$M" "$c"
done
# every commit of both writers: one key each in the shared tree
committed=0
for w in a b; do
	n=$(tail -1 "$SCRATCH/writer-$w.out" | sed 's/.*"committed": \([0-9]*\).*/\1/')
	committed=$((committed + n))
done
keys=$(tail -1 "$LAST_STDOUT" | sed 's/.*"keys": \([0-9]*\).*/\1/')
assert_eq "$committed" "$keys" "keys in the shared tree"
[ "$committed" -ge 40 ] || fail "only $committed commits"
echo "writers committed $committed transactions" >&2
