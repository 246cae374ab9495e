#!/bin/bash
# An increment costs what changed, not what is stored: the same
# increment (20 transactions of 10 objects, byte-identical content from
# the same seed) is replicated from a master of 1,000 objects and from one
# of 10,000, and the system calls of each side (the replica, and the
# master side run locally as its child, with its sender thread) are
# counted with strace -f. Any
# tree walk, directory listing or read of files the increment does not
# need grows with the store and makes the counts differ; they must agree
# within 5% (the little that may vary: reads and polls on the pipe).
. "$(dirname "$0")/lib.sh"

command -v strace >/dev/null || fail "strace is not installed (scripts/setup-deps.sh)"
MARGIN_PCT=5

# make_pair NAME OBJECTS: a master NAME/M of OBJECTS objects and a replica
# NAME/R equal to it, then the increment committed on the master
make_pair() {
	local d=$SCRATCH/$1
	mkdir "$d"
	must_pass ds gen -q --nosync --big 0 --objects "$2" \
		--transactions $(($2 / 100)) --per-txn 100 "$d/M"
	cp -a "$d/M" "$d/R"
	must_pass ds gen -q --nosync --big 0 --objects 10 --transactions 20 \
		--per-txn 10 --seed 7 "$d/M"
}

# count NAME: replicate NAME/M into NAME/R under strace; prints
# "<replica syscalls> <master syscalls> <replica fs> <master fs>" where fs
# counts only the file-system calls (open, stat, getdents, mkdir, ...)
count() {
	local d=$SCRATCH/$1 f side all fsc r_all=0 m_all=0 r_fs=0 m_fs=0
	mkdir "$d/trace"
	# (LeakSanitizer cannot run under ptrace: an ASan build checks leaks
	# in the other tests, not in this traced run)
	must_pass env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		strace -f -ff -qq -o "$d/trace/t" \
		"$DS_BIN" replica -q "$d/M" "$d/R"
	cmp -s "$d/M/A/x/serial" "$d/R/A/x/serial" ||
		fail "$1: the replica's x.serial is not the master's"
	# the master side's files: its process (the execve of `replica +`)
	# and the threads it starts (its spool sender), by their tids
	local mfiles=" " tid
	for f in "$d/trace"/t.*; do
		grep -qE '^execve\(.*"replica", ("-[qv]+", )*"\+"' "$f" || continue
		mfiles="$mfiles$f "
		for tid in $(sed -n 's/^clone3\?(.*CLONE_THREAD.*) = \([0-9][0-9]*\)$/\1/p' "$f"); do
			mfiles="$mfiles$d/trace/t.$tid "
		done
	done
	for f in "$d/trace"/t.*; do
		side=r
		case $mfiles in *" $f "*) side=m ;; esac
		all=$(grep -cE '^[a-z_0-9]+\(' "$f" || true)
		fsc=$(grep -cE '^(open|openat|stat|newfstatat|lstat|statx|fstat|getdents64|mkdir|mkdirat|rename|renameat2?|unlink|unlinkat|rmdir|access|faccessat2?|readlink|chmod|fchmod|fsync|fdatasync|syncfs)\(' "$f" || true)
		if [ $side = m ]; then
			m_all=$((m_all + all)); m_fs=$((m_fs + fsc))
		else
			r_all=$((r_all + all)); r_fs=$((r_fs + fsc))
		fi
	done
	echo "$r_all $m_all $r_fs $m_fs"
}

# within WHAT SMALL LARGE: LARGE equals SMALL within MARGIN_PCT
within() {
	local what=$1 small=$2 large=$3 diff
	[ "$small" -gt 100 ] || fail "$what: only $small system calls traced"
	diff=$((large > small ? large - small : small - large))
	echo "$what: small store $small, large store $large (differ by $diff)" >&2
	[ $((diff * 100)) -le $((small * MARGIN_PCT)) ] ||
		fail "$what: $large system calls on the 10,000-object store" \
		     "against $small on the 1,000-object one: the increment's" \
		     "cost depends on the size of the storage"
}

make_pair small 1000
make_pair large 10000
# the two masters differ tenfold in files, the increments not at all
n_small=$(find "$SCRATCH/small/M/A" -type f | wc -l)
n_large=$(find "$SCRATCH/large/M/A" -type f | wc -l)
[ "$n_large" -gt $((n_small * 8)) ] ||
	fail "stores too alike: $n_small and $n_large files"

c_small=$(count small)
c_large=$(count large)
read -r rs ms rfs mfs <<<"$c_small"
read -r rl ml rfl mfl <<<"$c_large"
# each replica now holds what its master holds
assert_eq "$n_small" "$(find "$SCRATCH/small/R/A" -type f | wc -l)" \
	"files of the small replica"
assert_eq "$n_large" "$(find "$SCRATCH/large/R/A" -type f | wc -l)" \
	"files of the large replica"
within "replica side, all system calls" "$rs" "$rl"
within "master side, all system calls" "$ms" "$ml"
within "replica side, file-system calls" "$rfs" "$rfl"
within "master side, file-system calls" "$mfs" "$mfl"
