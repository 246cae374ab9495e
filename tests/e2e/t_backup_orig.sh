#!/bin/bash
# t_backup_orig.sh - backups made by the ORIGINAL backup.py (recorded in
# tests/fixtures/orig-backup/, see its record script) restore with
# ds restore: bushy-1.tgz + bushy-1-to-2.tgz give bushy-master's A/ exactly
# (the original replicated bushy-master into its copy between the two
# backups), flat-1.tgz + flat-1-to-2.tgz give flat-master's history (ds
# check --compare). ds backup continues the original's index: the next
# run is number 3, its reference the original's backup 2, the original's
# lines kept byte for byte; a mixed chain (the original's full and
# incremental, then ours) restores. t_backup_orig_live.sh runs the
# original itself where it is built.
. "$(dirname "$0")/lib.sh" || exit 1

O=$DS_MANIFEST_DIR/orig-backup
MAN=$O/manifest.json
[ -f "$MAN" ] || fail "no $MAN"
serial_of() { od -An -tx1 "$1/A/x/serial" 2>/dev/null || od -An -tx1 "$1/A/x.serial"; }
hexs() { serial_of "$1" | tr -d ' \n' | tr a-f A-F; }

# the recorded archives are intact: member lists as recorded
for a in bushy-1.tgz bushy-1-to-2.tgz flat-1.tgz flat-1-to-2.tgz; do
	assert_eq "$(jq -r --arg a "$a" '.archives[$a].md5' "$MAN")" \
		"$(md5sum <"$O/$a" | cut -d' ' -f1)" "md5 of $a"
done

for fam in bushy flat; do
	full=$(jq -r --arg f $fam '.families[$f].full_x_serial' "$MAN")
	inc=$(jq -r --arg f $fam '.families[$f].inc_x_serial' "$MAN")
	# the full backup alone: the start fixture's history
	must_pass ds restore "$O/$fam-1.tgz" "$SCRATCH/$fam-full"
	assert_contains "$LAST_STDERR" "check passed"
	assert_eq "$full" "$(hexs "$SCRATCH/$fam-full")" "$fam: x.serial after the full backup"
	[ "$(tree_md5 "$SCRATCH/$fam-full/A")" = "$(tree_md5 "$DS_FIXTURE_DIR/$fam-replica-old/A")" ] ||
		fail "$fam: the original's full backup restores to another A/ than $fam-replica-old's"
	# full + incremental: the master's history
	must_pass ds restore "$O/$fam-1.tgz" "$O/$fam-1-to-2.tgz" "$SCRATCH/$fam"
	assert_eq "$inc" "$(hexs "$SCRATCH/$fam")" "$fam: x.serial after the incremental"
	must_pass ds check --compare "$DS_FIXTURE_DIR/$fam-master" "$SCRATCH/$fam"
	assert_contains "$LAST_STDOUT" "0 differences"
done
# bushy-master was never packed: the restored A/ is its A/, file for file
[ "$(tree_md5 "$SCRATCH/bushy/A")" = "$(tree_md5 "$DS_FIXTURE_DIR/bushy-master/A")" ] ||
	fail "bushy: restored A/ differs from bushy-master's"
# the original's incremental out of order: refused
must_fail 1 ds restore "$O/bushy-1-to-2.tgz" "$SCRATCH/X"
must_fail 1 ds restore "$O/bushy-1.tgz" "$O/flat-1-to-2.tgz" "$SCRATCH/X"
[ ! -e "$SCRATCH/X" ] || fail "a refused restore left X"

# ---- ds backup continues the original's index ----
S=$SCRATCH/bushy
mkdir -p "$S/backups"   # (the full backup holds the bare directory)
cp "$O/bushy.tindex" "$S/backups/tindex"
must_pass ds backup --storage "$S" prefix bushy inc now
assert_contains "$LAST_STDERR" "This is backup sequence number 3"
assert_contains "$LAST_STDERR" "Ignoring empty incremental backup"
cmp "$O/bushy.tindex" "$S/backups/tindex" || fail "an empty run changed the index"
printf 'edit' >"$SCRATCH/p"
must_pass ds commit -m "after the original's backups" "$S" 0000000000000001="$SCRATCH/p"
must_pass ds backup --storage "$S" prefix bushy inc now
assert_contains "$LAST_STDERR" "Creating incremental backup '$S/backups/bushy-2-to-3.tgz'"
assert_contains "$LAST_STDERR" "which included transaction $(jq -r '.families.bushy.inc_x_serial' "$MAN")"
n=$(wc -c <"$O/bushy.tindex")
cmp -n "$n" "$O/bushy.tindex" "$S/backups/tindex" || fail "the original's index lines changed"
tail -n 1 "$S/backups/tindex" | grep -qE "^3     [0-9]{10}   $(hexs "$S")\$" ||
	fail "index line 3: $(tail -n 1 "$S/backups/tindex")"
# the mixed chain: the original's full and incremental, then ours
must_pass ds restore "$O/bushy-1.tgz" "$O/bushy-1-to-2.tgz" \
	"$S/backups/bushy-2-to-3.tgz" "$SCRATCH/mixed"
[ "$(tree_md5 "$SCRATCH/mixed/A")" = "$(tree_md5 "$S/A")" ] ||
	fail "the mixed chain restores to another A/"
