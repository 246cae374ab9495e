#!/bin/bash
# t_backup_orig_live.sh - ds backup / ds restore against the ORIGINAL
# backup.py and checkds.py run live (the reference build at $DS_REF or
# /root/ds-ref), on a storage the original wrote through ZODB
# (shared/ref/write.py):
#  - the original's full and incremental backups restore with ds restore
#    to the source's A/;
#  - ours restore with plain tar as the original documents, and the
#    original's checkds passes on the result;
#  - one index, both tools: the original continues ours and ours the
#    original's, and the mixed chain restores.
# Skipped (exit 77) where the reference is not built; t_backup_orig.sh
# replays recorded archives of the original everywhere.
. "$(dirname "$0")/lib.sh" || exit 1
REF=${DS_REF:-/root/ds-ref}
[ -x "$REF/bin/ref-backup" ] ||
	skip "the original is not built here ($REF/bin/ref-backup missing)"

S=$SCRATCH/src
B=$S/backups
WRITE=$DS_SOURCE_DIR/../../shared/ref/write.py
[ -f "$WRITE" ] || WRITE=/work/shared/ref/write.py
[ -f "$WRITE" ] || skip "no shared/ref/write.py"
a_tree() { tree_md5 "$1/A"; }
# more SEED: three more ZODB transactions, written by the original
more() {
	must_pass "$REF/bin/ref-python" "$WRITE" "$S" 3 "$1"
}

must_pass "$REF/bin/ref-mkds" "$S" Full bushy
must_pass "$REF/bin/ref-python" "$WRITE" "$S" 30 7
mkdir "$B"
# 1. the original's backups, ds restore
must_pass "$REF/bin/ref-backup" --storage "$S" full
[ -f "$B/backup-1.tgz" ] || fail "the original wrote no backup-1.tgz"
sleep 1.1
more 21
must_pass "$REF/bin/ref-backup" --storage "$S" inc now
[ -f "$B/backup-1-to-2.tgz" ] || fail "the original wrote no backup-1-to-2.tgz"
must_pass ds restore "$B/backup-1.tgz" "$B/backup-1-to-2.tgz" "$SCRATCH/R1"
[ "$(a_tree "$S")" = "$(a_tree "$SCRATCH/R1")" ] || fail "R1 differs from the source"

# 2. ours continue the original's index, and the original ours
sleep 1.1
more 22
must_pass ds backup --storage "$S" inc now
[ -f "$B/backup-2-to-3.tgz" ] || fail "ds wrote no backup-2-to-3.tgz: $(ls "$B")"
sleep 1.1
more 23
must_pass "$REF/bin/ref-backup" --storage "$S" inc now
[ -f "$B/backup-3-to-4.tgz" ] || fail "the original did not continue ds's index: $(ls "$B")"
sleep 1.1
more 24
must_pass ds backup --storage "$S" full inc now
[ -f "$B/backup-5.tgz" ] && [ -f "$B/backup-4-to-5.tgz" ] || fail "no backup 5: $(ls "$B")"
assert_eq "1 2 3 4 5" "$(grep -v '^#' "$B/tindex" | awk 'NF {print $1}' | tr '\n' ' ' | sed 's/ $//')" \
	"sequence numbers of the shared index"
must_pass ds restore "$B/backup-1.tgz" "$B/backup-1-to-2.tgz" "$B/backup-2-to-3.tgz" \
	"$B/backup-3-to-4.tgz" "$B/backup-4-to-5.tgz" "$SCRATCH/R2"
[ "$(a_tree "$S")" = "$(a_tree "$SCRATCH/R2")" ] || fail "the mixed chain differs from the source"

# 3. ours by plain tar, as the original documents; its checkds agrees
mkdir "$SCRATCH/T"
for a in backup-5.tgz; do tar -xzf "$B/$a" -C "$SCRATCH/T" || fail "tar $a"; done
[ "$(a_tree "$S")" = "$(a_tree "$SCRATCH/T")" ] || fail "tar restore of backup-5 differs"
mkdir "$SCRATCH/T2"
for a in backup-1.tgz backup-1-to-2.tgz backup-2-to-3.tgz backup-3-to-4.tgz backup-4-to-5.tgz; do
	tar -xzf "$B/$a" -C "$SCRATCH/T2" || fail "tar $a"
done
[ "$(a_tree "$S")" = "$(a_tree "$SCRATCH/T2")" ] || fail "tar restore of the chain differs"
must_pass "$REF/bin/ref-checkds" --storage "$SCRATCH/T2"
grep -q "done" "$LAST_STDOUT" "$LAST_STDERR" || fail "the original's checkds did not finish: $(cat "$LAST_STDERR")"
# and the original's checkds on a ds restore
must_pass "$REF/bin/ref-checkds" --storage "$SCRATCH/R2"
