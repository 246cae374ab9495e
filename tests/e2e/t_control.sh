#!/bin/bash
# A live storage: a process (ds-test-holder, standing in for a ZEO server)
# holds the master open with its control socket (DS_OPEN_CONTROL) and
# commits every few milliseconds, while `ds snapshot` backs it up (A/ does
# not move while COMMAND runs) and `ds replica` replicates it again and
# again, locally and over ssh, with no snapshot.conf (the socket is found
# by itself) and with a `control` line. Then: the holder stops, and both
# replicas equal the master (ds check --compare) and check clean.
# Must-fail and crash cases: garbage on the socket, a symlinked
# misc/control, a stale one left by a holder killed -9, and a holder
# killed -9 while `ds snapshot` holds snapshot mode through it.
. "$(dirname "$0")/lib.sh" || exit 1
: "${DS_HOLDER:?DS_HOLDER must name ds-test-holder (ctest sets it)}"

DSDIR=$(dirname "$DS_BIN")
M=$SCRATCH/master
R=$SCRATCH/replica
R2=$SCRATCH/replica-ssh
HOLDER=
trap 'rc=$?; [ -z "$HOLDER" ] || kill -9 "$HOLDER" 2>/dev/null || true; set +e; (exit $rc); e2e_exit' EXIT

# start_holder DIR: the holder on DIR, waited for until its socket listens
start_holder() {
	rm -f "$SCRATCH/ready" "$SCRATCH/tid"
	"$DS_HOLDER" -i 2 -r "$SCRATCH/ready" -t "$SCRATCH/tid" "$1" \
		>"$SCRATCH/holder.out" 2>"$SCRATCH/holder.err" &
	HOLDER=$!
	for _ in $(seq 6000); do
		[ -s "$SCRATCH/ready" ] && [ -s "$SCRATCH/tid" ] && return 0
		kill -0 "$HOLDER" 2>/dev/null || break
		sleep 0.01
	done
	cat "$SCRATCH/holder.err" >&2
	fail "the holder did not start on $1"
}

# stop_holder: SIGTERM, it closes the storage cleanly; its last tid
stop_holder() {
	kill -TERM "$HOLDER"
	wait "$HOLDER" || { cat "$SCRATCH/holder.err" >&2; fail "holder failed"; }
	HOLDER=
	HOLDER_LAST=$(sed -n 's/^last //p' "$SCRATCH/holder.out")
	[ -n "$HOLDER_LAST" ] || fail "the holder committed nothing"
}

# wait_past TID: until the holder has committed something after TID
wait_past() {
	for _ in $(seq 6000); do
		[ "$(cat "$SCRATCH/tid" 2>/dev/null)" != "$1" ] && return 0
		sleep 0.01
	done
	fail "the holder stopped committing"
}

last_tid() {
	ds log -n 1 "$1" | head -1 | cut -d' ' -f1
}

must_pass ds gen --objects 300 --transactions 60 --seed 7 "$M"
must_pass ds replica --init "$M" "$R"
start_sshd
must_pass ds replica --init -e "$SSH_CMD" -d "$DSDIR" "dshost:$M" "$R2"

start_holder "$M"
[ -S "$M/misc/control" ] || fail "no socket at misc/control"
assert_eq 600 "$(stat -c %a "$M/misc/control")" "mode of misc/control"
# nothing can open it directly now
printf 'x' >"$SCRATCH/pickle"
must_fail 3 ds commit "$M" new="$SCRATCH/pickle"

# ds snapshot: through the socket, found without a snapshot.conf; A/ does
# not change while COMMAND runs although the holder goes on committing
must_pass ds snapshot --storage "$M" bash -c '
	set -e
	cat "$SNAPSHOT_DIRECTORY/misc/snapshot" >"$1/code"
	find "$SNAPSHOT_DIRECTORY/A" -type f -printf "%p %s %T@\n" | sort >"$1/A1"
	t=$(cat "$1/tid")
	for i in $(seq 6000); do [ "$(cat "$1/tid")" != "$t" ] && break; sleep 0.01; done
	[ "$(cat "$1/tid")" != "$t" ]
	find "$SNAPSHOT_DIRECTORY/A" -type f -printf "%p %s %T@\n" | sort >"$1/A2"
	"$2" check -q "$SNAPSHOT_DIRECTORY"' sh "$SCRATCH" "$DS_BIN"
assert_contains "$LAST_STDERR" "Entered snapshot using $M/misc/control"
assert_contains "$LAST_STDERR" "Left snapshot mode"
grep -q '^user/' "$SCRATCH/code" || fail "snapshot code: $(cat "$SCRATCH/code")"
cmp -s "$SCRATCH/A1" "$SCRATCH/A2" || fail "A/ changed during the snapshot"

# ds replica, again and again, local and over ssh, while it commits
prev=$(last_tid "$R")
for i in 1 2 3 4; do
	wait_past "$(last_tid "$R")"
	must_pass ds replica "$M" "$R"
	assert_contains "$LAST_STDERR" "Replica complete"
	must_pass ds check -q "$R"
	wait_past "$(last_tid "$R2")"
	must_pass ds replica -e "$SSH_CMD" -d "$DSDIR" "dshost:$M" "$R2"
	assert_contains "$LAST_STDERR" "Replica complete"
	must_pass ds check -q "$R2"
done
[ "$(last_tid "$R")" != "$prev" ] || fail "the replica did not move"
# the master side may also be told to use the socket (and only it)
printf 'control\nnodirect\n' >"$M/config/snapshot.conf"
wait_past "$(last_tid "$R")"
must_pass ds replica -v "$M" "$R"
assert_contains "$LAST_STDERR" "misc/control"
must_pass ds whatsnew --storage "$M" "$prev"

# garbage on the socket: answered, and the storage keeps working
python3 - "$M/misc/control" >"$SCRATCH/garbage.out" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rwb", 0)
print(f.readline().decode().strip())
for req in [b"hello\n", b"enter\n", b"enter a b\n", b"\x00\xff\n",
            b"leave nobody\n", b"status\n"]:
    f.write(req)
    print(f.readline().decode().strip())
f.write(b"x" * 5000)
print(f.readline().decode().strip())
EOF
assert_contains "$SCRATCH/garbage.out" "dirstorage-control 1"
assert_eq 5 "$(grep -c '^error invalid' "$SCRATCH/garbage.out")" "invalid replies"
assert_contains "$SCRATCH/garbage.out" "error state"
assert_contains "$SCRATCH/garbage.out" "ok -"
assert_contains "$SCRATCH/garbage.out" "error invalid request longer"
must_pass ds snapshot -q --storage "$M" true

stop_holder
[ ! -e "$M/misc/control" ] || fail "misc/control left after a clean close"
rm "$M/config/snapshot.conf"
must_pass ds replica "$M" "$R"
must_pass ds replica -e "$SSH_CMD" -d "$DSDIR" "dshost:$M" "$R2"
assert_eq "$HOLDER_LAST" "$(last_tid "$R")" "the replica's last transaction"
assert_eq "$HOLDER_LAST" "$(last_tid "$R2")" "the ssh replica's last transaction"
must_pass ds check "$M"
must_pass ds check "$R"
must_pass ds check --compare "$M" "$R"
must_pass ds check --compare "$M" "$R2"

# must fail: misc/control a symlink (the holder refuses to start, and the
# link and its target stay as they were)
ln -s "$SCRATCH/elsewhere" "$M/misc/control"
must_fail 1 "$DS_HOLDER" "$M"
assert_contains "$LAST_STDERR" "symbolic link"
[ -L "$M/misc/control" ] && [ ! -e "$SCRATCH/elsewhere" ] ||
	fail "the symlink or its target changed"
# the client refuses it too (and falls back to direct: nobody holds M)
must_pass ds snapshot -v --storage "$M" true
assert_contains "$LAST_STDERR" "symbolic link"
assert_contains "$LAST_STDERR" "direct access"
rm "$M/misc/control"
# a regular file is not ours to remove either
: >"$M/misc/control"
must_fail 1 "$DS_HOLDER" "$M"
assert_contains "$LAST_STDERR" "not a socket"
rm "$M/misc/control"

# a holder killed -9 leaves a stale socket: clients fall back to direct,
# the next holder replaces it
start_holder "$M"
kill -9 "$HOLDER"
wait "$HOLDER" 2>/dev/null || true
HOLDER=
[ -S "$M/misc/control" ] || fail "expected a stale socket after kill -9"
must_pass ds snapshot -v --storage "$M" true
assert_contains "$LAST_STDERR" "nobody listens"
assert_contains "$LAST_STDERR" "direct access"
start_holder "$M"
must_pass ds snapshot --storage "$M" true
assert_contains "$LAST_STDERR" "Entered snapshot using $M/misc/control"

# crash: the holder killed -9 while `ds snapshot` holds snapshot mode
# through it. Leaving fails (exit 4, COMMAND succeeded); the storage is a
# snapshot, opens, checks, and replicates.
must_fail 4 ds snapshot --storage "$M" bash -c '
	kill -9 "$1"
	while kill -0 "$1" 2>/dev/null; do sleep 0.01; done' sh "$HOLDER"
wait "$HOLDER" 2>/dev/null || true
HOLDER=
assert_contains "$LAST_STDERR" "closed the connection"
grep -q '^user/' "$M/misc/snapshot" || fail "not left in snapshot mode"
must_pass ds check "$M"
start_holder "$M"
stop_holder
must_pass ds check "$M"
must_pass ds replica "$M" "$R"
assert_eq "$HOLDER_LAST" "$(last_tid "$R")" "replica after the crash"
must_pass ds check --compare "$M" "$R"
