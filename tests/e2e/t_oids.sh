#!/bin/bash
# Object ids are never handed out twice: `new` in ds commit and ds new-oid
# never return an id at or below one in use (an explicit oid above x.oid
# raises it, also within the same ds commit), they do not wrap past
# FFFFFFFFFFFFFFFF (exit 1, storage unchanged), and the same OID twice in
# one ds commit is a usage error naming it (exit 2).
. "$(dirname "$0")/lib.sh" || exit 1

S=$SCRATCH/s
must_pass ds mkds "$S"
printf 'one' >"$SCRATCH/a"
printf 'two' >"$SCRATCH/b"
# the data: A/, B/, journal/ (misc/ holds locks and the snapshot flag)
state() { for d in A B journal; do tree_md5 "$1/$d"; done; }
xoid() { od -An -tx1 "$1/A/x/oid" | tr -d ' \n'; }

must_pass ds commit -q "$S" "0000000000000001=$SCRATCH/a"
# an explicit oid at the top: x.oid follows it
must_pass ds commit -q "$S" "FFFFFFFFFFFFFFFF=$SCRATCH/a"
assert_eq ffffffffffffffff "$(xoid "$S")" "x.oid after storing FFFF...FFFF"
# nothing left to allocate: refused, nothing written, object 1 intact
state "$S" >"$SCRATCH/before"
must_fail 1 ds commit "$S" "new=$SCRATCH/b"
assert_contains "$LAST_STDERR" "object ids exhausted"
must_fail 1 ds new-oid "$S"
assert_contains "$LAST_STDERR" "object ids exhausted"
state "$S" >"$SCRATCH/after"
diff "$SCRATCH/before" "$SCRATCH/after" >&2 || fail "storage changed"
must_pass ds cat "$S" 0000000000000001
assert_eq one "$(cat "$LAST_STDOUT")" "object 1"

# ds new-oid near the top: the last ids, then a refusal that saves nothing
T=$SCRATCH/t
must_pass ds mkds "$T"
must_pass ds commit -q "$T" "FFFFFFFFFFFFFFFC=$SCRATCH/a"
must_fail 1 ds new-oid "$T" 4
assert_contains "$LAST_STDERR" "object ids exhausted"
assert_eq fffffffffffffffc "$(xoid "$T")" "x.oid after a refused new-oid"
must_pass ds new-oid "$T" 3
assert_eq "FFFFFFFFFFFFFFFD FFFFFFFFFFFFFFFE FFFFFFFFFFFFFFFF" \
	"$(tr '\n' ' ' <"$LAST_STDOUT" | sed 's/ $//')" "the last three ids"
must_fail 1 ds new-oid "$T"

# `new` never gets an oid given on the same line, whatever the order
U=$SCRATCH/u
must_pass ds mkds "$U"
must_pass ds commit "$U" "new=$SCRATCH/a" "0000000000000001=$SCRATCH/b"
assert_contains "$LAST_STDOUT" "new 0000000000000002 $SCRATCH/a"
must_pass ds cat "$U" 0000000000000001
assert_eq two "$(cat "$LAST_STDOUT")" "the explicit oid"
must_pass ds cat "$U" 0000000000000002
assert_eq one "$(cat "$LAST_STDOUT")" "the new oid"
# a later new-oid is above both
must_pass ds new-oid "$U"
assert_eq 0000000000000003 "$(cat "$LAST_STDOUT")" "new-oid after"
must_pass ds check -q "$U"

# the same OID twice in one commit: usage error naming it, nothing written
state "$U" >"$SCRATCH/before"
must_fail 2 ds commit "$U" "0000000000000005=$SCRATCH/a" \
	"0000000000000005@0000000000000000=$SCRATCH/b"
assert_contains "$LAST_STDERR" "oid 0000000000000005 given twice"
must_fail 2 ds commit "$U" "000000000000000a=$SCRATCH/a" "000000000000000A=$SCRATCH/b"
assert_contains "$LAST_STDERR" "oid 000000000000000A given twice"
state "$U" >"$SCRATCH/after"
diff "$SCRATCH/before" "$SCRATCH/after" >&2 || fail "storage changed"
