#!/bin/bash
# The manual: one page man/ds-SUB.1 per subcommand `ds --help` lists (and
# none for a subcommand that does not exist), ds.1 listing them all, and
# "the help texts match the man pages": each page's OPTIONS section lists
# exactly the options `ds SUB --help` shows, and every option in its
# SYNOPSIS is one of them. Every page formats without a groff warning.
. "$(dirname "$0")/lib.sh" || exit 1
: "${DS_SOURCE_DIR:?}"
M=$DS_SOURCE_DIR/man

must_pass ds --help
subs=$(sed -n '/^Subcommands:/,/^$/p' "$LAST_STDOUT" | awk 'NF > 1 { print $1 }')

# help_options SUB: the options of the option lines of `ds SUB --help`
# (the "Options:" paragraph; an option line is indented at most 6 columns
# and begins with a dash, deeper lines continue a description)
help_options() {
	"$DS_BIN" "$1" --help |
		awk '/^Options:/ { on = 1; next }
		     on && /^$/ { exit }
		     on && /^ +-/ && !/^       / { for (i = 1; i <= NF; i++) {
		                w = $i; sub(/,$/, "", w)
		                if (w ~ /^--?[A-Za-z][-A-Za-z]*$/) print w
		                else if (w !~ /^[A-Z][A-Z_=]*$/) break } }' | sort -u
}
# man_options PAGE SECTION: the options named in SECTION of PAGE; in
# OPTIONS only the tag lines (the line after each .TP)
man_options() {
	awk -v sec="$2" '/^\.SH / { on = ($0 == ".SH " sec); next }
	     on && sec != "OPTIONS" { print; next }
	     on && tp { print; tp = 0; next }
	     on && /^\.TP/ { tp = 1 }' "$1" |
		sed 's/\\-/-/g; s/\\f[BIRP]//g' |
		grep -oE -- '(^|[^-[:alnum:]])--?[A-Za-z][-A-Za-z]*' |
		sed 's/^[^-]*//' | sort -u
}

for sub in $subs; do
	page=$M/ds-$sub.1
	[ -f "$page" ] || fail "no manual page man/ds-$sub.1 for ds $sub"
	th=$(grep -m 1 '^\.TH ' "$page" | sed 's/\\-/-/g' | awk '{ print $2, $3 }')
	assert_eq "DS-${sub^^} 1" "$th" "man/ds-$sub.1: .TH"
	nm=$(sed -n '/^\.SH NAME/{n;p;q}' "$page" | sed 's/\\-/-/g')
	case $nm in
	"ds-$sub - "?*) ;;
	*) fail "man/ds-$sub.1: NAME is '$nm', not 'ds-$sub - ...'" ;;
	esac
	grep -qF ".BR ds\\-${sub//-/\\-} (1)" "$M/ds.1" ||
		fail "ds.1 does not list ds-$sub(1)"
	help_options "$sub" >"$SCRATCH/help"
	man_options "$page" OPTIONS >"$SCRATCH/man"
	[ -s "$SCRATCH/help" ] || fail "ds $sub --help shows no options"
	if ! diff -u "$SCRATCH/help" "$SCRATCH/man" >"$SCRATCH/diff"; then
		cat "$SCRATCH/diff" >&2
		fail "man/ds-$sub.1 OPTIONS and ds $sub --help differ (- help, + man)"
	fi
	man_options "$page" SYNOPSIS >"$SCRATCH/syn"
	extra=$(comm -23 "$SCRATCH/syn" "$SCRATCH/help" | tr '\n' ' ')
	[ -z "$extra" ] || fail "man/ds-$sub.1 SYNOPSIS has options ds $sub --help does not: $extra"
done
# no page for a subcommand that does not exist
for page in "$M"/ds-*.1; do
	sub=$(basename "$page" .1)
	sub=${sub#ds-}
	echo "$subs" | grep -qx -- "$sub" || fail "man/ds-$sub.1, but ds has no subcommand $sub"
done
# groff formats every page without a warning
if command -v groff >/dev/null; then
	for page in "$M"/*.1; do
		groff -man -ww -z "$page" 2>"$SCRATCH/groff" || fail "groff failed on $page"
		[ ! -s "$SCRATCH/groff" ] || { cat "$SCRATCH/groff" >&2; fail "groff warns on $page"; }
	done
fi
# the common options a subcommand accepts are in its help (and so in its
# page): none is accepted silently without being shown
for sub in $subs; do
	help_options "$sub" >"$SCRATCH/help"
	for opt in -q -v --quiet --verbose --json -n --max-count --storage; do
		timeout 20 "$DS_BIN" "$sub" "$opt" >/dev/null 2>"$SCRATCH/err" </dev/null || true
		grep -Eq "unrecognized option|invalid option" "$SCRATCH/err" && continue
		grep -qx -- "$opt" "$SCRATCH/help" ||
			fail "ds $sub accepts $opt, but its --help does not show it"
	done
done
