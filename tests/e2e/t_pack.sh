#!/bin/bash
# t_pack.sh - `ds pack` as a user runs it: command-line errors (exit 2), a
# storage in use (exit 3, untouched), garbage from `ds gen --graph`
# removed and the storage still checks, --days, a second pack removing
# nothing, and a replica kept up to date across packs of its master (the
# master packed up to the replica's last transaction, which keeps that
# transaction; a pack later than the replica makes it refused with
# "packed since" until it is made again).
. "$(dirname "$0")/lib.sh"
M=$SCRATCH/master
R=$SCRATCH/replica

must_fail 2 ds pack
must_fail 2 ds pack --days 1 --before 0000000000000001 "$M"
must_fail 2 ds pack --before xyz "$M"
must_fail 2 ds pack --days -3 "$M"
must_fail 1 ds pack "$SCRATCH/nothing"

must_pass ds gen -q --graph --objects 150 --transactions 80 --per-txn 4 \
	--seed 5 "$M"
sed -i 's/^min_pack_time: .*/min_pack_time: 0/' "$M/config/settings"
must_pass ds replica -q --init "$M" "$R"

# in use: held in snapshot mode by someone else
must_fail 3 ds snapshot --storage "$M" -- "$DS_BIN" pack "$M"
assert_contains "$LAST_STDERR" "ds pack:"
[ -z "$(find "$M/A" -name '*-deleted' -print -quit)" ] ||
	fail "a refused pack removed files"

# more commits on the master, then pack it at the replica's last tid
must_pass ds gen -q --graph --objects 40 --transactions 30 --per-txn 4 \
	--seed 6 "$M"
rtid=$(od -An -tx1 "$R/A/x/serial" | tr -d ' \n' | tr a-f A-F)
must_pass ds pack -v --before "$rtid" "$M"
assert_contains "$LAST_STDOUT" "Packed to $rtid"
assert_contains "$LAST_STDERR" "ds pack: removing old revisions"
removed=$(find "$M/A" -name '*-deleted' | wc -l)
[ "$removed" -gt 100 ] || fail "only $removed files removed"
must_pass ds check "$M"
assert_eq "$rtid" "$(od -An -tx1 "$M/A/x/packed" | tr -d ' \n' | tr a-f A-F)" \
	"x.packed"
# every kept file has the original's mark: mode 0740
[ -z "$(find "$M/A" -type f ! -name '*-deleted' ! -perm 0740 -print -quit)" ] ||
	fail "a kept file without mode 0740: $(find "$M/A" -type f ! -name '*-deleted' ! -perm 0740 | head -3)"
# the replica catches up across the pack
must_pass ds replica -q "$M" "$R"
must_pass ds check --compare "$M" "$R"

# a second pack at the same time removes nothing more; it first removes
# the staged transaction files (misc/pack.tmp.N) a killed pack would
# have left, and nothing else in misc/
echo junk >"$M/misc/pack.tmp"
echo junk >"$M/misc/pack.tmp.0"
echo junk >"$M/misc/pack.tmp.17"
echo keep >"$M/misc/pack.tmpfile"
must_pass ds pack --before "$rtid" "$M"
[ -z "$(find "$M/misc" -name 'pack.tmp' -o -name 'pack.tmp.*')" ] ||
	fail "left: $(find "$M/misc" -name 'pack.tmp*')"
[ -e "$M/misc/pack.tmpfile" ] || fail "misc/pack.tmpfile was removed"
rm "$M/misc/pack.tmpfile"
assert_contains "$LAST_STDOUT" "removed 0,"
assert_eq "$removed" "$(find "$M/A" -name '*-deleted' | wc -l)" "leftovers"

# --days: nothing is older than a day, so nothing goes
must_pass ds pack --days 1 "$M"
assert_contains "$LAST_STDOUT" "removed 0,"

# a pack later than the replica's last transaction (past its replication
# slot: t_pack_slots.sh): refused replication
must_pass ds gen -q --graph --objects 20 --transactions 10 --per-txn 4 \
	--seed 8 "$M"
sleep 1
must_pass ds pack --ignore-replicas "$M"
must_fail 1 ds replica -q "$M" "$R"
assert_contains "$LAST_STDERR" "packed since"
must_pass ds check "$M"

# [keepclass] (kept history compared with the original's in
# t_pack_orig_replay.sh): "extra" with a number of days int() refuses
# stops the pack before anything changes (the original fails to open);
# a value that is neither "forever" nor "extra N" is named in a warning
# and ignored, as the original logs and ignores it
K=$SCRATCH/keepclass
fixture_copy flat-master "$K"
echo "persistent.mapping.PersistentMapping: extra two" >>"$K/config/settings"
before=$(tree_md5 "$K/A")
must_fail 1 ds pack "$K"
assert_contains "$LAST_STDERR" "[keepclass] persistent.mapping.PersistentMapping: 'two' is not a number of days"
assert_contains "$LAST_STDERR" "$K"
assert_eq "$before" "$(tree_md5 "$K/A")" "A/ after a refused pack"
sed -i 's/^persistent.mapping.PersistentMapping: extra two$/persistent.mapping.PersistentMapping: sometimes/' \
	"$K/config/settings"
must_pass ds pack "$K"
assert_contains "$LAST_STDERR" "bad [keepclass] persistent.mapping.PersistentMapping: 'sometimes'"
must_pass ds check "$K"

# objects with an oid beyond x.oid (none in a sound storage) are marked
# through a map instead of the arrays indexed by oid: the same result.
# With x.oid zeroed every object but the root takes that path.
. "$DS_SOURCE_DIR/tests/pack/lib-pack.sh"
for v in dense sparse; do
	pack_prepare "$DS_FIXTURE_DIR/bushy-master" "$SCRATCH/$v" 864000000 600 ||
		fail "cannot prepare $v"
done
printf '\0\0\0\0\0\0\0\0' >"$SCRATCH/sparse/A/x/oid"
for v in dense sparse; do
	must_pass ds pack -q --before 040D44B222699866 "$SCRATCH/$v"
	pack_tree "$SCRATCH/$v" | grep -v ' x/oid$' >"$SCRATCH/$v.tree"
done
cmp -s "$SCRATCH/dense.tree" "$SCRATCH/sparse.tree" ||
	fail "the map and the arrays kept other files: $(diff "$SCRATCH/dense.tree" "$SCRATCH/sparse.tree" | head -5)"
zcat "$DS_SOURCE_DIR/tests/fixtures/orig-pack/bushy-R.tree.gz" |
	grep -v ' x/oid$' | cmp -s - "$SCRATCH/dense.tree" ||
	fail "not the original's tree for bushy-R"
[ "$(grep -c -- '-T-deleted' "$SCRATCH/sparse.tree")" -gt 100 ] ||
	fail "the sparse pack removed almost nothing"

# a symlink in A/ is a stray entry: renamed away as the original does,
# never followed (the file it points to keeps its mode)
out=$SCRATCH/outside
echo outside >"$out"
chmod 0600 "$out"
ln -s "$out" "$M/A/stray-link"
must_pass ds pack --before "$rtid" "$M"
assert_eq 600 "$(stat -c %a "$out")" "mode of the symlink's target"
ls "$M/A" | grep -q '^stray-link-[0-9]*-deleted$' ||
	fail "the symlink was not renamed away: $(ls "$M/A")"
[ ! -e "$M/A/stray-link" ] || fail "the symlink is still there"
