#!/bin/bash
# ds check: every fixture passes (pack leftovers counted, not problems);
# each kind of corruption fails with exit 1 and names the file; --compare
# proves a replica equals its master's history, tolerating exactly what
# the master's pack explains, and finds a spoiled replica.
. "$(dirname "$0")/lib.sh"

for mf in "$DS_MANIFEST_DIR"/*.manifest.json; do
	name=$(basename "$mf" .manifest.json)
	fixture_copy "$name" "$SCRATCH/$name"
	must_pass ds check "$SCRATCH/$name"
	assert_contains "$LAST_STDERR" "no problems found"
	left=$(manifest "$name" '.deleted_files | length')
	txns=$(manifest "$name" '.chain | length')
	revs=$(manifest "$name" '.counts.revisions')
	grep -Eq "^ *$left pack leftovers" "$LAST_STDOUT" ||
		fail "$name: pack leftovers are not $left"
	grep -Eq "^ *$txns transactions$" "$LAST_STDOUT" ||
		fail "$name: transactions are not $txns"
	grep -Eq "^ *$revs revisions of objects$" "$LAST_STDOUT" ||
		fail "$name: revisions are not $revs"
	grep -Eq "^ *0 problems$" "$LAST_STDOUT" || fail "$name: problems"
done
# --storage and -q
must_pass ds check -q --storage "$SCRATCH/flat-master"
assert_eq 0 "$(wc -c <"$LAST_STDOUT")" "stdout with -q"

# corruptions, each on a fresh copy of bushy-master
obj=A/o0/00/00/00/00/00/00/01A
corrupt() {
	rm -rf "$SCRATCH/bad"
	fixture_copy bushy-master "$SCRATCH/bad"
}
flip_byte() {   # FILE OFFSET-FROM-END
	local f=$1 size
	size=$(stat -c %s "$f")
	printf '\x5a' | dd of="$f" bs=1 seek=$((size - $2)) conv=notrunc \
		status=none
}

corrupt
flip_byte "$SCRATCH/bad/$obj/040D44B2249CA6AA" 3
must_fail 1 ds check "$SCRATCH/bad"
assert_contains "$LAST_STDERR" "bad object revision: $obj/040D44B2249CA6AA"
assert_contains "$LAST_STDERR" "md5"
assert_contains "$LAST_STDERR" "1 problem found"

corrupt
rm "$SCRATCH/bad/$obj/040D44B2249CA6AA"
must_fail 1 ds check "$SCRATCH/bad"
assert_contains "$LAST_STDERR" "revision named by a .c pointer is missing: $obj/040D44B2249CA6AA"

corrupt
rm "$SCRATCH/bad/A/t0/40/D44/B222699877"
must_fail 1 ds check "$SCRATCH/bad"
assert_contains "$LAST_STDERR" "broken history: transaction file missing: A/t0/40/D44/B222699877"

corrupt
echo junk >"$SCRATCH/bad/A/t0/stray"
must_fail 1 ds check "$SCRATCH/bad"
assert_contains "$LAST_STDERR" "unexpected file: A/t0/stray"

corrupt
# a .c pointer naming a revision that was never written
printf '\x04\x0d\x44\xb2\x24\x9c\xa6\xab' >"$SCRATCH/bad/$obj/c"
must_fail 1 ds check "$SCRATCH/bad"
assert_contains "$LAST_STDERR" "revision named by a .c pointer is missing: $obj/040D44B2249CA6AB"
assert_contains "$LAST_STDERR" "1 problem found"

corrupt
# a revision no pointer leads to (as if a crash left it behind)
cp "$SCRATCH/bad/$obj/040D44B2249CA6AA" "$SCRATCH/bad/$obj/040D44B2249CA6AB"
must_fail 1 ds check "$SCRATCH/bad"
assert_contains "$LAST_STDERR" "unexpected file: revision not reachable from its object's .c pointer: $obj/040D44B2249CA6AB"

corrupt
# the same, older than x.packed, and a transaction file no longer linked
# into history, older than x.packed: what a pack killed part way leaves
# (ds pack removes them when run again): counted, not a problem
cp "$SCRATCH/bad/$obj/040D44B2249CA6AA" "$SCRATCH/bad/$obj/040D44B20D000000"
cp "$SCRATCH/bad/A/t0/40/D44/B222699877" "$SCRATCH/bad/A/t0/40/D44/B20D000001"
printf '\x04\x0d\x44\xb2\x10\x00\x00\x00' >"$SCRATCH/bad/A/x/packed"
must_pass ds check "$SCRATCH/bad"
grep -Eq "^ *2 files an unfinished pack left" "$LAST_STDOUT" ||
	fail "the unfinished pack's 2 files are not counted: $(cat "$LAST_STDOUT")"
# with x.packed older than they are, both are problems again
printf '\x04\x0d\x44\xb2\x0c\x00\x00\x00' >"$SCRATCH/bad/A/x/packed"
must_fail 1 ds check "$SCRATCH/bad"
assert_contains "$LAST_STDERR" "revision not reachable from its object's .c pointer: $obj/040D44B20D000000"
assert_contains "$LAST_STDERR" "transaction not linked into history: A/t0/40/D44/B20D000001"

corrupt
rm -r "$SCRATCH/bad/journal"
must_fail 1 ds check "$SCRATCH/bad"
assert_contains "$LAST_STDERR" "journal is missing"

must_fail 1 ds check "$SCRATCH/nonexistent"
must_fail 2 ds check

# --compare: the pairs before replication
must_pass ds check --compare "$SCRATCH/bushy-master" "$SCRATCH/bushy-replica-old"
assert_contains "$LAST_STDOUT" "         0 differences"
must_pass ds check -v --compare "$SCRATCH/flat-relinked-master" "$SCRATCH/flat-replica-old"
# R, whose back pointer the second pack rewrote, among them
assert_contains "$LAST_STDERR" "previous pointer rewritten by the master's pack: A/t040D44.B2399029CC"
grep -Eq "^ *7 previous pointers rewritten" "$LAST_STDOUT" ||
	fail "relinked transactions are not 7"
must_fail 1 ds check --compare "$SCRATCH/bushy-master" "$SCRATCH/bushy-diverged-replica"
assert_contains "$LAST_STDERR" "not in the master's history"
must_fail 1 ds check --compare "$SCRATCH/bushy-master" "$SCRATCH/bushy-foreign-replica"
assert_contains "$LAST_STDERR" "different identity"

# after the original's increment (flat-basic): exactly the tolerated
# differences fixtures/README.md lists
tar -xpf "$DS_FIXTURE_DIR/responses/flat-basic.tar" -C "$SCRATCH/flat-replica-old"
must_pass ds check --compare "$SCRATCH/flat-master" "$SCRATCH/flat-replica-old"
grep -Eq "^ *3 previous pointers rewritten" "$LAST_STDOUT" || fail "relinked"
grep -Eq "^ *295 files removed by the master's pack" "$LAST_STDOUT" ||
	fail "pack-removed"
grep -Eq "^ *0 differences" "$LAST_STDOUT" || fail "differences"
must_pass ds check "$SCRATCH/flat-replica-old"

# a replica spoiled afterwards
flip_byte "$SCRATCH/flat-replica-old/A/t040D44.B240E24322" 1
must_fail 1 ds check --compare "$SCRATCH/flat-master" "$SCRATCH/flat-replica-old"
assert_contains "$LAST_STDERR" "different content: A/t040D44.B240E24322"
assert_contains "$LAST_STDERR" "1 difference"

# --compare blames the side that is broken: a master whose newest
# revision of an object created after the replica's transaction is
# corrupt is named as the master's file, not as "missing on the replica"
M=$SCRATCH/cm
R=$SCRATCH/cr
must_pass ds mkds "$M"
printf 'one' >"$SCRATCH/c1"
must_pass ds commit "$M" new="$SCRATCH/c1"
must_pass ds replica --init -q "$M" "$R"
must_pass ds commit "$M" new="$SCRATCH/c1"
oid=$(awk '/^new /{print $2}' "$LAST_STDOUT")
must_pass ds check --compare "$M" "$R"
# bushy: o0123456789ABCDEF -> o0/12/34/56/78/9A/BC/DEF/<serial>
odir=o${oid:0:1}/${oid:1:2}/${oid:3:2}/${oid:5:2}/${oid:7:2}/${oid:9:2}/${oid:11:2}/${oid:13:3}
rev=$odir/$(ls "$M/A/$odir" | grep -v '^c$' | head -n1)
[ -f "$M/A/$rev" ] || fail "no revision file for $oid"
# first a revision both hold: the master's copy is the broken one
old=$(cd "$M/A" && find o0 -type f ! -name c ! -path "$odir/*" | head -n1)
cp "$M/A/$old" "$SCRATCH/old.saved"
printf 'garbage' >"$M/A/$old"
must_fail 1 ds check --compare "$M" "$R"
assert_contains "$LAST_STDERR" "different content, the master's file is not valid: $M/A/$old (on the master)"
cp "$SCRATCH/old.saved" "$M/A/$old"
# then the newest revision of an object created after the replica's
# transaction: before, the .c pointer was reported missing on the replica
printf 'garbage' >"$M/A/$rev"
must_fail 1 ds check --compare "$M" "$R"
assert_contains "$LAST_STDERR" "revision chain broken (missing or not a valid revision): $M/A/$rev (on the master)"
assert_not_contains "$LAST_STDERR" "missing on the replica"
