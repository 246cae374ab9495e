#!/bin/bash
# The engine's subcommands as a user runs them: ds cat / history on a
# fixture written by the original (content as the manifest says; closing
# leaves A byte-identical and the storage a snapshot); on a new storage
# ds new-oid (durable), ds commit (files, stdin, new oids, conditional
# stores and their conflicts), ds cat --serial/--before, ds history,
# ds undo (and its refusal), ds gen (reproducible from a seed, big
# objects), ds check on the result; a second process is refused with the
# holder's pid (exit 3).
. "$(dirname "$0")/lib.sh" || exit 1

# ---- a fixture written by the original ----
fixture_copy bushy-master "$SCRATCH/bm"
S=$SCRATCH/bm
tree_md5 "$S/A" >"$SCRATCH/a.before"
# every current object's pickle, through ds cat
manifest bushy-master '.objects[] | . as $o | .revisions[] |
	select(.serial == $o.current_serial and .pickle_len > 0) |
	"\($o.oid) \(.pickle_md5)"' >"$SCRATCH/current.all"
sed -n 1,40p "$SCRATCH/current.all" >"$SCRATCH/current"
[ -s "$SCRATCH/current" ] || fail "no objects in the manifest"
while read -r oid md5; do
	must_pass ds cat "$S" "$oid"
	assert_eq "$md5" "$(md5sum <"$LAST_STDOUT" | cut -d' ' -f1)" "cat $oid"
done <"$SCRATCH/current"
# an old revision, and the one before a tid
oid=$(manifest bushy-master '[.objects[] | select((.revisions | length) > 3) | .oid][0]')
ser=$(manifest bushy-master ".objects[] | select(.oid == \"$oid\") | .revisions[1].serial")
md5=$(manifest bushy-master ".objects[] | select(.oid == \"$oid\") | .revisions[1].pickle_md5")
nxt=$(manifest bushy-master ".objects[] | select(.oid == \"$oid\") | .revisions[2].serial")
must_pass ds cat "$S" "$oid" --serial "$ser"
assert_eq "$md5" "$(md5sum <"$LAST_STDOUT" | cut -d' ' -f1)" "cat --serial"
must_pass ds cat -v "$S" "$oid" --before "$nxt"
assert_eq "$md5" "$(md5sum <"$LAST_STDOUT" | cut -d' ' -f1)" "cat --before"
assert_contains "$LAST_STDERR" "serial $ser next $nxt"
# the history: every revision, newest first, with its transaction
must_pass ds history "$S" "$oid"
assert_eq "$(manifest bushy-master ".objects[] | select(.oid == \"$oid\") | .revisions | length")" \
	"$(wc -l <"$LAST_STDOUT")" "history length"
assert_eq "$(manifest bushy-master ".objects[] | select(.oid == \"$oid\") | .revisions | reverse | .[].serial")" \
	"$(cut -f1 "$LAST_STDOUT")" "history serials"
must_pass ds history --json "$S" "$oid"
first_tid=$(jq -r '.[0].serial' "$LAST_STDOUT")
assert_eq "$(manifest bushy-master ".transactions[] | select(.tid == \"$first_tid\") | .description")" \
	"$(jq -r '.[0].description' "$LAST_STDOUT")" "history description"
# a creation undone reads as no such object
gb=$(manifest bushy-master '[.objects[] | . as $o | .revisions[] |
	select(.serial == $o.current_serial and .pickle_len == 0) | $o.oid][0] // empty')
if [ -n "$gb" ]; then
	must_fail 1 ds cat "$S" "$gb"
	assert_contains "$LAST_STDERR" "creation undone"
fi
must_fail 1 ds cat "$S" 00000000000FFFFF
assert_contains "$LAST_STDERR" "no such object"
must_fail 2 ds cat "$S" nothex
assert_contains "$LAST_STDERR" "ds cat: 'nothex' is not an oid (16 hex digits)"
# the DIR ID operands, checked alike by cat, history and undo
must_fail 2 ds history "$S" 12
assert_contains "$LAST_STDERR" "ds history: '12' is not an oid (16 hex digits)"
must_fail 2 ds undo "$S" 0123
assert_contains "$LAST_STDERR" "ds undo: '0123' is not a tid (16 hex digits)"
must_fail 2 ds undo "$S"
assert_contains "$LAST_STDERR" "ds undo: expected a storage directory and a tid"
assert_contains "$LAST_STDERR" "usage: ds undo"
must_fail 2 ds cat "$S" 0000000000000001 extra
assert_contains "$LAST_STDERR" "ds cat: expected a storage directory and an oid"
# reading leaves A as it was, and the storage a snapshot
tree_md5 "$S/A" >"$SCRATCH/a.after"
cmp -s "$SCRATCH/a.before" "$SCRATCH/a.after" || fail "ds cat changed A"
assert_eq shutdown "$(cat "$S/misc/snapshot")" "misc/snapshot"

# ---- a new storage ----
N=$SCRATCH/new
must_pass ds mkds "$N"
must_pass ds new-oid "$N" 3
assert_eq "0000000000000001
0000000000000002
0000000000000003" "$(cat "$LAST_STDOUT")" "new-oid"
must_pass ds new-oid "$N"
assert_eq 0000000000000004 "$(cat "$LAST_STDOUT")" "new-oid is durable"
printf 'first pickle' >"$SCRATCH/p1"
printf 'second pickle' >"$SCRATCH/p2"
must_pass ds commit -u "/ alice" -m "first" "$N" 0000000000000001=$SCRATCH/p1 new=$SCRATCH/p2
t1=$(head -1 "$LAST_STDOUT")
[[ $t1 =~ ^[0-9A-F]{16}$ ]] || fail "commit printed '$t1', not a tid"
assert_eq "new 0000000000000005 $SCRATCH/p2" "$(sed -n 2p "$LAST_STDOUT")" "new oid line"
must_fail 2 ds commit "$N" 1=- </dev/null    # OID: 16 hex digits
printf 'third' >"$SCRATCH/p3"
must_pass ds commit -m "update" -x step=two "$N" 0000000000000001@$t1=$SCRATCH/p3
t2=$(head -1 "$LAST_STDOUT")
# a stale serial: conflict, exit 1, both serials named, nothing written
must_fail 1 ds commit "$N" 0000000000000001@$t1=$SCRATCH/p2
assert_contains "$LAST_STDERR" "conflict"
assert_contains "$LAST_STDERR" "$t1"
assert_contains "$LAST_STDERR" "$t2"
must_fail 1 ds commit "$N" 0000000000000005@0000000000000000=$SCRATCH/p2
# stdin
printf 'from stdin' | must_pass ds commit "$N" 0000000000000002=-
t3=$(head -1 "$LAST_STDOUT")
must_pass ds cat "$N" 0000000000000002
assert_eq "from stdin" "$(cat "$LAST_STDOUT")" "stdin pickle"
must_pass ds cat "$N" 0000000000000001
assert_eq third "$(cat "$LAST_STDOUT")" "cat current"
must_pass ds cat "$N" 0000000000000001 --serial "$t1"
assert_eq "first pickle" "$(cat "$LAST_STDOUT")" "cat --serial"
must_pass ds cat "$N" 0000000000000001 --before "$t2"
assert_eq "first pickle" "$(cat "$LAST_STDOUT")" "cat --before"
must_pass ds history "$N" 0000000000000001
assert_eq 2 "$(wc -l <"$LAST_STDOUT")" "history lines"
assert_contains "$LAST_STDOUT" '"update"'
assert_contains "$LAST_STDOUT" '"/ alice"'
# the files the original would write: names, modes, sizes
assert_eq 640 "$(stat -c %a "$N/A/o0/00/00/00/00/00/00/001/c")" ".c mode"
assert_eq 8 "$(stat -c %s "$N/A/o0/00/00/00/00/00/00/001/c")" ".c size"
assert_eq $((72 + 5)) "$(stat -c %s "$N/A/o0/00/00/00/00/00/00/001/$t2")" "revision size"
assert_eq 640 "$(stat -c %a "$N/A/x/serial")" "x.serial mode"
assert_eq "$t3" "$(od -An -tx1 "$N/A/x/serial" | tr -d ' \n' | tr a-f A-F)" "x.serial"
# the undo of t2: object 1 back to the first pickle
must_pass ds undo "$N" "$t2"
tu=$(head -1 "$LAST_STDOUT")
must_pass ds cat "$N" 0000000000000001
assert_eq "first pickle" "$(cat "$LAST_STDOUT")" "after undo"
must_pass ds history "$N" 0000000000000001
assert_eq "$t1" "$(head -1 "$LAST_STDOUT" | cut -f4)" "undo_from"
assert_contains "$LAST_STDOUT" "\"undo of $t2\""
# undoing t1 is refused once object 5 (which t1 created) changed later
must_pass ds commit "$N" 0000000000000005=$SCRATCH/p3
must_fail 1 ds undo "$N" "$t1"
assert_contains "$LAST_STDERR" "0000000000000005"
assert_contains "$LAST_STDERR" "later transaction"
must_fail 1 ds undo "$N" 0123456789ABCDEF
assert_contains "$LAST_STDERR" "no record of that transaction"
if ds help check >/dev/null 2>&1; then
	must_pass ds check "$N"
fi
assert_eq shutdown "$(cat "$N/misc/snapshot")" "closed storage is a snapshot"
assert_eq 0 "$(ls "$N/journal" | wc -l)" "journal empty"

# ---- ds gen: reproducible, big objects ----
must_pass ds gen --nosync --objects 60 --transactions 30 --per-txn 4 --seed 11 --format flat "$SCRATCH/g1"
assert_contains "$LAST_STDOUT" "60 objects (1 over 100 KB"
must_pass ds gen -q --nosync --objects 60 --transactions 30 --per-txn 4 --seed 11 --format chunky "$SCRATCH/g2"
for o in 0000000000000001 0000000000000017 000000000000003C; do
	must_pass ds cat "$SCRATCH/g1" "$o"
	cp "$LAST_STDOUT" "$SCRATCH/g1.$o"
	must_pass ds cat "$SCRATCH/g2" "$o"
	cmp -s "$LAST_STDOUT" "$SCRATCH/g1.$o" || fail "gen not reproducible: $o"
done
must_pass ds cat "$SCRATCH/g1" 0000000000000001
[ "$(stat -c %s "$LAST_STDOUT")" -gt 102400 ] || fail "no object over 100 KB"
must_pass ds log "$SCRATCH/g1"
assert_eq 30 "$(grep -c 'gen ' "$LAST_STDOUT")" "gen transactions"
must_fail 2 ds gen --objects 60 --transactions 3 --per-txn 4 "$SCRATCH/g3"
if ds help check >/dev/null 2>&1; then
	must_pass ds check "$SCRATCH/g1"
fi

# ---- a second process is refused while the storage is open ----
"$DS_BIN" gen -q --nosync --objects 200000 --transactions 200000 --per-txn 1 \
	"$SCRATCH/g1" >"$SCRATCH/gen.out" 2>&1 &
genpid=$!
# never leave the writer behind, whatever happens below
trap 'rc=$?; kill -9 "$genpid" 2>/dev/null || true; set +e; (exit $rc); e2e_exit' EXIT
for i in $(seq 100); do
	[ "$(cat "$SCRATCH/g1/misc/lock")" = " $genpid" ] && break
	sleep 0.1
done
assert_eq " $genpid" "$(cat "$SCRATCH/g1/misc/lock")" "the writer holds misc/lock"
must_fail 3 ds cat "$SCRATCH/g1" 0000000000000001
assert_contains "$LAST_STDERR" "locked"
assert_contains "$LAST_STDERR" "$genpid"
must_fail 3 ds commit "$SCRATCH/g1" 0000000000000001=$SCRATCH/p1
# kill it in the middle: the next opener recovers
kill -9 "$genpid"
wait "$genpid" 2>/dev/null || true
# a reader reads the committed transactions where they are and changes
# nothing; the next writing open (here ds snapshot's) recovers
tree_md5 "$SCRATCH/g1" >"$SCRATCH/g1.before"
must_pass ds cat "$SCRATCH/g1" 0000000000000001
tree_md5 "$SCRATCH/g1" >"$SCRATCH/g1.after"
cmp -s "$SCRATCH/g1.before" "$SCRATCH/g1.after" || fail "ds cat changed the storage"
must_pass ds snapshot --storage "$SCRATCH/g1" true
assert_eq 0 "$(ls "$SCRATCH/g1/journal" | wc -l)" "journal empty after recovery"
if ds help check >/dev/null 2>&1; then
	must_pass ds check "$SCRATCH/g1"
fi
