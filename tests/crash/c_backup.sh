#!/bin/bash
# ds backup --storage S full inc now, killed or failing with ENOSPC/EIO at
# each of its durable I/O calls. S has a full backup 1 in S/backups (and
# its index line) and transactions since. A clean run writes backup-2.tgz
# and backup-1-to-2.tgz, then the index line 2. Afterwards:
#  - the index is byte for byte the old one or the new one (replaced
#    atomically, never half-written);
#  - every file under an archive's name (no ".tmp-" prefix) is a complete
#    archive (gzip -t, and tar lists it to its end): nothing that looks
#    like a finished backup is partial;
#  - when the index has line 2, both of its archives exist;
#  - after an injected error (the process lives to clean up) no ".tmp-"
#    file is left;
#  - the storage is untouched (A/ as before) and not left held: a rerun
#    succeeds, and ds restore of the rerun's archives equals the storage.
. "$(dirname "$0")/lib.sh"

CRASH_SUB=backup
CRASH_DESC="ds backup --storage \$RUN/s full inc now"
CRASH_KIND_BUDGET=40
CRASH_ERROR_BUDGET=15
CRASH_STICKY_BUDGET=6

ORIG=$SCRATCH/orig
must_pass ds gen -q --objects 120 --transactions 24 "$ORIG"
mkdir "$ORIG/backups"
must_pass ds backup -q --storage "$ORIG" full
must_pass ds gen -q --objects 10 --transactions 4 --per-txn 5 --seed 5 "$ORIG"
cp "$ORIG/backups/tindex" "$SCRATCH/tindex.old"
tree_md5 "$ORIG/A" >"$SCRATCH/A.ref"

crash_setup() { cp -a "$ORIG" "$1/s"; }
crash_cmd() { "$DS_BIN" backup -q --storage "$1/s" full inc now; }

# the invariants that hold whatever happened
consistent() {
	local b=$1/s/backups f lines
	if cmp -s "$b/tindex" "$SCRATCH/tindex.old"; then
		crash_outcome old
	else
		lines=$(grep -v '^#' "$b/tindex" | awk 'NF' | wc -l)
		assert_eq 2 "$lines" "index lines (neither the old index nor one more line)"
		cmp -s -n "$(wc -c <"$SCRATCH/tindex.old")" "$SCRATCH/tindex.old" "$b/tindex" ||
			fail "the index's old lines changed"
		tail -n 1 "$b/tindex" | grep -qE '^2     [0-9]{10}   [0-9A-F]{16}$' ||
			fail "index line 2: $(tail -n 1 "$b/tindex")"
		[ -f "$b/backup-2.tgz" ] && [ -f "$b/backup-1-to-2.tgz" ] ||
			fail "the index names backup 2 but its archives are missing: $(ls -A "$b")"
		crash_outcome new
	fi
	for f in "$b"/backup-*.tgz; do
		[ -e "$f" ] || continue
		gzip -t "$f" 2>/dev/null || fail "$f is not a complete gzip stream"
		tar -tzf "$f" >/dev/null 2>&1 || fail "$f is not a complete archive"
	done
	tree_md5 "$1/s/A" | cmp -s - "$SCRATCH/A.ref" || fail "the storage's A/ changed"
}

crash_check_killed() { consistent "$1"; }
crash_check_failed() {
	consistent "$1"
	[ -z "$(find "$1/s/backups" -name '.tmp-*')" ] ||
		fail "a failed run left $(find "$1/s/backups" -name '.tmp-*')"
}
crash_check_done() {
	consistent "$1"
	[ -f "$1/s/backups/backup-2.tgz" ] || fail "no backup-2.tgz after a clean run"
}

crash_rerun() {
	local b=$1/s/backups seq
	must_pass ds backup -q --storage "$1/s" full inc now
	seq=$(grep -v '^#' "$b/tindex" | awk 'NF {n = $1} END {print n}')
	rm -rf "$1/r"
	must_pass ds restore -q "$b/backup-$seq.tgz" "$1/r"
	tree_md5 "$1/r/A" | cmp -s - "$SCRATCH/A.ref" || fail "the rerun's full backup restores to another A/"
	# (after an outcome "new" the rerun is number 3, its incremental
	# 2-to-3 empty)
	[ -f "$b/backup-1-to-$seq.tgz" ] || return 0
	rm -rf "$1/r"
	must_pass ds restore -q "$b/backup-1.tgz" "$b/backup-1-to-$seq.tgz" "$1/r"
	tree_md5 "$1/r/A" | cmp -s - "$SCRATCH/A.ref" || fail "the rerun's incremental restores to another A/"
}

crash_enumerate
