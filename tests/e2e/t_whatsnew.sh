#!/bin/bash
# ds whatsnew against the original: for every reference tid of every
# fixture manifest, the same stdout lines in the same order, the same exit
# code, and the original's stderr message; run with --storage and inside
# ds snapshot.
. "$(dirname "$0")/lib.sh"

checked=0
for mf in "$DS_MANIFEST_DIR"/*.manifest.json; do
	name=$(basename "$mf" .manifest.json)
	fixture_copy "$name" "$SCRATCH/$name"
	for tid in $(manifest "$name" '.whatsnew | keys[]'); do
		rc=$(manifest "$name" ".whatsnew[\"$tid\"].rc")
		manifest "$name" ".whatsnew[\"$tid\"].stdout_lines[]" \
			>"$SCRATCH/want"
		msg=$(manifest "$name" ".whatsnew[\"$tid\"].stderr" | head -n 1)
		if [ "$rc" -eq 0 ]; then
			must_pass ds whatsnew --storage "$SCRATCH/$name" "$tid"
		else
			must_fail "$rc" ds whatsnew --storage "$SCRATCH/$name" "$tid"
		fi
		cmp -s "$SCRATCH/want" "$LAST_STDOUT" ||
			{ diff "$SCRATCH/want" "$LAST_STDOUT" | head >&2;
			  fail "$name $tid: file list differs from the original's"; }
		assert_contains "$LAST_STDERR" "$msg"
		checked=$((checked + 1))
	done
done
[ "$checked" -ge 20 ] || fail "only $checked reference tids checked"

# Inside ds snapshot, as the original is run (SNAPSHOT_VERSION=2).
m=$SCRATCH/flat-master
must_pass ds snapshot -q --storage "$m" \
	sh -c "\"$DS_BIN\" whatsnew 040D44B2399029CC >'$SCRATCH/inside'"
manifest flat-master '.whatsnew["040D44B2399029CC"].stdout_lines[]' \
	>"$SCRATCH/want"
cmp "$SCRATCH/want" "$SCRATCH/inside" || fail "whatsnew under ds snapshot"
assert_eq 312 "$(wc -l <"$SCRATCH/inside")" "lines under ds snapshot"

# -q: no message; -v: the totals (the original counts x.packed's slot too)
must_pass ds whatsnew -q --storage "$m" 040D44B23AF02844
assert_eq 0 "$(wc -c <"$LAST_STDERR")" "stderr with -q"
must_pass ds whatsnew -v --storage "$m" 040D44B23AF02844
assert_contains "$LAST_STDERR" "91 files in"

# the refusals and usage errors
must_fail 1 ds whatsnew --storage "$m" 040D44B240E24323
assert_contains "$LAST_STDERR" "ERROR: specified transaction id is in the future"
assert_eq 0 "$(wc -c <"$LAST_STDOUT")" "stdout of a refusal"
must_fail 2 ds whatsnew --storage "$m" 040D44B2
assert_contains "$LAST_STDERR" "16-character hexadecimal form"
must_fail 2 env -u SNAPSHOT_VERSION "$DS_BIN" whatsnew 040D44B240E24322
assert_contains "$LAST_STDERR" "Run this tool under ds snapshot"
must_fail 1 ds whatsnew --storage "$SCRATCH/nonexistent" 040D44B240E24322

# a storage held by someone else: try again later
must_pass ds snapshot -q --storage "$m" sh -c "
	\"$DS_BIN\" whatsnew --storage '$m' 040D44B240E24322 || true
	env -u SNAPSHOT_VERSION \"$DS_BIN\" whatsnew --storage '$m' \
		040D44B240E24322 2>'$SCRATCH/busy.err'
	echo \$? >'$SCRATCH/busy.rc'"
assert_eq 3 "$(cat "$SCRATCH/busy.rc")" "whatsnew on a held storage"
assert_contains "$SCRATCH/busy.err" "in use"
