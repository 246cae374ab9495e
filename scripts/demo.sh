#!/bin/bash
# demo.sh - the main job, end to end, on one machine:
#   1. install the dependencies (scripts/setup-deps.sh) and build ds;
#   2. create a master storage with `ds gen` (realistic transactions);
#   3. start an OpenSSH server on 127.0.0.1 with its own keys
#      (scripts/loopback-sshd.sh; the system's sshd and ~/.ssh untouched);
#   4. make a replica over ssh with `ds replica --init`;
#   5. commit more on the master (`ds gen` again, one `ds commit`, and
#      ZODB itself through the dirstorage Python package: demo-zodb.py);
#   6. replicate the increment over ssh with `ds replica -v`;
#   7. check both storages (`ds check`) and prove the replica holds the
#      master's history (`ds check --compare`);
#   8. the same once more through a key restricted to
#      `ds replica --serve-only MASTER` (an ssh forced command);
#   9. show the newest transactions of both (`ds log -n 5`).
#
# Environment: DS_DEMO_DIR (where the storages go; default a new directory
# under /tmp, kept afterwards), DS_JOBS (build jobs, default 2).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# the project's Python virtualenv: setup-deps.sh makes it there
VENV=${DS_VENV:-$ROOT/.venv}
BUILD=$ROOT/build
DS=$BUILD/ds
DEMO=

step() {
	echo
	echo "=== $*"
}

# Show a command (an argument with spaces in single quotes), then run it.
run() {
	local a line=\$
	for a in "$@"; do
		case $a in
		*[[:space:]]*) line="$line '$a'" ;;
		*) line="$line $a" ;;
		esac
	done
	echo "$line"
	"$@"
}

setup_deps() {
	step "Dependencies (Debian packages, the Python virtualenv $VENV)"
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
	DEMO=$(cd "$DEMO" && pwd)
	local d
	for d in master replica; do
		[ ! -e "$DEMO/$d" ] ||
			{ echo "demo: $DEMO/$d already exists" >&2; exit 1; }
	done
}

create_master() {
	step "A master storage: 300 objects in 100 transactions (ds gen)"
	run "$DS" gen --objects 300 --transactions 100 --per-txn 5 --seed 1 \
		"$DEMO/master"
	run "$DS" log -n 3 "$DEMO/master"
}

start_ssh() {
	step "An OpenSSH server on 127.0.0.1 with its own keys"
	. "$ROOT/scripts/loopback-sshd.sh"
	loopback_sshd_start "$DEMO/sshd"
	trap loopback_sshd_stop EXIT
	echo "sshd pid $LOOPBACK_SSHD_PID on 127.0.0.1:$LOOPBACK_SSHD_PORT;" \
	     "ssh -F $LOOPBACK_SSH_CONFIG dshost logs in"
	run $LOOPBACK_SSH dshost echo "logged in over ssh as \$(id -un)"
}

init_replica() {
	step "The first copy, over ssh: ds replica --init"
	run "$DS" replica --init -v -e "$LOOPBACK_SSH" "dshost:$DEMO/master" \
		"$DEMO/replica"
}

commit_more() {
	step "The master moves on: 40 more transactions, and one ds commit"
	run "$DS" gen -q --objects 30 --transactions 40 --per-txn 4 --seed 2 \
		"$DEMO/master"
	printf 'a pickle written by the demo\n' >"$DEMO/pickle"
	run "$DS" commit -u demo -m "committed by scripts/demo.sh" \
		"$DEMO/master" new="$DEMO/pickle"
	step "ZODB commits to the master through the dirstorage package"
	run "$VENV/bin/python" "$ROOT/scripts/demo-zodb.py" "$DEMO/master"
}

replicate() {
	step "Replicate the increment over ssh: ds replica -v"
	run "$DS" replica -v -e "$LOOPBACK_SSH" "dshost:$DEMO/master" \
		"$DEMO/replica"
	step "Nothing new: a no-op increment, quietly (what cron runs)"
	run "$DS" replica -q -e "$LOOPBACK_SSH" "dshost:$DEMO/master" \
		"$DEMO/replica"
	echo "(exit $?, nothing printed)"
}

check_both() {
	step "Check both storages, then compare the replica with the master"
	run "$DS" check "$DEMO/master"
	run "$DS" check "$DEMO/replica"
	run "$DS" check --compare "$DEMO/master" "$DEMO/replica"
}

serve_only() {
	step "A key that can only serve the master: ds replica --serve-only"
	echo "command=\"$DS replica --serve-only $DEMO/master\",restrict" \
	     "$LOOPBACK_CLIENT_PUB" >"$LOOPBACK_AUTHORIZED_KEYS"
	echo "authorized_keys: command=\"$DS replica --serve-only" \
	     "$DEMO/master\",restrict ssh-ed25519 ..."
	run "$DS" gen -q --objects 5 --transactions 5 --per-txn 2 --seed 3 \
		"$DEMO/master"
	# whatever path the client names, the key serves the master
	run "$DS" replica -e "$LOOPBACK_SSH" dshost:/any/other/path \
		"$DEMO/replica"
	echo "\$ $LOOPBACK_SSH dshost rm -rf $DEMO/master"
	if $LOOPBACK_SSH dshost rm -rf "$DEMO/master"; then
		echo "demo: the forced command ran something else" >&2
		exit 1
	fi
	run "$DS" check -q --compare "$DEMO/master" "$DEMO/replica"
	echo "(exit $?: the replica holds the master's history)"
}

show_both() {
	step "The newest transactions of the master"
	run "$DS" log -n 5 "$DEMO/master"
	step "The newest transactions of the replica"
	run "$DS" log -n 5 "$DEMO/replica"
}

main() {
	setup_deps
	build
	make_demo_dir
	create_master
	start_ssh
	init_replica
	commit_more
	replicate
	check_both
	serve_only
	show_both
	step "Done: the demo storages are in $DEMO"
}

main "$@"
