# lib.sh - sourced by every end-to-end scenario tests/e2e/t_<scenario>.sh.
#
# A scenario runs `ds` as a user would, against copies of the fixture
# storages written by the original implementation. ctest gives it:
#   DS_BIN          the ds binary under test
#   DS_FIXTURE_DIR  freshly extracted fixture storages (never modify them:
#                   fixture_copy them into the scratch directory first)
#   DS_MANIFEST_DIR the fixtures' *.manifest.json, *.replication.json
#
# Every scenario gets its own scratch directory $SCRATCH (mktemp -d). It is
# removed when the scenario succeeds, and kept (its path printed) when it
# fails, with the last command's output inside.
#
# Helpers:
#   ds ARGS...                  run $DS_BIN
#   must_pass CMD...            run CMD, fail the scenario unless it exits 0
#   must_fail CODE CMD...       run CMD, fail unless it exits with CODE
#   Both leave the command's stdout in the file $LAST_STDOUT and its stderr
#   in the file $LAST_STDERR (paths, so: assert_contains "$LAST_STDERR" x).
#   assert_contains FILE TEXT   FILE contains the fixed string TEXT
#   assert_not_contains FILE TEXT
#   assert_eq EXPECTED ACTUAL [WHAT]
#   fixture_copy NAME DEST      cp -a a fixture storage to DEST
#   manifest NAME JQFILTER      jq -r JQFILTER on NAME.manifest.json
#   tree_md5 DIR                "type mode path md5" of every file and
#                               directory under DIR, sorted: compare trees
#   start_sshd / stop_sshd      a real sshd on 127.0.0.1 (see below)
#   skip REASON                 exit 77: ctest reports the scenario as
#                               skipped (only for what this machine lacks,
#                               e.g. the original implementation)

set -euo pipefail
umask 022
exec </dev/null         # nothing here may wait for a terminal (CI has none)

: "${DS_BIN:?DS_BIN must name the ds binary (ctest sets it)}"
: "${DS_FIXTURE_DIR:?DS_FIXTURE_DIR must name the extracted fixtures}"
: "${DS_MANIFEST_DIR:?DS_MANIFEST_DIR must name the fixture manifests}"
export LC_ALL=C

E2E_NAME=$(basename "$0" .sh)
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/ds-e2e-$E2E_NAME.XXXXXX")
LAST_STDOUT=$SCRATCH/.last.stdout
LAST_STDERR=$SCRATCH/.last.stderr
: >"$LAST_STDOUT"
: >"$LAST_STDERR"
SSHD_PID=

e2e_exit() {
	local rc=$?
	stop_sshd || true
	if [ "$rc" -eq 0 ]; then
		rm -rf "$SCRATCH"
		echo "PASS: $E2E_NAME"
	elif [ "$rc" -eq 77 ]; then
		# skip: ctest's SKIP_RETURN_CODE, the reason printed by skip
		rm -rf "$SCRATCH"
	else
		echo "FAIL: $E2E_NAME (exit $rc); scratch directory kept:" \
		     "$SCRATCH" >&2
	fi
	exit "$rc"
}
trap e2e_exit EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# skip REASON: this scenario cannot run on this machine (ctest reports it
# as skipped, not passed, with REASON in its output)
skip() {
	echo "SKIP: $E2E_NAME: $*"
	exit 77
}

# What the last command printed, for a failure message.
e2e_show_last() {
	echo "--- stdout:" >&2
	head -c 4000 "$LAST_STDOUT" >&2 || true
	echo "--- stderr:" >&2
	head -c 4000 "$LAST_STDERR" >&2 || true
	echo "---" >&2
}

ds() {
	"$DS_BIN" "$@"
}

must_pass() {
	local rc=0
	echo "+ $*" >&2
	"$@" >"$LAST_STDOUT" 2>"$LAST_STDERR" || rc=$?
	if [ "$rc" -ne 0 ]; then
		e2e_show_last
		fail "expected success, got exit $rc: $*"
	fi
}

must_fail() {
	local want=$1 rc=0
	shift
	echo "+ (expect exit $want) $*" >&2
	"$@" >"$LAST_STDOUT" 2>"$LAST_STDERR" || rc=$?
	if [ "$rc" -ne "$want" ]; then
		e2e_show_last
		fail "expected exit $want, got $rc: $*"
	fi
}

assert_contains() {
	local file=$1 text=$2
	if ! grep -qF -- "$text" "$file"; then
		echo "--- $file:" >&2
		head -c 4000 "$file" >&2 || true
		echo "---" >&2
		fail "$file does not contain: $text"
	fi
}

assert_not_contains() {
	local file=$1 text=$2
	if grep -qF -- "$text" "$file"; then
		echo "--- $file:" >&2
		head -c 4000 "$file" >&2 || true
		echo "---" >&2
		fail "$file contains: $text"
	fi
}

assert_eq() {
	local want=$1 got=$2 what=${3:-value}
	if [ "$want" != "$got" ]; then
		fail "$what: expected '$want', got '$got'"
	fi
}

fixture_copy() {
	local name=$1 dest=$2
	[ -d "$DS_FIXTURE_DIR/$name" ] ||
		fail "no fixture storage $DS_FIXTURE_DIR/$name"
	cp -a "$DS_FIXTURE_DIR/$name" "$dest"
}

manifest() {
	local name=$1 filter=$2 file=$DS_MANIFEST_DIR/$1.manifest.json
	[ -f "$file" ] || fail "no manifest $file"
	jq -r "$filter" "$file"
}

tree_md5() {
	local dir=$1
	[ -d "$dir" ] || fail "tree_md5: no directory $dir"
	(
		cd "$dir"
		{
			find . -mindepth 1 \( -type f -o -type d -o -type l \) \
			     -printf 'M %y %m %p\n'
			find . -type f -print0 | xargs -0 -r md5sum |
				sed 's/^\([0-9a-f]*\)  /S \1 /'
		} | awk '
			$1 == "M" { type[$4] = $2; mode[$4] = $3 }
			$1 == "S" { sum[$3] = $2 }
			END {
				for (p in type)
					printf "%s %s %s %s\n", type[p], mode[p], p,
					       (p in sum) ? sum[p] : "-"
			}' | sort -k3
	)
}

# ---- a real sshd on 127.0.0.1 ------------------------------------------
# start_sshd runs /usr/sbin/sshd -D -e as the current user on a free port
# of 127.0.0.1, with its own host key and an authorized_keys holding a fresh
# ed25519 client key, and writes $SSH_CONFIG so that
#   ssh -F "$SSH_CONFIG" dshost COMMAND
# logs in without a password or a prompt (BatchMode yes, the host key
# pinned in its own known_hosts). $SSH_CMD is that ssh command line, ready
# for `ds replica -e "$SSH_CMD" dshost:DIR REPLICA`. The files (keys,
# authorized_keys, sshd.log) are in $SSHD_DIR. The server itself is
# scripts/loopback-sshd.sh, which the demo uses too.
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/loopback-sshd.sh"
SSHD_DIR=
SSH_CONFIG=
SSH_CMD=
SSHD_PORT=

start_sshd() {
	SSHD_DIR=$SCRATCH/sshd
	loopback_sshd_start "$SSHD_DIR" || fail "could not start sshd (log above)"
	SSHD_PID=$LOOPBACK_SSHD_PID
	SSHD_PORT=$LOOPBACK_SSHD_PORT
	SSH_CONFIG=$LOOPBACK_SSH_CONFIG
	SSH_CMD=$LOOPBACK_SSH
	export SSH_CONFIG SSH_CMD SSHD_PORT
	echo "sshd: pid $SSHD_PID on 127.0.0.1:$SSHD_PORT (ssh -F $SSH_CONFIG dshost)" >&2
}

stop_sshd() {
	loopback_sshd_stop
	SSHD_PID=
}
