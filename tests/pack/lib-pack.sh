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

# pack_tree DIR: the normalised manifest of DIR/A (pack_tree.py).
pack_tree() {
	python3 "$PACK_DIR/pack_tree.py" "$1"
}
