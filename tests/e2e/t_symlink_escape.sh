#!/bin/bash
# No write follows a symlink beneath a storage: a directory under A/ (of a
# replica for `ds replica`, of a master for `ds commit`'s flush), or
# journal/ or misc/ themselves, replaced by a symlink to a directory
# outside the storage. Each command must fail naming the symlink ("... is
# a symlink"), and nothing may be written outside (the outside directory
# is inode for inode and byte for byte what it was). Once the symlink is
# replaced by the real directory again, the same command completes.
. "$(dirname "$0")/lib.sh" || exit 1

M=$SCRATCH/m
OUT=$SCRATCH/outside
mkdir "$OUT"

fingerprint() {
	(cd "$1" && find . -printf '%i %y %m %P\n' | sort -k4 &&
	 find . -type f -exec md5sum {} + | sort -k2)
}

# swap DIR: move DIR to $OUT/NAME and leave a symlink to it in its place
swap() {
	mv "$1" "$OUT/$2"
	ln -s "$OUT/$2" "$1"
	fingerprint "$OUT" >"$SCRATCH/out.fp"
}
# unswap DIR NAME: the real directory back
unswap() {
	rm "$1"
	mv "$OUT/$2" "$1"
}
outside_unchanged() {
	fingerprint "$OUT" | cmp -s - "$SCRATCH/out.fp" ||
		fail "$1 wrote outside the storage: $(fingerprint "$OUT" | diff "$SCRATCH/out.fp" - | head -5)"
}

must_pass ds gen -q --objects 30 --transactions 6 --big 1 "$M"
must_pass ds replica -q --init "$M" "$SCRATCH/r0"
# the next increment rewrites object 1 (A/o0/00/00/00/00/00/00/001/ in
# the bushy layout) and adds x.serial and x.oid (A/x/)
printf 'escape 1' >"$SCRATCH/p1"
must_pass ds commit "$M" 0000000000000001="$SCRATCH/p1"

# 1. ds replica: a directory deep under the replica's A/
cp -a "$SCRATCH/r0" "$SCRATCH/r1"
swap "$SCRATCH/r1/A/o0/00" r1-o0-00
must_fail 1 ds replica -q "$M" "$SCRATCH/r1"
assert_contains "$LAST_STDERR" "$SCRATCH/r1/A/o0/00 is a symlink"
outside_unchanged "ds replica (A/o0/00)"
unswap "$SCRATCH/r1/A/o0/00" r1-o0-00
must_pass ds replica -q "$M" "$SCRATCH/r1"
must_pass ds check -q --compare "$M" "$SCRATCH/r1"

# 2. ds replica: A/x (x.serial and x.oid)
cp -a "$SCRATCH/r0" "$SCRATCH/r2"
swap "$SCRATCH/r2/A/x" r2-x
must_fail 1 ds replica -q "$M" "$SCRATCH/r2"
assert_contains "$LAST_STDERR" "$SCRATCH/r2/A/x is a symlink"
outside_unchanged "ds replica (A/x)"
unswap "$SCRATCH/r2/A/x" r2-x
must_pass ds replica -q "$M" "$SCRATCH/r2"
must_pass ds check -q --compare "$M" "$SCRATCH/r2"

# 3. ds replica: the replica's journal/ (the commit point is a rename
# into it)
cp -a "$SCRATCH/r0" "$SCRATCH/r3"
swap "$SCRATCH/r3/journal" r3-journal
must_fail 1 ds replica -q "$M" "$SCRATCH/r3"
assert_contains "$LAST_STDERR" "$SCRATCH/r3/journal is a symlink"
outside_unchanged "ds replica (journal/)"
unswap "$SCRATCH/r3/journal" r3-journal
must_pass ds replica -q "$M" "$SCRATCH/r3"

# 4. ds commit: a directory under the master's A/ (the flush)
cp -a "$M" "$SCRATCH/m4"
swap "$SCRATCH/m4/A/o0/00" m4-o0-00
printf 'escape 4' >"$SCRATCH/p4"
must_fail 1 ds commit "$SCRATCH/m4" 0000000000000001="$SCRATCH/p4"
assert_contains "$LAST_STDERR" "$SCRATCH/m4/A/o0/00 is a symlink"
outside_unchanged "ds commit (A/o0/00)"
unswap "$SCRATCH/m4/A/o0/00" m4-o0-00
# the transaction was committed in journal/: the next open flushes it
must_pass ds cat "$SCRATCH/m4" 0000000000000001
assert_eq "escape 4" "$(cat "$LAST_STDOUT")" "object 1 after the repair"
must_pass ds check -q "$SCRATCH/m4"

# 5. ds commit: journal/ and misc/
for sub in journal misc; do
	cp -a "$M" "$SCRATCH/m5$sub"
	swap "$SCRATCH/m5$sub/$sub" "m5-$sub"
	must_fail 1 ds commit "$SCRATCH/m5$sub" 0000000000000001="$SCRATCH/p4"
	assert_contains "$LAST_STDERR" "$SCRATCH/m5$sub/$sub is a symlink"
	outside_unchanged "ds commit ($sub/)"
	unswap "$SCRATCH/m5$sub/$sub" "m5-$sub"
	must_pass ds commit "$SCRATCH/m5$sub" 0000000000000001="$SCRATCH/p4"
	must_pass ds check -q "$SCRATCH/m5$sub"
done

# the storage's home itself may be reached through a symlink
ln -s "$M" "$SCRATCH/m-link"
printf 'escape 6' >"$SCRATCH/p6"
must_pass ds commit "$SCRATCH/m-link" 0000000000000001="$SCRATCH/p6"
must_pass ds replica -q "$SCRATCH/m-link" "$SCRATCH/r1"
must_pass ds cat "$SCRATCH/r1" 0000000000000001
assert_eq "escape 6" "$(cat "$LAST_STDOUT")" "through a symlinked home"
