#!/bin/bash
# bench/pack.sh - `ds pack` against the original's pack on the same store,
# one run each.
#
#   bench/pack.sh [OBJECTS [TRANSACTIONS [REF]]]
#
# Makes a store with `ds gen --graph --nosync` (OBJECTS objects, default
# 20000, TRANSACTIONS transactions of 10 objects, default OBJECTS/5: half
# creating, half editing, a quarter of the edits detaching a subtree), in
# $BENCH_DIR (default /var/tmp/ds-bench-pack), copies it twice with
# min_pack_time 0, and packs both copies at the transaction in the middle
# of the edits: the original through ZODB.DB.pack (tests/pack/orig_pack.py
# with $REF/bin/ref-python, REF default /root/ds-ref) and ds pack (the
# build in build/), each under /usr/bin/time -v. Prints wall time, peak
# RSS, files removed, and checks that both left the same tree. Caches are
# dropped before each pack when run as root (echo 3 > drop_caches), so
# both start cold (WARM=1: they do not, after a first read of the copies).
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
N=${1:-20000}
T=${2:-$((N / 5))}
REF=${3:-${DS_REF:-/root/ds-ref}}
DS=${DS_BIN:-$src/build/ds}
B=${BENCH_DIR:-/var/tmp/ds-bench-pack}
. "$src/tests/pack/lib-pack.sh"
mkdir -p "$B"
store=$B/gen-$N-$T
if [ ! -d "$store" ]; then
	"$DS" gen -q --graph --nosync --objects "$N" --transactions "$T" \
		--per-txn 10 --seed 1 "$store"
fi
files=$(find "$store/A" -type f | wc -l)
mid=$("$DS" log -n $((T / 4)) "$store" | grep -E '^[0-9A-F]{16} ' |
      tail -n 1 | cut -c1-16)
rm -rf "$B/orig" "$B/ds"
pack_prepare "$store" "$B/orig" 864000000 0
pack_prepare "$store" "$B/ds" 864000000 0
cold() { sync; [ "${WARM:-0}" = 1 ] || [ "$(id -u)" != 0 ] ||
	echo 3 >/proc/sys/vm/drop_caches; }

if [ "${WARM:-0}" = 1 ]; then
	find "$B/orig/A" "$B/ds/A" -type f -exec cat {} + >/dev/null
fi
cold
/usr/bin/time -v -o "$B/orig.time" "$REF/bin/ref-python" \
	"$src/tests/pack/orig_pack.py" "$B/orig" "$mid" >"$B/orig.out" 2>&1
thr=$(sed -n 's/^threshold //p' "$B/orig.out")
cold
/usr/bin/time -v -o "$B/ds.time" "$DS" pack -q --before "$thr" "$B/ds"
field() { sed -n "s/^[[:space:]]*$2: //p" "$1"; }
for who in orig ds; do
	printf '%-5s %10s wall  %6s s user  %6s s sys  %8s KB peak RSS  %7s removed\n' "$who" \
		"$(field "$B/$who.time" 'Elapsed (wall clock) time (h:mm:ss or m:ss)')" \
		"$(field "$B/$who.time" 'User time (seconds)')" \
		"$(field "$B/$who.time" 'System time (seconds)')" \
		"$(field "$B/$who.time" 'Maximum resident set size (kbytes)')" \
		"$(find "$B/$who/A" -name '*-deleted' | wc -l)"
done
echo "store: $N objects, $T transactions, $files files; threshold $thr"
pack_tree "$B/orig" >"$B/orig.tree"
pack_tree "$B/ds" >"$B/ds.tree"
if cmp -s "$B/orig.tree" "$B/ds.tree"; then
	echo "same tree"
else
	echo "TREES DIFFER: diff $B/orig.tree $B/ds.tree" >&2
	exit 1
fi
