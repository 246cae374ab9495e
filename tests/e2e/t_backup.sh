#!/bin/bash
# ds backup and ds restore, the round trip: a full backup, incrementals
# ("inc now", "inc SECONDS", one skipped because nothing changed, a
# redundant M-to-N after a later one as backup.py's doc describes), the
# index (backup.py's header and lines), restore of full + incrementals
# equal to the source (same A/, ds check --compare), the same archives
# unpacked by plain tar as the original documents, zstd archives, and a
# backup of a live storage (a holder committing through its control
# socket meanwhile). Then what must fail, each leaving no archive, the
# index and DIR as they were: no BACKUPS directory, inc without an
# earlier backup, a bad prefix, an unknown command, a storage packed since
# the reference, an existing DIR, archives out of order, a gap, an
# incremental first, a foreign storage's increment.
. "$(dirname "$0")/lib.sh" || exit 1
: "${DS_HOLDER:?DS_HOLDER must name ds-test-holder (ctest sets it)}"

S=$SCRATCH/src
B=$S/backups
HOLDER=
trap 'rc=$?; [ -z "$HOLDER" ] || kill -9 "$HOLDER" 2>/dev/null || true; set +e; (exit $rc); e2e_exit' EXIT

# gen_more SEED: a few more transactions on $S
gen_more() {
	must_pass ds gen -q --nosync --objects 15 --transactions 3 --per-txn 5 \
		--seed "$1" "$S"
}
# the index's data lines
index_lines() { grep -v '^#' "$B/tindex" | grep -v '^$'; }
# a_tree DIR: A/ of DIR as tree_md5 sees it
a_tree() { tree_md5 "$1/A"; }

must_pass ds gen -q --nosync --objects 300 --transactions 60 "$S"

# ---- BACKUPS must exist (as backup.py) ----
must_fail 1 ds backup --storage "$S" full
assert_contains "$LAST_STDERR" "backups does not exist"
mkdir "$B"

# ---- inc without any earlier backup: refused, nothing written ----
must_fail 1 ds backup --storage "$S" inc now
assert_contains "$LAST_STDERR" "No previous backup found"
assert_eq "" "$(ls -A "$B")" "BACKUPS after a refused inc"

# ---- full: backup-1.tgz and the index ----
must_pass ds backup --storage "$S" full
assert_contains "$LAST_STDERR" "This is backup sequence number 1"
assert_contains "$LAST_STDERR" "Creating full backup '$S/backups/backup-1.tgz'"
assert_contains "$LAST_STDERR" "full backup complete"
[ -f "$B/backup-1.tgz" ] || fail "no backup-1.tgz"
head -n 6 "$B/tindex" >"$SCRATCH/header"
printf '\n%s\n%s\n%s\n%s\n\n' \
	"# This file is an index of incremental backups. Each row contains the following columns:" \
	"# sequence number" "#     timestamp of the backup" \
	"#                  last transaction id included in the backup" \
	>"$SCRATCH/header.want"
cmp "$SCRATCH/header" "$SCRATCH/header.want" || fail "tindex header differs from backup.py's"
serial1=$(od -An -tx1 "$S/A/x/serial" | tr -d ' \n' | tr a-f A-F)
index_lines | grep -qE "^1     [0-9]{10}   $serial1\$" ||
	fail "index line 1: $(index_lines)"
# the members: the home's directories, config/, A/'s files, no leftovers
tar -tzf "$B/backup-1.tgz" >"$SCRATCH/members1"
for m in A/ B/ config/ journal/ misc/ backups/ config/settings config/identity A/x/serial A/x/oid A/x/packed; do
	grep -qxF "$m" "$SCRATCH/members1" || fail "backup-1.tgz lacks $m"
done
assert_eq "$(find "$S/A" -type f | wc -l)" "$(grep -c '^A/.*[^/]$' "$SCRATCH/members1")" \
	"A/ files in the full backup"
tree_md5 "$S" >"$SCRATCH/src.tree"

# ---- nothing changed: the incremental is skipped, no index line ----
sleep 1.1
must_pass ds backup --storage "$S" inc now
assert_contains "$LAST_STDERR" "Ignoring empty incremental backup"
assert_contains "$LAST_STDERR" "No backups needed"
assert_eq 1 "$(index_lines | wc -l)" "index lines after an empty inc"

# ---- incrementals ----
gen_more 11
must_pass ds backup --storage "$S" inc now
assert_contains "$LAST_STDERR" "Creating incremental backup '$S/backups/backup-1-to-2.tgz'"
assert_contains "$LAST_STDERR" "since backup 1 at"
assert_contains "$LAST_STDERR" "which included transaction $serial1"
# an incremental holds what ds whatsnew lists, in its order
tar -tzf "$B/backup-1-to-2.tgz" >"$SCRATCH/members2"
must_pass ds whatsnew --storage "$S" "$serial1"
cmp "$LAST_STDOUT" "$SCRATCH/members2" || fail "backup-1-to-2.tgz is not the whatsnew list"
sleep 1.1
gen_more 12
t3=$(date +%s)
must_pass ds backup -q --storage "$S" inc now
[ -f "$B/backup-2-to-3.tgz" ] || fail "no backup-2-to-3.tgz"
[ ! -s "$LAST_STDERR" ] || fail "-q printed: $(cat "$LAST_STDERR")"
sleep 1.1
gen_more 13
# since a time before backup 3: the reference is backup 2 (backup.py's
# find_rev), so backup-2-to-4 is redundant with backup-3's successor
must_pass ds backup --storage "$S" --prefix backup inc "$((t3 - 1))"
[ -f "$B/backup-2-to-4.tgz" ] || fail "no backup-2-to-4.tgz: $(ls "$B")"
# "N seconds ago" goes through date --date
sleep 1.1
gen_more 14
must_pass ds backup --storage "$S" inc "0 seconds ago"
[ -f "$B/backup-4-to-5.tgz" ] || fail "no backup-4-to-5.tgz: $(ls "$B")"
assert_eq "1 2 3 4 5" "$(index_lines | awk '{print $1}' | tr '\n' ' ' | sed 's/ $//')" \
	"index sequence numbers"
[ -z "$(find "$B" -name '.tmp-*')" ] || fail "temporary files left"

# ---- restore: full + incrementals, equal to the source ----
must_pass ds restore "$B/backup-1.tgz" "$B/backup-1-to-2.tgz" \
	"$B/backup-2-to-3.tgz" "$B/backup-2-to-4.tgz" "$B/backup-4-to-5.tgz" \
	"$SCRATCH/R1"
assert_contains "$LAST_STDERR" "check passed"
[ "$(a_tree "$S")" = "$(a_tree "$SCRATCH/R1")" ] || {
	diff <(a_tree "$S") <(a_tree "$SCRATCH/R1") | head >&2
	fail "restored A/ differs from the source's"
}
must_pass ds check --compare "$S" "$SCRATCH/R1"
cmp "$S/config/settings" "$SCRATCH/R1/config/settings" || fail "config/settings differs"
cmp "$S/config/identity" "$SCRATCH/R1/config/identity" || fail "config/identity differs"
# skipping ahead (backup.py's doc: after 2-to-4, 4-to-5; 2-to-3 not needed)
must_pass ds restore "$B/backup-1.tgz" "$B/backup-1-to-2.tgz" \
	"$B/backup-2-to-4.tgz" "$B/backup-4-to-5.tgz" "$SCRATCH/R2"
[ "$(a_tree "$S")" = "$(a_tree "$SCRATCH/R2")" ] || fail "R2 differs from the source"
# the restored storage works: it takes a commit
printf 'x' >"$SCRATCH/pickle"
must_pass ds commit "$SCRATCH/R2" new="$SCRATCH/pickle"

# ---- plain tar, as backup.py documents: same A/ as ds restore ----
mkdir "$SCRATCH/T"
for a in backup-1.tgz backup-1-to-2.tgz backup-2-to-3.tgz backup-2-to-4.tgz backup-4-to-5.tgz; do
	tar -xzf "$B/$a" -C "$SCRATCH/T" || fail "tar -xzf $a failed"
done
[ "$(a_tree "$S")" = "$(a_tree "$SCRATCH/T")" ] || fail "tar-restored A/ differs"
must_pass ds check "$SCRATCH/T"

# ---- zstd ----
mkdir "$SCRATCH/zb"
must_pass ds backup --storage "$S" --dir "$SCRATCH/zb" --zstd --prefix z full
[ -f "$SCRATCH/zb/z-1.tar.zst" ] || fail "no z-1.tar.zst"
zstd -t -q "$SCRATCH/zb/z-1.tar.zst" || fail "z-1.tar.zst is not zstd"
sleep 1.1
gen_more 15
must_pass ds backup --storage "$S" --dir "$SCRATCH/zb" --zstd prefix z inc now
[ -f "$SCRATCH/zb/z-1-to-2.tar.zst" ] || fail "no z-1-to-2.tar.zst"
must_pass ds restore "$SCRATCH/zb/z-1.tar.zst" "$SCRATCH/zb/z-1-to-2.tar.zst" "$SCRATCH/RZ"
[ "$(a_tree "$S")" = "$(a_tree "$SCRATCH/RZ")" ] || fail "zstd restore differs"
mkdir "$SCRATCH/TZ"
tar --zstd -xf "$SCRATCH/zb/z-1.tar.zst" -C "$SCRATCH/TZ" &&
	tar --zstd -xf "$SCRATCH/zb/z-1-to-2.tar.zst" -C "$SCRATCH/TZ" || fail "tar --zstd failed"
[ "$(a_tree "$S")" = "$(a_tree "$SCRATCH/TZ")" ] || fail "tar --zstd restore differs"

# ---- what must fail ----
cp "$B/tindex" "$SCRATCH/tindex.before"
ls "$B" >"$SCRATCH/ls.before"
same_backups() {
	cmp -s "$B/tindex" "$SCRATCH/tindex.before" || fail "tindex changed by a failed run"
	ls "$B" | cmp -s - "$SCRATCH/ls.before" || fail "BACKUPS changed by a failed run: $(ls -A "$B")"
}
must_fail 2 ds backup --storage "$S" nonsense
assert_contains "$LAST_STDERR" "unknown command 'nonsense'"
must_fail 2 ds backup --storage "$S"
must_fail 2 ds backup --storage "$S" inc
must_fail 2 ds backup --storage "$S" inc "not a time at all"
must_fail 1 ds backup --storage "$S" --prefix ../evil full
assert_contains "$LAST_STDERR" "prefix '../evil' refused"
must_fail 1 ds backup --storage "$SCRATCH/nostorage" full
same_backups
# a corrupt index is reported with its line, never overwritten
printf 'garbage here\n' >>"$B/tindex"
must_fail 1 ds backup --storage "$S" full
assert_contains "$LAST_STDERR" "line 12"
cp "$SCRATCH/tindex.before" "$B/tindex"
same_backups

must_fail 1 ds restore "$B/backup-1.tgz" "$SCRATCH/R1"
assert_contains "$LAST_STDERR" "exists already"
# out of order: 2-to-3 before 1-to-2 (a gap), and going back
must_fail 1 ds restore "$B/backup-1.tgz" "$B/backup-2-to-3.tgz" "$SCRATCH/X"
assert_contains "$LAST_STDERR" "does not continue the backups restored before it"
must_fail 1 ds restore "$B/backup-1.tgz" "$B/backup-1-to-2.tgz" \
	"$B/backup-2-to-4.tgz" "$B/backup-2-to-3.tgz" "$SCRATCH/X"
assert_contains "$LAST_STDERR" "would take the storage back"
# an incremental first; a full second
must_fail 1 ds restore "$B/backup-1-to-2.tgz" "$SCRATCH/X"
assert_contains "$LAST_STDERR" "before config/settings"
must_fail 1 ds restore "$B/backup-1.tgz" "$SCRATCH/zb/z-1.tar.zst" "$SCRATCH/X"
assert_contains "$LAST_STDERR" "can only be the first archive"
# another storage's increment
must_pass ds gen -q --nosync --objects 50 --transactions 10 --seed 3 "$SCRATCH/other"
mkdir "$SCRATCH/other/backups"
must_pass ds backup -q --storage "$SCRATCH/other" full
sleep 1.1
must_pass ds gen -q --nosync --objects 10 --transactions 2 --seed 4 "$SCRATCH/other"
must_pass ds backup -q --storage "$SCRATCH/other" inc now
must_fail 1 ds restore "$B/backup-1.tgz" "$SCRATCH/other/backups/backup-1-to-2.tgz" "$SCRATCH/X"
assert_contains "$LAST_STDERR" "does not continue"
# not an archive; missing
printf 'not a tar' >"$SCRATCH/junk.tgz"
must_fail 1 ds restore "$SCRATCH/junk.tgz" "$SCRATCH/X"
must_fail 1 ds restore "$SCRATCH/missing.tgz" "$SCRATCH/X"
[ ! -e "$SCRATCH/X" ] || fail "a failed restore left $SCRATCH/X"
[ -z "$(ls -d "$SCRATCH"/X.restore-* 2>/dev/null)" ] || fail "a failed restore left its temporary directory"

# ---- packed since the reference: inc refused, full works ----
sleep 1.1
gen_more 16
# (a pack threshold is at most now - min_pack_time: 0 for this test)
sed -i 's/^min_pack_time: 600$/min_pack_time: 0/' "$S/config/settings"
must_pass ds pack -q --before "$(ds log -n 1 "$S" | head -1 | cut -d' ' -f1)" "$S"
must_fail 1 ds backup --storage "$S" inc now
assert_contains "$LAST_STDERR" "packed since"
same_backups
must_pass ds backup -q --storage "$S" full
[ -f "$B/backup-6.tgz" ] || fail "no backup-6.tgz after the pack: $(ls "$B")"
must_pass ds restore "$B/backup-6.tgz" "$SCRATCH/R6"
[ "$(find "$SCRATCH/R6/A" -name '*-deleted' | wc -l)" = 0 ] || fail "pack leftovers restored"
must_pass ds check --compare "$S" "$SCRATCH/R6"

# ---- a live storage: a holder commits through the backup ----
L=$SCRATCH/live
must_pass ds gen -q --nosync --objects 200 --transactions 40 "$L"
mkdir "$L/backups"
"$DS_HOLDER" -i 2 -r "$SCRATCH/ready" -t "$SCRATCH/tid" "$L" \
	>"$SCRATCH/holder.out" 2>"$SCRATCH/holder.err" &
HOLDER=$!
for _ in $(seq 6000); do
	[ -s "$SCRATCH/ready" ] && [ -s "$SCRATCH/tid" ] && break
	sleep 0.01
done
[ -S "$L/misc/control" ] || fail "the holder did not start"
must_pass ds backup --storage "$L" full
assert_contains "$LAST_STDERR" "control"
t=$(cat "$SCRATCH/tid")
for _ in $(seq 6000); do [ "$(cat "$SCRATCH/tid")" != "$t" ] && break; sleep 0.01; done
sleep 1.1
must_pass ds backup --storage "$L" inc now
[ -f "$L/backups/backup-1-to-2.tgz" ] || fail "no incremental of the live storage"
kill -TERM "$HOLDER"
wait "$HOLDER" || fail "the holder failed: $(cat "$SCRATCH/holder.err")"
HOLDER=
must_pass ds restore "$L/backups/backup-1.tgz" "$L/backups/backup-1-to-2.tgz" "$SCRATCH/RL"
# the restored storage is the live one's history up to the backup
must_pass ds check --compare "$L" "$SCRATCH/RL"
