#!/bin/bash
# record-orig-pack.sh - record what the ORIGINAL DirectoryStorage's pack
# leaves, so that CI (which cannot build the original) still compares
# `ds pack` with it: tests/e2e/t_pack_orig_replay.sh replays every case.
#
#   tests/pack/record-orig-pack.sh [REF] [FIXTURES]
#
# REF: the reference build (shared/ref/setup.sh; default $DS_REF, else
# /root/ds-ref). FIXTURES: extracted fixture storages (default
# build/fixtures, which ctest's fixtures_extract makes). For each case of
# cases.txt it copies the fixture storage, sets delay_delete and
# min_pack_time in the copy's settings, and packs it at each TID in turn
# with $REF/bin/ref-python orig_pack.py (ZODB.DB.pack). It writes
# tests/fixtures/orig-pack/NAME.thresholds (the threshold the original
# used at each step, one per line: `ds pack --before` gets these) and
# NAME.tree.gz (pack_tree.py of the result, gzip -n: a re-recording is
# byte-identical unless the original's result changed).
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$(dirname "$here")")
REF=${1:-${DS_REF:-/root/ds-ref}}
FIX=${2:-$src/build/fixtures}
. "$here/lib-pack.sh"
[ -x "$REF/bin/ref-python" ] || {
	echo "record-orig-pack: no $REF/bin/ref-python (build the reference" \
	     "with shared/ref/setup.sh, or give its directory)" >&2
	exit 2
}
out=$src/tests/fixtures/orig-pack
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/record-orig-pack.XXXXXX")
trap 'rm -rf "$work"' EXIT
pack_cases | while read -r name fixture delay minpack tids; do
	pack_prepare "$FIX/$fixture" "$work/$name" "$delay" "$minpack"
	# shellcheck disable=SC2086
	pack_keepclass "$work/$name" $tids
	# shellcheck disable=SC2086
	tids=$(pack_tids $tids)
	: >"$work/$name.thresholds"
	for tid in $tids; do
		"$REF/bin/ref-python" "$here/orig_pack.py" "$work/$name" "$tid" \
			>"$work/$name.out" 2>"$work/$name.err" || {
			cat "$work/$name.err" >&2
			exit 1
		}
		sed -n 's/^threshold //p' "$work/$name.out" \
			>>"$work/$name.thresholds"
		# each pack in its own second, as in real life
		sleep 1
	done
	cp "$work/$name.thresholds" "$out/$name.thresholds"
	pack_tree "$work/$name" | gzip -n >"$out/$name.tree.gz"
	echo "$name: $(zcat "$out/$name.tree.gz" | wc -l) entries," \
	     "$(zcat "$out/$name.tree.gz" | grep -c -- '-T-deleted' || true)" \
	     "leftovers, thresholds $(tr '\n' ' ' <"$out/$name.thresholds")"
done
