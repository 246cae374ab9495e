#!/bin/bash
# The master side, `ds replica + DIR`, as the original replica (or ours)
# drives it: the recorded request on stdin gives byte for byte the
# recorded response (locally, inside ds snapshot, and through a real sshd);
# the failing pairs give nothing on stdout and the original's reason; our
# relink extension serves flat-relinked-master to flat-replica-old (and the
# result checks and compares clean); an init request copies a storage;
# snapshot mode is released before the increment is sent.
. "$(dirname "$0")/lib.sh"

request() {   # PAIR -> $SCRATCH/PAIR.req
	jq -j .request "$DS_MANIFEST_DIR/$1.replication.json" >"$SCRATCH/$1.req"
}

for m in bushy-master flat-master flat-relinked-master bushy-packed-master; do
	fixture_copy "$m" "$SCRATCH/$m"
done

# success pairs: the recorded bytes
for pair in bushy-basic flat-basic; do
	m=$(jq -r .master_fixture "$DS_MANIFEST_DIR/$pair.replication.json")
	request "$pair"
	must_pass bash -c '"$0" replica + "$1" <"$2"' "$DS_BIN" "$SCRATCH/$m" \
		"$SCRATCH/$pair.req"
	cmp "$LAST_STDOUT" "$DS_FIXTURE_DIR/responses/$pair.tar" ||
		fail "$pair: response differs from the original's"
	assert_contains "$LAST_STDERR" "Newest transaction is"
done

# failure pairs: nothing on stdout, the original's reason, exit 1
for pair in bushy-foreign bushy-diverged bushy-packed flat-relinked; do
	m=$(jq -r .master_fixture "$DS_MANIFEST_DIR/$pair.replication.json")
	reason=$(jq -r '.master_side.stderr[-1]' \
		"$DS_MANIFEST_DIR/$pair.replication.json")
	request "$pair"
	must_fail 1 bash -c '"$0" replica + "$1" <"$2"' "$DS_BIN" \
		"$SCRATCH/$m" "$SCRATCH/$pair.req"
	assert_eq 0 "$(wc -c <"$LAST_STDOUT")" "$pair stdout"
	assert_contains "$LAST_STDERR" "ds replica: $reason"
done

# a malformed request; not a storage
printf 'replica request 7\n' >"$SCRATCH/bad.req"
must_fail 1 bash -c '"$0" replica + "$1" <"$2"' "$DS_BIN" \
	"$SCRATCH/bushy-master" "$SCRATCH/bad.req"
assert_eq 0 "$(wc -c <"$LAST_STDOUT")" "malformed request stdout"
assert_contains "$LAST_STDERR" "malformed request"
must_fail 1 bash -c '"$0" replica + "$1" <"$2"' "$DS_BIN" "$SCRATCH" \
	"$SCRATCH/bushy-basic.req"
assert_contains "$LAST_STDERR" "is not a DirectoryStorage directory"

# ---- the relink extension (our replica's fifth line) ----
R=$DS_FIXTURE_DIR/flat-replica-old/A/t040D44.B2399029CC
relmd5=$( { head -c 24 "$R"; head -c 8 /dev/zero; tail -c +33 "$R"; } |
	md5sum | cut -d' ' -f1)
prev=$(od -An -tx1 -j24 -N8 "$R" | tr -d ' \n')
request flat-relinked
{ cat "$SCRATCH/flat-relinked.req"; echo "relink $relmd5 $prev"; } \
	>"$SCRATCH/relink.req"
must_pass bash -c '"$0" replica + "$1" <"$2"' "$DS_BIN" \
	"$SCRATCH/flat-relinked-master" "$SCRATCH/relink.req"
cp "$LAST_STDOUT" "$SCRATCH/relink.tar"
tar -tf "$SCRATCH/relink.tar" >"$SCRATCH/relink.list"
manifest flat-relinked-master '.whatsnew["040D44B2399029CC"].stdout_lines[]' \
	>"$SCRATCH/relink.want"
cmp "$SCRATCH/relink.want" "$SCRATCH/relink.list" ||
	fail "relink increment: not the whatsnew list of R"
# applied as the original replica applies it, the result is a clean
# storage equal to the master's history
fixture_copy flat-replica-old "$SCRATCH/rep"
tar -xpf "$SCRATCH/relink.tar" -C "$SCRATCH/rep"
must_pass ds check "$SCRATCH/rep"
must_pass ds check --compare "$SCRATCH/flat-relinked-master" "$SCRATCH/rep"
# a relink line whose md5 does not match: still divergence
bad=$(printf '%s' "$relmd5" | tr 0123456789abcdef 123456789abcdef0)
{ cat "$SCRATCH/flat-relinked.req"; echo "relink $bad $prev"; } \
	>"$SCRATCH/relink-bad.req"
must_fail 1 bash -c '"$0" replica + "$1" <"$2"' "$DS_BIN" \
	"$SCRATCH/flat-relinked-master" "$SCRATCH/relink-bad.req"
assert_contains "$LAST_STDERR" "ReplicaError: reference transaction differs"
assert_eq 0 "$(wc -c <"$LAST_STDOUT")" "refused relink stdout"

# ---- replica init 0 ----
printf 'replica init 0\n' >"$SCRATCH/init.req"
must_pass bash -c '"$0" replica + "$1" <"$2"' "$DS_BIN" \
	"$SCRATCH/flat-master" "$SCRATCH/init.req"
cp "$LAST_STDOUT" "$SCRATCH/init.tar"
tar -tf "$SCRATCH/init.tar" >"$SCRATCH/init.list"
assert_eq "config/settings" "$(sed -n 1p "$SCRATCH/init.list")" "first member"
assert_eq "config/identity" "$(sed -n 2p "$SCRATCH/init.list")" "second member"
assert_not_contains "$SCRATCH/init.list" "-deleted"
assert_contains "$SCRATCH/init.list" "A/x.packed"
assert_eq $(($(manifest flat-master .file_count_A_live) + 2)) \
	"$(wc -l <"$SCRATCH/init.list")" "init members"
mkdir -p "$SCRATCH/new"/{B,journal,misc}
tar -xpf "$SCRATCH/init.tar" -C "$SCRATCH/new"
must_pass ds check "$SCRATCH/new"
must_pass ds check --compare "$SCRATCH/flat-master" "$SCRATCH/new"

# ---- snapshot mode and the master side ----
M=$SCRATCH/bushy-master
# under an enclosing ds snapshot it reuses that snapshot
must_pass ds snapshot -q --storage "$M" bash -c \
	'"$0" replica + "$1" <"$2" >"$3"' "$DS_BIN" "$M" \
	"$SCRATCH/bushy-basic.req" "$SCRATCH/inside.tar"
cmp "$SCRATCH/inside.tar" "$DS_FIXTURE_DIR/responses/bushy-basic.tar" ||
	fail "response inside ds snapshot differs"
# held by someone else: try again later (3), nothing on stdout
must_pass ds snapshot -q --storage "$M" bash -c '
	env -u SNAPSHOT_VERSION "$0" replica + "$1" <"$2" >"$3/busy.out" \
		2>"$3/busy.err"
	echo $? >"$3/busy.rc"' "$DS_BIN" "$M" "$SCRATCH/bushy-basic.req" \
	"$SCRATCH"
assert_eq 3 "$(cat "$SCRATCH/busy.rc")" "master side on a held storage"
assert_eq 0 "$(wc -c <"$SCRATCH/busy.out")" "busy stdout"
assert_contains "$SCRATCH/busy.err" "ReplicaError:"
# snapshot mode is released before the increment is sent: while the
# reader stalls (the 345 KiB response does not fit the pipe), the storage
# can already be snapshotted by someone else
"$DS_BIN" replica -q + "$M" <"$SCRATCH/bushy-basic.req" |
	{ sleep 3; cat >"$SCRATCH/slow.tar"; } &
slow=$!
sleep 1.5
must_pass ds snapshot -q --storage "$M" true
wait "$slow" || fail "stalled master side failed"
cmp "$SCRATCH/slow.tar" "$DS_FIXTURE_DIR/responses/bushy-basic.tar" ||
	fail "stalled response differs"

# SIGKILL of the master side while it sends: nothing is left held, no
# spool file is left behind (it never had a name), the storage checks
# clean and serves the next request
mkdir "$SCRATCH/tmp"
TMPDIR=$SCRATCH/tmp sh -c 'echo $$ >"$0"; exec "$1" replica -q + "$2" <"$3"' \
	"$SCRATCH/master.pid" "$DS_BIN" "$M" "$SCRATCH/bushy-basic.req" |
	{ sleep 3; cat >/dev/null; } &
reader=$!
sleep 1.5
kill -KILL "$(cat "$SCRATCH/master.pid")"
wait "$reader" || true
assert_eq 0 "$(find "$SCRATCH/tmp" -mindepth 1 | wc -l)" "files left in TMPDIR"
must_pass ds check -q "$M"
must_pass bash -c '"$0" replica + "$1" <"$2"' "$DS_BIN" "$M" \
	"$SCRATCH/bushy-basic.req"
cmp "$LAST_STDOUT" "$DS_FIXTURE_DIR/responses/bushy-basic.tar" ||
	fail "response after a killed master side differs"

# ---- through a real sshd, as the replica side runs it ----
start_sshd
must_pass bash -c 'ssh -F "$0" dshost "$1" replica + "$2" <"$3"' \
	"$SSH_CONFIG" "$DS_BIN" "$SCRATCH/flat-master" "$SCRATCH/flat-basic.req"
cmp "$LAST_STDOUT" "$DS_FIXTURE_DIR/responses/flat-basic.tar" ||
	fail "response over ssh differs"
must_fail 1 bash -c 'ssh -F "$0" dshost "$1" replica + "$2" <"$3"' \
	"$SSH_CONFIG" "$DS_BIN" "$SCRATCH/bushy-master" \
	"$SCRATCH/bushy-foreign.req"
assert_contains "$LAST_STDERR" "ReplicaError: different identity"
stop_sshd
