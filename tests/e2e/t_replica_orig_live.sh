#!/bin/bash
# `ds replica --init` against a master that runs the ORIGINAL replica.py
# itself, in local mode and over a real sshd on 127.0.0.1: the new replica
# has the master's identity and settings, `ds check` and the original's
# checkds accept it, `ds check --compare` finds it equal to the master,
# and after more commits by the original an ordinary increment brings it
# up to date. Also: a packed original master and an ssh key forced to run
# replica.py are refused with what to do by hand, nothing made.
#
# Needs the reference build of the original (shared/ref/setup.sh), at
# $DS_REF or /root/ds-ref, with Debian's /usr/bin/python3; skipped where
# it is not built (CI cannot build it: t_replica_orig_replay.sh replays
# its recorded answers there).
. "$(dirname "$0")/lib.sh"

REF=${DS_REF:-/root/ds-ref}
PY=${DS_REF_PYTHON:-/usr/bin/python3}
[ -f "$REF/ds/replica.py" ] && [ -f "$REF/env.sh" ] ||
	skip "the original implementation is not built here ($REF/ds/replica.py" \
	     "or $REF/env.sh missing; set DS_REF to a build of shared/ref/setup.sh)"
[ -x "$PY" ] || skip "no $PY to run the original with"
( . "$REF/env.sh" && "$PY" -c 'import DirectoryStorage.Storage, ZODB' ) 2>/dev/null ||
	skip "the original at $REF does not import with $PY"

ORIG="$PY $REF/ds/replica.py"
orig_commit() {     # DIR N TAG: commits by the original, then closed
	( . "$REF/env.sh" && "$PY" "$DS_SOURCE_DIR/tests/e2e/orig_commit.py" "$@" ) ||
		fail "orig_commit.py $* failed"
}
equal() {           # MASTER REPLICA: ds check and ds check --compare
	must_pass ds check "$2"
	must_pass ds check --compare "$1" "$2"
	assert_contains "$LAST_STDERR" "equals $1's history up to its last transaction"
	cmp "$1/config/identity" "$2/config/identity" || fail "$2: identity differs"
	cmp "$1/config/settings" "$2/config/settings" || fail "$2: settings differ"
}
nothing_made() {
	[ ! -e "$1" ] || fail "$1 was made"
	! ls -d "$1".init-* >/dev/null 2>&1 || fail "a $1.init-* directory was left"
}

M=$SCRATCH/master
must_pass "$PY" "$REF/ds/mkds.py" "$M" Full bushy
orig_commit "$M" 5 a

# --- local mode: the master side is the original's replica.py
must_pass ds replica --init --master-command "$ORIG" "$M" "$SCRATCH/r"
assert_contains "$LAST_STDERR" "ds replica: Replica complete"
assert_not_contains "$LAST_STDERR" "Usage:"
equal "$M" "$SCRATCH/r"
# a relative master directory works in local mode (made absolute for it)
must_pass bash -c "cd '$SCRATCH' && '$DS_BIN' replica --init -v --master-command '$ORIG' master r-rel"
assert_contains "$LAST_STDERR" "the master runs the original replica.py"
equal "$M" "$SCRATCH/r-rel"
orig_commit "$M" 3 b
must_pass ds replica --master-command "$ORIG" "$M" "$SCRATCH/r"
assert_contains "$LAST_STDERR" "ds replica: Replica complete"
equal "$M" "$SCRATCH/r"

# --- over ssh: -d naming the reference's multi-call `ds` (DIR/ds replica
# runs replica.py), and --master-command running replica.py directly
start_sshd
must_pass ds replica --init -e "$SSH_CMD" -d "$REF/ds" dshost:"$M" "$SCRATCH/s1"
assert_contains "$LAST_STDERR" "ds replica: Replica complete"
assert_not_contains "$LAST_STDERR" "Usage:"
equal "$M" "$SCRATCH/s1"
must_pass ds replica --init -vv -e "$SSH_CMD" --master-command "$ORIG" dshost:"$M" "$SCRATCH/s2"
assert_contains "$LAST_STDERR" "running: ssh -F $SSH_CONFIG dshost 'cat' '--' '$M/config/identity'"
assert_contains "$LAST_STDERR" "dshost '$PY' '$REF/ds/replica.py' -v -v + '$M'"
equal "$M" "$SCRATCH/s2"
orig_commit "$M" 4 c
for r in s1 s2; do
	must_pass ds replica -e "$SSH_CMD" --master-command "$ORIG" dshost:"$M" "$SCRATCH/$r"
	assert_contains "$LAST_STDERR" "ds replica: Replica complete"
	equal "$M" "$SCRATCH/$r"
done
# the original's own checker accepts what ds made
must_pass "$PY" "$REF/ds/checkds.py" --storage "$SCRATCH/s2"
assert_eq done "$(tail -n 1 "$LAST_STDERR")" "checkds's last line"

# --- a packed original master sends no history from its start
fixture_copy flat-master "$SCRATCH/flat-master"
must_fail 1 ds replica --init -e "$SSH_CMD" --master-command "$ORIG" dshost:"$SCRATCH/flat-master" "$SCRATCH/sf"
assert_contains "$LAST_STDERR" "ds replica: the master runs the original replica.py, and its storage has been packed"
assert_contains "$LAST_STDERR" "cp -a"
nothing_made "$SCRATCH/sf"

# --- an ssh key forced to run replica.py cannot run cat
echo "command=\"$PY $REF/ds/replica.py + $M\",restrict $LOOPBACK_CLIENT_PUB" >"$SSHD_DIR/authorized_keys"
must_fail 1 ds replica --init -e "$SSH_CMD" --master-command "$ORIG" dshost:"$M" "$SCRATCH/sq"
assert_contains "$LAST_STDERR" "ds replica: the master runs the original replica.py, which cannot send its identity and settings"
assert_contains "$LAST_STDERR" "ran replica.py instead"
assert_contains "$LAST_STDERR" "ds mkds $SCRATCH/sq Full FORMAT"
assert_not_contains "$LAST_STDERR" "Usage:"
nothing_made "$SCRATCH/sq"
# through that key, increments still work
must_pass ds replica -e "$SSH_CMD" --master-command "$ORIG" dshost:"$M" "$SCRATCH/s1"
equal "$M" "$SCRATCH/s1"
