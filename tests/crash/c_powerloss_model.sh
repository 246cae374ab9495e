#!/bin/bash
# The simulated power loss's model (powerloss.py, see its header and
# tests/README.md) checked on small hand-made traces, so that a wrong model
# fails here rather than passing every scenario silently:
#  - a file created, written and fsynced, but its directory not fsynced,
#    is absent; with the directory fsync it is there, with its content;
#  - a rename without a directory fsync keeps the old name;
#  - data written after the last fsync is not there; an O_TRUNC without
#    fsync leaves the old content (durable), or an empty file ("all");
#  - a file in a new directory whose parent was not fsynced is lost;
#  - syncfs makes everything durable (its checkpoint);
#  - a directory renamed, then files created inside it: they follow the
#    directory object, under whichever name is durable;
#  - the variants: prefix:J and dir:D give the partial states (dir:D with
#    what its operations depend on), duplicates are dropped;
#  - a file replaced through a temporary name renamed over it (io.c's
#    ds_io_replace): the old file whole until the rename is durable, the
#    temporary file possibly left (empty), never a mix;
#  - a trace that io.c aborted is refused;
#  - and it can fail: a "commit" that renames a new file over the old one
#    without fsyncing it first is shown to lose the data at some crash
#    point and variant, while the same with the fsync never does.
. "$(dirname "$0")/../e2e/lib.sh"

PL=$(cd "$(dirname "$0")" && pwd)/powerloss.py
command -v python3 >/dev/null || fail "python3 is needed (scripts/setup-deps.sh)"

# newcase NAME: an empty ROOT $R and trace dir $T; fill $R, then `init`.
newcase() {
	C=$SCRATCH/$1
	R=$C/root
	T=$C/tr
	mkdir -p "$R" "$T"
}
init() { python3 "$PL" init "$R" "$T" || fail "$C: init failed"; }
# blob TEXT: store TEXT as a blob, print its md5
blob() {
	local h
	h=$(printf '%s' "$1" | md5sum | cut -c1-32)
	printf '%s' "$1" >"$T/blobs/$h"
	echo "$h"
}
# trace: the trace, from stdin ($R is expanded by the caller's heredoc)
trace() { cat >"$T/trace"; }
# replay K VARIANT: the state in $O
replay() {
	O=$C/out-$1-${2/:/}
	rm -rf "$O"
	python3 "$PL" replay "$T" "$1" "$2" "$O" ||
		fail "$C: replay $1 $2 failed"
}
absent() { [ ! -e "$O/$1" ] || fail "$C $O: $1 should be absent: $(ls -la "$O/$1")"; }
present() { [ -e "$O/$1" ] || fail "$C $O: $1 should be there: $(cd "$O" && find . | sort | tr '\n' ' ')"; }
content() {   # PATH TEXT
	present "$1"
	[ "$(cat "$O/$1")" = "$2" ] ||
		fail "$C $O: $1 holds '$(head -c 80 "$O/$1")', expected '$2'"
}

# 1. create + write + fsync, no directory fsync; then with it
newcase create
init
H=$(blob hello)
trace <<-EOF
1 open 100 creat,excl 644 $R/f
2 write 100 5
3 fsync 100 $H 644 $R/f
4 fsyncdir $R
EOF
replay 4 durable; absent f
replay 4 all; content f hello
replay 5 durable; content f hello
assert_eq "1 3 4 5" "$(python3 "$PL" points "$T" | tr '\n' ' ' | sed 's/ $//')" "points"

# 2. rename without a directory fsync keeps the old name
newcase rename
printf old >"$R/a"
init
trace <<-EOF
1 rename $R/a $R/b
2 fsyncdir $R
EOF
replay 2 durable; content a old; absent b
replay 2 all; content b old; absent a
replay 3 durable; content b old; absent a
assert_eq "durable all" "$(python3 "$PL" variants "$T" 2 | tr '\n' ' ' | sed 's/ $//')" \
	"variants before the fsync"
assert_eq durable "$(python3 "$PL" variants "$T" 3)" "variants after the fsync"

# 3. data after the last fsync; O_TRUNC without fsync; ftruncate
newcase content
printf 'pristine data' >"$R/p"
printf 'twelve bytes' >"$R/q"
init
H1=$(blob v1)
trace <<-EOF
1 open 101 creat,excl 644 $R/n
2 write 101 2
3 fsync 101 $H1 644 $R/n
4 fsyncdir $R
5 write 101 10
6 open 555 creat,trunc 644 $R/p
7 write 555 3
8 open 556 - 644 $R/q
9 ftruncate 556 6
EOF
replay 10 durable; content n v1; content p 'pristine data'; content q 'twelve bytes'
replay 10 all; content n v1; content p ''; content q twelve
python3 "$PL" pending "$T" 10 | grep -q . &&
	fail "$C: pending operations after the directory fsync: $(python3 "$PL" pending "$T" 10)"

# 4. a file in a new directory whose parent was not fsynced is lost
newcase newdir
init
H=$(blob inside)
trace <<-EOF
1 mkdir 755 $R/d
2 open 102 creat 600 $R/d/f
3 write 102 6
4 fsync 102 $H 600 $R/d/f
5 fsyncdir $R/d
6 fsyncdir $R
EOF
replay 6 durable; absent d
replay 6 all; content d/f inside
replay 7 durable; content d/f inside
[ "$(stat -c %a "$O/d/f")" = 600 ] || fail "$C: d/f mode $(stat -c %a "$O/d/f")"

# 5. syncfs makes all durable (the checkpoint's contents too)
newcase syncfs
init
H=$(blob checkpointed)
trace <<-EOF
1 mkdir 700 $R/d
2 open 103 creat 644 $R/d/g
3 write 103 12
4 syncfs $R
4 cp d 755 $R
4 cp d 700 $R/d
4 cp f 103 644 $H $R/d/g
4 cpend
5 open 104 creat 644 $R/d/h
EOF
replay 4 durable; absent d
replay 5 durable; content d/g checkpointed
[ "$(stat -c %a "$O/d")" = 700 ] || fail "$C: d mode $(stat -c %a "$O/d")"
replay 6 durable; content d/g checkpointed; absent d/h
replay 6 all; content d/h ''

# 6. a directory renamed, then a file created inside it
newcase dirrename
init
HX=$(blob x)
HY=$(blob y)
trace <<-EOF
1 mkdir 755 $R/t
2 open 105 creat 644 $R/t/x
3 write 105 1
4 fsync 105 $HX 644 $R/t/x
5 fsyncdir $R/t
6 fsyncdir $R
7 rename $R/t $R/u
8 open 106 creat 644 $R/u/y
9 write 106 1
10 fsync 106 $HY 644 $R/u/y
11 fsyncdir $R/u
12 fsyncdir $R
EOF
replay 12 durable; content t/x x; content t/y y; absent u
replay 12 all; content u/x x; content u/y y; absent t
replay 13 durable; content u/x x; content u/y y; absent t

# 7. prefix and dir variants: two directories, one pending entry each
newcase variants
mkdir "$R/p" "$R/q"
init
H=$(blob z)
trace <<-EOF
1 open 107 creat 644 $R/p/a
2 fsync 107 $H 644 $R/p/a
3 open 108 creat 644 $R/q/b
4 fsync 108 $H 644 $R/q/b
EOF
V=$(python3 "$PL" variants "$T" 5 | tr '\n' ' ' | sed 's/ $//')
# prefix:1 is p's own: dropped as a duplicate of dir:<p>, or the reverse
[[ $V =~ ^durable\ all\ prefix:1\ dir:[0-9]+$ ]] ||
	fail "$C: variants at 5: '$V'"
replay 5 prefix:1; content p/a z; absent q/b
replay 5 "${V##* }"; content q/b z; absent p/a
assert_eq 3 "$(python3 "$PL" variants "$T" 5 3 | wc -l)" "variants limited to 3"

# 7b. dir:D takes what its operations depend on: the mkdir of the
# directory they change, the emptying of a directory they remove
newcase deps
mkdir "$R/d" "$R/e"
printf moved >"$R/d/a"
init
H=$(blob new)
trace <<-EOF
1 mkdir 755 $R/n
2 open 110 creat 644 $R/n/f
3 fsync 110 $H 644 $R/n/f
4 rename $R/d/a $R/e/a
5 rmdir $R/d
EOF
# objects: 0 the root, 1 d, 2 d/a, 3 e (pristine, in that order), 4 n
replay 6 dir:4; content n/f new; present d/a; absent e/a
replay 6 dir:0; content e/a moved; absent d; present n
replay 6 prefix:1; present n; absent n/f; present d/a

# 8. a trace io.c aborted is refused
newcase aborted
init
trace <<-EOF
1 mkdir 755 $R/d
ABORT path with a space or an odd byte
EOF
if python3 "$PL" replay "$T" 2 durable "$C/out" 2>"$C/err"; then
	fail "$C: an aborted trace was replayed"
fi
grep -q 'trace aborted' "$C/err" || fail "$C: no 'trace aborted' message: $(cat "$C/err")"

# 8b. a file replaced as ds_io_replace_open/_commit do: a temporary name
# beside it created (O_EXCL) and written, renamed over the old file; the
# data made durable by a later syncfs (a replica apply's bulk), or by an
# fsync before the rename (x.serial, misc/snapshot). Until the rename is
# durable the old file stays, whole; the temporary file may be there too
# (empty: its data never was durable), and a durable rename without the
# data gives an empty file (the pessimistic "all"), never a mix.
newcase replace
mkdir "$R/d"
printf old >"$R/d/f"
printf keep >"$R/d/g"
init
H=$(blob new)
HS=$(blob serial)
trace <<-EOF
1 open 120 creat,excl 640 $R/d/.ds-new.f
2 write 120 3
3 rename $R/d/.ds-new.f $R/d/f
4 open 121 creat,excl 644 $R/d/.ds-new.g
5 write 121 6
6 fsync 121 $HS 644 $R/d/.ds-new.g
7 rename $R/d/.ds-new.g $R/d/g
8 syncfs $R
8 cp d 755 $R
8 cp d 755 $R/d
8 cp f 120 640 $H $R/d/f
8 cp f 121 644 $HS $R/d/g
8 cpend
EOF
replay 3 durable; content d/f old; absent d/.ds-new.f
replay 3 all; content d/f old; content d/.ds-new.f ''
replay 4 durable; content d/f old; absent d/.ds-new.f
replay 4 all; content d/f ''; absent d/.ds-new.f
replay 4 prefix:1; content d/f old; content d/.ds-new.f ''
replay 8 durable; content d/f old; content d/g keep
replay 8 all; content d/f ''; content d/g serial; absent d/.ds-new.g
replay 8 prefix:3; content d/f ''; content d/g keep; content d/.ds-new.g serial
replay 9 durable; content d/f new; content d/g serial
absent d/.ds-new.f; absent d/.ds-new.g
[ "$(stat -c %a "$O/d/f")" = 640 ] || fail "$C: d/f mode $(stat -c %a "$O/d/f")"

# 9. the harness can find a bug. "Commit" a new version of $R/data by
# writing data.tmp and renaming it over data, then fsyncing the directory.
# Invariant: data holds the old or the new version. Without an fsync of
# data.tmp before the rename, some power cut leaves it empty.
# commit_trace SAFE: the trace, with the fsync when SAFE=1
commit_trace() {
	local h
	h=$(blob v2)
	{
		echo "1 open 109 creat,excl 644 $R/data.tmp"
		echo "2 write 109 2"
		[ "$1" = 0 ] || echo "3 fsync 109 $h 644 $R/data.tmp"
		echo "4 rename $R/data.tmp $R/data"
		echo "5 fsyncdir $R"
	} | trace
}
# violations: how many (point, variant) replays break the invariant
violations() {
	local k v bad=0
	for k in $(python3 "$PL" points "$T"); do
		for v in $(python3 "$PL" variants "$T" "$k"); do
			replay "$k" "$v"
			case $(cat "$O/data") in
			v1|v2) ;;
			*) bad=$((bad + 1)) ;;
			esac
		done
	done
	echo "$bad"
}
newcase unsafe
printf v1 >"$R/data"
init
commit_trace 0
BAD=$(violations)
[ "$BAD" -gt 0 ] || fail "the unsafe commit (rename without fsync) was not caught"
replay 6 durable
[ "$(wc -c <"$O/data")" -eq 0 ] || fail "unsafe commit: data after the last call: '$(cat "$O/data")'"
newcase safe
printf v1 >"$R/data"
init
commit_trace 1
GOOD=$(violations)
assert_eq 0 "$GOOD" "violations of the safe commit"
replay 6 durable; content data v2

echo "$E2E_NAME: the model's cases hold; the unsafe commit lost data in $BAD replay(s), the safe one in none"
