#!/bin/bash
# Hard-linked copies stay intact: an operator who keeps cheap point-in-time
# copies of a replica or a master (`cp -al`, rsnapshot, rsync --link-dest)
# shares every file with them. ds must replace a file it changes (new
# inode, renamed over the old name), never write it in place, or every
# copy changes with it. Copies of the replica and of the master are taken
# before each step: small and large increments (the large ones rewrite
# .c pointers of existing objects), commits, an undo, a commit while a
# snapshot user holds the master (written into B) and the snapshot leave
# that moves B over A, and the master side's snapshot mode (misc/snapshot).
# After every step, every copy is byte for byte and inode for inode what
# it was (`find -printf '%i %y %m %P'` and the md5 of every file). Lock
# files (misc/lock, misc/sublock) are written in place by design and left
# out.
. "$(dirname "$0")/lib.sh" || exit 1

M=$SCRATCH/m
R=$SCRATCH/r
C=$SCRATCH/copies
mkdir "$C"
ncopies=0

# fingerprint DIR: every entry's inode, type, mode and path, and every
# regular file's md5, sorted; lock files left out
fingerprint() {
	(cd "$1" && find . -path ./misc/lock -prune -o -path ./misc/sublock \
		-prune -o -printf '%i %y %m %P\n' | sort -k4 &&
	 find . -type f ! -path ./misc/lock ! -path ./misc/sublock \
		-exec md5sum {} + | sort -k2)
}

# copy SRC NAME: a hard-linked copy of SRC and its fingerprint
copy() {
	ncopies=$((ncopies + 1))
	cp -al "$1" "$C/$ncopies-$2"
	fingerprint "$C/$ncopies-$2" >"$C/$ncopies-$2.fp"
	# the copy shares the files: at least x.serial has a link count > 1
	[ "$(find "$C/$ncopies-$2/A" -type f -links +1 | wc -l)" -gt 0 ] ||
		fail "cp -al made no hard links"
}

# every copy is still what it was
check_copies() {
	local fp
	for fp in "$C"/*.fp; do
		if ! fingerprint "${fp%.fp}" | cmp -s - "$fp"; then
			fingerprint "${fp%.fp}" | diff "$fp" - | head -20 >&2
			fail "after $1: the copy ${fp%.fp} changed (diff above)"
		fi
	done
}

# snapshot both
copies() {
	copy "$R" "replica-before-$1"
	copy "$M" "master-before-$1"
}

must_pass ds gen -q --objects 50 --transactions 10 --big 1 "$M"
must_pass ds replica -q --init "$M" "$R"

# a small increment: a few transactions
copies small
must_pass ds gen -q --objects 5 --transactions 3 --per-txn 5 --seed 4 "$M"
must_pass ds replica -q "$M" "$R"
check_copies "a small increment"

# a large increment: many transactions rewriting existing objects, so the
# replica's .c pointers (and x.serial, x.oid) are rewritten
copies large
must_pass ds gen -q --objects 20 --transactions 200 --per-txn 8 --seed 5 "$M"
must_pass ds replica -q "$M" "$R"
check_copies "a large increment"

# commits on the master: a new object and an existing one (its .c
# pointer), then an undo of that commit
copies commit
printf 'hard links 1' >"$SCRATCH/p1"
must_pass ds commit -m one "$M" new="$SCRATCH/p1" 0000000000000001="$SCRATCH/p1"
tid=$(head -1 "$LAST_STDOUT")
check_copies "ds commit"
copies undo
must_pass ds undo "$M" "$tid"
check_copies "ds undo"

# a commit while a snapshot user holds the master (misc/sublock, as the
# original's snapshot.py does: the commit goes into B), then the snapshot
# leave of the next open (B over A)
copies snapshot
printf 'hard links 2' >"$SCRATCH/p2"
( exec 9>>"$M/misc/sublock"; flock -n 9 || exit 1; exec sleep 60 ) &
holder=$!
trap 'rc=$?; kill "$holder" 2>/dev/null || true; set +e; (exit $rc); e2e_exit' EXIT
sleep 0.5
kill -0 "$holder" || fail "the holder could not lock misc/sublock"
must_pass ds commit -m held "$M" 0000000000000002="$SCRATCH/p2"
kill "$holder"
wait "$holder" 2>/dev/null || true
[ -n "$(find "$M/B" -type f)" ] || fail "the commit in snapshot mode did not go to B"
check_copies "a commit in snapshot mode"
copies leave
printf 'hard links 3' >"$SCRATCH/p3"
must_pass ds commit -m after "$M" 0000000000000002="$SCRATCH/p3"
assert_eq 0 "$(find "$M/B" -mindepth 1 | wc -l)" "B after the snapshot leave"
check_copies "the snapshot leave"

# and all of it to the replica
copies last
must_pass ds replica -q "$M" "$R"
check_copies "the last increment"
must_pass ds check -q --compare "$M" "$R"
must_pass ds cat "$R" 0000000000000002
assert_eq "hard links 3" "$(cat "$LAST_STDOUT")" "the replica's object 2"

# every copy still opens and is what its storage was
for d in "$C"/*-replica-before-* "$C"/*-master-before-*; do
	case $d in *.fp) continue ;; esac
	must_pass ds check -q "$d"
done

# A temporary file a killed writer left (the new x.serial written, not yet
# renamed over the old one): the storage still opens and reads, ds check
# names it for what it is, and the next replacement of that file reuses
# and removes it.
printf 'XXXXXXXX' >"$R/A/x/.ds-new.serial"
must_pass ds cat "$R" 0000000000000002
must_fail 1 ds check "$R"
assert_contains "$LAST_STDERR" "A/x/.ds-new.serial"
assert_contains "$LAST_STDERR" "temporary file of a replacement that was interrupted"
printf 'hard links 4' >"$SCRATCH/p4"
must_pass ds commit -m four "$M" 0000000000000002="$SCRATCH/p4"
must_pass ds replica -q "$M" "$R"
[ ! -e "$R/A/x/.ds-new.serial" ] || fail "the leftover temporary file is still there"
must_pass ds check -q --compare "$M" "$R"
