#!/bin/bash
# ds replica over a real sshd on 127.0.0.1: the first copy with --init,
# increments while the master moves on between runs (its history replaced
# by the original's later states of the same storage, then real commits
# with `ds commit`), a no-op increment, a master directory whose
# name has spaces and shell metacharacters (passed intact, nothing run),
# the refusals with their exit codes (1: needs a human, 3: try again
# later) and the replica left as it was, a connection that fails or is cut
# mid-stream, a master whose x.oid is below the replica's (over ssh and
# locally), and local mode.
. "$(dirname "$0")/lib.sh"

DSDIR=$(dirname "$DS_BIN")

# the replica's state without the lock files (they hold the last pid)
state() {
	tree_md5 "$1" | grep -v -e ' \./misc/lock ' -e ' \./misc/sublock '
}
same_A() {
	local a b
	a=$(tree_md5 "$1/A")
	b=$(tree_md5 "$2/A")
	[ "$a" = "$b" ] || {
		diff <(echo "$a") <(echo "$b") | head -20 >&2
		fail "A/ of $2 differs from $1"
	}
}
closed() {
	assert_eq shutdown "$(cat "$1/misc/snapshot")" "misc/snapshot of $1"
	assert_eq 0 "$(ls -A "$1/journal" | wc -l)" "entries in $1/journal"
	[ ! -e "$1/misc/.replica.incoming" ] || fail "spool left in $1"
}
# replace a master's storage by another state of the same history, as if
# it had committed (or packed) meanwhile
become() {
	rm -rf "$2"
	fixture_copy "$1" "$2"
}

start_sshd
M="$SCRATCH/master dir with spaces;\$(touch pwned)'q"
R=$SCRATCH/replica
become bushy-replica-old "$M"

# --init over ssh: a new replica from nothing
must_pass ds replica --init -e "$SSH_CMD" -d "$DSDIR" "dshost:$M" "$R"
assert_contains "$LAST_STDERR" "Replica complete"
same_A "$M" "$R"
closed "$R"
cmp -s "$M/config/identity" "$R/config/identity" || fail "identity differs"
cmp -s "$M/config/settings" "$R/config/settings" || fail "settings differ"
[ ! -e "$SCRATCH/pwned" ] && [ ! -e "$HOME/pwned" ] && [ ! -e pwned ] ||
	fail "the master directory's name ran a command"
assert_contains "$SSHD_DIR/sshd.log" "Accepted publickey"
# --init never overwrites
must_fail 1 ds replica --init -q -e "$SSH_CMD" -d "$DSDIR" "dshost:$M" "$R"
assert_contains "$LAST_STDERR" "exists already"

# nothing new: a no-op increment, 1024 zero bytes
must_pass ds replica -e "$SSH_CMD" -d "$DSDIR" "dshost:$M" "$R"
assert_contains "$LAST_STDERR" "No transactions since"
assert_contains "$LAST_STDERR" "Replica complete"
assert_eq 1024 "$(stat -c %s "$R/misc/replica.previous")" "no-op increment"
closed "$R"

# the master commits: 21 more transactions (the original's later state)
become bushy-master "$M"
must_pass ds replica -v -e "$SSH_CMD" -d "$DSDIR" "dshost:$M" "$R"
assert_contains "$LAST_STDERR" "Increment size"
assert_contains "$LAST_STDERR" "21 transactions"
assert_contains "$LAST_STDERR" "snapshot mode held"
assert_contains "$LAST_STDERR" "Replica complete"
same_A "$M" "$R"
closed "$R"
cmp -s "$R/misc/replica.previous" "$DS_FIXTURE_DIR/responses/bushy-basic.tar" ||
	fail "misc/replica.previous is not the original's increment"
# -q: silent
must_pass ds replica -q -e "$SSH_CMD" -d "$DSDIR" "dshost:$M" "$R"
assert_eq 0 "$(wc -c <"$LAST_STDERR")" "bytes on stderr with -q"

# real commits between runs
for round in 1 2 3; do
	for i in $(seq 1 "$round"); do
		echo "round $round edit $i" >"$SCRATCH/pickle"
		must_pass ds commit -q -m "round $round edit $i" "$M" \
			new="$SCRATCH/pickle" 0000000000000000="$SCRATCH/pickle"
	done
	must_pass ds replica -v -e "$SSH_CMD" -d "$DSDIR" "dshost:$M" "$R"
	assert_contains "$LAST_STDERR" " $round transactions"
	same_A "$M" "$R"
	closed "$R"
done

# user@host: the -l option reaches ssh
must_pass ds replica -q -e "$SSH_CMD" -d "$DSDIR" "$(id -un)@dshost:$M" "$R"

# refusals: the replica's files stay as they were
state "$R" >"$SCRATCH/before"
check_unchanged() {
	state "$R" >"$SCRATCH/after"
	diff "$SCRATCH/before" "$SCRATCH/after" >&2 ||
		fail "the replica changed after a refusal"
}
# the master was packed past the replica's tid
become bushy-packed-master "$SCRATCH/packed"
R2=$SCRATCH/replica-old
fixture_copy bushy-replica-old "$R2"
state "$R2" >"$SCRATCH/before2"
must_fail 1 ds replica -e "$SSH_CMD" -d "$DSDIR" "dshost:$SCRATCH/packed" "$R2"
assert_contains "$LAST_STDERR" "storage has been packed since the last replica"
state "$R2" >"$SCRATCH/after2"
cmp -s "$SCRATCH/before2" "$SCRATCH/after2" || fail "replica changed (packed)"
# another storage
fixture_copy bushy-foreign-replica "$SCRATCH/foreign"
must_fail 1 ds replica -e "$SSH_CMD" -d "$DSDIR" "dshost:$M" "$SCRATCH/foreign"
assert_contains "$LAST_STDERR" "different identity"
# diverged: the replica's last transaction is not on the master
fixture_copy bushy-diverged-replica "$SCRATCH/diverged"
must_fail 1 ds replica -e "$SSH_CMD" -d "$DSDIR" "dshost:$M" "$SCRATCH/diverged"
assert_contains "$LAST_STDERR" "reference transaction does not exist"
# the replica is newer than the master
become bushy-replica-old "$SCRATCH/older"
must_fail 1 ds replica -e "$SSH_CMD" -d "$DSDIR" "dshost:$SCRATCH/older" "$R"
assert_contains "$LAST_STDERR" "reference transaction does not exist"
check_unchanged
# the master directory is not a storage
must_fail 1 ds replica -e "$SSH_CMD" -d "$DSDIR" "dshost:$SCRATCH/nothing" "$R"
assert_contains "$LAST_STDERR" "ds replica: master side: "
check_unchanged
# no ds where -d says
must_fail 1 ds replica -e "$SSH_CMD" -d /nonexistent "dshost:$M" "$R"
check_unchanged
# the replica is not a storage / not Full
must_fail 1 ds replica -e "$SSH_CMD" -d "$DSDIR" "dshost:$M" "$SCRATCH/nothing"
assert_contains "$LAST_STDERR" "not a usable storage"
# the replica is in use: a snapshot user holds it
must_pass ds snapshot -q --storage "$R" bash -c '
	env -u SNAPSHOT_VERSION -u SNAPSHOT_DIRECTORY -u SNAPSHOT_TIMESTAMP \
		"$0" replica -q -e "$1" -d "$2" "dshost:$3" "$4" 2>"$5/inuse.err"
	echo $? >"$5/inuse.rc"' "$DS_BIN" "$SSH_CMD" "$DSDIR" "$M" "$R" "$SCRATCH"
assert_eq 3 "$(cat "$SCRATCH/inuse.rc")" "replica in use"
assert_contains "$SCRATCH/inuse.err" "in use"
# the master is held in snapshot mode by someone else: 3, and -t retries
must_pass ds snapshot -q --storage "$M" bash -c '
	u="env -u SNAPSHOT_VERSION -u SNAPSHOT_DIRECTORY -u SNAPSHOT_TIMESTAMP"
	$u "$0" replica -q -e "$1" -d "$2" "dshost:$3" "$4" 2>"$5/busy.err"
	echo $? >"$5/busy.rc"
	start=$(date +%s)
	$u "$0" replica -q -t 2 -s 1 -e "$1" -d "$2" "dshost:$3" "$4" \
		2>"$5/retry.err"
	echo "$? $(( $(date +%s) - start ))" >"$5/retry.rc"' \
	"$DS_BIN" "$SSH_CMD" "$DSDIR" "$M" "$R" "$SCRATCH"
assert_eq 3 "$(cat "$SCRATCH/busy.rc")" "master in snapshot mode"
assert_contains "$SCRATCH/busy.err" "busy"
read -r rc took <"$SCRATCH/retry.rc"
assert_eq 3 "$rc" "retrying while the master is busy"
[ "$took" -ge 1 ] || fail "-t 2 -s 1 did not retry (took $took s)"
check_unchanged

# a connection cut mid-stream: ssh dies part way through the increment
become bushy-replica-old "$SCRATCH/m2"
fixture_copy bushy-replica-old "$SCRATCH/r2"
become bushy-master "$SCRATCH/m2"
state "$SCRATCH/r2" >"$SCRATCH/before3"
cat >"$SCRATCH/cut.sh" <<EOF
#!/bin/bash
# ssh, killed after 100000 bytes of the answer
$SSH_CMD "\$@" >"$SCRATCH/cut.fifo.data" &
pid=\$!
while [ "\$(stat -c %s "$SCRATCH/cut.fifo.data" 2>/dev/null || echo 0)" -lt 100000 ] &&
      kill -0 \$pid 2>/dev/null; do sleep 0.01; done
kill -9 \$pid
head -c 100000 "$SCRATCH/cut.fifo.data"
kill -9 \$\$
EOF
must_fail 3 ds replica -e "bash $SCRATCH/cut.sh" -d "$DSDIR" "dshost:$SCRATCH/m2" \
	"$SCRATCH/r2"
assert_contains "$LAST_STDERR" "connection to the master failed"
state "$SCRATCH/r2" >"$SCRATCH/after3"
cmp -s "$SCRATCH/before3" "$SCRATCH/after3" || fail "replica changed (cut)"
# ... and the next run completes it
must_pass ds replica -q -e "$SSH_CMD" -d "$DSDIR" "dshost:$SCRATCH/m2" "$SCRATCH/r2"
same_A "$SCRATCH/m2" "$SCRATCH/r2"
closed "$SCRATCH/r2"

# a master whose x.oid is all zeros, below the replica's 00FC (it lost
# its oids, or is not the storage the replica was copied from): refused
# over ssh and locally, exit 1, the replica unchanged; accepted, the
# replica's next `ds new-oid` would hand out ids already in use
become bushy-replica-old "$SCRATCH/m3"
fixture_copy bushy-replica-old "$SCRATCH/r3"
printf 'pickle' >"$SCRATCH/pickle"
must_pass ds commit -q "$SCRATCH/m3" "000000000000001A=$SCRATCH/pickle"
printf '\0\0\0\0\0\0\0\0' >"$SCRATCH/m3/A/x/oid"
state "$SCRATCH/r3" >"$SCRATCH/before4"
must_fail 1 ds replica -e "$SSH_CMD" -d "$DSDIR" "dshost:$SCRATCH/m3" "$SCRATCH/r3"
assert_contains "$LAST_STDERR" "x.oid 0000000000000000 is lower than the replica's 00000000000000FC"
must_fail 1 ds replica "$SCRATCH/m3" "$SCRATCH/r3"
assert_contains "$LAST_STDERR" "x.oid 0000000000000000 is lower than the replica's 00000000000000FC"
state "$SCRATCH/r3" >"$SCRATCH/after4"
cmp -s "$SCRATCH/before4" "$SCRATCH/after4" || fail "replica changed (x.oid)"
[ ! -e "$SCRATCH/r3/misc/.replica.incoming" ] || fail "spool left (x.oid)"

# ssh cannot connect: try again later
stop_sshd
must_fail 3 ds replica -e "$SSH_CMD" -d "$DSDIR" "dshost:$M" "$R"
assert_contains "$LAST_STDERR" "connection to the master failed"
check_unchanged

# local mode: the master side as a child process
fixture_copy flat-replica-old "$SCRATCH/flat-r"
fixture_copy flat-master "$SCRATCH/flat-m"
must_pass ds replica "$SCRATCH/flat-m" "$SCRATCH/flat-r"
assert_contains "$LAST_STDERR" "Replica complete"
closed "$SCRATCH/flat-r"
cmp -s "$SCRATCH/flat-r/misc/replica.previous" \
	"$DS_FIXTURE_DIR/responses/flat-basic.tar" || fail "flat increment differs"
must_pass ds check -q --compare "$SCRATCH/flat-m" "$SCRATCH/flat-r"
# usage errors
must_fail 2 ds replica
must_fail 2 ds replica -t soon "$M" "$R"
must_pass ds replica --help
assert_contains "$LAST_STDOUT" "try again"
