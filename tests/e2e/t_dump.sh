#!/bin/bash
# ds dump: every kind of storage file written by the original decodes to
# what its manifest says, in text and --json; a file out of place is
# identified from its header; corrupt files are refused, named, with the
# reason, while the other files given are still dumped.
. "$(dirname "$0")/lib.sh" || exit 1

fixture_copy bushy-master "$SCRATCH/bm"
fixture_copy flat-master "$SCRATCH/fm"
BM=$SCRATCH/bm
FM=$SCRATCH/fm

# byte N (0-based) of FILE xor 0xff, in place
flip_byte() {
	local file=$1 off=$2 v
	v=$(od -An -tu1 -j "$off" -N1 "$file" | tr -d ' ')
	printf "\\$(printf %03o $((v ^ 255)))" |
		dd of="$file" bs=1 seek="$off" conv=notrunc status=none
}

# ---- a transaction with user, description and extension ----
jq -c '[.transactions[] | select(.extension_len > 0 and .description != "")][0]' \
	"$DS_MANIFEST_DIR/bushy-master.manifest.json" >"$SCRATCH/t.json"
tid=$(jq -r .tid "$SCRATCH/t.json")
tpath=$(jq -r .path "$SCRATCH/t.json")
tname="t${tid:0:6}.${tid:6}"

must_pass ds dump "$BM/$tpath"
assert_contains "$LAST_STDOUT" "transaction"
assert_contains "$LAST_STDOUT" "$tname (from the header)"
assert_contains "$LAST_STDOUT" "$tid  2026-11-26 "
assert_contains "$LAST_STDOUT" " GMT"
assert_contains "$LAST_STDOUT" "\"$(jq -r .user "$SCRATCH/t.json")\""
assert_contains "$LAST_STDOUT" "\"$(jq -r .description "$SCRATCH/t.json")\""
assert_contains "$LAST_STDOUT" "(valid)"
assert_contains "$LAST_STDOUT" "$(jq -r .file_md5 "$SCRATCH/t.json")"
assert_contains "$LAST_STDOUT" "$(jq -r '.oids | length' "$SCRATCH/t.json")"
for o in $(jq -r '.oids[]' "$SCRATCH/t.json"); do
	assert_contains "$LAST_STDOUT" "revision o$o.$tid"
done

must_pass ds dump --json "$BM/$tpath"
jq -e --slurpfile m "$SCRATCH/t.json" --arg name "$tname" '
	.kind == "transaction" and .name == $name and .name_source == "header"
	and .path_name == $name and .name_mismatch == false
	and .tid == $m[0].tid and .prev_tid == $m[0].prev_tid
	and (.tid_time | test("^2026-11-26 [0-9:]{8} GMT$"))
	and .user == $m[0].user and .description == $m[0].description
	and .extension_len == $m[0].extension_len
	and (.extension_hex | length) == 2 * $m[0].extension_len
	and .oids == $m[0].oids and .noids == ($m[0].oids | length)
	and .length == $m[0].file_len and .file_md5 == $m[0].file_md5
	and .md5 == "valid" and (.md5_field | test("^[0-9a-f]{32}$"))
	and .storage_path == $m[0].path' "$LAST_STDOUT" >/dev/null ||
	{ cat "$LAST_STDOUT" >&2; fail "transaction JSON disagrees with the manifest"; }

# ---- every transaction of the fixture, in one call: tids and md5s ----
jq -r '.transactions[].path' "$DS_MANIFEST_DIR/bushy-master.manifest.json" |
	sed "s|^|$BM/|" >"$SCRATCH/tpaths"
must_pass xargs -a "$SCRATCH/tpaths" "$DS_BIN" dump --json
assert_eq "$(jq -r '.transactions[] | .tid + " " + .prev_tid + " " + .file_md5' \
	"$DS_MANIFEST_DIR/bushy-master.manifest.json")" \
	"$(jq -r '.tid + " " + .prev_tid + " " + .file_md5' "$LAST_STDOUT")" \
	"every transaction's tid, back pointer and md5"

# ---- object revisions: normal, undone creation, copied by an undo ----
jq -c '[.objects[] | .oid as $o | .revisions[] | . + {oid: $o}]' \
	"$DS_MANIFEST_DIR/bushy-master.manifest.json" >"$SCRATCH/revs.json"
for sel in '.pickle_len > 0 and .prev_serial != "0000000000000000"' \
           '.pickle_len == 0' '.undo_from != "0000000000000000"'; do
	jq -c "[.[] | select($sel)][0]" "$SCRATCH/revs.json" >"$SCRATCH/r.json"
	[ "$(cat "$SCRATCH/r.json")" != null ] || fail "fixture has no revision with $sel"
	rpath=$(jq -r .path "$SCRATCH/r.json")
	must_pass ds dump --json "$BM/$rpath"
	jq -e --slurpfile m "$SCRATCH/r.json" '
		.kind == "object" and .oid == $m[0].oid and .serial == $m[0].serial
		and .name == "o" + $m[0].oid + "." + $m[0].serial
		and .path_name == .name and .name_mismatch == false
		and .prev_serial == $m[0].prev_serial and .undo_from == $m[0].undo_from
		and .pickle_len == $m[0].pickle_len and .pickle_md5 == $m[0].pickle_md5
		and .file_md5 == $m[0].file_md5 and .length == $m[0].file_len
		and .md5 == "valid"
		and .transaction == "t" + $m[0].serial[0:6] + "." + $m[0].serial[6:]' \
		"$LAST_STDOUT" >/dev/null ||
		{ cat "$LAST_STDOUT" "$SCRATCH/r.json" >&2; fail "revision JSON ($sel) disagrees"; }
	must_pass ds dump "$BM/$rpath"
	assert_contains "$LAST_STDOUT" "object revision"
	assert_contains "$LAST_STDOUT" "$(jq -r .pickle_md5 "$SCRATCH/r.json")"
done
assert_contains "$LAST_STDOUT" "undo from"

# ---- .c pointer and x.* files ----
jq -c '.objects[5]' "$DS_MANIFEST_DIR/bushy-master.manifest.json" >"$SCRATCH/o.json"
oid=$(jq -r .oid "$SCRATCH/o.json")
cur=$(jq -r .current_serial "$SCRATCH/o.json")
must_pass ds dump --json "$BM/$(jq -r .pointer_path "$SCRATCH/o.json")"
jq -e --arg oid "$oid" --arg cur "$cur" '
	.kind == "pointer" and .legacy == false and .serial == $cur
	and .path_name == "o" + $oid + ".c" and .revision == "o" + $oid + "." + $cur
	and .length == 8' "$LAST_STDOUT" >/dev/null ||
	{ cat "$LAST_STDOUT" >&2; fail "pointer JSON"; }
must_pass ds dump "$BM/$(jq -r .pointer_path "$SCRATCH/o.json")"
assert_contains "$LAST_STDOUT" "current-revision pointer"
assert_contains "$LAST_STDOUT" "$cur  2026-11-26"

for x in x.serial x.oid x.packed; do
	for fx in bushy-master flat-master; do
		d=$BM; [ $fx = flat-master ] && d=$FM
		must_pass ds dump --json "$d/$(manifest $fx ".x_files[\"$x\"].path")"
		jq -e --arg x "$x" --arg v "$(manifest $fx ".[\"$x\"]")" '
			.kind == "xfile" and .xname == $x and .value == $v
			and .path_name == $x' "$LAST_STDOUT" >/dev/null ||
			{ cat "$LAST_STDOUT" >&2; fail "$fx $x JSON"; }
	done
done
must_pass ds dump "$BM/A/x/serial"
assert_contains "$LAST_STDOUT" "$(manifest bushy-master '.["x.serial"]')  2026-11-26"

# ---- the flat layout, and a pack leftover whose path is no name ----
fr=$(jq -r '[.objects[].revisions[]][0].path' "$DS_MANIFEST_DIR/flat-master.manifest.json")
must_pass ds dump --json "$FM/$fr"
assert_eq "${fr#A/}" "$(jq -r .path_name "$LAST_STDOUT")" "flat path name"
assert_eq "${fr#A/}" "$(jq -r .name "$LAST_STDOUT")" "flat header name"
del=$(jq -r '.deleted_files[0].path' "$DS_MANIFEST_DIR/flat-master.manifest.json")
[ -f "$FM/$del" ] || fail "no pack leftover at $del"
must_pass ds dump --json "$FM/$del"
assert_eq null "$(jq -r .path_name "$LAST_STDOUT")" "path name of a -deleted file"
jq -e '.path_note | length > 0' "$LAST_STDOUT" >/dev/null || fail "no path note for $del"

# ---- in B/ and in a journal transaction directory (flat names) ----
mkdir -p "$BM/B/$(dirname "${tpath#A/}")" "$BM/journal/working_${tid}_done"
cp "$BM/$tpath" "$BM/B/${tpath#A/}"
cp "$BM/$tpath" "$BM/journal/working_${tid}_done/$tname"
must_pass ds dump --json "$BM/B/${tpath#A/}" "$BM/journal/working_${tid}_done/$tname"
assert_eq "$tname $tname" "$(jq -r .path_name "$LAST_STDOUT" | xargs)" "names in B/ and journal/"
assert_eq "false false" "$(jq -r .name_mismatch "$LAST_STDOUT" | xargs)" "mismatch in B/ and journal/"

# ---- a file out of place ----
mkdir "$SCRATCH/loose"
rev=$(jq -c '[.[] | select(.pickle_len > 0)][3]' "$SCRATCH/revs.json")
rpath=$(jq -r .path <<<"$rev")
rname="o$(jq -r .oid <<<"$rev").$(jq -r .serial <<<"$rev")"
cp "$BM/$rpath" "$SCRATCH/loose/found-in-lost+found"
must_pass ds dump "$SCRATCH/loose/found-in-lost+found"
assert_contains "$LAST_STDOUT" "$rname (from the header)"
assert_not_contains "$LAST_STDOUT" "storage"
# inside the storage, at another object's place: both names, a warning
other=$(jq -c '[.[] | select(.pickle_len > 0)][40]' "$SCRATCH/revs.json")
opath=$(jq -r .path <<<"$other")
oname="o$(jq -r .oid <<<"$other").$(jq -r .serial <<<"$other")"
cp "$BM/$rpath" "$BM/$opath"
must_pass ds dump --json "$BM/$opath"
jq -e --arg r "$rname" --arg o "$oname" '.name == $r and .path_name == $o
	and .name_mismatch == true' "$LAST_STDOUT" >/dev/null ||
	{ cat "$LAST_STDOUT" >&2; fail "misplaced file JSON"; }
assert_contains "$LAST_STDERR" "warning"
assert_contains "$LAST_STDERR" "$rname"
assert_contains "$LAST_STDERR" "$oname"
must_pass ds dump -q "$BM/$opath"
[ ! -s "$LAST_STDERR" ] || fail "-q still warned: $(cat "$LAST_STDERR")"

# 8-byte files out of place: their file name says what they are
cp "$BM/$(jq -r .pointer_path "$SCRATCH/o.json")" "$SCRATCH/loose/o$oid.c"
cp "$BM/A/x/serial" "$SCRATCH/loose/serial"
cp "$BM/A/x/oid" "$SCRATCH/loose/eight"
must_pass ds dump --json "$SCRATCH/loose/o$oid.c" "$SCRATCH/loose/serial" "$SCRATCH/loose/eight"
assert_eq "pointer xfile value8" "$(jq -r .kind "$LAST_STDOUT" | xargs)" "kinds of 8-byte files"
assert_eq "o$oid.$cur" "$(jq -r 'select(.kind == "pointer") | .revision' "$LAST_STDOUT")" \
	"revision of a loose pointer"

# the legacy 12-byte pointer form
{ printf '\013\376\350\354'; cat "$BM/$(jq -r .pointer_path "$SCRATCH/o.json")"; } \
	>"$SCRATCH/loose/legacy.c"
must_pass ds dump --json "$SCRATCH/loose/legacy.c"
jq -e --arg cur "$cur" '.kind == "pointer" and .legacy == true and .serial == $cur
	and .length == 12' "$LAST_STDOUT" >/dev/null ||
	{ cat "$LAST_STDOUT" >&2; fail "legacy pointer JSON"; }

# ---- corrupt files: refused, named, with the reason ----
good=$SCRATCH/loose/found-in-lost+found
len=$(stat -c %s "$good")
cp "$good" "$SCRATCH/flipped"
flip_byte "$SCRATCH/flipped" $((len - 1))          # last pickle byte
must_fail 1 ds dump "$SCRATCH/flipped"
assert_contains "$LAST_STDERR" "ds dump: "
assert_contains "$LAST_STDERR" "$SCRATCH/flipped"
assert_contains "$LAST_STDERR" "md5"

head -c $((len - 5)) "$good" >"$SCRATCH/truncated"
must_fail 1 ds dump "$SCRATCH/truncated"
assert_contains "$LAST_STDERR" "$SCRATCH/truncated"
assert_contains "$LAST_STDERR" "length"

cp "$good" "$SCRATCH/badmagic"
flip_byte "$SCRATCH/badmagic" 0
must_fail 1 ds dump "$SCRATCH/badmagic"
assert_contains "$LAST_STDERR" "$SCRATCH/badmagic"
assert_contains "$LAST_STDERR" "magic"

cp "$BM/$tpath" "$SCRATCH/badtxn"
flip_byte "$SCRATCH/badtxn" 61                     # inside the user name
must_fail 1 ds dump "$SCRATCH/badtxn"
assert_contains "$LAST_STDERR" "$SCRATCH/badtxn"
assert_contains "$LAST_STDERR" "md5"

printf 'abc' >"$SCRATCH/tiny"
must_fail 1 ds dump "$SCRATCH/tiny"
assert_contains "$LAST_STDERR" "$SCRATCH/tiny"

# a bad file among good ones: all are dumped, the exit status says one failed
must_fail 1 ds dump "$BM/A/x/serial" "$SCRATCH/flipped" "$good"
assert_contains "$LAST_STDOUT" "$BM/A/x/serial"
assert_contains "$LAST_STDOUT" "$rname (from the header)"
assert_contains "$LAST_STDERR" "$SCRATCH/flipped"
must_fail 1 ds dump --json "$SCRATCH/truncated" "$good"
assert_eq 2 "$(jq -s length "$LAST_STDOUT")" "JSON objects for two files"
jq -e -s --arg f "$SCRATCH/truncated" '.[0].file == $f and (.[0].error | contains($f))
	and .[1].name != null' "$LAST_STDOUT" >/dev/null ||
	{ cat "$LAST_STDOUT" >&2; fail "JSON of a refused file"; }

must_fail 1 ds dump "$SCRATCH/no-such-file"
assert_contains "$LAST_STDERR" "$SCRATCH/no-such-file"
must_fail 1 ds dump "$SCRATCH/loose"
assert_contains "$LAST_STDERR" "not a regular file"
must_fail 2 ds dump
must_fail 2 ds dump --bogus "$good"
