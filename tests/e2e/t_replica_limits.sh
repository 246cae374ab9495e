#!/bin/bash
# A master that sends too much cannot fill the replica's disk. The stream
# is measured as it arrives and refused, before the commit point, once it
# is longer than
#  - the operator's --max-size (exit 1, "larger than --max-size N"), or
#  - by default, what fits twice (the spool, then the extracted files) in
#    the free space of the replica's filesystem, 1% kept free (exit 4,
#    "would not fit on the replica's filesystem");
# and with --max-size unlimited a full disk is an ordinary ENOSPC on the
# spool (exit 4, naming it). In every refusal the replica is exactly as it
# was, the spool is gone (the space is given back) and a master that
# would go on forever is stopped. Cases: a real increment of ~4 MiB
# (local mode), and an endless one: a valid beginning, then one object
# revision whose header claims 4 GiB, followed by zeros without end. The
# small filesystem is an 8 MiB tmpfs mounted in a private mount namespace
# (unshare -r -m: no root needed where user namespaces are allowed).
. "$(dirname "$0")/lib.sh"

state() {
	tree_md5 "$1" | grep -v -e ' \./misc/lock ' -e ' \./misc/sublock ' -e ' \./misc/replica\.state '
}
no_spool() {
	[ ! -e "$1/misc/.replica.incoming" ] ||
		fail "$1: the refused increment's spool was left behind"
	[ ! -e "$1/journal/replica.tar" ] ||
		fail "$1: a refused increment reached journal/replica.tar"
}

M=$SCRATCH/master
R=$SCRATCH/replica
# a master with a few big objects, its replica, then ~4 MiB more on the
# master: 20 new objects of 100-300 KB
must_pass ds gen -q --nosync --objects 20 --big 2 --transactions 6 \
	--per-txn 5 --seed 1 "$M"
must_pass ds replica -q --init "$M" "$R"
must_pass ds gen -q --nosync --objects 20 --big 20 --transactions 4 \
	--per-txn 5 --seed 2 "$M"
state "$R" >"$SCRATCH/before"

# --- the operator's limit ------------------------------------------------
must_fail 1 ds replica -q --max-size 1M "$M" "$R"
assert_contains "$LAST_STDERR" "larger than --max-size 1048576"
state "$R" | diff "$SCRATCH/before" - >&2 || fail "--max-size: the replica changed"
no_spool "$R"
must_fail 2 ds replica -q --max-size 12Q "$M" "$R"
assert_contains "$LAST_STDERR" "--max-size: not a size"
must_fail 2 ds replica -q --max-size 0 "$M" "$R"

# --- the endless master ----------------------------------------------------
# capture the real increment through a fake ssh that runs the master side
cp -a "$R" "$SCRATCH/r-capture"
cat >"$SCRATCH/tee-master.sh" <<EOF
#!/bin/sh
exec "$DS_BIN" replica -q + "$M" | tee "$SCRATCH/increment.tar"
EOF
must_pass ds replica -q -e "sh $SCRATCH/tee-master.sh" "h:$M" "$SCRATCH/r-capture"
[ -s "$SCRATCH/increment.tar" ] || fail "no increment captured"
# the endless stream: every member of the real increment up to its first
# object revision, then that revision with a 4 GiB length and zeros
cat >"$SCRATCH/endless.py" <<'EOF'
import struct, sys, tarfile
out = sys.stdout.buffer
with tarfile.open(sys.argv[1], format=tarfile.USTAR_FORMAT) as t:
    for m in t:
        data = t.extractfile(m).read()
        if data[:4] == b"\xbd\xb8\x2a\x71":          # an object revision
            size = 0xFFFFFFF0
            head = bytearray(data[:72])
            head[4:8] = struct.pack(">I", size)
            head[40:56] = bytes(16)                   # md5 "not computed"
            m.size = size
            out.write(m.tobuf(format=tarfile.USTAR_FORMAT))
            out.write(head)
            zeros = bytes(65536)
            try:
                while True:
                    out.write(zeros)
            except BrokenPipeError:
                sys.exit(0)
        out.write(m.tobuf(format=tarfile.USTAR_FORMAT))
        out.write(data + bytes(-len(data) % 512))
sys.exit("no object revision in the increment")
EOF
cat >"$SCRATCH/endless.sh" <<EOF
#!/bin/sh
cat >/dev/null
exec python3 "$SCRATCH/endless.py" "$SCRATCH/increment.tar" 2>/dev/null
EOF
start=$(date +%s)
must_fail 1 timeout 120 "$DS_BIN" replica -q --max-size 2M \
	-e "sh $SCRATCH/endless.sh" "h:$M" "$R"
assert_contains "$LAST_STDERR" "larger than --max-size 2097152"
state "$R" | diff "$SCRATCH/before" - >&2 || fail "endless: the replica changed"
no_spool "$R"
[ $(( $(date +%s) - start )) -lt 60 ] || fail "the endless master was not stopped"
sleep 0.2
! pgrep -f "$SCRATCH/endless.py" >/dev/null ||
	fail "the endless master is still running"

# --- a small filesystem: the default limit, and a full disk ---------------
# Runs in a private mount namespace; each case writes its exit status,
# stderr and the tmpfs's free space before/after to files outside it.
T=$SCRATCH/small
mkdir -p "$T" "$SCRATCH/out"
cat >"$SCRATCH/small.sh" <<EOF
#!/bin/bash
set -u
mount -t tmpfs -o size=8m tmpfs "$T" || exit 97
cp -a "$R" "$T/r"
free() { df --output=avail -B1 "$T" | tail -1; }
run() {   # NAME ARGS...
	local name=\$1 rc=0; shift
	free >"$SCRATCH/out/\$name.free-before"
	"$DS_BIN" replica -q "\$@" >"$SCRATCH/out/\$name.out" \
		2>"$SCRATCH/out/\$name.err" || rc=\$?
	echo \$rc >"$SCRATCH/out/\$name.rc"
	free >"$SCRATCH/out/\$name.free-after"
	cd "$T/r" && find . -mindepth 1 \( -type f -o -type d \) -printf '%y %m %p\n' |
		grep -v -e ' \./misc/lock\$' -e ' \./misc/sublock\$' \
		      -e ' \./misc/replica\.state\$' | sort \
		>"$SCRATCH/out/\$name.tree"
	find . -type f ! -path ./misc/lock ! -path ./misc/sublock \
		! -path ./misc/replica.state -print0 | sort -z | xargs -0 md5sum >"$SCRATCH/out/\$name.sums"
	cd /
}
run auto "$M" "$T/r"
run endless-auto -e "sh $SCRATCH/endless.sh" "h:$M" "$T/r"
run unlimited --max-size unlimited -e "sh $SCRATCH/endless.sh" "h:$M" "$T/r"
# and the same increment does go through when there is room
umount "$T" && mount -t tmpfs -o size=64m tmpfs "$T" && cp -a "$R" "$T/r" &&
	run roomy "$M" "$T/r"
exit 0
EOF
rc=0
unshare -r -m bash "$SCRATCH/small.sh" >"$SCRATCH/small.log" 2>&1 || rc=$?
[ "$rc" -eq 0 ] || fail "unshare -r -m / tmpfs mount failed (exit $rc):" \
	"$(cat "$SCRATCH/small.log")"
( cd "$R" && find . -mindepth 1 \( -type f -o -type d \) -printf '%y %m %p\n' |
	grep -v -e ' \./misc/lock$' -e ' \./misc/sublock$' \
	      -e ' \./misc/replica\.state$' | sort ) \
	>"$SCRATCH/before.tree"
( cd "$R" && find . -type f ! -path ./misc/lock ! -path ./misc/sublock \
	! -path ./misc/replica.state -print0 |
	sort -z | xargs -0 md5sum ) >"$SCRATCH/before.sums"
for c in auto endless-auto unlimited; do
	o=$SCRATCH/out/$c
	assert_eq 4 "$(cat "$o.rc")" "$c: exit status"
	cat "$o.err" >&2
	diff "$SCRATCH/before.tree" "$o.tree" >&2 || fail "$c: the replica's tree changed"
	diff "$SCRATCH/before.sums" "$o.sums" >&2 || fail "$c: the replica's files changed"
	# the space taken by the spool is given back (a few KiB of slack)
	b=$(cat "$o.free-before") a=$(cat "$o.free-after")
	[ $((b - a)) -lt 65536 ] || fail "$c: free space $b -> $a bytes"
done
assert_contains "$SCRATCH/out/auto.err" "would not fit on the replica's filesystem"
assert_contains "$SCRATCH/out/endless-auto.err" "would not fit on the replica's filesystem"
assert_contains "$SCRATCH/out/unlimited.err" "misc/.replica.incoming: No space left on device"
assert_eq 0 "$(cat "$SCRATCH/out/roomy.rc")" "with room: exit status"
must_pass ds check -q --compare "$M" "$SCRATCH/r-capture"
