#!/bin/bash
# ds mkds: a new storage is laid out as the original's mkds.py lays it out
# (directories, settings bytes, identity, zeroed x.* files, modes), in every
# format; an existing DIR and a bad class or format are refused untouched.
. "$(dirname "$0")/lib.sh" || exit 1

# The settings the original wrote for the fixtures (mkds defaults).
fixture_copy bushy-master "$SCRATCH/bushy-master"
fixture_copy flat-master "$SCRATCH/flat-master"

# ---- defaults: Full, bushy ----
must_pass ds mkds "$SCRATCH/new"
S=$SCRATCH/new
cmp "$SCRATCH/bushy-master/config/settings" "$S/config/settings" ||
	fail "config/settings differs from the original's (bushy-master)"

# exactly these directories and files, with the original's modes (umask 022)
(cd "$S" && find . -mindepth 1 -printf '%y %m %P %s\n' | sort) \
	>"$SCRATCH/layout"
cat >"$SCRATCH/layout.want" <<-WANT
d 755 A 4096
d 755 A/x 4096
d 755 B 4096
d 755 config 4096
d 755 journal 4096
d 755 misc 4096
f 644 A/x/oid 8
f 644 A/x/packed 8
f 644 A/x/serial 8
f 644 config/identity 32
f 644 config/settings $(stat -c %s "$SCRATCH/bushy-master/config/settings")
WANT
sort -o "$SCRATCH/layout.want" "$SCRATCH/layout.want"
# directory sizes depend on the file system: compare without them for dirs
sed -i 's/^\(d [0-7]* [^ ]*\) [0-9]*$/\1/' "$SCRATCH/layout" "$SCRATCH/layout.want"
diff -u "$SCRATCH/layout.want" "$SCRATCH/layout" || fail "layout differs"
assert_eq 755 "$(stat -c %a "$S")" "mode of the storage directory"
# the same top-level directories as a storage written by the original
assert_eq "$(cd "$SCRATCH/bushy-master" && find . -mindepth 1 -maxdepth 1 -type d | sort)" \
	"$(cd "$S" && find . -mindepth 1 -maxdepth 1 -type d | sort)" "top-level directories"

# x.* files: 8 zero bytes each, at the paths the fixture's manifest gives
for x in x.oid x.serial x.packed; do
	p=$(manifest bushy-master ".x_files[\"$x\"].path")
	[ -f "$S/$p" ] || fail "$x is not at $p"
	assert_eq "0000000000000000" "$(od -An -tx1 "$S/$p" | tr -d ' \n')" "$x content"
done
# x.packed keeps mkds's 0644 on the original's storage that was never packed
assert_eq "0$(stat -c %a "$S/A/x/packed")" \
	"$(manifest bushy-master '.x_files["x.packed"].mode')" "x.packed mode"

# identity: 32 lowercase hex digits, no newline, random
grep -Eqx '[0-9a-f]{32}' "$S/config/identity" || fail "identity is not 32 hex digits"
assert_eq 32 "$(stat -c %s "$S/config/identity")" "identity size (no newline)"
must_pass ds mkds -q "$SCRATCH/other"
[ ! -s "$LAST_STDERR" ] || fail "-q printed something"
[ "$(cat "$S/config/identity")" != "$(cat "$SCRATCH/other/config/identity")" ] ||
	fail "two storages got the same identity"

# the library accepts what it made
must_pass ds log "$S"
assert_contains "$LAST_STDOUT" "0 transactions"

# ---- every format, and Minimal ----
must_pass ds mkds "$SCRATCH/flat" Full flat
cmp "$SCRATCH/flat-master/config/settings" "$SCRATCH/flat/config/settings" ||
	fail "flat config/settings differs from the original's (flat-master)"
for x in x.oid x.serial x.packed; do
	p=$(manifest flat-master ".x_files[\"$x\"].path")
	[ -f "$SCRATCH/flat/$p" ] || fail "flat: $x is not at $p"
done
assert_eq "A/x.oid A/x.packed A/x.serial" \
	"$(cd "$SCRATCH/flat" && echo A/*)" "flat A/ content"

for fmt in chunky lawn; do
	must_pass ds mkds "$SCRATCH/$fmt" Full "$fmt"
	sed "s/^format: bushy\$/format: $fmt/" "$SCRATCH/bushy-master/config/settings" \
		>"$SCRATCH/settings.$fmt"
	cmp "$SCRATCH/settings.$fmt" "$SCRATCH/$fmt/config/settings" ||
		fail "$fmt config/settings differs"
	for x in oid serial packed; do
		[ -f "$SCRATCH/$fmt/A/x/$x" ] || fail "$fmt: x.$x is not at A/x/$x"
	done
done

must_pass ds mkds "$SCRATCH/minimal" Minimal
assert_contains "$SCRATCH/minimal/config/settings" "classname: Minimal"
assert_contains "$SCRATCH/minimal/config/settings" "format: bushy"

# ---- refusals ----
before=$(tree_md5 "$S")
must_fail 1 ds mkds "$S"
assert_contains "$LAST_STDERR" "ds mkds:"
assert_contains "$LAST_STDERR" "$S"
assert_eq "$before" "$(tree_md5 "$S")" "existing storage after a refused mkds"

mkdir "$SCRATCH/empty"
must_fail 1 ds mkds "$SCRATCH/empty"
assert_eq "" "$(ls -A "$SCRATCH/empty")" "existing empty directory left empty"
: >"$SCRATCH/afile"
must_fail 1 ds mkds "$SCRATCH/afile"

must_fail 2 ds mkds "$SCRATCH/badclass" Fancy
assert_contains "$LAST_STDERR" "Fancy"
[ ! -e "$SCRATCH/badclass" ] || fail "a refused mkds left $SCRATCH/badclass"

must_fail 2 ds mkds "$SCRATCH/badformat" Full sideways
assert_contains "$LAST_STDERR" "sideways"
[ ! -e "$SCRATCH/badformat" ] || fail "a refused mkds left $SCRATCH/badformat"

must_fail 2 ds mkds
must_fail 2 ds mkds "$SCRATCH/x" Full bushy extra
[ ! -e "$SCRATCH/x" ] || fail "a refused mkds left $SCRATCH/x"
must_fail 2 ds mkds --frobnicate "$SCRATCH/x"

must_pass ds mkds --help
assert_contains "$LAST_STDOUT" "usage: ds mkds"
