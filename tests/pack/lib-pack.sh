# lib-pack.sh - sourced by the pack comparison scripts (record-orig-pack.sh,
# e2e t_pack_orig_*.sh): the case list and how a case's copy is prepared.

PACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# pack_cases: the lines of cases.txt without comments and blank lines.
pack_cases() {
	grep -v -e '^#' -e '^[[:space:]]*$' "$PACK_DIR/cases.txt"
}

# pack_prepare SRC DEST DELAY_DELETE MIN_PACK_TIME: copy storage SRC to
# DEST and set those two settings (the copy's config/settings only).
pack_prepare() {
	local src=$1 dest=$2 delay=$3 minpack=$4
	cp -a "$src" "$dest"
	sed -i -e "s/^delay_delete: .*/delay_delete: $delay/" \
	       -e "s/^min_pack_time: .*/min_pack_time: $minpack/" \
	       "$dest/config/settings"
	grep -q "^delay_delete: $delay\$" "$dest/config/settings" &&
	grep -q "^min_pack_time: $minpack\$" "$dest/config/settings"
}

# pack_keepclass DEST ITEM...: a case's items after MIN_PACK_TIME. Each
# keep:CLASS=VALUE item (VALUE's '_' read as a space, e.g.
# keep:BTrees.OOBTree.OOBucket=extra_1) becomes the option "CLASS: VALUE"
# of DEST's [keepclass] section (the original's mkds writes that section,
# empty); the other items (the case's tids) are left to pack_tids.
pack_keepclass() {
	local dest=$1 item cls val
	shift
	for item in "$@"; do
		case $item in
		keep:*=*)
			item=${item#keep:}
			cls=${item%%=*}
			val=${item#*=}
			val=${val//_/ }
			grep -qx '\[keepclass\]' "$dest/config/settings" ||
				return 1
			sed -i "/^\[keepclass\]\$/a $cls: $val" \
				"$dest/config/settings"
			grep -qxF "$cls: $val" "$dest/config/settings" ||
				return 1
			;;
		esac
	done
}

# pack_tids ITEM...: the items that are tids (not keep:...), one a line.
pack_tids() {
	local item
	for item in "$@"; do
		case $item in
		keep:*) ;;
		*) echo "$item" ;;
		esac
	done
}

# pack_tree DIR: the normalised manifest of DIR/A (pack_tree.py).
pack_tree() {
	python3 "$PACK_DIR/pack_tree.py" "$1"
}
