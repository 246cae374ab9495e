#!/bin/bash
# SIGKILL of either side of `ds replica` at many points, with the
# fault-injection build of ds (DS_FAULT_AT=N DS_FAULT_KIND=kill kills the
# process at its Nth durable I/O call; built here in its own directory):
#  - the replica side killed anywhere: the replica keeps its previous A/
#    exactly, or (once journal/replica.tar was committed) the next open by
#    the engine (`ds snapshot`, which recovers it) or the next `ds replica`
#    completes the increment; either way the result is exact;
#  - the master side killed anywhere: exit 3 (try again later), the
#    replica untouched, and the next run works.
. "$(dirname "$0")/lib.sh"

: "${DS_SOURCE_DIR:?}" "${DS_BUILD_DIR:?}"
FB=$DS_BUILD_DIR/fault-injection
cmake -S "$DS_SOURCE_DIR" -B "$FB" -G Ninja -DDS_FAULT_INJECTION=ON \
	-DDS_SANITIZE=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$SCRATCH/cmake.log" 2>&1 ||
	{ cat "$SCRATCH/cmake.log" >&2; fail "cannot configure the fault build"; }
ninja -C "$FB" -j2 ds >"$SCRATCH/ninja.log" 2>&1 ||
	{ tail -30 "$SCRATCH/ninja.log" >&2; fail "cannot build the fault build"; }
FDS=$FB/ds
DSDIR=$(dirname "$DS_BIN")

state() {
	tree_md5 "$1" | grep -v -e ' \./misc/lock ' -e ' \./misc/sublock ' -e ' \./misc/replica\.state '
}
closed() {
	assert_eq shutdown "$(cat "$1/misc/snapshot")" "misc/snapshot of $1"
	assert_eq 0 "$(ls -A "$1/journal" | wc -l)" "entries in $1/journal"
}

M=$SCRATCH/master
fixture_copy bushy-master "$M"
tree_md5 "$M/A" >"$SCRATCH/A.new"
tree_md5 "$DS_FIXTURE_DIR/bushy-replica-old/A" >"$SCRATCH/A.old"

# "ssh" for the tests: runs the remote command line with sh, as sshd
# would, without the fault settings (they are for one side only), or with
# MASTER_FAULT_AT as the master's DS_FAULT_AT
cat >"$SCRATCH/fakessh.sh" <<'EOF'
#!/bin/sh
shift
unset DS_FAULT_AT DS_FAULT_KIND DS_FAULT_COUNT_FILE
if [ -n "${MASTER_FAULT_AT:-}" ]; then
	export DS_FAULT_AT=$MASTER_FAULT_AT DS_FAULT_KIND=kill
fi
exec sh -c "$*"
EOF
E="sh $SCRATCH/fakessh.sh"

# How many durable I/O calls a whole run makes on the replica side
R=$SCRATCH/count
fixture_copy bushy-replica-old "$R"
must_pass env DS_FAULT_COUNT_FILE="$SCRATCH/count.txt" \
	"$FDS" replica -q -e "$E" -d "$DSDIR" "h:$M" "$R"
N=$(cat "$SCRATCH/count.txt")
[ "$N" -gt 100 ] || fail "only $N I/O calls in a replication?"
tree_md5 "$R/A" | cmp -s - "$SCRATCH/A.new" || fail "counting run: A/ differs"
echo "replica side: $N durable I/O calls" >&2

points="1 2 3 4 5 6 8 10 15 20 30"
for k in $(seq 1 15); do
	points="$points $((N * k / 16))"
done
points="$points $((N - 2)) $((N - 1)) $N"

i=0
committed_seen=0
for at in $points; do
	i=$((i + 1))
	R=$SCRATCH/r$i
	fixture_copy bushy-replica-old "$R"
	rc=0
	# (in a child shell: no "Killed" notice from this one)
	bash -c 'DS_FAULT_AT=$1 DS_FAULT_KIND=kill "$2" replica -q \
		-e "$3" -d "$4" "h:$5" "$6"; exit $?' - "$at" "$FDS" "$E" "$DSDIR" "$M" \
		"$R" >"$SCRATCH/out" 2>&1 || rc=$?
	[ "$rc" -eq 137 ] || { cat "$SCRATCH/out" >&2;
		fail "kill at call $at: exit $rc, expected 137"; }
	committed=0
	[ -e "$R/journal/replica.tar" ] && committed=1
	tree_md5 "$R/A" >"$SCRATCH/A.now"
	if [ "$committed" -eq 0 ] && [ ! -e "$R/misc/replica.previous" ]; then
		cmp -s "$SCRATCH/A.now" "$SCRATCH/A.old" ||
			fail "kill at call $at before the commit point: A/ changed"
	fi
	if [ $((i % 2)) -eq 0 ]; then
		# the next open by the engine completes or forgets it
		must_pass ds snapshot -q --storage "$R" true
		tree_md5 "$R/A" >"$SCRATCH/A.now"
		if [ "$committed" -eq 1 ]; then
			committed_seen=$((committed_seen + 1))
			cmp -s "$SCRATCH/A.now" "$SCRATCH/A.new" ||
				fail "kill at call $at: the open did not complete the increment"
			cmp -s "$R/misc/replica.previous" \
				"$DS_FIXTURE_DIR/responses/bushy-basic.tar" ||
				fail "kill at call $at: replica.previous differs"
		elif ! cmp -s "$SCRATCH/A.now" "$SCRATCH/A.new"; then
			cmp -s "$SCRATCH/A.now" "$SCRATCH/A.old" ||
				fail "kill at call $at: A/ is neither old nor new"
		fi
		closed "$R"
	fi
	# the next ds replica always ends with the exact increment applied
	must_pass ds replica -q "$M" "$R"
	tree_md5 "$R/A" | cmp -s - "$SCRATCH/A.new" ||
		fail "kill at call $at: A/ differs after the next ds replica"
	closed "$R"
	[ ! -e "$R/misc/.replica.incoming" ] || fail "spool left ($at)"
	rm -rf "$R"
done
echo "replica side: $i kill points, $committed_seen recovered by the engine" >&2

# The master side killed at its Nth durable I/O call
R=$SCRATCH/mcount
fixture_copy bushy-replica-old "$R"
rm -f "$SCRATCH/mcount.txt"
cat >"$SCRATCH/countssh.sh" <<EOF
#!/bin/sh
shift
export DS_FAULT_COUNT_FILE=$SCRATCH/mcount.txt
exec sh -c "\$*"
EOF
must_pass ds replica -q -e "sh $SCRATCH/countssh.sh" -d "$FB" "h:$M" "$R"
MN=$(cat "$SCRATCH/mcount.txt")
echo "master side: $MN durable I/O calls" >&2
[ "$MN" -gt 3 ] || fail "only $MN I/O calls on the master side?"
R=$SCRATCH/rm
fixture_copy bushy-replica-old "$R"
state "$R" >"$SCRATCH/before"
mpoints="1 2 3 5 8 13 20"
for k in $(seq 1 11); do
	mpoints="$mpoints $((MN * k / 12))"
done
mpoints="$mpoints $((MN - 2)) $((MN - 1)) $MN"
for at in $mpoints; do
	# (the fixed small points may exceed a short run's count: the master
	# gathers its spool writes in 64 KiB buffers)
	[ "$at" -le "$MN" ] || continue
	must_fail 3 env MASTER_FAULT_AT=$at "$DS_BIN" replica -q -e "$E" -d "$FB" \
		"h:$M" "$R"
	assert_contains "$LAST_STDERR" "connection to the master failed"
	state "$R" >"$SCRATCH/after"
	diff "$SCRATCH/before" "$SCRATCH/after" >&2 ||
		fail "master killed at call $at: the replica changed"
done
# the master is usable again, and so is the replica
must_pass ds replica -q "$M" "$R"
tree_md5 "$R/A" | cmp -s - "$SCRATCH/A.new" || fail "after master kills: A/ differs"
must_pass ds check -q "$M"
