#!/bin/bash
# A snapshot user holding misc/sublock (as the original's snapshot.py does:
# flock on misc/sublock of a closed storage, which is a snapshot) keeps A
# byte-for-byte unchanged while other processes go on committing: their
# writes land in B and read back through the engine; misc/snapshot stays.
# Once the holder lets go, the next open moves B over A.
. "$(dirname "$0")/lib.sh" || exit 1

fixture_copy flat-master "$SCRATCH/s"
S=$SCRATCH/s
# small batches: flushes (into B) happen during the commits
sed -i 's/^flush_transaction_threshold: .*/flush_transaction_threshold: 2/' "$S/config/settings"
tree_md5 "$S/A" >"$SCRATCH/before"
# the holder: a process that flocks misc/sublock itself and sleeps
( exec 9>>"$S/misc/sublock"; flock -n 9 || exit 1; exec sleep 60 ) &
holder=$!
trap 'rc=$?; kill "$holder" 2>/dev/null || true; set +e; (exit $rc); e2e_exit' EXIT
sleep 0.5
kill -0 "$holder" || fail "the holder could not lock misc/sublock"
for i in $(seq 12); do
	printf 'held %s' "$i" >"$SCRATCH/p"
	must_pass ds commit -m "while held $i" "$S" 0000000000000001="$SCRATCH/p" \
		00000000000A0000="$SCRATCH/p"
	echo "$(head -1 "$LAST_STDOUT")" >>"$SCRATCH/tids"
	must_pass ds cat "$S" 00000000000A0000
	assert_eq "held $i" "$(cat "$LAST_STDOUT")" "read back $i"
done
tree_md5 "$S/A" >"$SCRATCH/after"
cmp -s "$SCRATCH/before" "$SCRATCH/after" || fail "A changed while the snapshot was held"
[ -n "$(find "$S/B" -type f)" ] || fail "nothing was flushed into B"
assert_eq shutdown "$(cat "$S/misc/snapshot")" "misc/snapshot while held"
assert_eq 0 "$(ls "$S/journal" | wc -l)" "journal flushed (into B) at close"
kill "$holder"
wait "$holder" 2>/dev/null || true
# released: a reader finds B's files where they are and moves nothing
must_pass ds cat "$S" 0000000000000001
assert_eq "held 12" "$(cat "$LAST_STDOUT")" "after release"
[ -n "$(find "$S/B" -type f)" ] || fail "a reader recombined B"
# the next writing open recombines B into A
printf 'after 12' >"$SCRATCH/p13"
must_pass ds commit "$S" 00000000000A0000="$SCRATCH/p13"
assert_eq 0 "$(find "$S/B" -mindepth 1 | wc -l)" "B empty after recombination"
must_pass ds cat "$S" 0000000000000001
assert_eq "held 12" "$(cat "$LAST_STDOUT")" "after recombination"
tree_md5 "$S/A" >"$SCRATCH/after2"
cmp -s "$SCRATCH/before" "$SCRATCH/after2" && fail "A did not get the new transactions"
must_pass ds log "$S"
while read -r tid; do
	assert_contains "$LAST_STDOUT" "$tid"
done <"$SCRATCH/tids"
if ds help check >/dev/null 2>&1; then
	must_pass ds check "$S"
fi
