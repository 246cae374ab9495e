#!/bin/bash
# t_pack_orig_live.sh - `ds pack` and the ORIGINAL's pack (ZODB.DB.pack
# through tests/pack/orig_pack.py, in the reference build at $DS_REF or
# /root/ds-ref) pack copies of the same storages at the same time and
# leave the same A/ tree (names, modes, md5s; leftover times normalised):
#  - every case of tests/pack/cases.txt, live (t_pack_orig_replay.sh
#    replays the recorded results where the original cannot run);
#  - storages with garbage made by `ds gen --graph` in the four layouts,
#    packed in the middle of their edits, then packed again later;
#  - a storage the original wrote through ZODB (shared/ref/write.py, run
#    twice), packed at a time between the two runs.
# Skipped (exit 77) where the reference is not built.
. "$(dirname "$0")/lib.sh"
. "$DS_SOURCE_DIR/tests/pack/lib-pack.sh"
REF=${DS_REF:-/root/ds-ref}
[ -x "$REF/bin/ref-python" ] ||
	skip "the original is not built here ($REF/bin/ref-python missing)"
WRITE=$DS_SOURCE_DIR/../../shared/ref/write.py
[ -f "$WRITE" ] || WRITE=/work/shared/ref/write.py

# the threshold the original derives from TID (a double cannot hold
# every tid)
orig_threshold() {
	"$REF/bin/ref-python" -c '
import sys
from persistent.TimeStamp import TimeStamp
from DirectoryStorage.utils import timestamp2tid
print(timestamp2tid(TimeStamp(bytes.fromhex(sys.argv[1])).timeTime()).hex().upper())' "$1"
}

# compare NAME SRC DELAY MINPACK TID...: pack copies of SRC with both
compare() {
	local name=$1 src=$2 delay=$3 minpack=$4 tid thr
	shift 4
	pack_prepare "$src" "$SCRATCH/$name.orig" "$delay" "$minpack" ||
		fail "$name: cannot prepare"
	pack_prepare "$src" "$SCRATCH/$name.ds" "$delay" "$minpack" ||
		fail "$name: cannot prepare"
	pack_keepclass "$SCRATCH/$name.orig" "$@" &&
	pack_keepclass "$SCRATCH/$name.ds" "$@" ||
		fail "$name: cannot set its [keepclass] options"
	for tid in $(pack_tids "$@"); do
		must_pass "$REF/bin/ref-python" "$PACK_DIR/orig_pack.py" \
			"$SCRATCH/$name.orig" "$tid"
		thr=$(sed -n 's/^threshold //p' "$LAST_STDOUT")
		must_pass ds pack -q --before "$thr" "$SCRATCH/$name.ds"
		sleep 1
	done
	pack_tree "$SCRATCH/$name.orig" >"$SCRATCH/$name.want"
	pack_tree "$SCRATCH/$name.ds" >"$SCRATCH/$name.got"
	if ! diff -u "$SCRATCH/$name.want" "$SCRATCH/$name.got" \
		>"$SCRATCH/$name.diff"; then
		head -40 "$SCRATCH/$name.diff" >&2
		fail "$name: ds pack left another tree than the original"
	fi
	must_pass ds check "$SCRATCH/$name.ds"
	must_pass "$REF/bin/ref-checkds" -q --storage "$SCRATCH/$name.ds"
	echo "$name: same tree ($(wc -l <"$SCRATCH/$name.got") entries," \
	     "$(grep -c -- '-T-deleted' "$SCRATCH/$name.got" || true) leftovers)"
}

while read -r name fixture delay minpack tids; do
	# shellcheck disable=SC2086
	compare "$name" "$DS_FIXTURE_DIR/$fixture" "$delay" "$minpack" $tids
done < <(pack_cases)

# tid of the Nth newest transaction of storage DIR
nth_tid() {
	ds log -n "$2" "$1" | grep -E '^[0-9A-F]{16} ' | tail -n 1 | cut -c1-16
}

for fmt in bushy chunky lawn flat; do
	g=$SCRATCH/gen-$fmt
	must_pass ds gen -q --graph --format "$fmt" --objects 200 \
		--transactions 120 --per-txn 4 --seed 7 "$g"
	mid=$(nth_tid "$g" 40)
	late=$(nth_tid "$g" 5)
	compare "gen-$fmt" "$g" 864000000 0 "$mid" "$late"
done

# written by the original through ZODB (write.py), then more of it later:
# pack at a time between the two runs
w=$SCRATCH/write
must_pass "$REF/bin/ref-mkds" "$w" Full bushy
must_pass "$REF/bin/ref-python" "$WRITE" "$w" 30 11
between=$(nth_tid "$w" 1)
sleep 1
must_pass "$REF/bin/ref-python" "$WRITE" "$w" 30 12
compare write "$w" 864000000 0 "$between"
