#!/bin/bash
# ds restore FULL INC R, killed or failing with ENOSPC/EIO at each of its
# durable I/O calls (the members written, the engine's open and close of
# the new storage, the check, the syncfs, the rename into place).
# Afterwards R does not exist, or (killed after the rename) is the whole
# restored storage: ds check passes and A/ equals the source's. After an
# injected error the temporary R.restore-PID is not left, and R exists
# only when the error came after the rename into place (the fsync of the
# parent directory: exit 4, R whole but its name perhaps not durable). A
# rerun (R removed when it exists) restores.
. "$(dirname "$0")/lib.sh"

CRASH_SUB=restore
CRASH_DESC="ds restore \$RUN/b/backup-1.tgz \$RUN/b/backup-1-to-2.tgz \$RUN/r"
CRASH_KIND_BUDGET=40
CRASH_ERROR_BUDGET=15
CRASH_STICKY_BUDGET=6

SRC=$SCRATCH/src
must_pass ds gen -q --objects 60 --transactions 12 "$SRC"
mkdir "$SRC/backups"
must_pass ds backup -q --storage "$SRC" full
must_pass ds gen -q --objects 6 --transactions 2 --per-txn 3 --seed 5 "$SRC"
must_pass ds backup -q --storage "$SRC" inc now
tree_md5 "$SRC/A" >"$SCRATCH/A.ref"

crash_setup() { cp -a "$SRC/backups" "$1/b"; }
crash_cmd() { "$DS_BIN" restore -q "$1/b/backup-1.tgz" "$1/b/backup-1-to-2.tgz" "$1/r"; }

whole() {
	must_pass ds check -q "$1/r"
	tree_md5 "$1/r/A" | cmp -s - "$SCRATCH/A.ref" || fail "the restored A/ differs from the source's"
}
crash_check_killed() {
	if [ -e "$1/r" ]; then
		crash_outcome restored
		whole "$1"
	else
		crash_outcome absent
	fi
}
crash_check_failed() {
	crash_check_killed "$1"
	[ -z "$(ls -d "$1"/r.restore-* 2>/dev/null)" ] ||
		fail "a failed restore left $(ls -d "$1"/r.restore-*)"
}
crash_check_done() { whole "$1"; }
crash_rerun() {
	rm -rf "$1/r"
	must_pass ds restore -q "$1/b/backup-1.tgz" "$1/b/backup-1-to-2.tgz" "$1/r"
	whole "$1"
}

crash_enumerate
