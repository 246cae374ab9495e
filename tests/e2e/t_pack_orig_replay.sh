#!/bin/bash
# t_pack_orig_replay.sh - `ds pack` leaves the same A/ tree as the
# ORIGINAL's pack, for every case of tests/pack/cases.txt: the original's
# results were recorded by tests/pack/record-orig-pack.sh into
# tests/fixtures/orig-pack/ (the normalised tree: names, modes and md5 of
# every file and directory, leftover times written T; and the thresholds
# the original used). Each case's fixture copy, with the same settings,
# is packed by ds at the same thresholds, compared, and checked.
. "$(dirname "$0")/lib.sh"
. "$DS_SOURCE_DIR/tests/pack/lib-pack.sh"
rec=$DS_SOURCE_DIR/tests/fixtures/orig-pack
n=0
while read -r name fixture delay minpack tids; do
	[ -f "$rec/$name.tree.gz" ] || fail "no recording $rec/$name.tree.gz"
	pack_prepare "$DS_FIXTURE_DIR/$fixture" "$SCRATCH/$name" "$delay" \
		"$minpack" || fail "$name: cannot prepare the copy"
	# shellcheck disable=SC2086
	pack_keepclass "$SCRATCH/$name" $tids ||
		fail "$name: cannot set its [keepclass] options"
	while read -r thr; do
		must_pass ds pack -q --before "$thr" "$SCRATCH/$name"
		# leftovers of two packs never share a second
		sleep 1
	done <"$rec/$name.thresholds"
	pack_tree "$SCRATCH/$name" >"$SCRATCH/$name.tree"
	zcat "$rec/$name.tree.gz" >"$SCRATCH/$name.want"
	if ! diff -u "$SCRATCH/$name.want" "$SCRATCH/$name.tree" \
		>"$SCRATCH/$name.diff"; then
		head -40 "$SCRATCH/$name.diff" >&2
		fail "$name: ds pack left another tree than the original"
	fi
	must_pass ds check "$SCRATCH/$name"
	n=$((n + 1))
	echo "$name: same tree as the original ($(wc -l <"$SCRATCH/$name.tree") entries)"
done < <(pack_cases)
[ "$n" -ge 10 ] || fail "only $n cases ran"
