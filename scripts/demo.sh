#!/bin/bash
# demo.sh - the main job, end to end: install the dependencies, build ds,
# create a storage with `ds mkds`, and show what is in it with `ds log` and
# `ds dump`; then show a storage written by the original Python
# implementation (a test fixture) through the same commands.
#
# Each step is a function, called in order from main() at the bottom, so
# that later steps (commit data, make a replica, replicate over ssh, check)
# slot in as more functions.
#
# Environment: DS_DEMO_DIR (where the demo storages go; default a new
# directory under /tmp, kept afterwards), DS_JOBS (build jobs, default 2).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build
DS=$BUILD/ds
DEMO=

step() {
	echo
	echo "=== $*"
}

# Show a command, then run it.
run() {
	echo "\$ $*"
	"$@"
}

setup_deps() {
	step "Dependencies (Debian packages)"
	bash "$ROOT/scripts/setup-deps.sh"
}

build() {
	step "Build (CMake + Ninja, release)"
	cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	ninja -C "$BUILD" -j "${DS_JOBS:-2}" ds
	run "$DS" --version
}

make_demo_dir() {
	DEMO=${DS_DEMO_DIR:-$(mktemp -d /tmp/ds-demo.XXXXXX)}
	mkdir -p "$DEMO"
	[ ! -e "$DEMO/master" ] ||
		{ echo "demo: $DEMO/master already exists" >&2; exit 1; }
}

create_storage() {
	step "Create an empty Full storage in the bushy layout"
	run "$DS" mkds "$DEMO/master" Full bushy
	echo "\$ find $DEMO/master | sort"
	find "$DEMO/master" -printf '%M %p\n' | sort -k2
	run grep -E '^(format|version|classname):' "$DEMO/master/config/settings"
}

show_storage() {
	local home=$1
	step "History of $home (newest first)"
	run "$DS" log -n 8 "$home"
	step "Its x.serial (the last committed transaction)"
	run "$DS" dump "$home/A/x/serial"
}

show_original_storage() {
	local tid tfile
	step "A storage written by the original Python DirectoryStorage (test fixture)"
	tar -xzpf "$ROOT/tests/fixtures/bushy-master.tar.gz" -C "$DEMO"
	show_storage "$DEMO/bushy-master"
	step "Its newest transaction file, decoded (md5 checked)"
	tid=$("$DS" log -n 1 "$DEMO/bushy-master" | awk 'NR == 1 { print $1 }')
	# t040D44.B2249CA6AA in the bushy layout: A/t0/40/D44/B2249CA6AA
	tfile=$DEMO/bushy-master/A/t${tid:0:1}/${tid:1:2}/${tid:3:3}/${tid:6}
	run "$DS" dump "$tfile"
	step "The same, for machines"
	run "$DS" dump --json "$tfile"
}

main() {
	setup_deps
	build
	make_demo_dir
	create_storage
	show_storage "$DEMO/master"
	show_original_storage
	step "Done: the demo storages are in $DEMO"
}

main "$@"
