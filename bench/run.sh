#!/bin/bash
# bench/run.sh - the replication benchmark of issue 6, in one command.
#
#   bench/run.sh [--gen-only] [--runs N] [--sizes "small large"]
#
# Builds the project (RelWithDebInfo) in build-bench/, generates the stores
# with `ds gen` (kept in $BENCH_DIR, default /var/tmp/ds-bench, and reused
# by later runs), starts sshd on 127.0.0.1 (tests/e2e/lib.sh) and, for each
# store size and each lag D (10 and 1000 transactions of 10 objects), times
# with hyperfine, restoring the lagging replica before every run:
#   ds      ds replica over ssh
#   rsync   rsync -a of A/ over the same ssh
#   floor   tar of exactly the changed files through one ssh pipe,
#           extracted, then one sync -f of the replica's filesystem
# then measures the master's snapshot hold (ds replica -v), the peak RSS of
# both sides (/usr/bin/time -v, the master's through an -e wrapper) and the
# engine's commits per second with fsync on (bench/commit_rate.c, linked
# with the library). It prints a table of medians and ratios.
#
# Store sizes (env overrides): SMALL_OBJECTS/SMALL_TXNS, LARGE_OBJECTS/
# LARGE_TXNS, then LARGE_EXTRA_TXNS more transactions on
# LARGE_EXTRA_OBJECTS new objects (--big 0) to reach ~1M files quickly.
# A lagging replica shares A/'s files with the master through hard links
# (cp -al), and is restored before every run as a hard-linked copy of its
# pristine state R<D>.pristine: every writer involved (the engine's
# flusher, ds replica, rsync, tar -x) replaces a file it changes (new
# inode, rename or unlink first), never writes it in place, so neither the
# master nor the pristine copy changes (checked after each size).
set -euo pipefail
umask 022
export LC_ALL=C
# the whole script is one compound command, read before it runs: editing
# this file while a run is going does not change that run
{

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/.." && pwd)
BUILD=${BUILD:-$SRC/build-bench}
BENCH_DIR=${BENCH_DIR:-/var/tmp/ds-bench}
RUNS=${RUNS:-3}
SIZES=${SIZES:-"small large"}
GEN_ONLY=0
SMALL_OBJECTS=${SMALL_OBJECTS:-20000}
SMALL_TXNS=${SMALL_TXNS:-8000}
LARGE_OBJECTS=${LARGE_OBJECTS:-200000}
LARGE_TXNS=${LARGE_TXNS:-40000}
LARGE_EXTRA_OBJECTS=${LARGE_EXTRA_OBJECTS:-1000}
LARGE_EXTRA_TXNS=${LARGE_EXTRA_TXNS:-40000}
PER_TXN=10
LAGS="10 1000"

while [ $# -gt 0 ]; do
	case $1 in
	--gen-only) GEN_ONLY=1 ;;
	--runs) RUNS=$2; shift ;;
	--sizes) SIZES=$2; shift ;;
	-h|--help) sed -n '2,/^set -e/p' "$0" | sed 's/^# \{0,1\}//;$d'; exit 0 ;;
	*) echo "bench/run.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

log() { echo "bench: $(date -u +%H:%M:%S) $*" >&2; }

# ---- build --------------------------------------------------------------
build() {
	log "building $BUILD (RelWithDebInfo)"
	cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		>/dev/null
	ninja -j2 -C "$BUILD" ds dirstorage >/dev/null
	DS=$BUILD/ds
	DSDIR=$BUILD
	cc -O2 -g -Wall -Wextra -Werror -I"$SRC/include" \
		-o "$BENCH_DIR/commit_rate" "$HERE/commit_rate.c" \
		"$BUILD/libdirstorage.a" -lcrypto -larchive -ljansson \
		-lpthread -lm
}

# ---- stores ---------------------------------------------------------------
# $BENCH_DIR/<size>/M             the master, D=1000 transactions ahead
# $BENCH_DIR/<size>/R<D>          a replica lagging by D transactions
# $BENCH_DIR/<size>/R<D>.pristine its state before any run (R<D> is a
#                                 hard-linked copy of it, see restore_script)
# $BENCH_DIR/<size>/R<D>.restore/ what restores R<D> (see mkrestore)
objects_of() { if [ "$1" = small ]; then echo "$SMALL_OBJECTS"; else echo "$LARGE_OBJECTS"; fi; }
txns_of() { if [ "$1" = small ]; then echo "$SMALL_TXNS"; else echo "$LARGE_TXNS"; fi; }

# lagging_copy M R: R = M now (A/ hard-linked, the rest copied)
lagging_copy() {
	local sub
	mkdir "$2"
	cp -al "$1/A" "$2/A"
	for sub in B config journal misc; do
		cp -a "$1/$sub" "$2/$sub"
	done
}

gen_size() {
	local size=$1 d=$BENCH_DIR/$1 n t base t0 extra_n extra_t
	n=$(objects_of "$size")
	t=$(txns_of "$size")
	extra_n=0
	extra_t=0
	if [ "$size" = large ]; then
		extra_n=$LARGE_EXTRA_OBJECTS
		extra_t=$LARGE_EXTRA_TXNS
	fi
	if [ -f "$d/.done" ]; then
		log "$size: stores exist in $d"
		return 0
	fi
	t0=$(date +%s)
	base=$((t - 1000))
	if [ ! -f "$d/.phase1" ]; then
		rm -rf "$d"
		mkdir -p "$d"
		log "$size: ds gen $n objects, $base transactions of $PER_TXN"
		"$DS" gen -q --nosync --objects "$n" --transactions "$base" \
			--per-txn "$PER_TXN" --seed 1 "$d/M"
		sync -f "$d/M"
		echo "gen_phase1_s $(( $(date +%s) - t0 ))" >"$d/gen.times"
		touch "$d/.phase1"
	fi
	rm -rf "$d/R1000" "$d/R10" "$d"/*.restore "$d"/*.pristine
	if [ "$extra_t" -gt 0 ] && [ ! -f "$d/.phase2" ]; then
		# more history on a small part of the objects (no object over
		# 100 KB): files, not bytes, are what a tree walk pays for
		log "$size: ds gen $extra_n more objects, $extra_t transactions"
		"$DS" gen -q --nosync --objects "$extra_n" --big 0 \
			--transactions "$extra_t" --per-txn "$PER_TXN" --seed 4 \
			"$d/M"
		sync -f "$d/M"
		echo "gen_phase2_s $(( $(date +%s) - t0 ))" >>"$d/gen.times"
		touch "$d/.phase2"
	fi
	log "$size: base done; lagging replicas"
	lagging_copy "$d/M" "$d/R1000"
	# the increments: 10 new objects, then rewrites of those (no object
	# over 100 KB, so both sizes get byte-identical increments)
	"$DS" gen -q --nosync --objects 10 --big 0 --transactions 990 \
		--per-txn "$PER_TXN" --seed 2 "$d/M"
	sync -f "$d/M"
	lagging_copy "$d/M" "$d/R10"
	"$DS" gen -q --nosync --objects 10 --big 0 --transactions 10 \
		--per-txn "$PER_TXN" --seed 3 "$d/M"
	sync -f "$d/M"
	echo "gen_increments_and_copies_s $(( $(date +%s) - t0 ))" >>"$d/gen.times"
	(cd "$d/M" && find . -type f | wc -l) >"$d/files"
	du -sk "$d/M" | cut -f1 >"$d/kbytes"
	for lag in $LAGS; do
		mkrestore "$d" "$lag"
	done
	touch "$d/.done"
	log "$size: stores ready in $(( $(date +%s) - t0 )) s," \
	    "$(cat "$d/files") files"
}

# mkrestore DIR D: R<D> becomes R<D>.pristine, restored by restore.sh;
# the list of every file of the increment for the floor (one rsync dry
# run, once, at setup); the md5s of the pristine A/'s files the increment
# replaces, to check at the end that nothing wrote into them.
mkrestore() {
	local d=$1 lag=$2 r=$1/R$2 x=$1/R$2.restore
	rm -rf "$x" "$r.pristine"
	mkdir -p "$x"
	rsync -ani "$d/M/A/" "$r/A/" >"$x/itemize"
	awk '$1 ~ /^[>c]f\+\+\+/ { print substr($0, 13) }' "$x/itemize" \
		>"$x/newfiles"
	awk '$1 ~ /^[>c]f/ && $1 !~ /^[>c]f\+\+\+/ { print substr($0, 13) }' \
		"$x/itemize" >"$x/changed"
	cat "$x/newfiles" "$x/changed" >"$x/floorlist"
	mv "$r" "$r.pristine"
	pristine_md5 "$d" "$lag" >"$x/pristine.md5"
	restore_script "$d" "$lag"
	log "R$lag: $(wc -l <"$x/newfiles") new files, $(wc -l \
	     <"$x/changed") changed"
}

# pristine_md5 DIR D: md5 of every file of R<D>.pristine the increment
# replaces, and of its x.serial
pristine_md5() {
	(cd "$1/R$2.pristine/A" && cat "$1/R$2.restore/changed" |
	 tr '\n' '\0' | xargs -0 md5sum && md5sum x/serial)
}

# restore_script DIR D: (re)write R<D>.restore/restore.sh: R<D> becomes
# a hard-linked copy of R<D>.pristine (lagging_copy: A/ linked, the small
# directories copied). The replica of the previous run is moved into
# DIR/trash, not deleted: this VM's ext4 has no journal, and without one
# ext4 does not reuse an inode deleted less than 60 s ago (300 s more
# while its inode table block is dirty), scanning past each such inode
# when it allocates (perf: ~60% of an increment's apply in
# recently_deleted() and find_get_block()); with 11,000 files deleted
# before each run, every run (ds's or the floor's) paid for the ones
# before it, more the faster they came (ds large D=1000 in one hyperfine
# series: 3.6, 4.4, 6.5, 7.5, 7.4 s). A real replica's directories only
# grow. The trash is deleted at the end.
restore_script() {
	local d=$1 lag=$2 r=$1/R$2 x=$1/R$2.restore
	cat >"$x/restore.sh" <<-EOF
	#!/bin/bash
	# restore $r to its lagging state
	set -e
	mkdir -p "$d/trash"
	[ ! -e "$r" ] || mv "$r" "$d/trash/R$lag.\$(date +%s%N)"
	mkdir "$r"
	cp -al "$r.pristine/A" "$r/A"
	cd "$r.pristine"
	cp -a B config journal misc "$r/"
	sync -f "$r"
	EOF
	chmod +x "$x/restore.sh"
}

mkdir -p "$BENCH_DIR"
build
for size in $SIZES; do
	gen_size "$size"
done
[ "$GEN_ONLY" -eq 1 ] && exit 0

# ---- sshd -------------------------------------------------------------------
# lib.sh wants the e2e environment; only its sshd helpers are used here
export DS_BIN=$DS DS_FIXTURE_DIR=/nonexistent DS_MANIFEST_DIR=/nonexistent
. "$SRC/tests/e2e/lib.sh"
trap - EXIT
trap 'stop_sshd; rm -rf "$SCRATCH"' EXIT
start_sshd 2>/dev/null
log "sshd on 127.0.0.1:$SSHD_PORT"

# the master side under /usr/bin/time -v: an -e wrapper that rewrites the
# remote command; the ssh client under /usr/bin/time too (its peak RSS is
# its own: the channel buffers grow with a large increment)
cat >"$BENCH_DIR/ssh-timed" <<EOF
#!/bin/bash
# ssh-timed HOST CMD...: ssh HOST /usr/bin/time -v -o FILE CMD...
host=\$1; shift
exec /usr/bin/time -f %M -o "$BENCH_DIR/ssh-client.rss" \\
	$SSH_CMD "\$host" /usr/bin/time -v -o "$BENCH_DIR/master.time" "\$@"
EOF
chmod +x "$BENCH_DIR/ssh-timed"

OUT=$BENCH_DIR/results
mkdir -p "$OUT"
TABLE=$OUT/table.md

median_of() { # hyperfine json -> median seconds of command $2
	jq -r ".results[$2].median" "$1"
}

# peak_rss FILE CMD...: run CMD, write the peak RSS (KiB) of that process
# alone to FILE. /usr/bin/time's figure is the largest of the process and
# its children, and ds replica's child is the ssh client, whose channel
# buffers grow with the increment; VmHWM of /proc/PID/status is the
# process's own high-water mark, polled until it exits (it only grows).
peak_rss() {
	local file=$1 pid hwm=0 k v rest
	shift
	"$@" &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		while read -r k v rest; do
			[ "$k" = VmHWM: ] && hwm=$v
		done <"/proc/$pid/status" 2>/dev/null || true
		sleep 0.005
	done
	echo "$hwm" >"$file"
	wait "$pid"
}

echo "| store | files | D | ds replica (s) | rsync -a (s) | floor (s) | rsync/ds | ds/floor | snapshot hold | RSS replica | RSS master | RSS ssh client |" >"$TABLE"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|" >>"$TABLE"
for size in $SIZES; do
	d=$BENCH_DIR/$size
	for lag in $LAGS; do
		r=$d/R$lag
		x=$r.restore
		restore_script "$d" "$lag"
		log "$size D=$lag: hyperfine, $RUNS runs each"
		hyperfine -N --runs "$RUNS" --prepare "$x/restore.sh" \
			--export-json "$OUT/$size-$lag.json" \
			-n ds "$DS replica -q -e '$SSH_CMD' -d $DSDIR dshost:$d/M $r" \
			-n rsync "rsync -a -e '$SSH_CMD' dshost:$d/M/A/ $r/A/" \
			-n floor "bash -c \"$SSH_CMD dshost 'tar -C $d/M/A -cf - -T $x/floorlist' | tar -C $r/A -xf - && sync -f $r\"" \
			>"$OUT/$size-$lag.hyperfine" 2>&1
		# once more, verbose and under /usr/bin/time on both sides
		"$x/restore.sh"
		peak_rss "$OUT/$size-$lag.replica.rss" \
			"$DS" replica -v -e "$BENCH_DIR/ssh-timed" -d "$DSDIR" \
			"dshost:$d/M" "$r" 2>"$OUT/$size-$lag.verbose"
		cp "$BENCH_DIR/master.time" "$OUT/$size-$lag.master.time"
		cp "$BENCH_DIR/ssh-client.rss" "$OUT/$size-$lag.ssh.rss"
		cmp -s "$d/M/A/x/serial" "$r/A/x/serial" ||
			{ log "$size D=$lag: replica's x.serial differs"; exit 1; }
		"$x/restore.sh"
		j=$OUT/$size-$lag.json
		tds=$(median_of "$j" 0)
		trs=$(median_of "$j" 1)
		tfl=$(median_of "$j" 2)
		hold=$(sed -n 's/.*master held in snapshot mode: \([0-9.]*\) s.*/\1/p' \
		       "$OUT/$size-$lag.verbose" | head -1)
		total=$(sed -n 's/.*; total time \([0-9.]*\) s.*/\1/p' \
		        "$OUT/$size-$lag.verbose" | head -1)
		holdpct=$(echo "100 * ${hold:-0} / ${total:-1}" | bc -l)
		rss_r=$(cat "$OUT/$size-$lag.replica.rss")
		rss_s=$(cat "$OUT/$size-$lag.ssh.rss")
		rss_m=$(awk -F': ' '/Maximum resident/ { print $2 }' \
		        "$OUT/$size-$lag.master.time")
		printf '| %s | %s | %s | %.3f | %.3f | %.3f | %.1f× | %.2f× | %s | %d KiB | %d KiB | %d KiB |\n' \
			"$size" "$(cat "$d/files")" "$lag" "$tds" "$trs" "$tfl" \
			"$(echo "$trs / $tds" | bc -l)" \
			"$(echo "$tds / $tfl" | bc -l)" \
			"${hold:-?} s of ${total:-?} s ($(printf %.0f "$holdpct")%)" \
			"$rss_r" "$rss_m" "$rss_s" >>"$TABLE"
		# every run shared the pristine copy's files: none changed
		pristine_md5 "$d" "$lag" | cmp -s - "$x/pristine.md5" ||
			{ log "$size D=$lag: R$lag.pristine changed"; exit 1; }
	done
done

# ---- engine commit rate ---------------------------------------------------
log "engine commits per second (fsync on)"
rm -rf "$BENCH_DIR/commit-store"
"$BENCH_DIR/commit_rate" "$BENCH_DIR/commit-store" 200 1 >"$OUT/commit-1"
rm -rf "$BENCH_DIR/commit-store"
"$BENCH_DIR/commit_rate" "$BENCH_DIR/commit-store" 200 10 >"$OUT/commit-10"
rm -rf "$BENCH_DIR/commit-store"
for size in $SIZES; do
	rm -rf "$BENCH_DIR/$size/trash"
done

echo
echo "Machine: $(nproc) CPUs, $(awk '/MemTotal/ {print int($2/1024)}' \
	/proc/meminfo) MiB, $(uname -r); $(date -u '+%Y-%m-%d %H:%M UTC'); hyperfine medians of $RUNS runs"
for size in $SIZES; do
	echo "$size: $(( $(objects_of "$size") + 20 + $([ "$size" = large ] && echo "$LARGE_EXTRA_OBJECTS" || echo 0) )) objects, $(cat "$BENCH_DIR/$size/files") files, $(( $(cat "$BENCH_DIR/$size/kbytes") / 1024 )) MiB; $(tr '\n' ' ' <"$BENCH_DIR/$size/gen.times")"
done
echo
cat "$TABLE"
echo
cat "$OUT/commit-1" "$OUT/commit-10"
exit 0
}
